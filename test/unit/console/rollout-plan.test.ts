import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  failures,
  inFlight,
  initialState,
  parseMaxFailed,
  parseWaves,
  rolloutStateSchema,
  step,
  waveEnds,
  waveMembers,
  type Presence,
  type RolloutAction,
  type RolloutEvent,
  type RolloutState,
} from "../../../src/console/rollout-plan.js";

// The rollout planner's safety invariants, over random fleets and random event orders:
// never more jobs in flight than the current wave holds, no job after the failure threshold
// is exceeded, and a state restored from its file (a resumed console) never sends a job to a
// box that already got one.

const runs = Number(process.env.LK_FUZZ_RUNS ?? 150);
const bundle = { version: "2.0.0", url: "http://127.0.0.1:1/b.tar.gz", sha256: "a".repeat(64), size: 10 };

function plan(n: number, waves: string, maxFailed: string, overrides: Partial<Parameters<typeof initialState>[0]> = {}): RolloutState {
  return initialState({
    id: "ro-test",
    createdAtMs: 0,
    bundle,
    targets: Array.from({ length: n }, (_, i) => `box-${i}`),
    waves: parseWaves(waves),
    maxFailed: parseMaxFailed(maxFailed),
    soakMs: 100,
    jobTimeoutMs: 1000,
    offlineWaitMs: 500,
    healthWindowMs: 200,
    ...overrides,
  });
}

const online = (version = "1.0.0", boot = 1): Presence => ({ state: "online", version, boot, tsMs: 0 });

test("waves: cumulative, strictly growing, ending at the fleet size", () => {
  assert.deepEqual(waveEnds(parseWaves("1,10%,50%,100%"), 20), [1, 2, 10, 20]);
  assert.deepEqual(waveEnds(parseWaves("1,10%,50%"), 20), [1, 2, 10, 20]);
  assert.deepEqual(waveEnds(parseWaves("5,1,100%"), 3), [3]);
  assert.throws(() => parseWaves("0,50%"), /at least one box/);
  assert.throws(() => parseWaves("1,,2"), /comma-separated/);
  assert.throws(() => parseMaxFailed("150%"), /percentage/);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 500 }),
      fc.array(
        fc.oneof(
          fc.integer({ min: 1, max: 600 }).map(String),
          fc.integer({ min: 1, max: 100 }).map((p) => `${p}%`),
        ),
        { minLength: 1, maxLength: 6 },
      ),
      (n, parts) => {
        const ends = waveEnds(parseWaves(parts.join(",")), n);
        assert.equal(ends.at(-1), n);
        for (let i = 1; i < ends.length; i++) assert.ok(ends[i]! > ends[i - 1]!);
      },
    ),
    { numRuns: runs },
  );
});

test("a complete rollout: one wave at a time, soak between waves, done", () => {
  let state = plan(4, "1,100%", "0");
  const presence = new Map<string, Presence>(state.targets.map((d) => [d, online()]));
  let r = step(state, { kind: "tick", nowMs: 0 }, (d) => presence.get(d));
  assert.deepEqual(
    r.actions.filter((a) => a.kind === "send-job").map((a) => (a as { deviceId: string }).deviceId),
    ["box-0"],
  );
  state = r.state;
  r = step(state, { kind: "job-status", deviceId: "box-0", jobId: "ro-test-0", status: "running", nowMs: 10 }, (d) => presence.get(d));
  assert.equal(r.state.boxes["box-0"]!.state, "sent", "a running status is not final");
  r = step(r.state, { kind: "job-status", deviceId: "box-0", jobId: "ro-test-0", status: "succeeded", nowMs: 20 }, (d) => presence.get(d));
  assert.equal(r.state.phase, "soaking");
  assert.equal(r.actions.filter((a) => a.kind === "send-job").length, 0, "no job during the soak");
  r = step(r.state, { kind: "tick", nowMs: 119 }, (d) => presence.get(d));
  assert.equal(r.state.phase, "soaking");
  r = step(r.state, { kind: "tick", nowMs: 120 }, (d) => presence.get(d));
  assert.equal(r.actions.filter((a) => a.kind === "send-job").length, 3);
  for (const d of ["box-1", "box-2", "box-3"])
    r = step(r.state, { kind: "job-status", deviceId: d, jobId: r.state.boxes[d]!.jobId!, status: "succeeded", nowMs: 200 }, (x) => presence.get(x));
  r = step(r.state, { kind: "tick", nowMs: 300 }, (d) => presence.get(d));
  assert.equal(r.state.phase, "done");
  assert.ok(r.actions.some((a) => a.kind === "finished" && a.phase === "done"));
});

