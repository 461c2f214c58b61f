import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../src/app/clock.js";
import { provisionFromStick } from "../../src/provision/provision.js";
import { generateSigningKeyPair } from "../../src/update/keys.js";

// Issue 10 provisioning tests: a temp directory stands in for the USB stick and another for
// /etc/lanekeeper. Real files, the real validator, the real report.

const fixtures = join(import.meta.dirname, "..", "fixtures", "provision");
const demo = JSON.parse(await readFile(join(import.meta.dirname, "..", "..", "config", "demo.json"), "utf8")) as Record<string, any>;

const PLATFORM_KEY = "stick-platform-key-7F3A9C21D4E5B6A8";
const MQTT_PASSWORD = "mqtt-password-Q8w7E6r5";
const API_TOKEN = "api-token-9b8a7c6d5e4f3a2b";
const CAMERA_KEY = "camera-key-H7g6F5d4";

let work: string;
let n = 0;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "lk-provision-"));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Setup {
  stick: string;
  etc: string;
  configPath: string;
}

async function setup(): Promise<Setup> {
  const base = join(work, `case-${n++}`);
  const stick = join(base, "stick");
  const etc = join(base, "etc");
  await mkdir(stick, { recursive: true });
  await mkdir(etc, { recursive: true });
  return { stick, etc, configPath: join(etc, "lanekeeper.json") };
}

function config(): Record<string, any> {
  const c = structuredClone(demo);
  c.deviceId = "box-stick-07";
  c.lot.name = "Harbour lot";
  c.api.token = API_TOKEN;
  c.api.cameraKey = CAMERA_KEY;
  c.mqtt = { url: "mqtts://broker.example:8883", username: "box-stick-07", password: MQTT_PASSWORD };
  delete c.platform.key; // comes from platform.key on the stick
  return c;
}

async function writeStick(stick: string, doc: unknown, extras: { platformKey?: string; mqtt?: boolean; mqttKey?: string; updateKeys?: Record<string, string> } = {}): Promise<void> {
  await writeFile(join(stick, "lanekeeper.json"), JSON.stringify(doc, null, 2));
  if (extras.platformKey !== undefined) await writeFile(join(stick, "platform.key"), `${extras.platformKey}\n`);
  if (extras.mqtt) {
    await mkdir(join(stick, "mqtt"), { recursive: true });
    await copyFile(join(fixtures, "ca.pem"), join(stick, "mqtt", "ca.pem"));
    await copyFile(join(fixtures, "client.pem"), join(stick, "mqtt", "client.pem"));
    await copyFile(join(fixtures, extras.mqttKey ?? "client.key"), join(stick, "mqtt", "client.key"));
  }
  if (extras.updateKeys) {
    await mkdir(join(stick, "update-keys"), { recursive: true });
    for (const [name, pem] of Object.entries(extras.updateKeys)) await writeFile(join(stick, "update-keys", name), pem);
  }
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(d, entry.name), `${prefix}${entry.name}/`);
      else out[`${prefix}${entry.name}`] = await readFile(join(d, entry.name), "utf8");
    }
  };
  await walk(dir, "");
  return out;
}

function assertNoSecrets(report: string): void {
  const clientKey = demoClientKeyBody;
  for (const secret of [PLATFORM_KEY, MQTT_PASSWORD, API_TOKEN, CAMERA_KEY, demo.platform.key as string, clientKey]) {
    assert.equal(report.includes(secret), false, `report must not contain ${secret.slice(0, 6)}...`);
  }
}
let demoClientKeyBody = "";

