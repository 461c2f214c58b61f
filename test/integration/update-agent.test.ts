import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { access, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { UpdateAgent, type UpdateAgentOptions } from "../../src/update/agent.js";
import { verifyReleaseDir, type BuiltBundle } from "../../src/update/bundle.js";
import type { JobStatus, UpdateJobInput } from "../../src/update/job.js";
import { readCurrentTarget } from "../../src/update/releases.js";
import { BundleServer } from "../helpers/bundle-server.js";
import { elfHeader, installRelease, makeBundle, makeKey, resignBundle, tamperBundle, tempDir, type TestKey } from "../helpers/update-fixtures.js";

// Real bundles built and signed here, served by a real HTTP
// server on 127.0.0.1 with Range support; the agent runs in-process against real files.

let work: string;
let key: TestKey;
let stranger: TestKey;
let server: BundleServer;
const bundles: Record<string, BuiltBundle> = {};
const served: Record<string, { sha256: string; size: number }> = {};

async function serve(name: string, file: string): Promise<void> {
  const data = await readFile(file);
  server.files.set(name, data);
  const { createHash } = await import("node:crypto");
  served[name] = { sha256: createHash("sha256").update(data).digest("hex"), size: data.length };
}

function job(name: string, version: string, extra: Partial<UpdateJobInput> = {}): UpdateJobInput {
  const info = served[name];
  assert.ok(info, `bundle ${name} is served`);
  return { v: 1, type: "update", version, url: server.url(name), sha256: info.sha256, size: info.size, expiresAt: Date.now() + 3_600_000, ...extra };
}

interface Box {
  root: string;
  agent: UpdateAgent;
  statuses: JobStatus[];
  restarts: number;
}

function agentFor(root: string, runningVersion: string, overrides: Partial<UpdateAgentOptions> = {}): Box {
  const box: Box = { root, statuses: [], restarts: 0, agent: undefined as unknown as UpdateAgent };
  box.agent = new UpdateAgent({
    root,
    runningVersion,
    trustedKeys: [key.trusted],
    report: (status) => box.statuses.push(status),
    restart: async () => {
      box.restarts++;
    },
    architecture: "x64",
    healthWindowMs: 2000,
    healthPollMs: 20,
    healthConsecutive: 2,
    fsync: false,
    download: { retryDelayMs: 10, attempts: 3 },
    ...overrides,
  });
  return box;
}

let rootCount = 0;
async function freshRoot(): Promise<string> {
  const root = join(work, `root-${rootCount++}`);
  const version = await installRelease(root, bundles["0.1.0"]!.outFile, [key.trusted]);
  assert.equal(version, "0.1.0");
  return root;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function stateOf(root: string): Promise<{ active: { step: string } | null; history: Array<{ jobId: string; status: string; code?: string; reason?: string }> }> {
  return JSON.parse(await readFile(join(root, "update-state.json"), "utf8")) as never;
}

before(async () => {
  work = await tempDir("update-agent");
  key = await makeKey(work, "release-test");
  stranger = await makeKey(work, "stranger");
  server = await new BundleServer().start();
  bundles["0.1.0"] = await makeBundle(work, "0.1.0", key);
  bundles["0.2.0"] = await makeBundle(work, "0.2.0", key, { blobBytes: 200_000 });
  bundles["0.3.0"] = await makeBundle(work, "0.3.0", key);
  bundles["0.0.9"] = await makeBundle(work, "0.0.9", key);
  bundles.stranger = await makeBundle(work, "0.2.0", stranger);
  bundles.armOnly = await makeBundle(work, "0.2.1", key, { architectures: ["armhf"] });
  // Native addons as real ELF headers: one for this (x64) box, one for a Pi.
  bundles.x64Native = await makeBundle(work, "0.2.3", key, { native: { "node_modules/epoll/build/Release/epoll.node": elfHeader("x64", 4096) } });
  bundles.armNative = await makeBundle(work, "0.2.2", key, { native: { "node_modules/epoll/build/Release/epoll.node": elfHeader("armhf", 4096) } });
  for (const [name, built] of Object.entries(bundles)) await serve(name, built.outFile);
  await serve(
    "bad-signature",
    await tamperBundle(bundles["0.2.0"].outFile, join(work, "bad-signature.tar"), (entries) => {
      const manifest = entries.find((e) => e.path === "manifest.json")!;
      manifest.body = Buffer.from(manifest.body.toString("utf8").replace('"minCompatibleVersion": "0.0.0"', '"minCompatibleVersion": "0.0.1"'));
    }),
  );
  await serve(
    "swapped",
    await tamperBundle(bundles["0.2.0"].outFile, join(work, "swapped.tar"), (entries) => {
      const app = entries.find((e) => e.path === "dist/lib/app.js")!;
      app.body = Buffer.from('export const version = "evil";\n');
    }),
  );
  // What the old build tool made: an ARM addon in a bundle that claims every architecture.
  await serve(
    "armNativeOldTool",
    await resignBundle(bundles.armNative.outFile, join(work, "arm-native-old-tool.tar"), key, (m) => {
      const { native: _native, ...rest } = m;
      return { ...rest, architectures: ["arm64", "armhf", "x64"] };
    }),
  );
  await serve(
    "traversal",
    await tamperBundle(bundles["0.2.0"].outFile, join(work, "traversal.tar"), (entries) => {
      entries.push({ path: "../../escaped.js", type: "File", mode: 0o644, body: Buffer.from("pwned") });
    }),
  );
});

after(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

function resetServer(): void {
  server.requests.length = 0;
  server.cuts.length = 0;
  server.ignoreRange = false;
}

describe("update agent", () => {
  test("happy path: download, verify, unpack, switch, restart; the new version commits after its health window", async () => {
    resetServer();
    const root = await freshRoot();
    const old = agentFor(root, "0.1.0");
    const last = await old.agent.handleJob("job-happy", job("0.2.0", "0.2.0"));
    assert.equal(last.status, "in-progress");
    assert.equal(last.step, "restart");
    assert.equal(old.restarts, 1);
    const steps = [...new Set(old.statuses.map((s) => s.step))];
    assert.deepEqual(steps, ["validate", "wait-idle", "download", "verify", "unpack", "switch", "restart"]);
    assert.ok(old.statuses.every((s) => s.progress >= 0 && s.progress <= 1 && s.jobId === "job-happy"));
    assert.equal(await readCurrentTarget(root), "releases/0.2.0");
    assert.equal((await stateOf(root)).active?.step, "restarting");

    const fresh = agentFor(root, "0.2.0");
    const outcome = await fresh.agent.resumeAfterBoot(() => ({ healthy: true }));
    assert.equal(outcome.action, "health-check");
    assert.equal(outcome.status?.status, "succeeded");
    assert.equal(outcome.status?.step, "commit");
    const check = await verifyReleaseDir(join(root, "current"), [key.trusted]);
    assert.ok(check.ok && check.manifest.version === "0.2.0");
    const state = await stateOf(root);
    assert.equal(state.active, null);
    assert.equal(state.history.at(-1)?.status, "succeeded");
    assert.equal(await exists(join(root, "staging", "0.2.0.tar")), false, "staging file removed after commit");
    assert.ok(await exists(join(root, "releases", "0.1.0", "manifest.json")), "previous release kept");
  });

  test("an interrupted download resumes with Range and does not fetch the same bytes again", async () => {
    resetServer();
    const root = await freshRoot();
    const size = served["0.2.0"]!.size;
    const cut = Math.floor(size * 0.4);
    server.cuts.push(cut);
    const box = agentFor(root, "0.1.0");
    const last = await box.agent.handleJob("job-resume", job("0.2.0", "0.2.0"));
    assert.equal(last.step, "restart", JSON.stringify(box.statuses.at(-1)));
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0]?.range, undefined);
    assert.equal(server.requests[0]?.bytesSent, cut);
    assert.equal(server.requests[1]?.range, `bytes=${cut}-`);
    assert.equal(server.requests[1]?.status, 206);
    assert.equal(server.totalBytesSent, size, "every byte crossed the wire exactly once");
    assert.equal(await readCurrentTarget(root), "releases/0.2.0");
  });

  test("a server that ignores Range (200) makes the download restart from zero", async () => {
    resetServer();
    const root = await freshRoot();
    const size = served["0.2.0"]!.size;
    const cut = Math.floor(size * 0.3);
    server.cuts.push(cut);
    server.ignoreRange = true;
    const box = agentFor(root, "0.1.0");
    const last = await box.agent.handleJob("job-200", job("0.2.0", "0.2.0"));
    assert.equal(last.step, "restart");
    assert.equal(server.requests[1]?.range, `bytes=${cut}-`);
    assert.equal(server.requests[1]?.status, 200);
    assert.equal(server.totalBytesSent, cut + size);
    assert.equal(await readCurrentTarget(root), "releases/0.2.0");
  });

  const rejectedBundles: Array<[string, string, (j: UpdateJobInput) => UpdateJobInput, string, RegExp]> = [
    ["wrong hash", "0.2.0", (j) => ({ ...j, sha256: "0".repeat(64) }), "E_HASH", /sha256 of the download/],
    ["bad signature", "bad-signature", (j) => j, "E_SIGNATURE", /signature does not verify/],
    ["a manifest entry whose file was swapped", "swapped", (j) => j, "E_FILE_HASH", /dist\/lib\/app\.js/],
    ["unknown signing key", "stranger", (j) => j, "E_UNKNOWN_KEY", /"stranger".*does not trust/],
    ["a path that climbs out of the release", "traversal", (j) => j, "E_UNSAFE_PATH", /\.\.\/\.\.\/escaped\.js/],
    ["a bundle for another architecture", "armOnly", (j) => ({ ...j, version: "0.2.1" }), "E_INCOMPATIBLE", /armhf.*x64/],
    [
      "a bundle whose native addon is for an ARM box",
      "armNative",
      (j) => ({ ...j, version: "0.2.2" }),
      "E_WRONG_ARCH",
      /this x64 box: node_modules\/epoll\/build\/Release\/epoll\.node is armhf/,
    ],
    ["an ARM addon in a bundle that claims every architecture", "armNativeOldTool", (j) => ({ ...j, version: "0.2.2" }), "E_WRONG_ARCH", /epoll\.node is armhf/],
  ];
  for (const [name, bundle, edit, code, reason] of rejectedBundles) {
    test(`rejects ${name}, naming the reason, and changes nothing on the box`, async () => {
      resetServer();
      const root = await freshRoot();
      const box = agentFor(root, "0.1.0");
      const last = await box.agent.handleJob(`job-${bundle}`, edit(job(bundle, "0.2.0")));
      assert.equal(last.status, "failed");
      assert.equal(last.code, code);
      assert.match(last.reason ?? "", reason);
      assert.equal(box.restarts, 0);
      assert.equal(await readCurrentTarget(root), "releases/0.1.0");
      assert.deepEqual((await readdir(join(root, "releases"))).sort(), ["0.1.0"]);
      assert.deepEqual(await readdir(join(root, "staging")), [], "the rejected download is deleted");
      assert.equal(await exists(join(root, "..", "escaped.js")), false);
      const state = await stateOf(root);
      assert.equal(state.active, null);
      assert.equal(state.history.at(-1)?.code, code);
      // The same job id again after a restart (a console resuming its rollout): the box publishes
      // the outcome it recorded, downloads nothing and runs nothing.
      const requestsBefore = server.requests.length;
      const restarted = agentFor(root, "0.1.0");
      const again = await restarted.agent.reportAgain(`job-${bundle}`);
      assert.deepEqual([again?.status, again?.code, again?.reason], [last.status, last.code, last.reason]);
      assert.deepEqual(
        restarted.statuses.map((s) => s.status),
        ["failed"],
      );
      assert.equal(server.requests.length, requestsBefore);
      assert.equal(await restarted.agent.reportAgain("job-never-seen"), undefined, "an unknown id is not answered");
    });
  }

  test("a bundle whose native addon matches the box is installed", async () => {
    resetServer();
    const root = await freshRoot();
    const box = agentFor(root, "0.1.0");
    const last = await box.agent.handleJob("job-x64-native", job("x64Native", "0.2.3"));
    assert.equal(last.step, "restart", JSON.stringify(box.statuses.at(-1)));
    assert.equal(await readCurrentTarget(root), "releases/0.2.3");
    assert.deepEqual(await readFile(join(root, "releases", "0.2.3", "node_modules", "epoll", "build", "Release", "epoll.node")), elfHeader("x64", 4096));
  });

  test("a downgrade is refused unless allowDowngrade is set", async () => {
    resetServer();
    const root = await freshRoot();
    const box = agentFor(root, "0.1.0");
    const refused = await box.agent.handleJob("job-down", job("0.0.9", "0.0.9"));
    assert.equal(refused.status, "rejected");
    assert.equal(refused.code, "E_DOWNGRADE");
    assert.match(refused.reason ?? "", /older than the running 0\.1\.0/);
    assert.equal(server.requests.length, 0);
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");

    const allowed = await box.agent.handleJob("job-down-ok", job("0.0.9", "0.0.9", { allowDowngrade: true }));
    assert.equal(allowed.step, "restart");
    assert.equal(await readCurrentTarget(root), "releases/0.0.9");
  });

  test("a job for the running version is a no-op success; expired and malformed jobs are rejected", async () => {
    resetServer();
    const root = await freshRoot();
    const box = agentFor(root, "0.1.0");
    const same = await box.agent.handleJob("job-same", job("0.1.0", "0.1.0"));
    assert.equal(same.status, "succeeded");
    assert.match(same.reason ?? "", /already running/);
    const expired = await box.agent.handleJob("job-expired", job("0.2.0", "0.2.0", { expiresAt: Date.now() - 1000 }));
    assert.equal(expired.status, "rejected");
    assert.equal(expired.code, "E_JOB_EXPIRED");
    const malformed = await box.agent.handleJob("job-bad", { v: 1, version: "latest", url: "ftp://x", sha256: "zz", size: -1, expiresAt: 1, allowDowngrad: true });
    assert.equal(malformed.status, "rejected");
    assert.equal(malformed.code, "E_JOB_INVALID");
    for (const field of ["version", "url", "sha256", "size", "allowDowngrad"]) assert.match(malformed.reason ?? "", new RegExp(field));
    assert.equal(server.requests.length, 0);
    assert.deepEqual(box.agent.snapshot().counts, { succeeded: 1, rejected: 2 });
    // A re-delivered job id is answered from the history, not run again.
    const again = await box.agent.handleJob("job-same", job("0.1.0", "0.1.0"));
    assert.equal(again.status, "succeeded");
    assert.equal(server.requests.length, 0);
  });

  test("waits for the lanes to be idle, and fails with 'lanes busy' when they stay busy", async () => {
    resetServer();
    const root = await freshRoot();
    const busy = agentFor(root, "0.1.0", { lanesIdle: () => false, idleWaitMs: 150, idlePollMs: 20 });
    const failed = await busy.agent.handleJob("job-busy", job("0.2.0", "0.2.0"));
    assert.equal(failed.status, "failed");
    assert.equal(failed.code, "E_LANES_BUSY");
    assert.match(failed.reason ?? "", /lanes busy/);
    assert.equal(server.requests.length, 0);
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");

    let polls = 0;
    const later = agentFor(root, "0.1.0", { lanesIdle: () => ++polls > 3, idleWaitMs: 5000, idlePollMs: 10 });
    const done = await later.agent.handleJob("job-idle-later", job("0.2.0", "0.2.0"));
    assert.equal(done.step, "restart");
    assert.ok(later.statuses.some((s) => s.step === "wait-idle" && /waiting for the lanes/.test(s.reason ?? "")));
  });

  test("a new version that does not report healthy is rolled back and the job fails with the reason", async () => {
    resetServer();
    const root = await freshRoot();
    const old = agentFor(root, "0.1.0");
    await old.agent.handleJob("job-sick", job("0.2.0", "0.2.0"));
    assert.equal(await readCurrentTarget(root), "releases/0.2.0");

    const sick = agentFor(root, "0.2.0", { healthWindowMs: 200 });
    const outcome = await sick.agent.resumeAfterBoot(() => ({ healthy: false, reason: "lanes not up" }));
    assert.equal(outcome.status?.step, "rollback");
    assert.equal(sick.restarts, 1, "restarted into the previous version");
    assert.equal(await readCurrentTarget(root), "releases/0.1.0");

    const back = agentFor(root, "0.1.0");
    const final = await back.agent.resumeAfterBoot(() => ({ healthy: true }));
    assert.equal(final.status?.status, "rolled-back");
    assert.equal(final.status?.code, "E_UNHEALTHY");
    assert.match(final.status?.reason ?? "", /did not report healthy within .*lanes not up/);
    const state = await stateOf(root);
    assert.equal(state.active, null);
    assert.equal(state.history.at(-1)?.status, "rolled-back");
    const check = await verifyReleaseDir(join(root, "current"), [key.trusted]);
    assert.ok(check.ok && check.manifest.version === "0.1.0");
  });

  test("keeps at most N releases, never pruning the current or the previous one", async () => {
    resetServer();
    const root = await freshRoot();
    for (const [from, to] of [
      ["0.1.0", "0.2.0"],
      ["0.2.0", "0.3.0"],
    ] as const) {
      await agentFor(root, from, { keepReleases: 2 }).agent.handleJob(`job-${to}`, job(to, to));
      const outcome = await agentFor(root, to, { keepReleases: 2 }).agent.resumeAfterBoot(() => true);
      assert.equal(outcome.status?.status, "succeeded");
    }
    assert.deepEqual((await readdir(join(root, "releases"))).sort(), ["0.2.0", "0.3.0"]);
    assert.equal(await readCurrentTarget(root), "releases/0.3.0");
  });
});
