import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
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
import { prepareCli, type CliCommand } from "../helpers/console-cli.js";
import { findMosquitto, startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";
import { haveOpenssl, makeTestCerts } from "../helpers/test-certs.js";
import { elfHeader, installRelease, makeBundle, makeKey, tempDir, type TestKey } from "../helpers/update-fixtures.js";

/**
 * `lanekeeper fleet` against a real mosquitto and real boxes: fleet links and update agents in
 * this process, each installed into its own temp root from a real signed bundle, restarting
 * (link stopped, new link and agent on the version `current` points at) when the agent asks.
 * The console runs as a child process, exactly as an operator runs it (bundled once, see
 * console-cli.ts), on a pipe or, for the progress bar, on a real pty (`script`).
 */

const binary = findMosquitto();
const skip = binary ? false : "mosquitto not installed; .ci/run installs it";
if (!binary && process.env.CI) {
  test("mosquitto is installed on CI", () => assert.fail("mosquitto not installed; CI without it is a broken image"));
}

const root = "lanekeeper/v1";
let cli: CliCommand;
let broker: Mosquitto;
let work: string;
let key: TestKey;
let server: BundleServer;
let job2: { url: string; sha256: string; size: number };
let bundle2File: string;
let bundle1File: string;
/** 3.0.0 carrying an arm64 addon: every box here is x64. */
let armBundleFile: string;

/** A box: a real fleet link and update agent over a temp install root. */
class Box {
  link: FleetLink | undefined;
  agent: UpdateAgent | undefined;
  jobsReceived = 0;
  repeatsReceived = 0;
  version = "";
  private rebooting: Promise<void> | undefined;

  constructor(
    readonly deviceId: string,
    readonly root: string,
    readonly options: { unhealthyVersions?: string[]; url?: string; username?: string; password?: string; tls?: { caFile: string; certFile: string; keyFile: string } } = {},
  ) {}

  async start(): Promise<void> {
    this.version = (JSON.parse(await readFile(join(this.root, "current", "manifest.json"), "utf8")) as { version: string }).version;
    const link = new FleetLink({
      config: mqttConfigSchema.parse({
        url: this.options.url ?? broker.url,
        protocolVersion: 5,
        topicRoot: root,
        ...(this.options.username ? { username: this.options.username, password: this.options.password } : {}),
        ...(this.options.tls ?? {}),
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
    // As the box's composition does: a repeated id only has its last status published again.
    link.onJob((jobId, job, { repeat }) => {
      if (repeat) {
        this.repeatsReceived += 1;
        void agent.reportAgain(jobId);
        return;
      }
      this.jobsReceived += 1;
      void agent.handleJob(jobId, job);
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
  const child = spawn(cli.command, [...cli.args, "fleet", ...args], { cwd: process.cwd(), env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
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

/** `fleet …` on a real pty (util-linux `script`), as on an operator's terminal; out is the screen's bytes. */
async function fleetOnTerminal(args: string[]): Promise<{ code: number | null; out: string }> {
  const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;
  const line = [cli.command, ...cli.args, "fleet", ...args].map(quote).join(" ");
  const child = spawn("script", ["-qfec", line, "/dev/null"], { cwd: process.cwd(), env: { ...process.env, TERM: "xterm" }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  children.delete(child);
  return { code, out };
}

async function readState(file: string): Promise<RolloutState> {
  return rolloutStateSchema.parse(JSON.parse(await readFile(file, "utf8")));
}

before(async () => {
  if (!binary) return;
  work = await tempDir("fleet-console");
  cli = await prepareCli();
  broker = await startMosquitto(binary);
  key = await makeKey(work, "release-test");
  bundle1File = (await makeBundle(work, "1.0.0", key)).outFile;
  bundle2File = (await makeBundle(work, "2.0.0", key)).outFile;
  armBundleFile = (await makeBundle(work, "3.0.0", key, { native: { "node_modules/epoll/build/Release/epoll.node": elfHeader("arm64", 3000) } })).outFile;
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
  await cli?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The terminal's escape character (the bar redraws its line with ESC [2K). */
const ESC = String.fromCharCode(0x1b);

const fast = ["--soak", "300ms", "--job-timeout", "20s", "--health-window", "5s", "--json"];

describe("lanekeeper fleet against mosquitto", { skip }, () => {
  test("ls, watch, cmd and config against live boxes", async () => {
    const live = await makeBoxes("ls", 3);
    const watch = fleet(["watch", "ls-*", "--url", broker.url]);
    // The current picture first: each box's retained presence.
    await until(() => (watch.stdout().match(/ ls-0\d status online 1\.0\.0 boot \d+ since .* \(retained\)\n/g) ?? []).length === 3, 20_000, "retained presence in fleet watch");
    const ls = await fleetDone(["ls", "ls-*", "--url", broker.url, "--probe"]);
    assert.equal(ls.code, 0, ls.err);
    const lines = ls.out.trim().split("\n");
    assert.match(lines[0]!, /^DEVICE\s+LOT\s+VERSION\s+STATE/);
    assert.equal(lines.length, 4, ls.out);
    for (const box of live) assert.match(ls.out, new RegExp(`${box.deviceId}\\s+lot7\\s+1\\.0\\.0\\s+online .* (up|unknown|\\?)\\s+\\d+s ago\\s+in1\\(in\\)`));

    const json = await fleetDone(["ls", "--filter", "ls-0?", "--json", "--url", broker.url]);
    const rows = json.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { deviceId: string; state: string; lanes: string });
    assert.deepEqual(
      rows.map((r) => r.deviceId),
      ["ls-00", "ls-01", "ls-02"],
    );

    const cmd = await fleetDone(["cmd", "ls-*", "last-events", "--arg", "n=2", "--url", broker.url]);
    assert.equal(cmd.code, 0, cmd.err + cmd.out);
    assert.equal(
      cmd.out
        .trim()
        .split("\n")
        .filter((l) => /^ls-0\d\s+ok\s/.test(l)).length,
      3,
      cmd.out,
    );
    const bad = await fleetDone(["cmd", "ls-00", "no-such", "--url", broker.url]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /ls-00\s+error\s+E_CMD_UNKNOWN/);
    // fleet watch saw every answer as it happened, one readable line each.
    await until(() => /ls-00 res\/no-such \S+ error E_CMD_UNKNOWN unknown command "no-such"\n/.test(watch.stdout()), 5000, "the refused command in fleet watch").catch(
      (error: Error) => {
        throw new Error(`${error.message}\n${watch.stdout()}`);
      },
    );
    assert.equal((watch.stdout().match(/^\S+ \d\d:\d\d:\d\d ls-0\d res\/last-events \S+ ok$/gm) ?? []).length, 3, watch.stdout());

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
    await until(() => /ls-00 config v1 rejected lanes: /.test(watch.stdout()), 5000, "the config answer in fleet watch");
    // A status change: a box going away is seen live (its link's goodbye, not retained replay).
    await live[2]!.stop();
    await until(() => /ls-02 status offline 1\.0\.0 boot \d+ since [^(\n]*\n/.test(watch.stdout()), 5000, "ls-02 offline in fleet watch");
    assert.doesNotMatch(watch.stdout(), /E_CONSOLE_BAD_PAYLOAD/);
    watch.child.kill("SIGTERM");
    assert.equal(await watch.exit, 0, watch.stderr());
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
    // The console serves the bundle itself: every box downloads it from there.
    const run = fleet(["rollout", bundle2File, "--to", "ok-*", "--url", broker.url, "--serve", "127.0.0.1:0", "--waves", "1,25%,100%", "--state", stateFile, ...fast]);
    // Bring it back while the first waves run.
    await until(() => run.stdout().includes('"kind":"wave-started","wave":1'), 20_000, "second wave");
    await late.start();
    const code = await run.exit;
    assert.equal(code, 0, `${run.stdout()}\n${run.stderr()}`);
    const state = await readState(stateFile);
    assert.equal(state.phase, "done");
    assert.match(state.bundle.url, /^http:\/\/127\.0\.0\.1:\d+\/lanekeeper-2\.0\.0-[^/]*\.tar$/, "the jobs name the console's own server");
    assert.notEqual(state.bundle.url, job2.url);
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
    // No --json: stdout is a pipe, so progress comes as JSON lines by itself.
    const r2 = await fleetDone([
      "rollout",
      bundle2File,
      "--to",
      "halt-*",
      "--url",
      broker.url,
      "--url",
      job2.url,
      "--waves",
      "1,100%",
      "--state",
      file2,
      ...fast.filter((a) => a !== "--json"),
    ]);
    assert.equal(r2.code, 1);
    const records = r2.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; deviceId?: string; state?: string; phase?: string });
    assert.ok(
      records.some((r) => r.kind === "box-finished" && r.deviceId === "halt-0-00" && r.state === "rolled-back"),
      r2.out,
    );
    assert.equal(records.at(-1)?.kind, "finished");
    assert.equal(records.at(-1)?.phase, "halted");
    assert.equal(r2.out.includes(`${ESC}[`), false, "no terminal control codes off a terminal");
    const s2 = await readState(file2);
    assert.equal(s2.boxes["halt-0-00"]!.state, "rolled-back");
    assert.equal(sick2[0]!.version, "1.0.0");
    assert.ok(
      more.every((b) => b.jobsReceived === 0 && b.version === "1.0.0"),
      "the next wave never starts",
    );
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
    const openBefore = Object.values(mid.boxes).filter((b) => b.state === "sent").length;
    const second = await fleetDone(["rollout", "--resume", stateFile, "--url", broker.url, "--json"]);
    assert.equal(second.code, 0, second.out + second.err);
    const resumedSends = (second.out.match(/"kind":"job-sent","deviceId":"[^"]+","jobId":"[^"]+"}/g) ?? []).length;
    const repeats = (second.out.match(/"kind":"job-sent"[^\n]*"repeat":true/g) ?? []).length;
    assert.equal(resumedSends, 6 - sentBefore, "only boxes never sent a job get a new one");
    assert.ok(repeats <= openBefore, "only jobs still open are published again (same id)");
    assert.ok(
      group.every((b) => b.jobsReceived === 1 && b.version === "2.0.0"),
      group.map((b) => `${b.deviceId}:${b.jobsReceived}:${b.version}`).join(" "),
    );
  });

  test("killed after recording a job as sent but before publishing it: the resume publishes it, same id", async () => {
    const group = await makeBoxes("gap", 3);
    const stateFile = join(work, "gap.json");
    const args = ["rollout", bundle2File, "--to", "gap-*", "--url", broker.url, "--url", job2.url, "--waves", "2,100%", "--state", stateFile, ...fast];
    // Dies right before the second publish of the first wave: one box has its job, the
    // other's is only in the state file.
    const first = await fleetDone(args, { LK_TEST_KILL_AFTER_SENT: "1" });
    assert.equal(first.code, null, "killed");
    const mid = await readState(stateFile);
    const published = [...first.out.matchAll(/"kind":"job-sent","deviceId":"([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(published.length, 1, first.out);
    const got = group.find((b) => b.deviceId === published[0])!;
    const missed = group.find((b) => b !== got && mid.boxes[b.deviceId]!.state === "sent")!;
    assert.ok(missed, JSON.stringify(mid.boxes));
    await until(() => got.jobsReceived === 1, 5000, `${got.deviceId} got its job`);
    assert.equal(missed.jobsReceived, 0, `${missed.deviceId}'s job never left the console`);
    const second = await fleetDone(["rollout", "--resume", stateFile, "--url", broker.url, "--json"]);
    // Before the fix that box waited for a status that could never come and failed at the job time limit.
    assert.equal(second.code, 0, second.out + second.err);
    const end = await readState(stateFile);
    assert.deepEqual(
      Object.values(end.boxes).map((b) => b.state),
      ["succeeded", "succeeded", "succeeded"],
    );
    assert.equal(end.boxes[missed.deviceId]!.jobId, mid.boxes[missed.deviceId]!.jobId, "the same job, not a new one");
    assert.match(second.out, new RegExp(`"deviceId":"${missed.deviceId}","jobId":"[^"]+","repeat":true`));
    // The box that had it sees its job id again: it recognises it, does not run it twice, and
    // publishes the job's last status again.
    assert.match(second.out, new RegExp(`"deviceId":"${got.deviceId}","jobId":"[^"]+","repeat":true`));
    assert.ok(got.repeatsReceived >= 1, `${got.deviceId} answered the repeat`);
    assert.ok(
      group.every((b) => b.jobsReceived === 1 && b.version === "2.0.0"),
      group.map((b) => `${b.deviceId}:${b.jobsReceived}:${b.version}`).join(" "),
    );
  });

  test("a bundle for the wrong architecture, served by the console, on a terminal: refused, counted, halted", async () => {
    const group = await makeBoxes("arch", 3);
    const stateFile = join(work, "arch.json");
    const { code, out } = await fleetOnTerminal([
      "rollout",
      armBundleFile,
      "--to",
      "arch-*",
      "--url",
      broker.url,
      "--serve",
      // Port 0: the console takes a free port and puts it in the bundle's URL.
      "127.0.0.1:0",
      "--waves",
      "1,100%",
      "--max-failed",
      "0",
      "--state",
      stateFile,
      ...fast.filter((a) => a !== "--json"),
    ]);
    assert.equal(code, 1, out);
    const state = await readState(stateFile);
    const refused = state.boxes["arch-00"]!;
    assert.match(state.bundle.url, /^http:\/\/127\.0\.0\.1:[1-9]\d*\//);
    // It downloaded the bundle from the console (the check reads the addon's ELF header) and refused it.
    assert.equal(refused.state, "failed");
    assert.match(refused.detail ?? "", /^E_WRONG_ARCH .*epoll\.node is arm64/);
    assert.equal(state.phase, "halted");
    assert.equal(group[0]!.version, "1.0.0", "it keeps its version");
    assert.equal((JSON.parse(await readFile(join(group[0]!.root, "current", "manifest.json"), "utf8")) as { version: string }).version, "1.0.0");
    assert.ok(
      group.slice(1).every((b) => b.jobsReceived === 0 && b.version === "1.0.0"),
      "the rest never get a job",
    );
    // The terminal shows a bar redrawn in place, the refusal as its own line, and the summary table.
    assert.match(out, new RegExp(`\r${ESC}\\[2K\\[#{10}-{20}\\] 1/3 wave 1/2 (running|halting|halted) · ok 0 · failed 1`));
    assert.match(out, /arch-00 failed: E_WRONG_ARCH/);
    assert.match(out, /DEVICE\s+WAVE\s+STATE\s+FROM\s+VIA\s+DETAIL/);
    assert.match(out, /arch-00\s+1\s+failed\s+1\.0\.0\s+job-status\s+E_WRONG_ARCH/);
    assert.match(out, /arch-01\s+2\s+pending/);
    assert.match(out, /HALTED: 1 failed, more than the 0 allowed; boxes not reached keep their version; 1 failed \(allowed 0\), 0 skipped/);
    assert.doesNotMatch(out, /^\{"ts":/m, "no JSON lines on a terminal");
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
      await operator
        .waitFor((m) => m.topic === `${root}/acl-01/status`, 5000, "acl-01 online")
        .catch((error: Error) => {
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
      assert.ok(
        operator.on(`${root}/acl-01/status`).every((m) => m.json<{ version: string }>().version !== "6.6.6"),
        "no forged status of acl-01",
      );
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

const skipTls = skip || ((await haveOpenssl()) ? false : "openssl CLI not installed (needed to make test certificates)");

describe("the console over TLS (mqtts://, --ca, --cert, --key)", { skip: skipTls }, () => {
  test("fleet ls works with the right CA and client certificate and fails clearly with a wrong CA", async () => {
    const dir = await tempDir("fleet-tls");
    const certs = await makeTestCerts(dir);
    await mkdir(join(dir, "other"));
    const stranger = await makeTestCerts(join(dir, "other"));
    const secured = await startMosquitto(binary!, { tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
    try {
      assert.match(secured.url, /^mqtts:/);
      const tls = { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile };
      await makeBoxes("tls", 1, { url: secured.url, tls });
      const withCerts = ["--url", secured.url, "--cert", certs.clientCertFile, "--key", certs.clientKeyFile];
      const ls = await fleetDone(["ls", "tls-*", ...withCerts, "--ca", certs.caFile]);
      assert.equal(ls.code, 0, ls.err);
      assert.match(ls.out, /^tls-00\s+lot7\s+1\.0\.0\s+online/m);

      const wrongCa = await fleetDone(["ls", ...withCerts, "--ca", stranger.caFile]);
      assert.equal(wrongCa.code, 1, wrongCa.out);
      // One line with a stable code, the broker and the reason; no stack trace.
      assert.equal(wrongCa.err.trim().split("\n").length, 1, wrongCa.err);
      assert.match(
        wrongCa.err,
        new RegExp(`^E_CONSOLE_CONNECT cannot connect to ${secured.url.replace(/[.]/g, "\\.")}: .*\\([A-Z_]+: the broker's certificate does not chain to --ca .*other/ca\\.pem\\)`),
      );
      assert.equal(wrongCa.out, "", "no table from an untrusted broker");

      // The broker requires a client certificate: without one the console is refused, and says so.
      const noCert = await fleetDone(["ls", "--url", secured.url, "--ca", certs.caFile]);
      assert.equal(noCert.code, 1);
      assert.match(noCert.err, /^E_CONSOLE_CONNECT cannot connect to mqtts:/);
      const missing = await fleetDone(["ls", ...withCerts, "--ca", join(dir, "nope.pem")]);
      assert.equal(missing.code, 2, missing.err);
      assert.match(missing.err, /nope\.pem/);
    } finally {
      await Promise.all(boxes.filter((b) => b.deviceId.startsWith("tls-")).map((b) => b.stop()));
      await secured.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