describe("USB provisioning", () => {
  before(async () => {
    demoClientKeyBody = (await readFile(join(fixtures, "client.key"), "utf8")).split("\n")[1] ?? "unused";
  });

  test("a valid stick is applied atomically, the old config kept as .prev, and a secret-free report written", async () => {
    const { stick, etc, configPath } = await setup();
    const old = structuredClone(demo);
    await writeFile(configPath, JSON.stringify(old, null, 2));
    const release = generateSigningKeyPair("release-2025");
    await writeStick(stick, config(), { platformKey: PLATFORM_KEY, mqtt: true, updateKeys: { "release-2025.pub.pem": release.publicKeyPem } });
    let restarts = 0;

    const result = await provisionFromStick({
      mountpoint: stick,
      configPath,
      clock: new FakeClock(Date.UTC(2025, 4, 6, 8, 30)),
      hostname: "pi-test",
      restart: async () => {
        restarts++;
      },
    });

    assert.equal(result.status, "applied", result.report);
    assert.equal(restarts, 1);
    assert.equal(result.deviceId, "box-stick-07");
    // The new config is in place, with the stick's platform key and the installed certificate paths.
    const applied = JSON.parse(await readFile(configPath, "utf8")) as Record<string, any>;
    assert.equal(applied.platform.key, PLATFORM_KEY);
    assert.equal(applied.lot.name, "Harbour lot");
    for (const field of ["caFile", "certFile", "keyFile"]) {
      assert.ok(applied.mqtt[field].startsWith(join(etc, "mqtt")), field);
      assert.ok((await stat(applied.mqtt[field])).isFile());
    }
    assert.equal((await stat(applied.mqtt.keyFile)).mode & 0o777, 0o600);
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(`${configPath}.prev`, "utf8")), old);
    assert.equal(await readFile(join(etc, "update-keys", "release-2025.pem"), "utf8"), release.publicKeyPem);

    const report = await readFile(join(stick, "lanekeeper-report.txt"), "utf8");
    assert.equal(report, result.report);
    assert.match(report, /Result: +APPLIED/);
    assert.match(report, /Device: +box-stick-07 \(was demo-box-01\)/);
    assert.match(report, /Host: +pi-test/);
    assert.match(report, /Time: +2025-05-06T08:30:00.000Z/);
    assert.match(report, /~ deviceId: "demo-box-01" -> "box-stick-07"/);
    assert.match(report, /~ lot\.name: "Demo lot" -> "Harbour lot"/);
    assert.match(report, /~ platform\.key: "HIDDEN" -> "HIDDEN" \(secret changed\)/);
    assert.match(report, /\+ mqtt\.password = "HIDDEN"/);
    assert.match(report, /installed update key "release-2025"/);
    assertNoSecrets(report);

    // The same stick again changes nothing and does not restart the box.
    const again = await provisionFromStick({ mountpoint: stick, configPath, restart: async () => void restarts++ });
    assert.equal(again.status, "unchanged", again.report);
    assert.equal(restarts, 1);
  });

  test("a config with several mistakes lists every one on the stick and changes nothing on the box", async () => {
    const { stick, etc, configPath } = await setup();
    await writeFile(configPath, JSON.stringify(demo, null, 2));
    const bad = config();
    bad.lot.bogus = 1;
    bad.lanes[0].timers = { recloseMs: 5 };
    bad.lanes[1].direction = "sideways";
    bad.api.token = "short";
    delete bad.mqtt;
    await writeStick(stick, bad, {
      platformKey: PLATFORM_KEY,
      mqtt: true,
      mqttKey: "other.key",
      updateKeys: { "bad key!.pem": generateSigningKeyPair("x").publicKeyPem, "leaked.pem": generateSigningKeyPair("y").privateKeyPem },
    });
    const before = await snapshot(etc);
    let restarts = 0;

    const result = await provisionFromStick({ mountpoint: stick, configPath, restart: async () => void restarts++ });

    assert.equal(result.status, "rejected");
    assert.equal(restarts, 0);
    assert.deepEqual(await snapshot(etc), before, "nothing on the box changed");
    const report = await readFile(join(stick, "lanekeeper-report.txt"), "utf8");
    assert.match(report, /REJECTED — nothing on this box was changed/);
    const expected: Array<[string, RegExp]> = [
      ["lot.bogus", /unknown key/],
      ["lanes[0].timers.recloseMs", /1000/],
      ["lanes[1].direction", /"in"\|"out"/],
      ["api.token", /at least 16/],
      ["mqtt", /no mqtt section/],
      ["mqtt/client.key", /does not belong/],
      ["update-keys/bad key!.pem", /key id/],
      ["update-keys/leaked.pem", /private key/],
    ];
    for (const [path, message] of expected) {
      const line = report.split("\n").find((l) => l.trim().startsWith(`${path}:`));
      assert.ok(line, `report lists ${path}:\n${report}`);
      assert.match(line, message);
    }
    assert.equal(result.problems.length, expected.length, JSON.stringify(result.problems));
    assertNoSecrets(report);
  });

  test("the platform's private CA and client certificate come from platform/ on the stick; a lone client.pem is refused", async () => {
    const { stick, etc, configPath } = await setup();
    await writeFile(configPath, JSON.stringify(demo, null, 2));
    await writeStick(stick, config(), { platformKey: PLATFORM_KEY });
    await mkdir(join(stick, "platform"), { recursive: true });
    await copyFile(join(fixtures, "client.pem"), join(stick, "platform", "client.pem"));
    const before = await snapshot(etc);

    const lone = await provisionFromStick({ mountpoint: stick, configPath, restart: null });
    assert.equal(lone.status, "rejected");
    assert.deepEqual(await snapshot(etc), before, "nothing on the box changed");
    assert.ok(lone.problems.some((p) => p.path === "platform/client.key" && /come as a pair/.test(p.message)), JSON.stringify(lone.problems));

    await copyFile(join(fixtures, "ca.pem"), join(stick, "platform", "ca.pem"));
    await copyFile(join(fixtures, "client.key"), join(stick, "platform", "client.key"));
    const result = await provisionFromStick({ mountpoint: stick, configPath, restart: null });
    assert.equal(result.status, "applied", result.report);
    const applied = JSON.parse(await readFile(configPath, "utf8")) as Record<string, any>;
    for (const field of ["caFile", "certFile", "keyFile"]) {
      assert.ok(applied.platform[field].startsWith(join(etc, "platform")), field);
      assert.ok((await stat(applied.platform[field])).isFile());
    }
    assert.equal(await readFile(applied.platform.caFile, "utf8"), await readFile(join(fixtures, "ca.pem"), "utf8"));
    assert.equal((await stat(applied.platform.keyFile)).mode & 0o777, 0o600);
    assert.equal(applied.mqtt.caFile, undefined, "the platform's files do not touch the mqtt section");
    assertNoSecrets(result.report);
  });

  test("broken JSON is reported without echoing the file (it may hold secrets), and a missing file is named", async () => {
    const { stick, configPath } = await setup();
    await writeFile(join(stick, "lanekeeper.json"), `{"platform": {"key": "${PLATFORM_KEY}" oops }`);
    const broken = await provisionFromStick({ mountpoint: stick, configPath, restart: null });
    assert.equal(broken.status, "rejected");
    assert.match(broken.report, /lanekeeper\.json: not valid JSON \(line 1, column \d+\)/);
    assertNoSecrets(broken.report);
    await assert.rejects(stat(configPath), "no config was created");

    const empty = await setup();
    const missing = await provisionFromStick({ mountpoint: empty.stick, configPath: empty.configPath, restart: null });
    assert.equal(missing.status, "rejected");
    assert.match(await readFile(join(empty.stick, "lanekeeper-report.txt"), "utf8"), /lanekeeper\.json: not found at the root of the stick/);
  });

  test("the first provisioning of a fresh box writes the config; exit codes through the real CLI", async () => {
    const { stick, configPath } = await setup();
    const doc = config();
    doc.platform.key = PLATFORM_KEY;
    delete doc.mqtt;
    await writeStick(stick, doc);
    const cli = (args: string[]): Promise<{ code: number | null; stdout: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "..", "..", "src", "cli.ts"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.on("exit", (code) => resolve({ code, stdout }));
      });
    const applied = await cli(["provision", stick, "--config-path", configPath, "--no-restart"]);
    assert.equal(applied.code, 0, applied.stdout);
    assert.match(applied.stdout, /APPLIED/);
    assert.match(applied.stdout, /Restart: disabled/);
    assertNoSecrets(applied.stdout);
    assert.equal((JSON.parse(await readFile(configPath, "utf8")) as Record<string, any>).deviceId, "box-stick-07");
    await assert.rejects(stat(`${configPath}.prev`), "no previous config on a fresh box");

    doc.api.token = "short";
    await writeStick(stick, doc);
    const rejected = await cli(["provision", stick, "--config-path", configPath, "--no-restart"]);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stdout, /api\.token: must be at least 16 characters/);
  });
});
