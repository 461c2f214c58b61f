/**
 * The lane transaction machine, table-driven over (phase × input), including the rows that
 * must not move, then scenario tests through the composed lane (loop filters + barrier).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  initLaneLogic,
  stepLaneLogic,
  type LaneLogicEffect,
  type LaneLogicInput,
  type LaneLogicSettings,
  type LaneLogicState,
  type TxPhase,
} from "../../../src/core/lane/lane-machine.js";
import { LaneHarness, T0, laneSettings } from "./lane-harness.js";
import type { RequestDecisionEffect } from "../../../src/core/lane/lane-machine.js";

const settings: LaneLogicSettings = { laneId: "out1", direction: "out", plateWindowMs: 5000, dedupeWindowMs: 30_000, backoutGraceMs: 5000, recloseMs: 30_000 };
const P = "粤B12345";
const Q = "粤A99999";

type Op = "A on" | "A off" | "B on" | "B off" | "plate P" | "plate Q" | "allow X" | "deny X" | "await X" | "settle X" | "cancel X" | "open" | "close" | "timer X" | "stale timer";

/** The barrier as lane.ts would show it: up while a passage is owed. */
function view(state: LaneLogicState) {
  return { position: state.txs.some((t) => t.phase === "allowed" || t.phase === "leftA" || t.phase === "passing") ? ("open" as const) : ("closed" as const) };
}

function input(state: LaneLogicState, op: Op, atMs: number): LaneLogicInput {
  const x = state.txs[0]?.txId ?? "out1-none-0";
  switch (op) {
    case "A on":
      return { kind: "presence", loop: "A", occupied: true, atMs };
    case "A off":
      return { kind: "presence", loop: "A", occupied: false, atMs };
    case "B on":
      return { kind: "presence", loop: "B", occupied: true, atMs };
    case "B off":
      return { kind: "presence", loop: "B", occupied: false, atMs };
    case "plate P":
      return { kind: "plate", plate: P, atMs, source: "camera" };
    case "plate Q":
      return { kind: "plate", plate: Q, atMs, source: "camera" };
    case "allow X":
      return { kind: "decision", txId: x, decision: { verdict: "allow", reason: "paid" }, atMs };
    case "deny X":
      return { kind: "decision", txId: x, decision: { verdict: "deny", reason: "blacklist" }, atMs };
    case "await X":
      return { kind: "decision", txId: x, decision: { verdict: "await", reason: "feeDue", feeFen: 500 }, atMs };
    case "settle X":
      return { kind: "settle", txId: x, reason: "cash", atMs };
    case "cancel X":
      return { kind: "cancel", txId: x, atMs, operator: "op1" };
    case "open":
      return { kind: "open", reason: "manual", atMs, operator: "op1" };
    case "close":
      return { kind: "close", reason: "manual", atMs, operator: "op1" };
    case "timer X":
      return { kind: "timer", id: state.txs[0]?.timer ?? "lane/none/0", atMs };
    case "stale timer":
      return { kind: "timer", id: "lane/plate/999", atMs };
  }
}

function run(ops: Op[]): { state: LaneLogicState; effects: LaneLogicEffect[] } {
  let state = initLaneLogic();
  let effects: LaneLogicEffect[] = [];
  ops.forEach((op, i) => {
    const r = stepLaneLogic(state, input(state, op, T0 + i * 1000), settings, view(state));
    state = r.state;
    effects = r.effects;
  });
  return { state, effects };
}

const phases: Record<string, Op[]> = {
  idle: [],
  plateOnly: ["plate P"],
  waiting: ["A on"],
  deciding: ["A on", "plate P"],
  denied: ["A on", "plate P", "deny X"],
  awaitingPayment: ["A on", "plate P", "await X"],
  allowed: ["A on", "plate P", "allow X"],
  leftA: ["A on", "plate P", "allow X", "A off"],
  passing: ["A on", "plate P", "allow X", "B on"],
  "passing, off A": ["A on", "plate P", "allow X", "B on", "A off"],
};

interface Row {
  from: keyof typeof phases;
  op: Op;
  /** X's phase afterwards, or "gone". Undefined for idle. */
  x?: TxPhase | "gone";
  events: string[];
  barrier?: string[];
  requests?: number;
  txs?: number;
}