test("a rollback beyond the threshold halts after that wave: the rest keep their version", () => {
  const state = plan(6, "3,100%", "0");
  const presence = new Map<string, Presence>(state.targets.map((d) => [d, online()]));
  let r = step(state, { kind: "tick", nowMs: 0 }, (d) => presence.get(d));
  r = step(r.state, { kind: "job-status", deviceId: "box-1", jobId: "ro-test-1", status: "rolled-back", detail: "E_UNHEALTHY", nowMs: 5 }, (d) => presence.get(d));
  assert.equal(r.state.phase, "halting", "jobs still out get their final state");
  r = step(r.state, { kind: "job-status", deviceId: "box-0", jobId: "ro-test-0", status: "succeeded", nowMs: 6 }, (d) => presence.get(d));
  r = step(r.state, { kind: "job-status", deviceId: "box-2", jobId: "ro-test-2", status: "succeeded", nowMs: 7 }, (d) => presence.get(d));
  assert.equal(r.state.phase, "halted");
  assert.ok(
    ["box-3", "box-4", "box-5"].every((d) => r.state.boxes[d]!.state === "pending"),
    "later waves are never touched",
  );
  const after = step(r.state, { kind: "tick", nowMs: 10_000 }, (d) => presence.get(d));
  assert.equal(after.actions.length, 0, "a halted rollout does nothing");
});

test("presence settles a job whose status was missed: on the new version past the health window, or back on the old one", () => {
  const state = plan(2, "100%", "1");
  const presence = new Map<string, Presence>(state.targets.map((d) => [d, online("1.0.0", 3)]));
  let r = step(state, { kind: "tick", nowMs: 0 }, (d) => presence.get(d));
  presence.set("box-0", { state: "online", version: "2.0.0", boot: 4, tsMs: 50 });
  presence.set("box-1", { state: "online", version: "1.0.0", boot: 5, tsMs: 60 });
  r = step(r.state, { kind: "presence", deviceId: "box-0", presence: presence.get("box-0")!, nowMs: 100 }, (d) => presence.get(d));
  assert.equal(r.state.boxes["box-0"]!.state, "sent", "within its health window it may still roll back");
  assert.equal(r.state.boxes["box-1"]!.state, "rolled-back");
  r = step(r.state, { kind: "tick", nowMs: 250 }, (d) => presence.get(d));
  assert.equal(r.state.boxes["box-0"]!.state, "succeeded");
  // The box's own word corrects the inference.
  r = step(r.state, { kind: "job-status", deviceId: "box-0", jobId: "ro-test-0", status: "rolled-back", nowMs: 260 }, (d) => presence.get(d));
  assert.equal(r.state.boxes["box-0"]!.state, "rolled-back");
});

test("an offline box is sent its job when it comes back, and skipped if it does not within the wait", () => {
  const state = plan(3, "100%", "0");
  const presence = new Map<string, Presence>([
    ["box-0", online()],
    ["box-1", online()],
    ["box-2", { ...online(), state: "lost" }],
  ]);
  let r = step(state, { kind: "tick", nowMs: 0 }, (d) => presence.get(d));
  assert.equal(r.actions.filter((a) => a.kind === "send-job").length, 2);
  presence.set("box-2", online("1.0.0", 2));
  r = step(r.state, { kind: "presence", deviceId: "box-2", presence: presence.get("box-2")!, nowMs: 100 }, (d) => presence.get(d));
  assert.deepEqual(
    r.actions.filter((a) => a.kind === "send-job").map((a) => (a as { deviceId: string }).deviceId),
    ["box-2"],
  );

  const other = plan(2, "100%", "0");
  const p2 = new Map<string, Presence>([
    ["box-0", online()],
    ["box-1", { ...online(), state: "offline" }],
  ]);
  let s = step(other, { kind: "tick", nowMs: 0 }, (d) => p2.get(d));
  s = step(s.state, { kind: "tick", nowMs: 500 }, (d) => p2.get(d));
  assert.equal(s.state.boxes["box-1"]!.state, "skipped");
});

