import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect as mqttConnect } from "mqtt";
import { silentLogger } from "../../src/kernel/log.js";
import { validateConfig } from "../../src/config/load.js";
import { registerBuiltinCommands } from "../../src/fleet/builtin-commands.js";
import { mqttConfigSchema } from "../../src/fleet/config.js";
import { FleetLink } from "../../src/fleet/fleet-link.js";
import { UpdateAgent } from "../../src/update/agent.js";
import { toFleetJobStatus } from "../../src/update/job.js";
import { rolloutStateSchema, type RolloutState } from "../../src/console/rollout-plan.js";
import { BundleServer } from "../helpers/bundle-server.js";
import { findMosquitto, startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";
import { installRelease, makeBundle, makeKey, tempDir, type TestKey } from "../helpers/update-fixtures.js";

/**
 * `lanekeeper fleet` against a real mosquitto and real boxes: fleet links and update agents in
 * this process, each installed into its own temp root from a real signed bundle, restarting
 * (link stopped, new link and agent on the version `current` points at) when the agent asks.
 * The console runs as a child process, exactly as an operator runs it.
 */

const binary = findMosquitto();
const skip = binary ? false : "mosquitto not installed; .ci/run installs it";
if (!binary && process.env.CI) {
  test("mosquitto is installed on CI", () => assert.fail("mosquitto not installed; CI without it is a broken image"));
}

const root = "lanekeeper/v1";
const cli = join(process.cwd(), "src", "cli.ts");
let broker: Mosquitto;
let work: string;
let key: TestKey;
let server: BundleServer;
let job2: { url: string; sha256: string; size: number };
let bundle2File: string;
let bundle1File: string;

/** A box: a real fleet link and update agent over a temp install root. */
class Box {
  link: FleetLink | undefined;
  agent: UpdateAgent | undefined;
  jobsReceived = 0;
  version = "";
  private rebooting: Promise<void> | undefined;

  constructor(
    readonly deviceId: string,
    readonly root: string,
    readonly options: { unhealthyVersions?: string[]; url?: string; username?: string; password?: string } = {},
  ) {}

  async start(): Promise<void> {
    this.version = (JSON.parse(await readFile(join(this.root, "current", "manifest.json"), "utf8")) as { version: string }).version;
    const link = new FleetLink({
      config: mqttConfigSchema.parse({
        url: this.options.url ?? broker.url,
        protocolVersion: 5,
        topicRoot: root,
        ...(this.options.username ? { username: this.options.username, password: this.options.password } : {}),
      }),
      deviceId: this.deviceId,
      stateDir: join(this.root, "fleet"),
      log: silentLogger(),
      random: () => 0.05,
      version: this.version,
    });
    registerBuiltinCommands(link);
    const agent = new UpdateAgent({
      root: this.root,
      runningVersion: this.version,
      trustedKeys: [key.trusted],
      report: (status) => void link.publishJobStatus(status.jobId, toFleetJobStatus(status)),
      restart: async () => {
        // systemd ends the process and starts it again; here: after the agent's last word.
        setTimeout(() => void this.reboot(), 20);
      },
      architecture: "x64",
      healthWindowMs: 400,
      healthPollMs: 20,
      healthConsecutive: 2,
      fsync: false,
      download: { retryDelayMs: 20, attempts: 3 },
    });
    link.onJob((jobId, job) => {
      this.jobsReceived += 1;
      void agent.handleJob(jobId, job as never);
    });
    link.onConfigDesired(async (_version, config) => {
      const checked = validateConfig(config);
      return checked.ok ? { status: "applied", detail: "config applied" } : { status: "rejected", detail: checked.problems };
    });
    this.link = link;
    this.agent = agent;
    await link.start();
    link.publishInfo({ hardware: { gpio: "sim", lot: "lot7" }, lanes: [{ id: "in1", direction: "in" }], capabilities: [] });
    const unhealthy = this.options.unhealthyVersions?.includes(this.version) ?? false;
    void agent.resumeAfterBoot(() => (unhealthy ? { healthy: false, reason: "lanes not up" } : { healthy: true }));
  }

  reboot(): Promise<void> {
    this.rebooting ??= (async () => {
      this.agent?.stop();
      await this.link?.stop();
      await this.start();
    })().finally(() => (this.rebooting = undefined));
    return this.rebooting;
  }

  async stop(): Promise<void> {
    await this.rebooting;
    this.agent?.stop();
    await this.link?.stop();
  }
}

const boxes: Box[] = [];
let rootCount = 0;
async function makeBoxes(prefix: string, n: number, options: ConstructorParameters<typeof Box>[2] = {}, start = true): Promise<Box[]> {
  const made: Box[] = [];
  for (let i = 0; i < n; i++) {
    const boxRoot = join(work, `root-${rootCount++}`);
    await installRelease(boxRoot, bundle1File, [key.trusted]);
    const box = new Box(`${prefix}-${String(i).padStart(2, "0")}`, boxRoot, options);
    made.push(box);
    boxes.push(box);
  }
  if (start) await Promise.all(made.map((b) => b.start()));
  return made;
}

/** Console processes still running (a failed test must not leave them behind). */
const children = new Set<ChildProcess>();

interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

function fleet(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, ["--import", "tsx", cli, "fleet", ...args], { cwd: process.cwd(), env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  children.add(child);
  void exit.then(() => children.delete(child));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function fleetDone(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const run = fleet(args, env);
  const code = await run.exit;
  return { code, out: run.stdout(), err: run.stderr() };
}

async function readState(file: string): Promise<RolloutState> {
  return rolloutStateSchema.parse(JSON.parse(await readFile(file, "utf8")));
}

before(async () => {
  if (!binary) return;
  work = await tempDir("fleet-console");
  broker = await startMosquitto(binary);
  key = await makeKey(work, "release-test");
  bundle1File = (await makeBundle(work, "1.0.0", key)).outFile;
  bundle2File = (await makeBundle(work, "2.0.0", key)).outFile;
  server = await new BundleServer().start();
  const data = await readFile(bundle2File);
  server.files.set("b2.tar", data);
  job2 = { url: server.url("b2.tar"), sha256: createHash("sha256").update(data).digest("hex"), size: data.length };
});

after(async () => {
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(boxes.map((b) => b.stop().catch(() => undefined)));
  await server?.close();
  await broker?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const fast = ["--soak", "300ms", "--job-timeout", "20s", "--health-window", "5s", "--json"];

describe("lanekeeper fleet against mosquitto", { skip }, () => {
  test("ls, cmd and config against live boxes", async () => {
    const live = await makeBoxes("ls", 3);
    const ls = await fleetDone(["ls", "ls-*", "--url", broker.url, "--probe"]);
    assert.equal(ls.code, 0, ls.err);
    const lines = ls.out.trim().split("\n");
    assert.match(lines[0]!, /^DEVICE\s+LOT\s+VERSION\s+STATE/);
    assert.equal(lines.length, 4, ls.out);
    for (const box of live) assert.match(ls.out, new RegExp(`${box.deviceId}\\s+lot7\\s+1\\.0\\.0\\s+online .* (up|unknown|\\?)\\s+\\d+s ago\\s+in1\\(in\\)`));

    const json = await fleetDone(["ls", "--filter", "ls-0?", "--json", "--url", broker.url]);
    const rows = json.out.trim().split("\n").map((l) => JSON.parse(l) as { deviceId: string; state: string; lanes: string });
    assert.deepEqual(rows.map((r) => r.deviceId), ["ls-00", "ls-01", "ls-02"]);

    const cmd = await fleetDone(["cmd", "ls-*", "last-events", "--arg", "n=2", "--url", broker.url]);
    assert.equal(cmd.code, 0, cmd.err + cmd.out);
    assert.equal(cmd.out.trim().split("\n").filter((l) => /^ls-0\d\s+ok\s/.test(l)).length, 3, cmd.out);
    const bad = await fleetDone(["cmd", "ls-00", "no-such", "--url", broker.url]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /ls-00\s+error\s+E_CMD_UNKNOWN/);

    const good = JSON.parse(await readFile(join(process.cwd(), "config", "demo.json"), "utf8").catch(() => "null")) as Record<string, unknown> | null;
    const configFile = join(work, "cfg.json");
    // The box answers every mistake with its path; --force skips the console's own check.
    await writeFile(configFile, JSON.stringify({ ...(good ?? {}), deviceId: "ls-00", lanes: "not-a-list" }));
    const rejected = await fleetDone(["config", "push", "ls-00", configFile, "--force", "--url", broker.url, "--timeout", "10s"]);
    assert.equal(rejected.code, 1, rejected.err);
    assert.match(rejected.err, /version 1 rejected:\n\s+lanes/);
    const local = await fleetDone(["config", "push", "ls-00", configFile, "--url", broker.url]);
    assert.equal(local.code, 1);
    assert.match(local.err, /not pushed; the box would refuse it/);
    const diff = await fleetDone(["config", "diff", "ls-00", configFile, "--url", broker.url]);
    assert.equal(diff.code, 0, diff.out + diff.err);
    assert.match(diff.out, /against pushed version 1; the box reports version 1 rejected\nno differences/);
  });

  test("a rollout that completes, with an offline box that comes back during it", async () => {
    const fleetBoxes = await makeBoxes("ok", 20, {}, false);
    const late = fleetBoxes[19]!;
    await Promise.all(fleetBoxes.slice(0, 19).map((b) => b.start()));
    // Known to the broker but offline: a stopped box leaves a retained `offline` status.
    const watcher = await MqttProbe.connect(broker.url, { protocolVersion: 5 });
    await watcher.subscribe(`${root}/ok-19/status`);
    await late.start();
    await watcher.waitFor((m) => m.json<{ state: string }>().state === "online", 5000, "ok-19 online");
    await late.stop();
    await watcher.waitFor((m) => m.json<{ state: string }>().state === "offline", 5000, "ok-19 offline");
    await watcher.client.endAsync();
    const stateFile = join(work, "ok.json");
    const run = fleet(["rollout", bundle2File, "--to", "ok-*", "--url", broker.url, "--url", job2.url, "--waves", "1,25%,100%", "--state", stateFile, ...fast]);
    // Bring it back while the first waves run.
    await until(() => run.stdout().includes('"kind":"wave-started","wave":1'), 20_000, "second wave");
    await late.start();
    const code = await run.exit;
    assert.equal(code, 0, `${run.stdout()}\n${run.stderr()}`);
    const state = await readState(stateFile);
    assert.equal(state.phase, "done");
    assert.deepEqual([...new Set(Object.values(state.boxes).map((b) => b.state))], ["succeeded"]);
    assert.ok(fleetBoxes.every((b) => b.version === "2.0.0" && b.jobsReceived === 1));
    assert.match(run.stderr(), /DONE: 20 on 2\.0\.0; 0 failed/);
    assert.match(run.stderr(), /ok-19\s+3\s+succeeded/);
  });

  test("a box whose new version is unhealthy rolls itself back; the rollout halts after that wave", async () => {
    // halt-0-00 sorts first, so the sick box is the whole first wave.
    const more = await makeBoxes("halt", 4);
    const sick2 = await makeBoxes("halt-0", 1, { unhealthyVersions: ["2.0.0"] });
    const file2 = join(work, "halt.json");
    const r2 = await fleetDone(["rollout", bundle2File, "--to", "halt-*", "--url", broker.url, "--url", job2.url, "--waves", "1,100%", "--state", file2, ...fast]);
    assert.equal(r2.code, 1);
    const s2 = await readState(file2);
    assert.equal(s2.boxes["halt-0-00"]!.state, "rolled-back");
    assert.equal(sick2[0]!.version, "1.0.0");
    assert.ok(more.every((b) => b.jobsReceived === 0 && b.version === "1.0.0"), "the next wave never starts");
  });

  test("the console killed mid-wave resumes from its state file without re-sending a job", async () => {
    const group = await makeBoxes("kill", 6);
    const stateFile = join(work, "kill.json");
    const args = ["rollout", bundle2File, "--to", "kill-*", "--url", broker.url, "--url", job2.url, "--waves", "2,4,100%", "--state", stateFile, ...fast];
    const first = fleet(args);
    // Killed while the second wave's jobs run (all of them published, none finished).
    await until(() => (first.stdout().match(/"kind":"job-sent"/g) ?? []).length >= 4, 30_000, "jobs of the second wave sent");
    first.child.kill("SIGKILL");
    await first.exit;
    const mid = await readState(stateFile);
    assert.equal(mid.phase === "done", false, "killed before the end");
    const sentBefore = Object.values(mid.boxes).filter((b) => b.state !== "pending").length;
    assert.ok(sentBefore >= 3);
    const second = await fleetDone(["rollout", "--resume", stateFile, "--url", broker.url, "--json"]);
    assert.equal(second.code, 0, second.out + second.err);
    const resumedSends = (second.out.match(/"kind":"job-sent"/g) ?? []).length;
    assert.equal(resumedSends, 6 - sentBefore, "only boxes never sent a job get one");
    assert.ok(group.every((b) => b.jobsReceived === 1 && b.version === "2.0.0"), group.map((b) => `${b.deviceId}:${b.jobsReceived}:${b.version}`).join(" "));
  });
});

describe("the example ACL with per-box credentials", { skip }, () => {
  test("a box publishes only under its own id; the operator commands boxes", async () => {
    const dir = await tempDir("fleet-acl");
    const passwd = join(dir, "passwd");
    execFileSync("mosquitto_passwd", ["-b", "-c", passwd, "operator", "op-secret"]);
    execFileSync("mosquitto_passwd", ["-b", passwd, "acl-00", "rogue-secret"]);
    execFileSync("mosquitto_passwd", ["-b", passwd, "acl-01", "box-secret"]);
    const docs = await readFile(join(process.cwd(), "docs", "mqtt.md"), "utf8");
    const acl = /#### Example ACL file\n\n```text\n([\s\S]*?)```/.exec(docs)?.[1];
    assert.ok(acl, "docs/mqtt.md holds the example ACL");
    await writeFile(join(dir, "acl"), acl);
    const secured = await startMosquitto(binary!, { extraConfig: ["allow_anonymous false", `password_file ${passwd}`, `acl_file ${join(dir, "acl")}`] });
    try {
      const [box2] = await makeBoxes("acl", 2, { url: secured.url }, false).then((b) => b.slice(1));
      // acl-00's credentials are used by a raw client (a compromised box); acl-01 is a real box.
      Object.assign(box2!.options, { username: "acl-01", password: "box-secret" });
      await box2!.start();
      const operator = await MqttProbe.connect(secured.url, { protocolVersion: 5, username: "operator", password: "op-secret" });
      await operator.subscribe(`${root}/+/#`);
      await operator.waitFor((m) => m.topic === `${root}/acl-01/status`, 5000, "acl-01 online").catch((error: Error) => {
        throw new Error(`${error.message}\n${secured.output()}`);
      });

      const rogue = mqttConnect(secured.url, { protocolVersion: 5, username: "acl-00", password: "rogue-secret", clientId: "lanekeeper-acl-00", reconnectPeriod: 0 });
      await new Promise((resolve, reject) => rogue.once("connect", resolve).once("error", reject));
      const refusedCodes: number[] = [];
      for (const topic of [`${root}/acl-01/status`, `${root}/acl-01/cmd/open`]) {
        await rogue.publishAsync(topic, JSON.stringify({ v: 1, state: "lost", boot: 1, version: "6.6.6", configVersion: 0, ts: 1, id: "evil" }), { qos: 1 }).then(
          (packet) => refusedCodes.push((packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0),
          (error: { code?: number }) => refusedCodes.push(error.code ?? 0x87),
        );
      }
      assert.deepEqual(refusedCodes, [0x87, 0x87], "not authorized");
      // Its own status is allowed.
      await rogue.publishAsync(`${root}/acl-00/status`, JSON.stringify({ v: 1, state: "online", boot: 1, version: "1.0.0", configVersion: 0, ts: 1 }), { qos: 1, retain: true });
      await operator.waitFor((m) => m.topic === `${root}/acl-00/status`, 5000, "acl-00's own status");
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(operator.on(`${root}/acl-01/status`).every((m) => m.json<{ version: string }>().version !== "6.6.6"), "no forged status of acl-01");
      assert.equal(operator.on(`${root}/acl-01/cmd/open`).length, 0, "no forged command to acl-01");
      rogue.end(true);

      const cmd = await fleetDone(["cmd", "acl-01", "last-events", "--url", secured.url, "--username", "operator"], { LANEKEEPER_FLEET_PASSWORD: "op-secret" });
      assert.equal(cmd.code, 0, cmd.out + cmd.err);
      assert.match(cmd.out, /acl-01\s+ok/);
      await operator.client.endAsync();
    } finally {
      await secured.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