const rows: Row[] = [
  // idle
  { from: "idle", op: "A on", events: ["vehicleArrived"], txs: 1 },
  { from: "idle", op: "A off", events: [], txs: 0 },
  { from: "idle", op: "B on", events: ["unexpectedVehicle"], txs: 0 },
  { from: "idle", op: "B off", events: [], txs: 0 },
  { from: "idle", op: "plate P", events: ["plateRead"], txs: 1, requests: 0 },
  { from: "idle", op: "allow X", events: ["decisionIgnored"], txs: 0 },
  { from: "idle", op: "settle X", events: ["settleIgnored"], txs: 0 },
  { from: "idle", op: "cancel X", events: ["cancelIgnored"], txs: 0 },
  { from: "idle", op: "open", events: ["manualOpen"], barrier: ["open"], txs: 1 },
  { from: "idle", op: "close", events: ["manualClose"], barrier: ["close"], txs: 0 },
  { from: "idle", op: "stale timer", events: [], txs: 0 },
  // plateOnly
  { from: "plateOnly", op: "A on", x: "deciding", events: ["vehicleArrived"], requests: 1 },
  { from: "plateOnly", op: "A off", x: "plateOnly", events: [] },
  { from: "plateOnly", op: "B on", x: "plateOnly", events: ["unexpectedVehicle"] },
  { from: "plateOnly", op: "plate P", x: "plateOnly", events: ["duplicateRead"] },
  { from: "plateOnly", op: "plate Q", x: "gone", events: ["expired", "plateRead"], txs: 1 },
  { from: "plateOnly", op: "allow X", x: "plateOnly", events: ["decisionIgnored"], barrier: [] },
  { from: "plateOnly", op: "settle X", x: "plateOnly", events: ["settleIgnored"] },
  { from: "plateOnly", op: "cancel X", x: "gone", events: ["cancelled"] },
  { from: "plateOnly", op: "open", x: "plateOnly", events: ["manualOpen"], barrier: ["open"], txs: 2 },
  { from: "plateOnly", op: "timer X", x: "gone", events: ["expired"] },
  { from: "plateOnly", op: "stale timer", x: "plateOnly", events: [] },
  // waiting
  { from: "waiting", op: "A on", x: "waiting", events: [] },
  { from: "waiting", op: "A off", x: "gone", events: ["backedOut"] },
  { from: "waiting", op: "B on", x: "waiting", events: ["unexpectedVehicle"] },
  { from: "waiting", op: "B off", x: "waiting", events: [] },
  { from: "waiting", op: "plate P", x: "deciding", events: ["plateRead"], requests: 1 },
  { from: "waiting", op: "allow X", x: "waiting", events: ["decisionIgnored"], barrier: [] },
  { from: "waiting", op: "settle X", x: "waiting", events: ["settleIgnored"] },
  { from: "waiting", op: "cancel X", x: "gone", events: ["cancelled"], barrier: [] },
  { from: "waiting", op: "open", x: "allowed", events: ["manualOpen"], barrier: ["open"] },
  { from: "waiting", op: "close", x: "waiting", events: ["manualClose"], barrier: ["close"] },
  { from: "waiting", op: "timer X", x: "waiting", events: ["plateTimeout"] },
  { from: "waiting", op: "stale timer", x: "waiting", events: [] },
  // deciding
  { from: "deciding", op: "A on", x: "deciding", events: [] },
  { from: "deciding", op: "A off", x: "gone", events: ["backedOut"] },
  { from: "deciding", op: "B on", x: "deciding", events: ["unexpectedVehicle"] },
  { from: "deciding", op: "plate P", x: "deciding", events: ["duplicateRead"], requests: 0 },
  { from: "deciding", op: "plate Q", x: "deciding", events: ["plateRead"], requests: 0, txs: 2 },
  { from: "deciding", op: "allow X", x: "allowed", events: ["decided"], barrier: ["open"] },
  { from: "deciding", op: "deny X", x: "denied", events: ["decided"], barrier: [] },
  { from: "deciding", op: "await X", x: "awaitingPayment", events: ["decided"], barrier: [] },
  { from: "deciding", op: "settle X", x: "deciding", events: ["settleIgnored"] },
  { from: "deciding", op: "cancel X", x: "gone", events: ["cancelled"], barrier: [] },
  { from: "deciding", op: "open", x: "allowed", events: ["manualOpen"], barrier: ["open"] },
  { from: "deciding", op: "stale timer", x: "deciding", events: [] },
  // denied
  { from: "denied", op: "A off", x: "gone", events: ["backedOut"] },
  { from: "denied", op: "allow X", x: "denied", events: ["decisionIgnored"], barrier: [] },
  { from: "denied", op: "settle X", x: "denied", events: ["settleIgnored"], barrier: [] },
  { from: "denied", op: "B on", x: "denied", events: ["unexpectedVehicle"] },
  { from: "denied", op: "open", x: "allowed", events: ["manualOpen"], barrier: ["open"] },
  { from: "denied", op: "cancel X", x: "gone", events: ["cancelled"], barrier: [] },
  // awaitingPayment
  { from: "awaitingPayment", op: "settle X", x: "allowed", events: ["settled"], barrier: ["open"] },
  { from: "awaitingPayment", op: "allow X", x: "awaitingPayment", events: ["decisionIgnored"], barrier: [] },
  { from: "awaitingPayment", op: "A off", x: "gone", events: ["backedOut"] },
  { from: "awaitingPayment", op: "open", x: "allowed", events: ["manualOpen"], barrier: ["open"] },
  { from: "awaitingPayment", op: "cancel X", x: "gone", events: ["cancelled"], barrier: [] },
  { from: "awaitingPayment", op: "stale timer", x: "awaitingPayment", events: [] },
  // allowed
  { from: "allowed", op: "A off", x: "leftA", events: [] },
  { from: "allowed", op: "B on", x: "passing", events: ["passageStarted"] },
  { from: "allowed", op: "plate P", x: "allowed", events: ["duplicateRead"] },
  { from: "allowed", op: "allow X", x: "allowed", events: ["decisionIgnored"], barrier: [] },
  { from: "allowed", op: "settle X", x: "allowed", events: ["settleIgnored"], barrier: [] },
  { from: "allowed", op: "cancel X", x: "gone", events: ["cancelled"], barrier: ["withdraw"] },
  { from: "allowed", op: "open", x: "allowed", events: ["manualOpen"], barrier: [] },
  { from: "allowed", op: "stale timer", x: "allowed", events: [] },
  // leftA
  { from: "leftA", op: "A on", x: "leftA", events: ["vehicleArrived"], txs: 2 },
  { from: "leftA", op: "B on", x: "passing", events: ["passageStarted"] },
  { from: "leftA", op: "timer X", x: "gone", events: ["backedOut"], barrier: ["withdraw"] },
  { from: "leftA", op: "cancel X", x: "gone", events: ["cancelled"], barrier: ["withdraw"] },
  { from: "leftA", op: "allow X", x: "leftA", events: ["decisionIgnored"], barrier: [] },
  { from: "leftA", op: "stale timer", x: "leftA", events: [] },
  // passing
  { from: "passing", op: "A off", x: "passing", events: [] },
  { from: "passing", op: "B off", x: "allowed", events: [] },
  { from: "passing", op: "cancel X", x: "passing", events: ["cancelIgnored"], barrier: [] },
  { from: "passing", op: "allow X", x: "passing", events: ["decisionIgnored"] },
  { from: "passing", op: "B on", x: "passing", events: [] },
  { from: "passing, off A", op: "B off", x: "gone", events: ["passed"], barrier: [] },
  { from: "passing, off A", op: "A on", x: "passing", events: ["vehicleArrived"], txs: 2 },
];

