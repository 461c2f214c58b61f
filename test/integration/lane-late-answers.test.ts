import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness, sleep } from "../helpers/lot-harness.js";
import { startAedes } from "../helpers/aedes-broker.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";

/*
 * Money at the exit when the platform answers late: the pre-leave bill's deadline decides
 * what the lane shows, not what the box hears. A 200 heard after the cash prompt opens the
 * barrier as a platform payment and the attendant's cash is refused; cash taken while the
 * platform could not be asked, then a 200 for the same bill, is a double payment with a
 * refund owed that survives a restart.
 */

const HOUR_MS = 3_600_000;
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700;

test("a late 200 while the car waits opens as a platform payment (已在线支付) and the attendant's cash is refused", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤B60001", STAY_MS);
    lot.emulator.setPlate("粤B60001", "frictionless");
    // The platform collects, but its answer comes 300 ms after the lane's 1 s deadline.
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 1300 }, times: 1 }] });
    await lot.arrive("out1", "粤B60001");
    const due = await lot.waitForEvent("fee-due", { plate: "粤B60001" });
    const fallback = await lot.waitForEvent("cash-fallback", { plate: "粤B60001" }, 3000);
    assert.equal(fallback.reason, "timeout");
    const late = await lot.waitForEvent("late-payment", { plate: "粤B60001" }, 3000);
    assert.equal(late.plateId, due.plateId, "the answer to the very bill shown");
    assert.ok(!lot.find("bill-reasked", { plate: "粤B60001" }).some((e) => e.seq < late.seq), "heard on the bill's own call, not on a re-ask");
    const payment = await lot.waitForEvent("payment", { plate: "粤B60001" });
    assert.equal(payment.path, "platform");
    assert.equal(payment.late, true);
    assert.equal(payment.feeFen, FEE_FEN);
    await lot.until(() => lot.barrier("out1") === "open", 3000, "barrier open on the late 200");
    await lot.until(() => lot.displayHistory("out1").some((line) => line.includes("已在线支付")), 2000, "已在线支付 on the board");

    const cash = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
    assert.equal(cash.status, 409);
    assert.equal(cash.body.error.code, "E_PAID_ONLINE");
    assert.match(cash.body.error.message, /已在线支付/);
    const status = await lot.api("GET", "/api/status");
    assert.equal(status.body.lanes.find((l: { id: string }) => l.id === "out1").vehicle.paidOnline, true);

    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.notEqual(leave.biz.payType, 4, "not reported as cash");
    assert.equal(leave.biz.doublePaid, undefined);
    assert.equal(lot.find("payment", { plate: "粤B60001" }).length, 1, "paid once");
  } finally {
    await lot.stop();
  }
});

test("a timed-out bill is asked again with the same plateId: after its backoff, and at once when the platform answers anything", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines = { ...raw.platform.deadlines, reaskFirstMs: 400, reaskMaxMs: 400 }) });
  try {
    // Backoff: the first bill is never answered; the re-ask 400 ms after the timeout is.
    await lot.park("粤B60002", STAY_MS);
    lot.emulator.setPlate("粤B60002", "frictionless");
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang" }, times: 1 }] });
    await lot.arrive("out1", "粤B60002");
    const due = await lot.waitForEvent("fee-due", { plate: "粤B60002" });
    const fallback = await lot.waitForEvent("cash-fallback", { plate: "粤B60002" }, 3000);
    const reasked = await lot.waitForEvent("bill-reasked", { plate: "粤B60002" }, 3000);
    assert.equal(reasked.plateId, due.plateId, "same plateId");
    assert.ok(reasked.atMs - fallback.atMs >= 350, `re-asked ${reasked.atMs - fallback.atMs} ms after the timeout: after the backoff`);
    assert.equal((await lot.waitForEvent("payment", { plate: "粤B60002" })).path, "platform");
    const received = lot.emulator.received({ service: "preLeaveNotify", plateNum: "粤B60002" });
    assert.deepEqual(
      received.map((p) => p.biz.plateId),
      [due.plateId],
    );
    await lot.pass("out1");
  } finally {
    await lot.stop();
  }

  // At once: a long backoff, and another call's answer (an entry report) triggers the re-ask.
  const again = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines = { ...raw.platform.deadlines, reaskFirstMs: 20_000, reaskMaxMs: 20_000 }) });
  try {
    await again.park("粤B60003", STAY_MS);
    again.emulator.setPlate("粤B60003", "frictionless");
    await again.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang" }, times: 1 }] });
    await again.arrive("out1", "粤B60003");
    const due = await again.waitForEvent("fee-due", { plate: "粤B60003" });
    await again.waitForEvent("cash-fallback", { plate: "粤B60003" }, 3000);
    await sleep(200);
    assert.equal(again.find("bill-reasked", { plate: "粤B60003" }).length, 0, "nothing before the backoff ...");
    const answeredAtMs = Date.now();
    await again.drive("in1", "粤A60004");
    const reasked = await again.waitForEvent("bill-reasked", { plate: "粤B60003" }, 3000);
    assert.ok(reasked.atMs - answeredAtMs < 2000, "... but at once when the platform answers again");
    assert.equal(reasked.plateId, due.plateId);
    assert.equal((await again.waitForEvent("payment", { plate: "粤B60003" })).path, "platform");
    await again.pass("out1");
  } finally {
    await again.stop();
  }
});

