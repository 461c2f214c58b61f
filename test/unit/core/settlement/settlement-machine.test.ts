/**
 * The settlement machine, one payment path per test: the order of its effects is the write
 * order the lanes keep (a settlement only the box knows is durable before the open; the
 * platform's 200 opens first), and the rows that must not settle do not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { initSettlement, reaskDelayMs, type SettlementEffect } from "../../../../src/core/settlement/settlement-machine.js";
import { SettlementDriver, T0, billed, settings } from "./settlement-driver.js";
import { backoffCeilingMs } from "../../../../src/kernel/backoff.js";

const kinds = (effects: readonly SettlementEffect[]) => effects.map((e) => (e.kind === "emit" ? `emit:${e.event.type}` : e.kind));
const paid = (orderNo = "o1") => ({ kind: "paid" as const, payType: 1, orderNo, payTimeMs: T0 + 500 });

test("nothing due: written, then opened as free (or prepaid)", () => {
  const d = new SettlementDriver();
  assert.deepEqual(kinds(d.feed(billed(0))), ["writeSettlement", "open", "show", "emit:payment"]);
  assert.equal(d.state.settlement?.path, "free");
  const prepaid = new SettlementDriver();
  prepaid.feed(billed(0, { payableFen: 500, prepaidFen: 500 }));
  assert.equal(prepaid.state.settlement?.path, "prepaid");
});

test("platform 200 in time: the bill goes first, its pending copy follows; the 200 opens, then is written", () => {
  const d = new SettlementDriver();
  assert.deepEqual(kinds(d.feed(billed(700))), ["sendBill", "writePending", "show", "emit:fee-due", "decide"]);
  assert.deepEqual(d.disk.pending, { laneId: "out1", plateId: "p1", atMs: T0, payableFen: 700, discountFen: 0, dueFen: 700 });
  assert.deepEqual(kinds(d.feed({ kind: "answer", callId: d.lastCall(), outcome: paid(), late: false, atMs: T0 + 600 })), ["open", "show", "emit:payment", "writeSettlement"]);
  assert.equal(d.state.settlement?.path, "platform");
  assert.equal(d.state.settlement?.paidFen, 700);
  assert.equal(d.state.settlement?.orderNo, "o1");
  assert.deepEqual(kinds(d.feed({ kind: "passed", atMs: T0 + 5000 })), ["report"]);
  const report = d.of("report")[0]!.report;
  assert.equal(report.notBeforeMs, undefined);
  assert.equal(report.collectedFen, 700);
  assert.deepEqual(kinds(d.feed({ kind: "passed", atMs: T0 + 6000 })), [], "reported once");
});

test("platform refusing: cash at once, a re-ask later; the cash asks the platform once more first", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  const effects = d.feed({ kind: "answer", callId: d.lastCall(), outcome: { kind: "failed", reason: "refused" }, late: false, atMs: T0 + 10 });
  assert.deepEqual(kinds(effects), ["show", "emit:cash-fallback", "startTimer"]);
  assert.equal(d.state.path, "cash-fallback");
  const check = d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 100 });
  assert.deepEqual(kinds(check), ["emit:cash-check", "sendBill"]);
  const checkCall = check[1] as Extract<SettlementEffect, { kind: "sendBill" }>;
  assert.equal(checkCall.plateId, "p1");
  assert.equal(checkCall.deadlineMs, settings.cashCheckMs);
  assert.deepEqual(kinds(d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c2", atMs: T0 + 150 })), [], "one check at a time");
  const cash = d.feed({ kind: "answer", callId: checkCall.callId, outcome: { kind: "unpaid", msg: "not paid" }, late: false, atMs: T0 + 300 });
  assert.deepEqual(kinds(cash), ["writeSettlement", "open", "show", "emit:payment", "cancelTimer", "reply"]);
  assert.equal(d.state.settlement?.path, "cash");
  assert.equal(d.state.settlement?.orderNo, "c1");
});

test("timeout: re-asked with backoff on the same plateId; a late 200 while the car waits opens as paid online, then cash is refused", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  const first = d.lastCall();
  d.feed({ kind: "answer", callId: first, outcome: { kind: "failed", reason: "timeout" }, late: false, atMs: T0 + 3000 });
  const [reaskId, delay] = [...d.timers][0]!;
  assert.equal(delay, reaskDelayMs(1, settings.reaskFirstMs, settings.reaskMaxMs));
  assert.deepEqual(kinds(d.fire(reaskId, T0 + 5000)), ["emit:bill-reasked", "sendBill"]);
  assert.equal(d.of("sendBill")[1]!.plateId, "p1");
  d.feed({ kind: "answer", callId: d.lastCall(), outcome: { kind: "failed", reason: "timeout" }, late: false, atMs: T0 + 8000 });
  assert.equal([...d.timers.values()][0], 4000, "the second re-ask waits twice as long");
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => reaskDelayMs(n, 2000, 30_000)),
    [2000, 4000, 8000, 16_000, 30_000, 30_000],
  );
  // The core cannot import the kernel: its copy of the backoff ceiling must stay the same rule.
  for (let n = 0; n < 50; n++) assert.equal(reaskDelayMs(n, 1500, 45_000), backoffCeilingMs(n, { baseMs: 1500, capMs: 45_000 }), `attempt ${n}`);
  // The first call's late answer: paid.
  const late = d.feed({ kind: "answer", callId: first, outcome: paid(), late: true, atMs: T0 + 9000 });
  assert.deepEqual(kinds(late), ["emit:late-payment", "open", "show", "emit:payment", "writeSettlement", "cancelTimer"]);
  assert.deepEqual((late[2] as Extract<SettlementEffect, { kind: "show" }>).message.kind, "paidOnline");
  const refused = d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 9500 });
  assert.deepEqual(kinds(refused), ["emit:cash-refused", "reply"]);
  assert.equal((refused[1] as Extract<SettlementEffect, { kind: "reply" }>).reply.ok, false);
});

test("a platform answer wakes a bill waiting out a timeout at once; one that got an HTTP error waits its backoff", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  d.feed({ kind: "answer", callId: d.lastCall(), outcome: { kind: "failed", reason: "timeout" }, late: false, atMs: T0 + 3000 });
  assert.deepEqual(kinds(d.feed({ kind: "platformUp", atMs: T0 + 3100 })), ["cancelTimer", "emit:bill-reasked", "sendBill"]);
  const h = new SettlementDriver();
  h.feed(billed(700));
  h.feed({ kind: "answer", callId: h.lastCall(), outcome: { kind: "failed", reason: "http-500" }, late: false, atMs: T0 + 10 });
  assert.deepEqual(kinds(h.feed({ kind: "platformUp", atMs: T0 + 20 })), []);
});

test("the check before cash finds the bill paid: cash refused, the car leaves as paid online", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  d.feed({ kind: "answer", callId: d.lastCall(), outcome: { kind: "failed", reason: "timeout" }, late: false, atMs: T0 + 3000 });
  const check = d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 4000 });
  const call = check.find((e) => e.kind === "sendBill") as Extract<SettlementEffect, { kind: "sendBill" }>;
  const after = d.feed({ kind: "answer", callId: call.callId, outcome: paid(), late: false, atMs: T0 + 4500 });
  assert.deepEqual(kinds(after), ["emit:late-payment", "open", "show", "emit:payment", "writeSettlement", "cancelTimer", "emit:cash-refused", "reply"]);
  assert.equal(d.state.settlement?.path, "platform");
});

test("blind cash, then a late 200: one settlement, a refund owed by cash, and the report waits for the window", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  const first = d.lastCall();
  d.feed({ kind: "answer", callId: first, outcome: { kind: "failed", reason: "timeout" }, late: false, atMs: T0 + 3000 });
  const check = d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 4000 });
  const call = check.find((e) => e.kind === "sendBill") as Extract<SettlementEffect, { kind: "sendBill" }>;
  const blind = d.feed({ kind: "answer", callId: call.callId, outcome: { kind: "failed", reason: "refused" }, late: false, atMs: T0 + 4100 });
  assert.deepEqual(kinds(blind).slice(0, 3), ["emit:cash-blind", "writeSettlement", "open"]);
  d.feed({ kind: "passed", atMs: T0 + 8000 });
  const report = d.of("report")[0]!.report;
  // The check before cash (at +4 s) listens as long as any call: the bill's window ends then.
  assert.equal(report.notBeforeMs, T0 + 4000 + settings.lateAnswerMs + settings.reportAfterWindowMs, "held until the bill's last window closes");
  const late = d.feed({ kind: "answer", callId: first, outcome: paid("o9"), late: true, atMs: T0 + 15_000 });
  assert.deepEqual(kinds(late), ["refundOwed"]);
  const refund = (late[0] as Extract<SettlementEffect, { kind: "refundOwed" }>).refund;
  assert.deepEqual([refund.id, refund.amountFen, refund.refundVia, refund.second.orderNo], ["in1_1:p1", 700, "cash", "o9"]);
  assert.equal(d.of("writeSettlement").length, 1);
  assert.equal(d.of("report").length, 1);
});

test("scanner: a new plateId, written before the call; its 200 is written before the open", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  d.feed({ kind: "answer", callId: d.lastCall(), outcome: { kind: "unpaid", msg: "awaiting" }, late: false, atMs: T0 + 100 });
  assert.deepEqual(kinds(d.feed({ kind: "scan", code: "134567890123456789", plateId: "p2", atMs: T0 + 2000 })), ["writePending", "emit:scan", "sendBill"]);
  assert.equal(d.disk.pending?.plateId, "p2");
  assert.equal(d.of("sendBill")[1]!.sweepCode, "134567890123456789");
  assert.equal(d.of("emit")[2]!.event.code, "****6789", "the code is never shown whole");
  assert.deepEqual(kinds(d.feed({ kind: "answer", callId: d.lastCall(), outcome: { ...paid(), payType: undefined }, late: false, atMs: T0 + 2500 })), [
    "writeSettlement",
    "open",
    "show",
    "emit:payment",
  ]);
  assert.equal(d.state.settlement?.path, "scanner");
  assert.equal(d.state.settlement?.payType, 1, "a scanned code pays by WeChat unless the platform says");
});

test("hand release, remote release and payment notice: durable before the open; a remote cancel settles nothing", () => {
  for (const input of [
    { kind: "release" as const, operator: "amy", reason: "broken card", atMs: T0 + 1 },
    { kind: "remote" as const, type: 2, operator: "cloud", openGateCase: 3, atMs: T0 + 1 },
    { kind: "notice" as const, payment: { payType: 2, amountFen: 700, orderNo: "n1", payTimeMs: T0 }, atMs: T0 + 1 },
  ]) {
    const d = new SettlementDriver();
    d.feed(billed(700));
    assert.deepEqual(kinds(d.feed(input)).slice(0, 2), ["writeSettlement", "open"], input.kind);
  }
  const remote = new SettlementDriver();
  remote.feed(billed(700));
  remote.feed({ kind: "remote", type: 2, operator: "cloud", openGateCase: 3, atMs: T0 + 1 });
  assert.deepEqual([remote.state.settlement?.releaseType, remote.state.settlement?.path], [2, "remote-free"]);
  const cancel = new SettlementDriver();
  cancel.feed(billed(700));
  assert.deepEqual(kinds(cancel.feed({ kind: "remote", type: 1, operator: "cloud", atMs: T0 + 1 })), ["emit:remote-cancel"]);
  assert.equal(cancel.state.phase, "awaiting");
});

test("the lane opened by hand: settled as releaseType 3, written after; the report carries what was let go", () => {
  const d = new SettlementDriver();
  d.feed(billed(700, { payableFen: 1000, discountFen: 300 }));
  assert.deepEqual(kinds(d.feed({ kind: "manualOpened", operator: "amy", reason: "manual", atMs: T0 + 10 })), ["emit:payment", "writeSettlement"]);
  d.feed({ kind: "passed", atMs: T0 + 20 });
  const r = d.of("report")[0]!.report;
  assert.deepEqual([r.settlement.releaseType, r.collectedFen, r.releasedFen, r.payableFen, r.discountFen], [3, 0, 700, 1000, 300]);
});

test("no entry record: the attendant's confirmation releases by hand and makes the stay, under a virtual plate", () => {
  const d = new SettlementDriver(initSettlement({ txId: "tx9", plate: "", recordNo: undefined, atMs: T0, attendant: true }));
  d.state = { ...d.state, phase: "awaiting" };
  const effects = d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 5 });
  assert.deepEqual(kinds(effects), ["makeStay", "open", "show", "emit:payment", "reply"]);
  const made = effects[0] as Extract<SettlementEffect, { kind: "makeStay" }>;
  assert.match(made.plate, /^无[0-9A-Z]{7}$/);
  assert.equal(made.settlement.releaseType, 3);
  // Not durable: the car waits and the attendant can try again.
  d.feed({ kind: "writeFailed", atMs: T0 + 6 });
  assert.equal(d.state.phase, "awaiting");
  assert.equal(d.state.settlement, undefined);
  // The car backs out once its stay was made: that stay goes.
  const again = new SettlementDriver(initSettlement({ txId: "tx9", plate: "", recordNo: undefined, atMs: T0, attendant: true }));
  again.feed({ kind: "manualOpened", operator: "amy", reason: "manual", atMs: T0 + 1 });
  assert.deepEqual(kinds(again.feed({ kind: "abandoned", why: "backed-out", atMs: T0 + 2 })), ["cancelMadeStay"]);
});

test("restart: a kept settlement waits for its car, else is reported as left; a pending bill is asked again", () => {
  const d = new SettlementDriver();
  d.feed(billed(700));
  d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 100 });
  const kept = SettlementDriver.restored(d.disk, T0 + 60_000);
  assert.equal(kept.state.phase, "kept");
  const [hold, holdMs] = [...kept.timers][0]!;
  assert.equal(holdMs, settings.settledHoldMs);
  kept.fire(hold, T0 + 60_000 + holdMs);
  const report = kept.of("report")[0]!.report;
  assert.deepEqual([report.settledLeftover, report.leaveAtMs, report.settlement.orderNo, report.collectedFen], [true, T0, "c1", 700]);

  const back = SettlementDriver.restored(d.disk, T0 + 60_000);
  assert.deepEqual(kinds(back.feed({ kind: "readAgain", atMs: T0 + 120_000, graceMinutes: 15 })), ["cancelTimer", "emit:settled-earlier", "open", "show"]);
  back.feed({ kind: "passed", atMs: T0 + 125_000 });
  assert.equal(back.of("report").length, 1);
  const late = SettlementDriver.restored(d.disk, T0 + 60_000);
  late.feed({ kind: "readAgain", atMs: T0 + 3_600_000, graceMinutes: 15 });
  assert.deepEqual([late.state.phase, late.of("open").length], ["closed", 0]);

  const pending = new SettlementDriver();
  pending.feed(billed(700));
  const recovering = SettlementDriver.restored(pending.disk, T0 + 60_000);
  assert.equal(recovering.state.phase, "recovering");
  assert.deepEqual(
    recovering.of("sendBill").map((c) => [c.plateId, c.listenMs]),
    [["p1", undefined]],
  );
  recovering.feed({ kind: "answer", callId: recovering.lastCall(), outcome: { kind: "failed", reason: "refused" }, late: false, atMs: T0 + 60_100 });
  const [retry, retryMs] = [...recovering.timers][0]!;
  assert.equal(retryMs, 1000);
  recovering.fire(retry, T0 + 61_100);
  assert.deepEqual(kinds(recovering.feed({ kind: "answer", callId: recovering.lastCall(), outcome: paid("o5"), late: false, atMs: T0 + 61_200 })), [
    "writeSettlement",
    "emit:payment-recovered",
    "startTimer",
  ]);
  assert.deepEqual([recovering.state.phase, recovering.disk.settlement?.orderNo, recovering.disk.settlement?.paidFen], ["kept", "o5", 700]);
  const unpaid = SettlementDriver.restored(pending.disk, T0 + 60_000);
  unpaid.feed({ kind: "answer", callId: unpaid.lastCall(), outcome: { kind: "unpaid", msg: "no" }, late: false, atMs: T0 + 60_100 });
  assert.equal(unpaid.state.phase, "closed");
});

test("rows that must not settle: a scan with no car waiting, a notice before the bill, answers to unknown calls", () => {
  const d = new SettlementDriver();
  assert.deepEqual(kinds(d.feed({ kind: "scan", code: "1234", plateId: "p2", atMs: T0 })), ["emit:scan-ignored"]);
  assert.deepEqual(kinds(d.feed({ kind: "notice", payment: { payType: 1, amountFen: 700, orderNo: "n1", payTimeMs: T0 }, atMs: T0 })), []);
  d.feed(billed(700));
  assert.deepEqual(kinds(d.feed({ kind: "answer", callId: "bill/p9/99", outcome: paid(), late: false, atMs: T0 })), []);
  assert.deepEqual(kinds(d.feed({ kind: "answer", callId: d.lastCall(), outcome: paid(), late: true, atMs: T0 })), [], "a late answer to a call that did not time out");
  d.feed({ kind: "abandoned", why: "backed-out", atMs: T0 + 1 });
  assert.deepEqual(kinds(d.feed({ kind: "cash", operator: "amy", reason: "", orderNo: "c1", atMs: T0 + 2 })), ["reply"]);
  // The car backed off while the 200 was on its way: the stay keeps the payment, nothing opens.
  assert.deepEqual(kinds(d.feed({ kind: "answer", callId: d.lastCall(), outcome: paid(), late: false, atMs: T0 + 3 })), ["writeSettlement"]);
});