for (const row of rows) {
  test(`lane: ${row.from} + ${row.op} → ${row.x ?? "-"} [${row.events.join(", ") || "no events"}]`, () => {
    const { state: before } = run(phases[row.from]!);
    const xId = before.txs[0]?.txId;
    const r = stepLaneLogic(before, input(before, row.op, T0 + 100_000), settings, view(before));
    const events = r.effects.filter((e) => e.kind === "event").map((e) => (e.kind === "event" ? e.type : ""));
    assert.deepEqual(events, row.events);
    if (row.barrier)
      assert.deepEqual(
        r.effects.flatMap((e) => (e.kind === "barrier" ? [e.command.kind] : [])),
        row.barrier,
      );
    if (row.requests !== undefined) assert.equal(r.effects.filter((e) => e.kind === "requestDecision").length, row.requests);
    if (row.x !== undefined) {
      const x = r.state.txs.find((t) => t.txId === xId);
      assert.equal(x ? x.phase : "gone", row.x);
    }
    if (row.txs !== undefined) assert.equal(r.state.txs.length, row.txs);
  });
}

test("every barrier open from the lane machine carries the decision's reason", () => {
  const { effects } = run(["A on", "plate P", "allow X"]);
  const open = effects.find((e) => e.kind === "barrier");
  assert.deepEqual(open && open.kind === "barrier" ? open.command : undefined, { kind: "open", reason: "paid", txId: run(["A on"]).state.txs[0]!.txId });
});