test("a resumed console publishes each open job again under its own id; finished boxes get nothing", () => {
  let state = plan(3, "100%", "1");
  const presence = new Map<string, Presence>(state.targets.map((d) => [d, online()]));
  let r = step(state, { kind: "tick", nowMs: 0 }, (d) => presence.get(d));
  const ids = new Map(r.actions.flatMap((a) => (a.kind === "send-job" ? [[a.deviceId, a.jobId] as const] : [])));
  assert.equal(ids.size, 3);
  r = step(r.state, { kind: "job-status", deviceId: "box-0", jobId: ids.get("box-0")!, status: "succeeded", nowMs: 10 }, (d) => presence.get(d));
  // Killed after the file said `sent` for all three; resumed long past the job time limit.
  state = rolloutStateSchema.parse(JSON.parse(JSON.stringify(r.state)));
  r = step(state, { kind: "resume", nowMs: 5000 }, (d) => presence.get(d));
  const repeats = r.actions.filter((a): a is Extract<RolloutAction, { kind: "send-job" }> => a.kind === "send-job");
  assert.deepEqual(
    repeats.map((a) => [a.deviceId, a.jobId, a.repeat, a.expiresAtMs]),
    [
      ["box-1", ids.get("box-1"), true, 6000],
      ["box-2", ids.get("box-2"), true, 6000],
    ],
  );
  assert.equal(r.state.boxes["box-1"]!.state, "sent", "its time limit starts again: no false failure");
  assert.equal(r.state.boxes["box-1"]!.sentAtMs, 5000);
  r = step(r.state, { kind: "job-status", deviceId: "box-1", jobId: ids.get("box-1")!, status: "succeeded", nowMs: 5500 }, (d) => presence.get(d));
  r = step(r.state, { kind: "tick", nowMs: 5999 }, (d) => presence.get(d));
  assert.equal(r.state.boxes["box-2"]!.state, "sent");
  r = step(r.state, { kind: "tick", nowMs: 6000 }, (d) => presence.get(d));
  assert.equal(r.state.boxes["box-2"]!.state, "failed", "a box that never answers still times out");
  assert.equal(r.actions.filter((a) => a.kind === "send-job").length, 0, "a tick never repeats a job");

  // Presence settles a box before the resume would repeat its job.
  presence.set("box-2", { state: "online", version: "2.0.0", boot: 2, tsMs: 0 });
  const settled = step(state, { kind: "resume", nowMs: 5000 }, (d) => presence.get(d));
  assert.equal(settled.state.boxes["box-2"]!.state, "succeeded");
  assert.deepEqual(
    settled.actions.flatMap((a) => (a.kind === "send-job" ? [a.deviceId] : [])),
    ["box-1"],
  );

  // A halting rollout sends nothing, not even a repeat.
  const halting: RolloutState = { ...structuredClone(state), phase: "halting", haltReason: "test" };
  const quiet = step(halting, { kind: "resume", nowMs: 5000 }, () => online());
  assert.equal(quiet.actions.filter((a) => a.kind === "send-job").length, 0);
});

type Op =
  | { op: "status"; box: number; status: "running" | "succeeded" | "failed" | "rolled-back" | "rejected" }
  | { op: "presence"; box: number; state: "online" | "lost"; version: "1.0.0" | "2.0.0"; bootUp: boolean }
  | { op: "tick"; advanceMs: number }
  | { op: "crash" };

