/**
 * Safety properties of the lane core, each over 10,000 random input sequences (fast-check,
 * fixed seed; on failure fast-check prints the seed and the shrunk counterexample, and
 * LANEKEEPER_FC_SEED=<seed> replays it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LaneHarness, T0, laneSettings } from "./lane-harness.js";
import type { LaneSettings } from "../../../src/core/lane/lane.js";
import type { RequestDecisionEffect } from "../../../src/core/lane/lane-machine.js";
import { defaultLoopSettings, initLoop, stepLoop, type LoopEffect, type LoopSettings, type LoopState } from "../../../src/core/loops/loop-filter.js";

const seed = Number(process.env.LANEKEEPER_FC_SEED ?? 20_240_115);
const numRuns = 10_000;
const params = { seed, numRuns };

// ---- random lane traffic ----

type Op =
  | { op: "edge"; input: "loopA" | "loopB" | "barrierOpened" | "barrierClosed" | "manualOpen" | "cashConfirm"; level: 0 | 1; dtMs: number }
  | { op: "plate"; plate: string; dtMs: number }
  | { op: "decision"; pick: number; verdict: "allow" | "deny" | "await"; dtMs: number }
  | { op: "settle"; pick: number; dtMs: number }
  | { op: "cancel"; pick: number; dtMs: number }
  | { op: "open"; dtMs: number }
  | { op: "close"; dtMs: number }
  | { op: "wait"; dtMs: number }
  /** A whole vehicle: arrives, is read, is decided, then drives through or backs out. */
  | { op: "car"; plate: string; verdict: "allow" | "deny" | "await"; settle: boolean; backOut: boolean; gapMs: number; dtMs: number };

const dt = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 400 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 6000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 40_000 }) },
);
const plates = ["粤B12345", "粤B1234D", "京A00001", "粤B 12345", "_无_", "鄂B12345"];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("edge" as const),
      input: fc.constantFrom("loopA" as const, "loopB" as const),
      level: fc.constantFrom(0 as const, 1 as const),
      dtMs: dt,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("edge" as const),
      input: fc.constantFrom("barrierOpened" as const, "barrierClosed" as const, "manualOpen" as const, "cashConfirm" as const),
      level: fc.constantFrom(0 as const, 1 as const),
      dtMs: dt,
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("plate" as const), plate: fc.constantFrom(...plates), dtMs: dt }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("decision" as const), pick: fc.nat(2), verdict: fc.constantFrom("allow" as const, "deny" as const, "await" as const), dtMs: dt }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("settle" as const), pick: fc.nat(2), dtMs: dt }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("cancel" as const), pick: fc.nat(4), dtMs: dt }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("open" as const), dtMs: dt }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("close" as const), dtMs: dt }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("wait" as const), dtMs: dt }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("car" as const),
      plate: fc.constantFrom(...plates),
      verdict: fc.constantFrom("allow" as const, "allow" as const, "deny" as const, "await" as const),
      settle: fc.boolean(),
      backOut: fc.boolean(),
      gapMs: fc.integer({ min: 0, max: 4000 }),
      dtMs: dt,
    }),
  },
);

const settingsArb: fc.Arbitrary<LaneSettings> = fc
  .record({
    direction: fc.constantFrom("in" as const, "out" as const),
    detectorType: fc.constantFrom("presence" as const, "pulse" as const),
    pulseMeaning: fc.constantFrom("arrival-and-departure" as const, "arrival-only" as const),
    limits: fc.constantFrom(false, true),
    relayPulseMs: fc.constantFrom(300, 500, 1000),
    stuckOnLimitMs: fc.constantFrom(60_000, 600_000),
  })
  .map((r) =>
    laneSettings({
      direction: r.direction,
      detector: { ...defaultLoopSettings, type: r.detectorType, pulseMeaning: r.pulseMeaning, stuckOnLimitMs: r.stuckOnLimitMs },
      barrier: { relayPulseMs: r.relayPulseMs, travelTimeMs: 3000, travelTimeoutMs: 8000, recloseMs: 30_000, limitSwitches: { opened: r.limits, closed: r.limits } },
    }),
  );

const scenarioArb = fc.record({ settings: settingsArb, ops: fc.array(opArb, { minLength: 1, maxLength: 40 }) });