test("a decision is accepted once; the second one is ignored and changes nothing", () => {
  const { state } = run(["A on", "plate P", "allow X"]);
  const again = stepLaneLogic(state, { kind: "decision", txId: state.txs[0]!.txId, decision: { verdict: "deny", reason: "late" }, atMs: T0 + 9000 }, settings, {
    position: "open",
  });
  assert.equal(again.state, state);
  assert.deepEqual(
    again.effects.map((e) => (e.kind === "event" ? `${e.type}:${e.why}` : e.kind)),
    ["decisionIgnored:alreadyDecided"],
  );
});

test("a decision without a reason is refused and the transaction keeps waiting for a proper one", () => {
  const { state } = run(["A on", "plate P"]);
  const txId = state.txs[0]!.txId;
  const bad = stepLaneLogic(state, { kind: "decision", txId, decision: { verdict: "allow", reason: "" }, atMs: T0 + 5000 }, settings, { position: "closed" });
  assert.equal(bad.state, state);
  assert.equal(bad.effects[0]?.kind === "event" ? bad.effects[0].why : "", "badDecision");
  const good = stepLaneLogic(bad.state, { kind: "decision", txId, decision: { verdict: "allow", reason: "monthly" }, atMs: T0 + 6000 }, settings, { position: "closed" });
  assert.equal(good.state.txs[0]!.phase, "allowed");
});

test("requestDecision carries lane, direction, normalised and raw plate, colour and confidence", () => {
  let state = initLaneLogic();
  state = stepLaneLogic(state, { kind: "presence", loop: "A", occupied: true, atMs: T0 }, settings, { position: "closed" }).state;
  const r = stepLaneLogic(state, { kind: "plate", plate: "粤ｂ·1234５", color: "blue", confidence: 0.93, atMs: T0 + 200, source: "cam-out1" }, settings, { position: "closed" });
  const req = r.effects.find((e): e is RequestDecisionEffect => e.kind === "requestDecision");
  assert.deepEqual(req, {
    kind: "requestDecision",
    txId: state.txs[0]!.txId,
    laneId: "out1",
    direction: "out",
    plate: "粤B12345",
    plateRaw: "粤ｂ·1234５",
    color: "blue",
    confidence: 0.93,
    source: "cam-out1",
    atMs: T0 + 200,
  });
});

test("plate reads that say 'no plate' are ignored", () => {
  for (const plate of ["_无_", "", "  ", "无牌"]) {
    const r = stepLaneLogic(initLaneLogic(), { kind: "plate", plate, atMs: T0, source: "cam" }, settings, { position: "closed" });
    assert.equal(r.state.txs.length, 0, plate);
    assert.equal(r.effects[0]?.kind === "event" ? r.effects[0].type : "", "plateIgnored");
  }
});

// ---- scenarios through the composed lane (loop filters and barrier included) ----

function decide(h: LaneHarness, verdict: "allow" | "deny" | "await", reason: string, atMs = h.nowMs) {
  const req = h.effects.filter((e): e is RequestDecisionEffect => e.kind === "requestDecision").at(-1);
  assert.ok(req, "a decision was requested");
  h.send({ kind: "decision", txId: req.txId, decision: { verdict, reason }, atMs });
  return req.txId;
}

