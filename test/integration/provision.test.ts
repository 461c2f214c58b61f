import { reachableRepo } from "../helpers/reachable-repo.js";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../helpers/fake-clock.js";
import { provisionFromStick } from "../../src/provision/provision.js";
import { ProvisionStatus, readLastProvision } from "../../src/provision/last-report.js";
import { startCli } from "../helpers/child.js";
import { generateSigningKeyPair } from "../../src/update/keys.js";

// Provisioning tests: a temp directory stands in for the USB stick and another for
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

async function writeStick(
  stick: string,
  doc: unknown,
  extras: { platformKey?: string; mqtt?: boolean; mqttKey?: string; updateKeys?: Record<string, string> } = {},
): Promise<void> {
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
      // The box's copy of the last report is the one file every run writes.
      if (prefix === "" && entry.name === "provision-report.json") continue;
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
    // Keys too: readable by the service's group, by nobody else.
    assert.equal((await stat(applied.mqtt.keyFile)).mode & 0o777, 0o640);
    assert.equal((await stat(configPath)).mode & 0o777, 0o640);
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
    assert.ok(
      lone.problems.some((p) => p.path === "platform/client.key" && /come as a pair/.test(p.message)),
      JSON.stringify(lone.problems),
    );

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
    assert.equal((await stat(applied.platform.keyFile)).mode & 0o777, 0o640);
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
    delete doc.store; // the box's own directory: a fresh box gets /var/lib/lanekeeper
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

// ---------------------------------------------------------------------------------------------
// The stick is hostile input: what it may set, what it may carry, who can read the result.

const asRoot = process.getuid?.() === 0 ? false : "needs root (useradd, chown, mount); run the suite as root to check it";

describe("USB provisioning: a narrow door", () => {
  before(async () => {
    demoClientKeyBody = (await readFile(join(fixtures, "client.key"), "utf8")).split("\n")[1] ?? "unused";
  });

  test("a stick can neither run a command nor choose where files go; each such field is named in the report", async () => {
    const { stick, etc, configPath } = await setup();
    await writeFile(configPath, JSON.stringify(demo, null, 2));
    const outside = join(work, `outside-${n}`);
    await mkdir(outside);
    const marker = join(outside, "ran");
    const doc = config();
    doc.update = { restartCommand: ["sh", "-c", `touch ${marker}`], trustedKeysDir: outside, root: outside, download: { caFile: "/etc/shadow" } };
    doc.store = { dir: outside };
    doc.hardware = { gpio: "sim", sysfsRoot: outside };
    doc.system = { clockSync: { source: "command", command: ["sh", "-c", `touch ${marker}`] } };
    doc.mqtt.caFile = "/etc/shadow";
    doc.serial["cam-out1"].path = "/etc/passwd";
    await writeStick(stick, doc, { platformKey: PLATFORM_KEY, updateKeys: { "release-2025.pem": generateSigningKeyPair("release-2025").publicKeyPem } });
    const before = await snapshot(etc);

    // No restart option: the default restart path would run the stick's command if it were taken.
    const result = await provisionFromStick({ mountpoint: stick, configPath });

    assert.equal(result.status, "rejected", result.report);
    assert.deepEqual(await readdir(outside), [], "nothing ran, nothing was written outside the box's directories");
    assert.deepEqual(await snapshot(etc), before);
    const expected: Array<[string, string]> = [
      ["update.restartCommand", "E_STICK_BOX_OWNED"],
      ["update.trustedKeysDir", "E_STICK_BOX_OWNED"],
      ["update.root", "E_STICK_BOX_OWNED"],
      ["update.download.caFile", "E_STICK_BOX_OWNED"],
      ["store.dir", "E_STICK_BOX_OWNED"],
      ["hardware.sysfsRoot", "E_STICK_BOX_OWNED"],
      ["system.clockSync.command", "E_STICK_BOX_OWNED"],
      ["mqtt.caFile", "E_STICK_PATH_FIELD"],
      ['serial["cam-out1"].path', "E_STICK_DEVICE_PATH"],
    ];
    for (const [path, code] of expected) {
      const line = result.report.split("\n").find((l) => l.trim().startsWith(`${path}:`));
      assert.ok(line, `report names ${path}:\n${result.report}`);
      assert.ok(line.endsWith(`[${code}]`), line);
    }
    assert.match(result.report, /What a stick may set/);
    assertNoSecrets(result.report);
  });

  test("box-owned fields left out are kept from the box; repeating the box's value is fine", async () => {
    const { stick, configPath } = await setup();
    const box = structuredClone(demo);
    box.update = { root: "/srv/lk", restartCommand: ["systemctl", "--no-block", "restart", "lanekeeper"] };
    box.store = { dir: "/data/lanekeeper" };
    await writeFile(configPath, JSON.stringify(box, null, 2));
    const doc = config();
    delete doc.update;
    doc.store = { dir: "/data/lanekeeper", historyRetentionDays: 90 };
    doc.serial["cam-out1"].path = "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0";
    await writeStick(stick, doc, { platformKey: PLATFORM_KEY });

    const result = await provisionFromStick({ mountpoint: stick, configPath, restart: null });

    assert.equal(result.status, "applied", result.report);
    const applied = JSON.parse(await readFile(configPath, "utf8")) as Record<string, any>;
    assert.deepEqual(applied.update, box.update);
    assert.deepEqual(applied.store, { dir: "/data/lanekeeper", historyRetentionDays: 90 });
    assert.equal(applied.serial["cam-out1"].path, "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0");
  });

  test("symlinks, FIFOs and directories on the stick are refused without being followed or opened", async () => {
    const { stick, etc, configPath } = await setup();
    await writeFile(configPath, JSON.stringify(demo, null, 2));
    const secretFile = join(work, `shadow-${n}`);
    await writeFile(secretFile, "root:$6$SECRET-HASH-0123456789:19000:0:99999:7:::\n");
    const doc = config();
    await writeStick(stick, doc);
    await symlink(secretFile, join(stick, "platform.key"));
    const elsewhere = join(work, `certs-${n}`);
    await mkdir(elsewhere);
    await copyFile(join(fixtures, "ca.pem"), join(elsewhere, "ca.pem"));
    await symlink(elsewhere, join(stick, "mqtt"));
    await mkdir(join(stick, "platform"));
    assert.equal(spawnSync("mkfifo", [join(stick, "platform", "ca.pem")]).status, 0);
    await mkdir(join(stick, "update-keys", "nested.pem"), { recursive: true });
    const before = await snapshot(etc);

    // A FIFO opened for reading waits for a writer forever: this must come back at once.
    const result = await provisionFromStick({ mountpoint: stick, configPath, restart: null });

    assert.equal(result.status, "rejected", result.report);
    assert.deepEqual(await snapshot(etc), before);
    const codeOf = (path: string): string | undefined => result.problems.find((p) => p.path === path)?.code;
    assert.equal(codeOf("platform.key"), "E_STICK_SYMLINK");
    assert.equal(codeOf("mqtt/ca.pem"), "E_STICK_SYMLINK", JSON.stringify(result.problems));
    assert.equal(codeOf("platform/ca.pem"), "E_STICK_NOT_REGULAR");
    assert.equal(codeOf("update-keys/nested.pem"), "E_STICK_NOT_REGULAR");
    assert.doesNotMatch(result.report, /SECRET-HASH/);
    assert.equal(await readFile(join(stick, "lanekeeper-report.txt"), "utf8"), result.report);
  });

  test("lanekeeper.json pointing at /dev/zero is refused at once, and a report is written", { timeout: 20_000 }, async () => {
    const { stick, configPath } = await setup();
    await symlink("/dev/zero", join(stick, "lanekeeper.json"));
    const result = await provisionFromStick({ mountpoint: stick, configPath, restart: null });
    assert.equal(result.status, "rejected");
    assert.equal(result.problems[0]?.code, "E_STICK_SYMLINK");
    assert.match(await readFile(join(stick, "lanekeeper-report.txt"), "utf8"), /lanekeeper\.json: is a symbolic link/);
  });

  test("a 100 MB lanekeeper.json is refused from its size, without being read", { timeout: 60_000 }, async () => {
    // Peak memory of a child that provisions from a stick: a small file, then a 100 MB one.
    const peakRssMb = async (bytes: number): Promise<{ peak: number; status: string; message: string }> => {
      const { stick, configPath } = await setup();
      await writeFile(join(stick, "lanekeeper.json"), "{}");
      if (bytes > 0) await truncate(join(stick, "lanekeeper.json"), bytes);
      const script = `
        const { provisionFromStick } = await import(${JSON.stringify(join(import.meta.dirname, "..", "..", "src", "provision", "provision.ts"))});
        const r = await provisionFromStick({ mountpoint: ${JSON.stringify(stick)}, configPath: ${JSON.stringify(configPath)}, restart: null });
        console.log(JSON.stringify({ peak: process.resourceUsage().maxRSS / 1024, status: r.status, message: r.problems[0]?.message ?? "" }));`;
      const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
      assert.equal(child.status, 0, child.stderr);
      return JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { peak: number; status: string; message: string };
    };
    const small = await peakRssMb(0);
    const large = await peakRssMb(100 * 1024 * 1024);
    assert.ok(large.peak - small.peak < 40, `peak RSS grew by ${Math.round(large.peak - small.peak)} MB: the file was read`);
    assert.equal(large.status, "rejected");
    assert.match(large.message, /is 104857600 bytes, larger than the 1048576 allowed/);
  });

  test("the service's user reads what provisioning wrote (root:group 0640), and a box left unreadable is healed", { skip: asRoot, timeout: 60_000 }, async () => {
    const name = `lkprov${process.pid % 100000}`;
    spawnSync("userdel", [name]);
    spawnSync("groupdel", [name]);
    assert.equal(spawnSync("groupadd", ["--system", name]).status, 0);
    assert.equal(spawnSync("useradd", ["--system", "--no-create-home", "--gid", name, "--shell", "/usr/sbin/nologin", name]).status, 0);
    const repo = reachableRepo();
    try {
      const gid = Number(spawnSync("getent", ["group", name], { encoding: "utf8" }).stdout.split(":")[2]);
      const { stick, etc, configPath } = await setup();
      // The box's layout (scripts/install.sh): the config directory is root:<group> 2770.
      await chmod(join(etc, ".."), 0o755);
      await chmod(work, 0o755);
      await chown(etc, 0, gid);
      await chmod(etc, 0o2770);
      const doc = config();
      delete doc.store;
      await writeStick(stick, doc, { platformKey: PLATFORM_KEY, mqtt: true, updateKeys: { "release-2025.pem": generateSigningKeyPair("release-2025").publicKeyPem } });

      const result = await provisionFromStick({ mountpoint: stick, configPath, group: name, restart: null });
      assert.equal(result.status, "applied", result.report);
      const applied = JSON.parse(await readFile(configPath, "utf8")) as Record<string, any>;
      const written = [
        configPath,
        applied.mqtt.caFile,
        applied.mqtt.certFile,
        applied.mqtt.keyFile,
        join(etc, "update-keys", "release-2025.pem"),
        join(etc, "provision-report.json"),
      ];
      for (const file of written) {
        const st = await stat(file);
        assert.deepEqual([st.uid, st.gid, (st.mode & 0o7777).toString(8)], [0, gid, "640"], file);
      }
      const asService = (...args: string[]) => spawnSync("runuser", ["-u", name, "--", ...args], { encoding: "utf8", cwd: repo.root });
      const check = asService(process.execPath, "--import", "tsx", repo.path(join(import.meta.dirname, "..", "..", "src", "cli.ts")), "config", "check", configPath);
      assert.equal(check.status, 0, check.stdout + check.stderr);
      for (const file of written) assert.equal(asService("cat", file).status, 0, `the service user cannot read ${file}`);

      // A box whose config a root tool left 0600 root:root: the same stick sets it right
      // without a restart (the service's own restart loop then picks the config up).
      await chown(configPath, 0, 0);
      await chmod(configPath, 0o600);
      assert.notEqual(asService("cat", configPath).status, 0);
      const again = await provisionFromStick({ mountpoint: stick, configPath, group: name, restart: null });
      assert.equal(again.status, "unchanged", again.report);
      assert.match(again.report, new RegExp(`Owner and mode set right[^]*${configPath.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
      assert.equal(asService("cat", configPath).status, 0);
    } finally {
      repo.release();
      spawnSync("userdel", [name]);
      spawnSync("groupdel", [name]);
    }
  });

  test("the same configuration in another layout is UNCHANGED: no write, no restart", async () => {
    const { stick, configPath } = await setup();
    const doc = config();
    doc.platform.key = PLATFORM_KEY;
    // On the box: 4-space indent, keys in another order, a default spelled out.
    const boxDoc = Object.fromEntries(Object.entries(structuredClone(doc)).reverse());
    boxDoc.lot = { ...boxDoc.lot, timeZone: "Asia/Shanghai" };
    const boxText = JSON.stringify(boxDoc, null, 4);
    await writeFile(configPath, boxText);
    delete doc.lot.timeZone;
    await writeFile(join(stick, "lanekeeper.json"), JSON.stringify(doc));
    let restarts = 0;

    const result = await provisionFromStick({ mountpoint: stick, configPath, restart: async () => void restarts++ });

    assert.equal(result.status, "unchanged", result.report);
    assert.equal(restarts, 0);
    assert.equal(await readFile(configPath, "utf8"), boxText, "the box's file is left as it was");
    await assert.rejects(stat(`${configPath}.prev`));
    assert.match(result.report, /UNCHANGED/);

    // A real difference still applies.
    doc.lot.name = "Renamed lot";
    await writeFile(join(stick, "lanekeeper.json"), JSON.stringify(doc));
    const changed = await provisionFromStick({ mountpoint: stick, configPath, restart: async () => void restarts++ });
    assert.equal(changed.status, "applied");
    assert.equal(restarts, 1);
  });

  test("a read-only stick: the config is applied, the report is kept on the box and shown at /api/status", { skip: asRoot, timeout: 60_000 }, async () => {
    const { stick, etc, configPath } = await setup();
    const old = structuredClone(demo);
    old.store = { dir: join(etc, "..", "store") };
    old.api.port = 0;
    await writeFile(configPath, JSON.stringify(old, null, 2));
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", stick]);
    assert.equal(mounted.status, 0, String(mounted.stderr));
    let service: ReturnType<typeof startCli> | undefined;
    try {
      const doc = config();
      doc.store = old.store;
      doc.api.port = 0;
      await writeStick(stick, doc, { platformKey: PLATFORM_KEY });
      assert.equal(spawnSync("mount", ["-o", "remount,ro", stick]).status, 0);

      const result = await provisionFromStick({ mountpoint: stick, configPath, restart: null });

      assert.equal(result.status, "applied", result.report);
      assert.equal(result.reportWritten, false);
      assert.match(result.reportError ?? "", /read-only/);
      assert.equal(result.boxReportWritten, true);
      const kept = await readLastProvision(etc);
      assert.equal(kept?.status, "applied");
      assert.equal(kept?.reportOnStick, false);
      assert.equal(kept?.report, result.report);
      assert.equal(kept?.report.includes(PLATFORM_KEY), false);

      // The real service, started on the new config, shows the outcome at /api/status.
      service = startCli(["run", "--config", configPath]);
      const [, url] = await service.waitFor(/local API on (http:\/\/\S+?) /, 30_000);
      const response = await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
      const status = (await response.json()) as Record<string, any>;
      assert.equal(status.provision.state, "applied", JSON.stringify(status.provision));
      assert.equal(status.provision.reportOnStick, false);
      assert.equal(status.provision.deviceId, "box-stick-07");
    } finally {
      if (service) {
        service.child.kill("SIGTERM");
        await service.exited;
      }
      spawnSync("umount", [stick]);
    }
  });

  test("the status section re-reads the box's report: a refused stick shows up without a restart", async () => {
    const { stick, etc, configPath } = await setup();
    await writeFile(configPath, JSON.stringify(demo, null, 2));
    const clock = new FakeClock();
    const status = new ProvisionStatus(configPath, { clock, refreshMs: 1000 });
    await status.refresh();
    assert.equal(status.snapshot().state, "never");
    await writeFile(join(stick, "lanekeeper.json"), "[]");
    await provisionFromStick({ mountpoint: stick, configPath, restart: null });
    assert.equal(status.snapshot().state, "never", "answers from the last read until the refresh interval");
    clock.jump(1000);
    status.snapshot(); // starts the re-read
    await status.refresh();
    const shown = status.snapshot();
    assert.equal(shown.state, "rejected");
    assert.equal(shown.problemCount, 1);
    assert.equal("report" in shown, false, "the status carries the outcome, not the whole text");
    assert.ok((await readdir(etc)).includes("provision-report.json"));
  });
});