function play(settings: LaneSettings, ops: readonly Op[]): LaneHarness {
  const h = new LaneHarness(settings, T0);
  const requested = (): string[] => h.effects.filter((e): e is RequestDecisionEffect => e.kind === "requestDecision").map((e) => e.txId);
  const txAt = (pick: number): string => {
    const ids = requested();
    // Mostly the latest transaction (the one a policy would answer), sometimes older or unknown ones.
    return pick < ids.length ? ids[ids.length - 1 - pick]! : `in1-unknown-${pick}`;
  };
  const step = (ms: number) => h.advance(ms);
  for (const o of ops) {
    const atMs = h.nowMs + o.dtMs;
    switch (o.op) {
      case "edge":
        h.send({ kind: "gpio", input: o.input, level: o.level, atMs });
        break;
      case "plate":
        h.send({ kind: "plate", plate: o.plate, atMs, source: "cam" });
        break;
      case "decision":
        h.send({ kind: "decision", txId: txAt(o.pick), decision: { verdict: o.verdict, reason: `policy-${o.verdict}` }, atMs });
        break;
      case "settle":
        h.send({ kind: "settle", txId: txAt(o.pick), reason: "cash", atMs });
        break;
      case "cancel":
        h.send({ kind: "cancel", txId: txAt(o.pick), atMs });
        break;
      case "open":
        h.send({ kind: "open", reason: "attendant", atMs });
        break;
      case "close":
        h.send({ kind: "close", reason: "attendant", atMs });
        break;
      case "wait":
        h.advance(o.dtMs);
        break;
      case "car": {
        step(o.dtMs);
        h.edge("loopA", 1);
        step(300);
        h.send({ kind: "plate", plate: o.plate, atMs: h.nowMs, source: "cam" });
        step(50);
        const txId = txAt(0);
        h.send({ kind: "decision", txId, decision: { verdict: o.verdict, reason: `policy-${o.verdict}` }, atMs: h.nowMs });
        if (o.settle) h.send({ kind: "settle", txId, reason: "platformPayment", atMs: h.nowMs + 200 });
        step(o.gapMs);
        if (o.backOut) {
          h.edge("loopA", 0);
          break;
        }
        h.edge("loopB", 1);
        step(600);
        h.edge("loopA", 0);
        step(o.gapMs % 1500);
        h.edge("loopB", 0);
        break;
      }
    }
  }
  return h;
}

test("property: no close command while loopB is occupied", () => {
  fc.assert(
    fc.property(scenarioArb, ({ settings, ops }) => {
      const h = play(settings, ops);
      h.drain();
      assert.deepEqual(
        h.problems.filter((p) => p.startsWith("close pulse")),
        [],
      );
      // The barrier's view of the loop is the lane's.
      assert.equal(h.state.barrier.loopB, h.state.loopB.occupied);
    }),
    params,
  );
});

test("property: every open effect carries a reason", () => {
  fc.assert(
    fc.property(scenarioArb, ({ settings, ops }) => {
      const h = play(settings, ops);
      h.drain();
      for (const e of h.effects) {
        if (e.kind === "pulse" && e.output === "relayOpen") assert.ok(typeof e.reason === "string" && e.reason.length > 0, "relayOpen pulse without reason");
        if (e.kind === "event" && (e.type === "barrierOpening" || e.type === "barrierReopened")) assert.ok(e.reason, `${e.type} without reason`);
      }
    }),
    params,
  );
});

test("property: outputs are never left on past their pulse width, and never overlap", () => {
  fc.assert(
    fc.property(scenarioArb, ({ settings, ops }) => {
      const h = play(settings, ops);
      h.drain();
      for (const output of ["relayOpen", "relayClose", "relayStop"] as const) {
        assert.equal(h.outputOn(output), false, `${output} still on`);
        assert.ok((h.maxOnMs.get(output) ?? 0) <= settings.barrier.relayPulseMs, `${output} on for ${h.maxOnMs.get(output)} ms`);
      }
      assert.deepEqual(
        h.problems.filter((p) => p.includes("on together")),
        [],
      );
    }),
    params,
  );
});

