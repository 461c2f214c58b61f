import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { initSettlement, restoreSettlement, type SettlementEffect } from "../../../../src/core/settlement/settlement-machine.js";
import type { StoredSettlement } from "../../../../src/core/settlement/settlement.js";
import { SettlementDriver, T0, billed, settings } from "./settlement-driver.js";

/*
 * What the lanes' executor relies on from the settlement machine besides its properties: the
 * new bill's pending copy is marked as written beside its call, a failed write after the barrier
 * moved leaves the settlement standing, a notice kept while the bill was made settles once fed
 * again, and a car with no plate read is shown and reported under its stay's virtual plate.
 */

const kinds = (effects: readonly SettlementEffect[]) => effects.map((e) => (e.kind === "emit" ? `emit:${e.event.type}` : e.kind));
const notice = { payType: 2, amountFen: 700, orderNo: "n1", payTimeMs: T0 + 50 };

test("a fee due: the bill's pending copy is written beside its call; a scanned bill's copy is not (it is on disk before the call)", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  assert.deepEqual(
    d.of("writePending").map((w) => w.whileBillInFlight),
    [true],
  );
  const scan = d.feed({ kind: "scan", code: "134567890123456789", plateId: "p2", atMs: T0 + 100 });
  assert.deepEqual(kinds(scan), ["writePending", "emit:scan", "sendBill"]);
  assert.equal((scan[0] as Extract<SettlementEffect, { kind: "writePending" }>).whileBillInFlight, undefined);
});

test("writeFailed: cash not durable puts the car back to awaiting; after a hand open or the platform's 200 the settlement stands", () => {
  const cash = new SettlementDriver();
  cash.feed(billed(700));
  cash.feed({ kind: "answer", callId: cash.lastCall(), outcome: { kind: "unpaid", msg: "not paid" }, late: false, atMs: T0 + 100 });
  cash.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 200 });
  assert.equal(cash.state.phase, "settled");
  cash.feed({ kind: "writeFailed", atMs: T0 + 201 });
  assert.equal(cash.state.phase, "awaiting");
  assert.equal(cash.state.settlement, undefined);

  const hand = new SettlementDriver();
  hand.feed(billed(700));
  hand.feed({ kind: "manualOpened", operator: "amy", reason: "manual", atMs: T0 + 100 });
  hand.feed({ kind: "writeFailed", atMs: T0 + 101 });
  assert.equal(hand.state.phase, "settled", "the arm already moved: the hand release stands for the report");
  assert.equal(hand.state.settlement?.operator, "amy");

  const online = new SettlementDriver();
  online.feed(billed(700));
  online.feed({ kind: "answer", callId: online.lastCall(), outcome: { kind: "paid", payType: 1, orderNo: "o1", payTimeMs: T0 + 500 }, late: false, atMs: T0 + 600 });
  online.feed({ kind: "writeFailed", atMs: T0 + 601 });
  assert.equal(online.state.phase, "settled", "opened on the 200: asked again at the next start");
});

test("a notice kept while the bill was made settles the deciding exit once fed again; unmarked, it waits", () => {
  const d = new SettlementDriver();
  assert.deepEqual(kinds(d.feed({ kind: "notice", payment: notice, atMs: T0 + 10 })), []);
  assert.equal(d.state.phase, "deciding");
  assert.deepEqual(kinds(d.feed({ kind: "notice", payment: notice, atMs: T0 + 20, keptWhileDeciding: true })), ["writeSettlement", "open", "show", "emit:payment"]);
  assert.equal(d.state.settlement?.orderNo, "n1");
  assert.deepEqual(kinds(d.feed({ kind: "notice", payment: notice, atMs: T0 + 30, keptWhileDeciding: true })), ["emit:prepayment"], "settled once");
});

test("a car with no plate read released by the attendant: the board and the payment event name the virtual plate of its stay", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (atMs) => {
      const d = new SettlementDriver(initSettlement({ txId: "tx", plate: "", recordNo: undefined, atMs, attendant: true }));
      d.state = { ...d.state, phase: "awaiting" };
      const effects = d.feed({ kind: "release", operator: "amy", reason: "no plate", atMs: atMs + 1 });
      assert.deepEqual(kinds(effects), ["makeStay", "open", "show", "emit:payment"]);
      const made = (effects[0] as Extract<SettlementEffect, { kind: "makeStay" }>).plate;
      assert.match(made, /^无[0-9A-Z]{7}$/);
      const shown = effects[2] as Extract<SettlementEffect, { kind: "show" }>;
      assert.equal(shown.message.plate, made);
      assert.equal((effects[3] as Extract<SettlementEffect, { kind: "emit" }>).event.plate, made);
      assert.equal(d.state.plate, made);
    }),
    { numRuns: 200 },
  );
});

/** A stay settled in cash (what the machine wrote), held for its car. */
function heldCash(): StoredSettlement {
  const payer = new SettlementDriver();
  payer.feed(billed(700));
  payer.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 });
  return payer.disk.settlement!;
}
const held = heldCash();

test("a stay read again on a settlement it holds: opened on it with a payment event, nothing written, no bill; once", () => {
  const d = new SettlementDriver();
  const effects = d.feed({ kind: "heldSettlement", settlement: held, atMs: T0 + 60_000 });
  assert.deepEqual(kinds(effects), ["emit:settled-earlier", "open", "show", "emit:payment"]);
  const payment = effects[3] as Extract<SettlementEffect, { kind: "emit" }>;
  assert.deepEqual([payment.event.feeFen, payment.event.path, payment.event.reason, payment.event.operator], [700, "cash", "settled earlier", "amy"]);
  assert.equal(d.state.phase, "settled");
  assert.deepEqual(kinds(d.feed({ kind: "heldSettlement", settlement: held, atMs: T0 + 60_001 })), [], "once");
  assert.deepEqual(kinds(d.feed({ kind: "passed", atMs: T0 + 61_000 })), ["report"]);
  // A car that backed off before it was decided: the event only, nothing opened.
  const gone = new SettlementDriver({ ...initSettlement({ txId: "tx2", plate: "粤B12345", recordNo: "in1_1", atMs: T0 }), onLane: false });
  assert.deepEqual(kinds(gone.feed({ kind: "heldSettlement", settlement: held, atMs: T0 + 1 })), ["emit:settled-earlier"]);
});

test("superseded: a restored machine whose stay moved on stops its timer and does nothing more; a live exit ignores it", () => {
  const kept = restoreSettlement({ recordNo: "in1_1", plate: "粤B12345", pendingExit: undefined, settlement: held }, T0, settings);
  const d = new SettlementDriver(kept);
  const hold = [...d.timers.keys()][0]!;
  assert.deepEqual(kinds(d.feed({ kind: "superseded", atMs: T0 + 1 })), ["cancelTimer"]);
  assert.equal(d.state.phase, "closed");
  assert.deepEqual(kinds(d.fire(hold, T0 + settings.settledHoldMs)), [], "no report for a stay that moved on");
  const live = new SettlementDriver();
  live.feed(billed(700));
  assert.deepEqual(kinds(live.feed({ kind: "superseded", atMs: T0 + 2 })), []);
  assert.equal(live.state.phase, "awaiting");
});