test("cash for a bill whose call timed out asks the platform once more first: paid → cash refused; awaiting → cash taken, not blind", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines = { ...raw.platform.deadlines, reaskFirstMs: 30_000, reaskMaxMs: 30_000 }) });
  try {
    await lot.park("粤B60005", STAY_MS);
    lot.emulator.setPlate("粤B60005", "frictionless");
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang" }, times: 1 }] });
    await lot.arrive("out1", "粤B60005");
    const due = await lot.waitForEvent("fee-due", { plate: "粤B60005" });
    await lot.waitForEvent("cash-fallback", { plate: "粤B60005" }, 3000);
    const cash = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
    assert.equal(cash.status, 409, JSON.stringify(cash.body));
    assert.equal(cash.body.error.code, "E_PAID_ONLINE");
    const check = await lot.waitForEvent("cash-check", { plate: "粤B60005" });
    assert.deepEqual(check.plateIds, [due.plateId]);
    assert.equal((await lot.waitForEvent("payment", { plate: "粤B60005" })).path, "platform");
    assert.equal(lot.find("cash-refused", { plate: "粤B60005" }).length, 1);
    assert.equal(lot.find("payment", { plate: "粤B60005", path: "cash" }).length, 0, "no cash taken");
    assert.equal(lot.emulator.received({ plateId: String(due.plateId) }).length, 1);
    await lot.pass("out1");

    // Not paid: the check hears "awaiting payment" and the cash is taken, knowingly.
    const stay = await lot.park("粤B60006", STAY_MS);
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang" }, times: 1 }] });
    await lot.arrive("out1", "粤B60006");
    await lot.waitForEvent("cash-fallback", { plate: "粤B60006" }, 3000);
    const taken = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
    assert.equal(taken.status, 200, JSON.stringify(taken.body));
    assert.equal((await lot.waitForEvent("payment", { plate: "粤B60006" })).path, "cash");
    assert.equal(lot.find("cash-check", { plate: "粤B60006" }).length, 1);
    assert.equal(lot.find("cash-blind", { plate: "粤B60006" }).length, 0, "the platform was heard");
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.payType, 4);
  } finally {
    await lot.stop();
  }
});