test("property: chatter shorter than minOnMs yields no event", () => {
  const loopSettingsArb: fc.Arbitrary<LoopSettings> = fc
    .record({
      type: fc.constantFrom("presence" as const, "pulse" as const),
      pulseMeaning: fc.constantFrom("arrival-and-departure" as const, "arrival-only" as const),
      minOnMs: fc.integer({ min: 20, max: 500 }),
      minOffMs: fc.integer({ min: 20, max: 500 }),
    })
    .map((r) => ({ ...defaultLoopSettings, ...r }));
  const chatterArb = loopSettingsArb.chain((settings) =>
    fc.record({
      settings: fc.constant(settings),
      // Each high stretch is shorter than minOnMs; the gaps between are anything.
      stretches: fc.array(fc.record({ onMs: fc.integer({ min: 0, max: settings.minOnMs - 1 }), offMs: fc.integer({ min: 0, max: 5000 }) }), { minLength: 1, maxLength: 60 }),
    }),
  );
  fc.assert(
    fc.property(chatterArb, ({ settings, stretches }) => {
      let state: LoopState = initLoop("loopA");
      const timers = new Map<string, number>();
      const seen: LoopEffect[] = [];
      let now = T0;
      const feed = (input: Parameters<typeof stepLoop>[1]) => {
        const r = stepLoop(state, input, settings);
        state = r.state;
        for (const e of r.effects) {
          if (e.kind === "startTimer") timers.set(e.id, input.atMs + e.ms);
          else if (e.kind === "cancelTimer") timers.delete(e.id);
          else seen.push(e);
        }
      };
      const runTimers = (until: number) => {
        for (;;) {
          const due = [...timers].filter(([, t]) => t <= until).sort((a, b) => a[1] - b[1])[0];
          if (!due) return;
          timers.delete(due[0]);
          feed({ kind: "timer", id: due[0], atMs: due[1] });
        }
      };
      for (const { onMs, offMs } of stretches) {
        runTimers(now);
        feed({ kind: "edge", level: 1, atMs: now });
        runTimers(now + onMs);
        now += onMs;
        feed({ kind: "edge", level: 0, atMs: now });
        runTimers(now + offMs);
        now += offMs;
      }
      runTimers(now + 3_600_000);
      assert.deepEqual(seen, []);
      assert.equal(state.occupied, false);
    }),
    params,
  );
});

test("property: the lane returns to idle after the last vehicle leaves", () => {
  // Presence and arrival-only pulse detectors say when the lane is empty by themselves (a
  // toggling pulse detector that missed a pulse cannot, by its nature). No limit switches:
  // with them, random switch edges may rightly leave the barrier in fault.
  const idleSettingsArb = settingsArb.map((s) => ({
    ...s,
    detector: { ...s.detector, pulseMeaning: "arrival-only" as const },
    barrier: { ...s.barrier, limitSwitches: { opened: false, closed: false } },
  }));
  fc.assert(
    fc.property(fc.record({ settings: idleSettingsArb, ops: fc.array(opArb, { minLength: 1, maxLength: 40 }) }), ({ settings, ops }) => {
      const h = play(settings, ops);
      // Everybody leaves: both detectors drop, buttons released, then time passes.
      h.edge("loopA", 0, h.nowMs + 1);
      h.edge("loopB", 0, h.nowMs + 1);
      h.edge("manualOpen", 0, h.nowMs + 1);
      h.drain();
      assert.deepEqual(
        h.state.logic.txs.map((t) => `${t.txId}:${t.phase}`),
        [],
      );
      assert.equal(h.state.loopA.occupied, false);
      assert.equal(h.state.loopB.occupied, false);
      assert.equal(h.state.barrier.position, "closed");
      assert.equal(h.timers.size, 0, "no timer left running");
    }),
    params,
  );
});

test("property: no transaction is ever decided twice", () => {
  fc.assert(
    fc.property(scenarioArb, ({ settings, ops }) => {
      const h = play(settings, ops);
      h.drain();
      for (const [txId, count] of h.decisionsRequested) assert.equal(count, 1, `${txId} asked for a decision ${count} times`);
      const decided = new Map<string, number>();
      const settled = new Map<string, number>();
      const ended = new Map<string, number>();
      for (const e of h.events()) {
        if (!e.txId) continue;
        if (e.type === "decided") decided.set(e.txId, (decided.get(e.txId) ?? 0) + 1);
        if (e.type === "settled") settled.set(e.txId, (settled.get(e.txId) ?? 0) + 1);
        if (["passed", "backedOut", "tailgated", "cancelled", "expired"].includes(e.type)) ended.set(e.txId, (ended.get(e.txId) ?? 0) + 1);
      }
      for (const [txId, count] of decided) assert.equal(count, 1, `${txId} decided ${count} times`);
      for (const [txId, count] of settled) assert.equal(count, 1, `${txId} settled ${count} times`);
      for (const [txId, count] of ended) assert.equal(count, 1, `${txId} ended ${count} times`);
    }),
    params,
  );
});