test("entry: loop then plate within the window, allow, passage, close, idle", () => {
  const h = new LaneHarness();
  h.edge("loopA", 1, T0);
  h.advance(400);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  const txId = decide(h, "allow", "temporary");
  h.advance(3500);
  assert.equal(h.state.barrier.position, "open");
  h.edge("loopB", 1);
  h.advance(800);
  h.edge("loopA", 0);
  h.advance(1500);
  h.edge("loopB", 0);
  h.advance(4000);
  assert.deepEqual(
    h.events("passed").map((e) => e.txId),
    [txId],
  );
  assert.equal(h.state.barrier.position, "closed");
  assert.deepEqual(h.state.logic.txs, []);
  assert.deepEqual(h.problems, []);
});

test("plate before loop: a read 3 s before the car arrives is paired with it", () => {
  const h = new LaneHarness();
  h.send({ kind: "plate", plate: P, atMs: T0, source: "cam" });
  h.advance(3000);
  h.edge("loopA", 1);
  h.advance(200);
  assert.equal(h.decisionsRequested.size, 1);
  const req = h.effects.find((e): e is RequestDecisionEffect => e.kind === "requestDecision")!;
  assert.equal(req.plate, P);
});

test("plate before loop: a read older than plateWindowMs is dropped and the car waits for a new read", () => {
  const h = new LaneHarness();
  h.send({ kind: "plate", plate: P, atMs: T0, source: "cam" });
  h.advance(6000);
  assert.equal(h.events("expired").length, 1);
  h.edge("loopA", 1);
  h.advance(200);
  assert.equal(h.decisionsRequested.size, 0);
  h.advance(5000);
  assert.equal(h.events("plateTimeout").length, 1);
  // The camera re-reads the car: not a duplicate, since the expired read was never used.
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  assert.equal(h.decisionsRequested.size, 1);
});

test("dedupe: the same plate within dedupeWindowMs after a passage is ignored, after it is a new car", () => {
  const h = new LaneHarness();
  h.edge("loopA", 1, T0);
  h.advance(200);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  decide(h, "allow", "monthly");
  h.advance(3000);
  h.edge("loopB", 1);
  h.edge("loopA", 0, h.nowMs + 500);
  h.edge("loopB", 0, h.nowMs + 1500);
  h.advance(1000);
  h.send({ kind: "plate", plate: "粤B 12345", atMs: h.nowMs, source: "cam" });
  assert.equal(h.events("duplicateRead").length, 1);
  h.advance(30_000);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  assert.equal(h.events("duplicateRead").length, 1);
  assert.equal(h.events("plateRead").length, 2);
});

test("a car that backs out after being allowed cancels and the barrier closes", () => {
  const h = new LaneHarness();
  h.edge("loopA", 1, T0);
  h.advance(200);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  const txId = decide(h, "allow", "temporary");
  h.advance(3500);
  h.edge("loopA", 0);
  h.advance(5400);
  assert.deepEqual(
    h.events("backedOut").map((e) => e.txId),
    [txId],
  );
  const closing = h.events("barrierClosing").at(-1);
  assert.equal(closing?.reason, "backedOut");
  h.advance(4000);
  assert.equal(h.state.barrier.position, "closed");
});

test("a denied car that backs out ends the transaction with no barrier movement", () => {
  const h = new LaneHarness();
  h.edge("loopA", 1, T0);
  h.advance(200);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  decide(h, "deny", "blacklist");
  h.advance(2000);
  h.edge("loopA", 0);
  h.advance(1000);
  assert.equal(h.events("backedOut").length, 1);
  assert.equal(h.effects.filter((e) => e.kind === "pulse").length, 0);
});

test("exit: await payment, then settle opens with the settlement's reason", () => {
  const h = new LaneHarness(laneSettings({ laneId: "out1", direction: "out" }));
  h.edge("loopA", 1, T0);
  h.advance(200);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  const txId = decide(h, "await", "feeDue");
  assert.equal(h.effects.filter((e) => e.kind === "pulse").length, 0);
  h.advance(20_000);
  h.send({ kind: "settle", txId, reason: "platformPayment", atMs: h.nowMs });
  const pulse = h.effects.find((e) => e.kind === "pulse");
  assert.deepEqual(pulse, { kind: "pulse", output: "relayOpen", ms: 500, reason: "platformPayment" });
  h.send({ kind: "settle", txId, reason: "cash", atMs: h.nowMs + 100 });
  assert.equal(h.events("settleIgnored").length, 1, "a second settlement is ignored");
});

