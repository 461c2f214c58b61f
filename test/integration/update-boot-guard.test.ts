import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UpdateAgent } from "../../src/update/agent.js";
import { buildBundle, type BuiltBundle } from "../../src/update/bundle.js";
import type { JobStatus, UpdateJobInput } from "../../src/update/job.js";
import { readCurrentTarget } from "../../src/update/releases.js";
import { updateStateSchema, type ActiveJob, type UpdateState } from "../../src/update/state.js";
import { BundleServer } from "../helpers/bundle-server.js";
import { installRelease, makeBundle, makeKey, makeSourceTree, tempDir, type TestKey } from "../helpers/update-fixtures.js";

// The boot guard (scripts/boot-guard.sh, run by the unit as ExecStartPre=) against real files:
// a real agent switches a temp root to a release whose entry point dies at import, then the
// guard runs as a real `sh` process before each simulated start, the broken entry point runs
// as a real Node process after it, and once the guard has switched back the old version's
// agent (in-process) ends the job. The state files it works on are the agent's own.

const guardScript = fileURLToPath(new URL("../../scripts/boot-guard.sh", import.meta.url));
const MAX_BOOTS = 3; // the guard's default, and the unit's LANEKEEPER_BOOT_GUARD_MAX_BOOTS

let work: string;
let key: TestKey;
let server: BundleServer;
const served: Record<string, { sha256: string; size: number }> = {};
let goodOld: BuiltBundle;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: "utf8", timeout: 15_000, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** One ExecStartPre= run: the guard under /bin/sh with the arguments the unit passes. */
function guard(root: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return run("/bin/sh", [guardScript, "--node", process.execPath, "--root", root, ...extra], env);
}