test("platform unreachable: cash taken blind, then the late 200 for that bill is a double payment (event, report fields, refund owed that survives a restart)", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines = { ...raw.platform.deadlines, reaskFirstMs: 30_000, reaskMaxMs: 30_000, cashCheckMs: 400 }) });
  let storeDir = "";
  try {
    storeDir = lot.storeDir;
    const stay = await lot.park("粤B60007", STAY_MS);
    lot.emulator.setPlate("粤B60007", "frictionless");
    // Every bill is held 2.5 s, then answered: the platform collects, the lane hears it late.
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang", forMs: 2500 } }] });
    await lot.arrive("out1", "粤B60007");
    await lot.waitForEvent("cash-fallback", { plate: "粤B60007" }, 3000);
    const cash = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王五" });
    assert.equal(cash.status, 200, JSON.stringify(cash.body));
    assert.match(cash.body.detail, /not reachable/);
    await lot.waitForEvent("cash-blind", { plate: "粤B60007" });
    assert.equal((await lot.waitForEvent("payment", { plate: "粤B60007" })).path, "cash");
    await lot.until(() => lot.barrier("out1") === "open", 3000, "open on the cash");

    const double = await lot.waitForEvent("double-payment", { plate: "粤B60007" }, 4000);
    assert.equal(double.refundFen, FEE_FEN);
    assert.equal(double.refundVia, "cash");
    assert.equal(double.firstPath, "cash");
    assert.equal(double.secondFen, FEE_FEN);
    assert.match(String(double.secondOrderNo), /^TC\d{19}$/);
    await sleep(100);
    assert.equal(lot.find("double-payment", { plate: "粤B60007" }).length, 1, "two late answers of one bill: one refund");
    await lot.pass("out1");

    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.payType, 4, "first payment: the cash");
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.doublePaid, 1);
    assert.equal(leave.biz.secondPaidFee, FEE_FEN);
    assert.equal(leave.biz.secondOrderNo, double.secondOrderNo);
    assert.equal(leave.biz.refundFee, FEE_FEN);
    await lot.waitForEvent("vehicle-left", { plate: "粤B60007" });
    const [finished] = await lot.app.store.recentStays("粤B60007");
    assert.equal((finished?.exit.extra as { doublePayment?: { refundFen: number } } | undefined)?.doublePayment?.refundFen, FEE_FEN);

    const refunds = await lot.api("GET", "/api/refunds");
    assert.equal(refunds.status, 200);
    assert.equal(refunds.body.items.length, 1);
    assert.deepEqual(refunds.body.totals, { owedCount: 1, owedFen: FEE_FEN, owedCashFen: FEE_FEN, refundedCount: 0, refundedFen: 0 });
    assert.equal(refunds.body.items[0].first.operator, "王五");
    assert.deepEqual((await lot.api("GET", "/api/status")).body.refunds, refunds.body.totals);
  } finally {
    await lot.stop({ keepStore: true });
  }

  const restarted = await LotHarness.create({ storeDir });
  try {
    const refunds = await restarted.api("GET", "/api/refunds?state=owed");
    assert.equal(refunds.body.items.length, 1, "the ledger survives a restart");
    const id = refunds.body.items[0].id as string;
    assert.equal((await restarted.api("POST", `/api/refunds/${encodeURIComponent(id)}/refunded`, { operator: "王五" })).status, 200);
    const again = await restarted.api("POST", `/api/refunds/${encodeURIComponent(id)}/refunded`, { operator: "王五" });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, "E_REFUND_ALREADY_REFUNDED");
    assert.equal((await restarted.api("POST", "/api/refunds/nope/refunded", { operator: "x" })).status, 404);
    assert.equal((await restarted.api("GET", "/api/refunds?state=bogus")).status, 400);
    const after = await restarted.api("GET", "/api/refunds");
    assert.deepEqual(after.body.totals, { owedCount: 0, owedFen: 0, owedCashFen: 0, refundedCount: 1, refundedFen: FEE_FEN });
  } finally {
    await restarted.stop();
  }
});

test("a scanner payment whose call timed out: the late 200 opens as a scanner payment and cash is refused", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines = { ...raw.platform.deadlines, reaskFirstMs: 30_000, reaskMaxMs: 30_000 }) });
  try {
    await lot.park("粤B60008", STAY_MS);
    await lot.arrive("out1", "粤B60008");
    await lot.waitForEvent("awaiting-payment", { plate: "粤B60008" });
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 1400 }, times: 1 }] });
    lot.scan("out1", "134567890123456789");
    const scan = await lot.waitForEvent("scan", { plate: "粤B60008" });
    assert.equal((await lot.waitForEvent("scan-failed", { plate: "粤B60008" }, 3000)).reason, "timeout");
    await lot.waitForEvent("cash-fallback", { plate: "粤B60008" });
    const late = await lot.waitForEvent("late-payment", { plate: "粤B60008" }, 3000);
    assert.equal(late.plateId, scan.plateId);
    assert.equal(late.path, "scanner");
    assert.equal((await lot.waitForEvent("payment", { plate: "粤B60008" })).path, "scanner");
    const cash = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
    assert.equal(cash.body.error?.code, "E_PAID_ONLINE");
    await lot.pass("out1");
  } finally {
    await lot.stop();
  }
});