const opArb = (n: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({
      op: fc.constant("status" as const),
      box: fc.integer({ min: 0, max: n - 1 }),
      status: fc.constantFrom("running" as const, "succeeded" as const, "failed" as const, "rolled-back" as const, "rejected" as const),
    }),
    fc.record({
      op: fc.constant("presence" as const),
      box: fc.integer({ min: 0, max: n - 1 }),
      state: fc.constantFrom("online" as const, "lost" as const),
      version: fc.constantFrom("1.0.0" as const, "2.0.0" as const),
      bootUp: fc.boolean(),
    }),
    fc.record({ op: fc.constant("tick" as const), advanceMs: fc.integer({ min: 0, max: 700 }) }),
    fc.constant({ op: "crash" as const }),
  );

test("invariants over random event orders, with crashes and resumes from the state file", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 25 }),
      fc.constantFrom("1,10%,50%,100%", "2,100%", "100%", "1,2,3"),
      fc.constantFrom("0", "1", "20%"),
      fc.infiniteStream(fc.boolean()),
      fc.integer({ min: 0, max: 10_000 }),
      (n, waves, maxFailed, onlineBits, seed) => {
        const ops = fc.sample(fc.array(opArb(n), { maxLength: 120 }), { numRuns: 1, seed })[0]!;
        let state = plan(n, waves, maxFailed);
        const presence = new Map<string, Presence>();
        const bits = onlineBits[Symbol.iterator]();
        state.targets.forEach((d) => presence.set(d, bits.next().value ? online("1.0.0", 1) : { ...online("1.0.0", 1), state: "lost" }));
        const sent = new Map<string, number>();
        let now = 0;
        const apply = (event: RolloutEvent): void => {
          const before = state;
          const r = step(state, event, (d) => presence.get(d));
          const sends = r.actions.filter((a): a is Extract<RolloutAction, { kind: "send-job" }> => a.kind === "send-job");
          for (const s of sends) {
            if (s.repeat) {
              // After a resume: the job the file records, again; never a new one.
              assert.equal(before.boxes[s.deviceId]!.state, "sent", `${s.deviceId} repeated without an open job`);
              assert.equal(s.jobId, before.boxes[s.deviceId]!.jobId, `${s.deviceId} repeated under another id`);
              assert.equal(event.kind, "resume", "only a resume repeats a job");
            } else {
              sent.set(s.deviceId, (sent.get(s.deviceId) ?? 0) + 1);
              assert.equal(sent.get(s.deviceId), 1, `${s.deviceId} got a second job`);
            }
            assert.equal(r.state.boxes[s.deviceId]!.state, "sent", "a job is recorded as sent in the state the runner persists first");
            assert.ok(waveMembers(r.state, r.state.wave).includes(s.deviceId), "only members of the current wave get jobs");
          }
          if (sends.length > 0) assert.ok(failures(before) <= before.maxFailed, "no job once the threshold is exceeded");
          const waveSize = waveMembers(r.state, r.state.wave).length;
          assert.ok(inFlight(r.state) <= waveSize, `in flight ${inFlight(r.state)} > wave ${waveSize}`);
          if (failures(r.state) > r.state.maxFailed) assert.ok(["halting", "halted"].includes(r.state.phase), "over the threshold the rollout halts");
          if (r.state.phase === "done") assert.ok(failures(r.state) <= r.state.maxFailed);
          state = r.state;
        };
        apply({ kind: "tick", nowMs: now });
        for (const op of ops) {
          if (op.op === "crash") {
            // The console dies; a new one reads the file back.
            state = rolloutStateSchema.parse(JSON.parse(JSON.stringify(state)));
            apply({ kind: "resume", nowMs: now });
          } else if (op.op === "tick") {
            now += op.advanceMs;
            apply({ kind: "tick", nowMs: now });
          } else if (op.op === "status") {
            const d = `box-${op.box}`;
            apply({ kind: "job-status", deviceId: d, jobId: state.boxes[d]!.jobId ?? `${state.id}-${op.box}`, status: op.status, nowMs: now });
          } else {
            const d = `box-${op.box}`;
            const old = presence.get(d)!;
            const p: Presence = { state: op.state, version: op.version, boot: old.boot + (op.bootUp ? 1 : 0), tsMs: now };
            presence.set(d, p);
            apply({ kind: "presence", deviceId: d, presence: p, nowMs: now });
          }
        }
      },
    ),
    { numRuns: runs },
  );
});
