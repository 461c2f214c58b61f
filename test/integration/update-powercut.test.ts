import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { verifyReleaseDir, type BuiltBundle } from "../../src/update/bundle.js";
import { readCurrentTarget } from "../../src/update/releases.js";
import { BundleServer } from "../helpers/bundle-server.js";
import { installRelease, makeBundle, makeKey, tempDir, type TestKey } from "../helpers/update-fixtures.js";

// The process killed at each step (download, verify, unpack, switch, health window) and
// restarted ends on a working version with the job in a definite state. The agent runs in
// a real child process (test/helpers/update-runner.ts); LANEKEEPER_UPDATE_PAUSE_AT makes it
// announce and hang at the step, where it gets SIGKILL (no handler runs, like a power cut,
// except that the page cache survives). A new runner then does the boot-time recovery.

const runner = join(import.meta.dirname, "..", "helpers", "update-runner.ts");
let work: string;
let key: TestKey;
let server: BundleServer;
let v1: BuiltBundle;
let v2: BuiltBundle;
let v2Data: Buffer;

interface RunResult {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs the runner; with `killAt`, SIGKILLs it as soon as it says "PAUSED <killAt>". */
function run(root: string, args: string[], killAt?: string): Promise<RunResult> {
  const child = spawn(process.execPath, ["--import", "tsx", runner, "--root", root, "--trusted", key.publicKeyFile, ...args], {
    env: { ...process.env, ...(killAt ? { LANEKEEPER_UPDATE_PAUSE_AT: killAt } : {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    if (killAt && line === `PAUSED ${killAt}`) child.kill("SIGKILL");
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`runner timed out; output:\n${lines.join("\n")}\n${stderr}`));
    }, 20_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && signal === null) reject(new Error(`runner exited ${code}:\n${lines.join("\n")}\n${stderr}`));
      else resolve({ lines, code, signal });
    });
  });
}

function done(result: RunResult): { action: string; status?: { status: string; step: string; code?: string; reason?: string } } {
  const line = result.lines.find((l) => l.startsWith("DONE "));
  assert.ok(line, `runner finished: ${result.lines.join("\n")}`);
  return JSON.parse(line.slice(5)) as never;
}

async function state(root: string): Promise<{ active: { step: string } | null; history: Array<{ jobId: string; status: string; code?: string; reason?: string }> }> {
  return JSON.parse(await readFile(join(root, "update-state.json"), "utf8")) as never;
}

/** The box is on a release whose signed manifest verifies, and no job is left half-done. */
async function assertSettled(root: string, version: string, jobStatus: string): Promise<void> {
  const check = await verifyReleaseDir(join(root, "current"), [key.trusted]);
  assert.ok(check.ok, check.ok ? "" : check.reason);
  assert.equal(check.manifest.version, version);
  assert.equal(await readCurrentTarget(root), `releases/${version}`);
  const s = await state(root);
  assert.equal(s.active, null, "no job left in progress");
  assert.equal(s.history.at(-1)?.jobId, "job-cut");
  assert.equal(s.history.at(-1)?.status, jobStatus);
}

before(async () => {
  work = await tempDir("update-powercut");
  key = await makeKey(work, "release-test");
  server = await new BundleServer().start();
  // Slow enough that the runner is mid-download when it pauses after its first chunk.
  server.chunkDelayMs = 2;
  v1 = await makeBundle(work, "0.1.0", key);
  v2 = await makeBundle(work, "0.2.0", key, { blobBytes: 300_000 });
  v2Data = await readFile(v2.outFile);
});

after(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

async function freshRoot(name: string): Promise<string> {
  const root = join(work, name);
  await installRelease(root, v1.outFile, [key.trusted]);
  return root;
}

/** The job for 0.2.0, served under a name of its own so concurrent tests' requests stay apart. */
function job(name: string): string[] {
  server.files.set(name, v2Data);
  const payload = {
    v: 1,
    type: "update",
    version: "0.2.0",
    url: server.url(name),
    sha256: createHash("sha256").update(v2Data).digest("hex"),
    size: v2Data.length,
    expiresAt: Date.now() + 3_600_000,
  };
  return ["--job-id", "job-cut", "--job", JSON.stringify(payload)];
}

describe("update survives a kill at every step", { concurrency: 3 }, () => {
  for (const step of ["download", "verify", "unpack", "switch"] as const) {
    test(`killed at ${step}: the next boot resumes the job, which then installs and commits`, async () => {
      const root = await freshRoot(`root-${step}`);
      const killed = await run(root, job(`v2-${step}.tar`), step);
      assert.equal(killed.signal, "SIGKILL");
      assert.ok(killed.lines.includes(`PAUSED ${step}`));
      assert.equal(await readCurrentTarget(root), "releases/0.1.0", "still on the old version after the kill");

      // Boot on the old version: recovery resumes the job up to the restart.
      const resumed = await run(root, ["--boot"]);
      assert.ok(resumed.lines.includes("RESTART"), resumed.lines.join("\n"));
      assert.equal(await readCurrentTarget(root), "releases/0.2.0");
      if (step === "download") {
        const requests = server.requests.filter((r) => r.path === `v2-${step}.tar`);
        assert.equal(requests.length, 2);
        assert.equal(requests[0]?.range, undefined);
        assert.match(requests[1]?.range ?? "", /^bytes=[1-9]\d*-$/, "the resumed download asked for the rest only");
        assert.ok((requests[1]?.bytesSent ?? 0) < v2Data.length, "the bytes already on disk were not fetched again");
      }

      // Boot on the new version: health window, commit.
      const committed = done(await run(root, ["--boot"]));
      assert.equal(committed.action, "health-check");
      assert.equal(committed.status?.status, "succeeded");
      await assertSettled(root, "0.2.0", "succeeded");
    });
  }

  test("killed after the switch, before the restart: the box comes up on the new version and commits", async () => {
    const root = await freshRoot("root-restart");
    await run(root, job("v2-restart.tar"), "restart");
    assert.equal(await readCurrentTarget(root), "releases/0.2.0");
    const committed = done(await run(root, ["--boot"]));
    assert.equal(committed.status?.status, "succeeded");
    await assertSettled(root, "0.2.0", "succeeded");
  });

  test("killed in the health window: the next boot rolls back, and the old version ends the job as rolled back", async () => {
    const root = await freshRoot("root-health");
    const first = await run(root, job("v2-health.tar"));
    assert.ok(first.lines.includes("RESTART"));
    const killed = await run(root, ["--boot"], "health");
    assert.equal(killed.signal, "SIGKILL");

    const rollingBack = await run(root, ["--boot"]);
    assert.ok(rollingBack.lines.includes("RESTART"), "restarted into the previous version");
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");

    const final = done(await run(root, ["--boot"]));
    assert.equal(final.status?.status, "rolled-back");
    assert.equal(final.status?.code, "E_UNHEALTHY");
    assert.match(final.status?.reason ?? "", /stopped before its health window ended/);
    await assertSettled(root, "0.1.0", "rolled-back");
  });
});