test("cash taken blind and the car leaves at once: the late 200 in the window still reaches the exit report (sent once, after the window) and MQTT", async () => {
  const lateAnswerMs = 3000;
  const broker = await startAedes();
  const probe = await MqttProbe.connect(broker.url);
  const lot = await LotHarness.create({
    mutate: (raw) => {
      raw.platform.deadlines = { ...raw.platform.deadlines, lateAnswerMs, reaskFirstMs: 30_000, reaskMaxMs: 30_000, cashCheckMs: 400 };
      raw.mqtt = { url: broker.url, protocolVersion: 4 };
    },
  });
  try {
    const topic = `lanekeeper/v1/${lot.config.deviceId}/evt/double-payment`;
    await probe.subscribe(topic);
    await until(() => lot.app.fleet?.state === "connected", 5000, "fleet connected");
    const stay = await lot.park("粤B60009", STAY_MS);
    lot.emulator.setPlate("粤B60009", "frictionless");
    // The platform holds every bill 2.8 s, then answers 200: it collected, the lane hears late.
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang", forMs: 2800, then: "answer" } }] });
    await lot.arrive("out1", "粤B60009");
    await lot.waitForEvent("cash-fallback", { plate: "粤B60009" }, 3000);
    const cash = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王五" });
    assert.equal(cash.status, 200, JSON.stringify(cash.body));
    await lot.waitForEvent("cash-blind", { plate: "粤B60009" });
    // The car does not wait for the platform: it is gone before any answer comes.
    await lot.pass("out1");
    const left = await lot.waitForEvent("vehicle-left", { plate: "粤B60009" });
    assert.equal(lot.find("double-payment", { plate: "粤B60009" }).length, 0, "no answer yet when the car left");
    assert.equal(lot.app.store.getInPark(stay.recordNo), undefined, "the stay is finished");
    const [queued] = lot.app.outbox.list({ recordNo: stay.recordNo });
    assert.equal(queued?.kind, "leave", "the exit report is queued durably ...");
    assert.ok(queued.notBeforeMs !== undefined && queued.notBeforeMs > Date.now(), "... and held for the late-answer window");
    assert.equal(queued.biz.doublePaid, undefined);

    const double = await lot.waitForEvent("double-payment", { plate: "粤B60009" }, 4000);
    assert.ok(double.seq > left.seq, "the second payment was heard after the car left");
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: stay.recordNo }).length, 0, "the report waited for the window");

    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo }, lateAnswerMs + 3000);
    assert.equal(leave.biz.payType, 4, "the payment the exit settled with: the cash");
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.operator, "王五");
    assert.equal(leave.biz.doublePaid, 1);
    assert.equal(leave.biz.secondPaidFee, FEE_FEN);
    assert.equal(leave.biz.secondOrderNo, double.secondOrderNo);
    assert.match(String(leave.biz.secondPayTime), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.equal(leave.biz.refundFee, FEE_FEN);
    await lot.drained();
    await sleep(300);
    assert.equal(leave.count, 1);
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: stay.recordNo })[0]?.count, 1, "sent once");
    assert.equal(lot.emulator.rejected().length, 0, JSON.stringify(lot.emulator.rejected()));
    assert.deepEqual((await lot.api("GET", "/api/refunds")).body.totals, { owedCount: 1, owedFen: FEE_FEN, owedCashFen: FEE_FEN, refundedCount: 0, refundedFen: 0 });

    // The double payment is on the event stream, as the catalogue (docs/mqtt.md) describes it.
    const message = await probe.waitFor((m) => m.topic === topic, 5000, "evt/double-payment");
    const event = message.json<{ v: number; type: string; data: Record<string, unknown> }>();
    assert.equal(event.type, "double-payment");
    assert.equal(event.data.recordNo, stay.recordNo);
    assert.equal(event.data.refundFen, FEE_FEN);
    assert.equal(event.data.refundVia, "cash");
    assert.equal(event.data.refundId, double.refundId);
    assert.equal(event.data.alarm, true);
  } finally {
    await lot.stop();
    await probe.close();
    await broker.close();
  }
});