test("exit: the cashConfirm button names the awaiting transaction; it does not open by itself", () => {
  const h = new LaneHarness(laneSettings({ laneId: "out1", direction: "out" }));
  h.edge("loopA", 1, T0);
  h.advance(200);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  const txId = decide(h, "await", "feeDue");
  h.edge("cashConfirm", 1);
  h.edge("cashConfirm", 0, h.nowMs + 50);
  h.edge("cashConfirm", 1, h.nowMs + 100); // bounce within the lockout
  assert.deepEqual(
    h.events("cashConfirmPressed").map((e) => e.txId),
    [txId],
  );
  assert.equal(h.effects.filter((e) => e.kind === "pulse").length, 0);
});

test("tailgate: a second car onto loopB while the arm closes is reported and the arm re-opens", () => {
  const h = new LaneHarness();
  h.edge("loopA", 1, T0);
  h.advance(200);
  h.send({ kind: "plate", plate: P, atMs: h.nowMs, source: "cam" });
  const first = decide(h, "allow", "monthly");
  h.advance(3000);
  h.edge("loopB", 1);
  h.advance(500);
  h.edge("loopA", 0);
  h.advance(500);
  h.edge("loopA", 1); // the follower is right behind
  h.advance(1000);
  h.edge("loopB", 0);
  h.advance(400); // loopB clear confirmed: close starts
  assert.equal(h.state.barrier.position, "closing");
  h.edge("loopB", 1); // follower drives under the closing arm
  h.advance(200);
  const tailgate = h.events("tailgate");
  assert.equal(tailgate.length, 1);
  assert.equal(tailgate[0]!.precedingTxId, first);
  assert.equal(h.events("barrierReopened").at(-1)?.reason, "safety");
  h.edge("loopA", 0);
  h.advance(400);
  assert.equal(h.events("tailgated").length, 1, "the follower's transaction ends as tailgated");
  h.edge("loopB", 0);
  h.advance(10_000);
  assert.equal(h.state.barrier.position, "closed");
  assert.deepEqual(h.state.logic.txs, []);
  assert.deepEqual(h.problems, []);
});

test("manual open button: opens with reason manual and the passage is not a tailgate", () => {
  const h = new LaneHarness();
  h.edge("manualOpen", 1, T0);
  h.edge("manualOpen", 0, T0 + 100);
  assert.equal(h.effects.find((e) => e.kind === "pulse")?.kind === "pulse" ? "pulsed" : "", "pulsed");
  assert.equal(h.events("manualOpen")[0]?.reason, "manual");
  h.advance(3000);
  h.edge("loopB", 1);
  h.advance(1000);
  h.edge("loopB", 0);
  h.advance(5000);
  assert.equal(h.events("tailgate").length, 0);
  assert.equal(h.events("passed").length, 1);
  assert.equal(h.state.barrier.position, "closed");
});

test("detector stuck on loopB: fault reported, the arm never closes on it", () => {
  const h = new LaneHarness();
  h.send({ kind: "open", reason: "manual", atMs: T0 });
  h.advance(3000);
  h.edge("loopB", 1);
  h.advance(700_000);
  assert.equal(h.events("detectorFault").length, 1);
  assert.equal(h.state.barrier.position, "open");
  h.send({ kind: "close", reason: "attendant", atMs: h.nowMs });
  assert.equal(h.effects.filter((e) => e.kind === "pulse" && e.output === "relayClose").length, 0);
  assert.equal(h.events("closeDeferred").length >= 1, true);
});

test("unknown GPIO input names and bad levels are reported, not thrown", () => {
  const h = new LaneHarness();
  h.send({ kind: "gpio", input: "relayOpen" as "loopA", level: 1, atMs: T0 });
  h.send({ kind: "gpio", input: "loopA", level: 3 as 1, atMs: T0 });
  assert.equal(h.events("inputIgnored").length, 2);
  assert.equal(h.state.loopA.raw, 0);
});