/** One ExecStart= run of whatever `current` points at (its entry point, as the unit starts it). */
function startCurrent(root: string): Promise<Ran> {
  return run(process.execPath, [join(root, "current", "dist", "cli.js")]);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function rawState(root: string): Promise<UpdateState> {
  const parsed = updateStateSchema.safeParse(JSON.parse(await readFile(join(root, "update-state.json"), "utf8")));
  assert.ok(parsed.success, `the state stays readable by the agent: ${parsed.success ? "" : parsed.error.message}`);
  return parsed.data;
}

function agentFor(root: string, runningVersion: string, statuses: JobStatus[] = []): UpdateAgent {
  return new UpdateAgent({
    root,
    runningVersion,
    trustedKeys: [key.trusted],
    report: (status) => statuses.push(status),
    restart: async () => undefined,
    architecture: "x64",
    healthWindowMs: 2000,
    healthPollMs: 20,
    healthConsecutive: 2,
    fsync: false,
    download: { retryDelayMs: 10, attempts: 3 },
  });
}

function job(name: string, version: string): UpdateJobInput {
  const info = served[name];
  assert.ok(info, `bundle ${name} is served`);
  return { v: 1, type: "update", version, url: server.url(name), sha256: info.sha256, size: info.size, expiresAt: Date.now() + 3_600_000 };
}

let rootCount = 0;
/** A box on 0.1.0 (a good release) whose agent has switched to `version` and asked for a restart. */
async function switchedRoot(bundleName: string, version: string, jobId: string): Promise<string> {
  const root = join(work, `root-${rootCount++}`);
  assert.equal(await installRelease(root, goodOld.outFile, [key.trusted]), "0.1.0");
  const last = await agentFor(root, "0.1.0").handleJob(jobId, job(bundleName, version));
  assert.equal(last.status, "in-progress", JSON.stringify(last));
  assert.equal(last.step, "restart");
  assert.equal(await readCurrentTarget(root), `releases/${version}`);
  assert.equal((await rawState(root)).active?.step, "restarting");
  return root;
}

/** A hand-made box: release dirs, `current`, and an update state with one active job. */
async function handRoot(currentVersion: string, active: Partial<ActiveJob> | null, history: UpdateState["history"] = []): Promise<string> {
  const root = join(work, `root-${rootCount++}`);
  for (const version of ["0.1.0", "0.2.0"]) await mkdir(join(root, "releases", version), { recursive: true });
  await symlink(`releases/${currentVersion}`, join(root, "current"));
  const full: ActiveJob | null = active && {
    jobId: "j-hand",
    job: { v: 1, version: "0.2.0", url: "http://127.0.0.1/b.tar", sha256: "a".repeat(64), size: 10, expiresAt: Date.now() + 60_000, allowDowngrade: false },
    step: "restarting",
    fromVersion: "0.1.0",
    previousTarget: "releases/0.1.0",
    healthBoots: 0,
    rollbackBoots: 0,
    startedAt: Date.now(),
    updatedAt: Date.now(),
    ...active,
  };
  const state: UpdateState = { v: 1, active: full, history };
  await writeFile(join(root, "update-state.json"), `${JSON.stringify(state, null, 2)}\n`);
  return root;
}

before(async () => {
  work = await tempDir("boot-guard");
  key = await makeKey(work, "release-test");
  server = await new BundleServer().start();
  goodOld = await makeBundle(work, "0.1.0", key);
  // 0.2.0 dies at import: its entry point imports a module that is not there.
  const brokenSrc = await makeSourceTree(work, "0.2.0");
  await writeFile(join(brokenSrc, "dist", "cli.js"), `#!/usr/bin/env node\nimport "./lib/not-shipped.js";\nconsole.log("lanekeeper 0.2.0");\n`, { mode: 0o755 });
  const broken = await buildBundle({
    sourceDir: brokenSrc,
    files: ["package.json", "dist", "node_modules"],
    outFile: join(work, "bundles", "lanekeeper-0.2.0-broken.tar"),
    privateKeyPem: key.privateKeyPem,
    keyId: key.id,
  });
  const goodNew = await makeBundle(work, "0.3.0", key);
  const { createHash } = await import("node:crypto");
  for (const [name, built] of [
    ["broken", broken],
    ["good", goodNew],
  ] as const) {
    const data = await readFile(built.outFile);
    server.files.set(name, data);
    served[name] = { sha256: createHash("sha256").update(data).digest("hex"), size: data.length };
  }
});

after(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

describe("boot guard", () => {
  test(`a release that dies at import gets ${MAX_BOOTS} starts, then the guard switches back and the old agent ends the job rolled back`, async () => {
    const root = await switchedRoot("broken", "0.2.0", "job-broken");

    for (let boot = 1; boot <= MAX_BOOTS; boot++) {
      const pre = await guard(root);
      assert.equal(pre.code, 0, pre.stderr);
      assert.match(pre.stdout, new RegExp(`start ${boot} of at most ${MAX_BOOTS} of uncommitted version 0\\.2\\.0 \\(job job-broken\\)`));
      assert.equal(await readCurrentTarget(root), "releases/0.2.0", `start ${boot} still runs the new release`);
      const counter = JSON.parse(await readFile(join(root, "update-boot-guard.json"), "utf8")) as { jobId: string; version: string; boots: number };
      assert.deepEqual({ jobId: counter.jobId, version: counter.version, boots: counter.boots }, { jobId: "job-broken", version: "0.2.0", boots: boot });
      const started = await startCurrent(root);
      assert.notEqual(started.code, 0, "the broken release must fail to start");
      assert.match(started.stderr, /ERR_MODULE_NOT_FOUND|Cannot find module/);
      // It never got to its agent: the state still says "restarting".
      assert.equal((await rawState(root)).active?.step, "restarting");
    }

    // The start after the last failed one: the guard marks the job and switches back.
    const pre = await guard(root);
    assert.equal(pre.code, 0, pre.stderr);
    assert.match(pre.stdout, new RegExp(`version 0\\.2\\.0 failed to start ${MAX_BOOTS} times without committing; current -> releases/0\\.1\\.0`));
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");
    const marked = await rawState(root);
    assert.equal(marked.active?.step, "rolling-back");
    assert.equal(marked.active?.code, "E_BOOT_FAILED");
    assert.equal(marked.active?.reason, `new version failed to start ${MAX_BOOTS} times`);
    assert.equal(marked.active?.bootGuard?.failedBoots, MAX_BOOTS);
    assert.equal(marked.active?.jobId, "job-broken", "the rest of the job is kept as the agent wrote it");
    assert.equal(marked.active?.previousTarget, "releases/0.1.0");
    assert.equal(await exists(join(root, "update-boot-guard.json")), false, "the counter is done with");

    const old = await startCurrent(root);
    assert.equal(old.code, 0, old.stderr);
    assert.equal(old.stdout.trim(), "lanekeeper 0.1.0");

    // The old version's agent, at boot, with a healthy box.
    const statuses: JobStatus[] = [];
    const outcome = await agentFor(root, "0.1.0", statuses).resumeAfterBoot(() => ({ healthy: true }));
    assert.equal(outcome.action, "finish");
    assert.equal(outcome.status?.status, "rolled-back");
    assert.equal(outcome.status?.step, "rollback");
    assert.equal(outcome.status?.code, "E_BOOT_FAILED");
    assert.match(outcome.status?.reason ?? "", new RegExp(`^new version failed to start ${MAX_BOOTS} times; the boot guard switched back from 0\\.2\\.0 to 0\\.1\\.0$`));
    assert.equal(statuses.at(-1)?.status, "rolled-back", "reported on jobs/<jobId>/status");
    const final = await rawState(root);
    assert.equal(final.active, null);
    assert.equal(final.history.at(-1)?.jobId, "job-broken");
    assert.equal(final.history.at(-1)?.status, "rolled-back");
    assert.equal(final.history.at(-1)?.code, "E_BOOT_FAILED");
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");

    // Later starts: nothing in flight, nothing said, nothing switched.
    const quiet = await guard(root);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stdout, "");
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");
  });

  test("a committed release is never switched by the guard, however often it restarts", async () => {
    const root = await switchedRoot("good", "0.3.0", "job-good");
    const first = await guard(root);
    assert.match(first.stdout, /start 1 of at most 3 of uncommitted version 0\.3\.0/);
    const started = await startCurrent(root);
    assert.equal(started.stdout.trim(), "lanekeeper 0.3.0");
    const outcome = await agentFor(root, "0.3.0").resumeAfterBoot(() => ({ healthy: true }));
    assert.equal(outcome.status?.status, "succeeded");

    for (let boot = 0; boot < MAX_BOOTS + 2; boot++) {
      const pre = await guard(root);
      assert.equal(pre.code, 0, pre.stderr);
      assert.equal(pre.stdout, "", "nothing to guard once committed");
      assert.equal(await readCurrentTarget(root), "releases/0.3.0");
    }
    assert.equal(await exists(join(root, "update-boot-guard.json")), false, "the stale counter is removed");
    assert.equal((await rawState(root)).history.at(-1)?.status, "succeeded");

    // The same holds for a hand-written committed state with `current` on the new release.
    const hand = await handRoot("0.2.0", null, [{ jobId: "j-old", version: "0.2.0", fromVersion: "0.1.0", status: "succeeded", finishedAt: Date.now() }]);
    for (let boot = 0; boot < MAX_BOOTS + 2; boot++) assert.equal((await guard(hand)).code, 0);
    assert.equal(await readCurrentTarget(hand), "releases/0.2.0");
  });

  test("a missing, garbled or foreign state file, or no Node.js, makes the guard do nothing and exit 0", async () => {
    // Missing: a box that never ran an update.
    const missing = await handRoot("0.2.0", null);
    await rm(join(missing, "update-state.json"));
    for (let boot = 0; boot < MAX_BOOTS + 2; boot++) {
      const pre = await guard(missing);
      assert.equal(pre.code, 0);
      assert.equal(pre.stdout, "");
    }
    assert.equal(await readCurrentTarget(missing), "releases/0.2.0");
    assert.equal(await exists(join(missing, "update-boot-guard.json")), false);

    const cases: Array<[string, string, RegExp]> = [
      ["torn JSON", '{"v":1,"active":{"jobId":"j1","step":"restar', /not valid JSON/],
      ["empty file", "", /not valid JSON/],
      ["another format version", JSON.stringify({ v: 2, active: null, history: [] }), /unknown format/],
      [
        "an active job with a path in its version",
        JSON.stringify({ v: 1, active: { jobId: "j", step: "restarting", job: { version: "../../etc" }, previousTarget: "releases/0.1.0" }, history: [] }),
        /active job .* is unreadable/,
      ],
    ];
    for (const [name, text, said] of cases) {
      const root = await handRoot("0.2.0", null);
      await writeFile(join(root, "update-state.json"), text);
      for (let boot = 0; boot < MAX_BOOTS + 2; boot++) {
        const pre = await guard(root);
        assert.equal(pre.code, 0, name);
        assert.match(pre.stdout, said, name);
      }
      assert.equal(await readCurrentTarget(root), "releases/0.2.0", name);
      assert.equal(await readFile(join(root, "update-state.json"), "utf8"), text, `${name}: left for the agent to deal with`);
    }

    // An uncommitted job, but the guard cannot run its Node or find its root: the start goes on.
    const uncommitted = await handRoot("0.2.0", {});
    const noNode = await run("/bin/sh", [guardScript, "--node", join(work, "no-such-node"), "--root", uncommitted]);
    assert.equal(noNode.code, 0);
    assert.match(noNode.stdout, /no Node\.js at .*no-such-node/);
    const noRoot = await guard(join(work, "no-such-root"));
    assert.equal(noRoot.code, 0);
    assert.match(noRoot.stdout, /no application root/);
    const badArgs = await run("/bin/sh", [guardScript, "--frobnicate", "--root"]);
    assert.equal(badArgs.code, 0);
    assert.match(badArgs.stdout, /unknown argument --frobnicate/);

    // A garbled counter restarts the count rather than stopping the guard.
    await writeFile(join(uncommitted, "update-boot-guard.json"), "{{{");
    const recount = await guard(uncommitted);
    assert.equal(recount.code, 0);
    assert.match(recount.stdout, /unreadable; counting from zero[\s\S]*start 1 of at most 3/);

    // No previous release to go back to: the guard says so and lets the new one start.
    const nowhere = await handRoot("0.2.0", { previousTarget: null });
    for (let boot = 0; boot < MAX_BOOTS; boot++) await guard(nowhere);
    const stuck = await guard(nowhere);
    assert.equal(stuck.code, 0);
    assert.match(stuck.stdout, /no previous release on disk; starting it again/);
    assert.equal(await readCurrentTarget(nowhere), "releases/0.2.0");
    assert.equal((await rawState(nowhere)).active?.step, "restarting");
  });

  test("the count is configurable, belongs to one job, and a rollback cut short by a power loss is finished", async () => {
    // LANEKEEPER_BOOT_GUARD_MAX_BOOTS (the unit's Environment=, overridable in a drop-in).
    const one = await handRoot("0.2.0", { step: "health-check", healthBoots: 1 });
    const env = { LANEKEEPER_BOOT_GUARD_MAX_BOOTS: "1" };
    assert.match((await guard(one, [], env)).stdout, /start 1 of at most 1 /);
    assert.match((await guard(one, [], env)).stdout, /failed to start 1 times/);
    assert.equal(await readCurrentTarget(one), "releases/0.1.0");
    // --max-boots wins over the environment; nonsense falls back to 3.
    const two = await handRoot("0.2.0", {});
    assert.match((await guard(two, ["--max-boots", "2"], env)).stdout, /start 1 of at most 2 /);
    const silly = await guard(two, ["--max-boots", "0"]);
    assert.match(silly.stdout, /max boots must be at least 1; using 3[\s\S]*start 2 of at most 3 /);

    // A counter left by another job does not count against this one.
    const other = await handRoot("0.2.0", { jobId: "j-new" });
    await writeFile(join(other, "update-boot-guard.json"), JSON.stringify({ jobId: "j-previous", version: "0.2.0", boots: 3 }));
    assert.match((await guard(other)).stdout, /start 1 of at most 3 .*\(job j-new\)/);
    assert.equal(await readCurrentTarget(other), "releases/0.2.0");

    // Before the switch `current` is the old release: the guard counts nothing.
    const early = await handRoot("0.1.0", { step: "downloading" });
    assert.equal((await guard(early)).stdout, "");
    assert.equal(await exists(join(early, "update-boot-guard.json")), false);

    // The guard marked the job, then the power went before it switched the link: the next start
    // finishes the switch at once, and the old agent ends the job with the guard's reason.
    const cut = await handRoot("0.2.0", {
      step: "rolling-back",
      code: "E_BOOT_FAILED",
      reason: "new version failed to start 3 times",
      bootGuard: { failedBoots: 3, maxBoots: 3, at: Date.now() },
    });
    await writeFile(join(cut, ".update-state.json.tmp-guard-99999"), '{"v":1,"act');
    const finished = await guard(cut);
    assert.equal(await exists(join(cut, ".update-state.json.tmp-guard-99999")), false, "a torn temp file of the cut run is swept");
    assert.equal(finished.code, 0);
    assert.match(finished.stdout, /finished the interrupted rollback of job j-hand: current -> releases\/0\.1\.0/);
    assert.equal(await readCurrentTarget(cut), "releases/0.1.0");
    const outcome = await agentFor(cut, "0.1.0").resumeAfterBoot(() => ({ healthy: true }));
    assert.equal(outcome.status?.status, "rolled-back");
    assert.equal(outcome.status?.code, "E_BOOT_FAILED");
    assert.match(outcome.status?.reason ?? "", /new version failed to start 3 times/);
  });
});
