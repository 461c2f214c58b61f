import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { LotHarness, sleep } from "../helpers/lot-harness.js";
import type { ReceivedPush } from "../../src/platform/emulator/emulator.js";

/*
 * Exit lane payment paths (docs/architecture.md "How one car travels through the box", docs/protocol.md §3.3): the bill, the
 * pre-leave push and every way a stay gets settled, each ending in one exit report that says
 * how it was settled.
 */

const HOUR_MS = 3_600_000;
/** 2.5 h under the demo tariff: 5 yuan the first hour, 1 yuan per started hour after. */
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700;

async function leaveReport(lot: LotHarness, recordNo: string): Promise<{ enter: ReceivedPush; leave: ReceivedPush }> {
  const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo });
  const enter = await lot.emulator.waitFor({ service: "enterNotify", recordNo });
  assert.ok(enter.seq < leave.seq, "the entry report reached the platform before the exit report");
  assert.equal(leave.biz.enterTime, enter.biz.enterTime, "the exit report's enterTime is the entry report's");
  assert.equal(leave.biz.outChannelid, "2");
  return { enter, leave };
}

test("a car that drove in and out within the free time: opens at once, reported with nothing paid", async () => {
  const lot = await LotHarness.create();
  try {
    await lot.drive("in1", "粤A70001");
    const stay = lot.stayOf("粤A70001")!;
    await lot.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });
    await lot.drive("out1", "粤A70001");
    const payment = await lot.waitForEvent("payment", { plate: "粤A70001" });
    assert.equal(payment.path, "free");
    const { leave } = await leaveReport(lot, stay.recordNo);
    assert.equal(leave.biz.paidFee, 0);
    assert.equal(leave.biz.payType, 0);
    assert.equal(leave.biz.releaseType, 0);
    assert.equal(lot.emulator.received({ service: "preLeaveNotify" }).length, 0, "no bill pushed for nothing due");
    await lot.waitForEvent("vehicle-left", { plate: "粤A70001" });
    assert.equal(lot.stayOf("粤A70001"), undefined);
    const history = await lot.app.store.recentStays("粤A70001");
    assert.equal(history[0]?.exit.reason, "normal");
  } finally {
    await lot.stop();
  }
});

test("frictionless: the platform collects the pre-leave bill (code 200) and the arm opens", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤B12345", STAY_MS);
    lot.emulator.setPlate("粤B12345", "frictionless");
    // Write order: the bill the barrier moves for (its plateId) is on disk when the open relay
    // is written; the platform's answer (its orderNo) follows the open, before the passage ends.
    const billDurable = lot.durableAtOpen("out1", () => lot.stayOf("粤B12345")?.pendingExit?.plateId);
    await lot.arrive("out1", "粤B12345");
    const due = await lot.waitForEvent("fee-due", { plate: "粤B12345" });
    assert.equal(due.feeFen, FEE_FEN);
    await lot.until(() => lot.barrier("out1") === "open", 4000, "out1 open");
    assert.equal(billDurable(), true, "the pending bill was durable when the open relay was written");
    const answeredOrderNo = (lot.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo })[0]!.answer.data as { orderNo: string }).orderNo;
    await lot.until(() => lot.onDisk(answeredOrderNo), 2000, "the platform's answer written into the stay");
    await lot.pass("out1");
    const pre = lot.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo });
    assert.equal(pre.length, 1);
    assert.equal(pre[0]!.biz.paidFee, FEE_FEN);
    assert.equal(pre[0]!.biz.plateId, due.plateId);
    assert.equal(pre[0]!.biz.sweepCode, 0);
    const { leave } = await leaveReport(lot, stay.recordNo);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.payableFee, FEE_FEN);
    assert.equal(leave.biz.payType, 1, "the pay type the platform answered");
    assert.equal(leave.biz.releaseType, 0);
    const answered = (pre[0]!.answer.data as { orderNo: string }).orderNo;
    assert.equal(leave.biz.orderNo, answered);
  } finally {
    await lot.stop();
  }
});

/**
 * Calls `onSent` at the moment undici writes the pre-leave bill for `plate` to its socket
 * (diagnostics channel "undici:client:sendHeaders", published just before the write).
 * Returns the unsubscribe function.
 */
function whenBillSent(lot: LotHarness, plate: string, onSent: () => void): () => void {
  const service = `"serviceName":${JSON.stringify(lot.app.config.platform.serviceNames.preLeaveNotify)}`;
  let fired = false;
  const listener = (message: unknown) => {
    const body = String((message as { request: { body?: unknown } }).request.body ?? "");
    if (fired || !body.includes(service) || !body.includes(plate)) return;
    fired = true;
    onSent();
  };
  subscribe("undici:client:sendHeaders", listener);
  return () => unsubscribe("undici:client:sendHeaders", listener);
}

/** A warm keep-alive connection to the platform, as at any working exit: an entry report opens it. */
async function warmConnection(lot: LotHarness, plate: string): Promise<void> {
  await lot.drive("in1", plate);
  await lot.emulator.waitFor({ service: "enterNotify", recordNo: lot.stayOf(plate)!.recordNo });
}

test("the pre-leave bill is on the wire before the exit writes its copy, shows the fee or tells anyone", async () => {
  const lot = await LotHarness.create();
  try {
    await warmConnection(lot, "粤A70101");
    const stay = await lot.park("粤B12346", STAY_MS);
    lot.emulator.setPlate("粤B12346", "frictionless");
    let atSend: { pendingExit: boolean; feeDue: boolean } | undefined;
    const stop = whenBillSent(lot, "粤B12346", () => {
      atSend = { pendingExit: lot.stayOf("粤B12346")?.pendingExit !== undefined, feeDue: lot.find("fee-due", { plate: "粤B12346" }).length > 0 };
    });
    try {
      const billDurable = lot.durableAtOpen("out1", () => lot.stayOf("粤B12346")?.pendingExit?.plateId);
      await lot.arrive("out1", "粤B12346");
      await lot.until(() => lot.barrier("out1") === "open", 4000, "out1 open");
      assert.deepEqual(atSend, { pendingExit: false, feeDue: false }, "nothing of this exit was done before its bill was sent");
      assert.equal(billDurable(), true, "the pending bill was still durable before the open");
      assert.equal((await lot.waitForEvent("fee-due", { plate: "粤B12346" })).recordNo, stay.recordNo);
      await lot.pass("out1");
      assert.equal((await leaveReport(lot, stay.recordNo)).leave.biz.paidFee, FEE_FEN);
    } finally {
      stop();
    }
  } finally {
    await lot.stop();
  }
});

test("cash confirmed while the bill is still leaving: paid once, the bill sent once, no fee announced after", async () => {
  const lot = await LotHarness.create();
  try {
    await warmConnection(lot, "粤A70102");
    const stay = await lot.park("粤B12347", STAY_MS);
    let answer: { ok: boolean } | undefined;
    const stop = whenBillSent(lot, "粤B12347", () => (answer = lot.app.lanes.command("out1", "cash-paid", "王五", "cash at booth")));
    try {
      await lot.arrive("out1", "粤B12347");
      const payment = await lot.waitForEvent("payment", { plate: "粤B12347" });
      assert.equal(answer?.ok, true, "the exit was awaiting payment when its bill was sent");
      assert.equal(payment.path, "cash");
      await lot.pass("out1");
      const { leave } = await leaveReport(lot, stay.recordNo);
      assert.equal(leave.biz.payType, 4);
      assert.equal(leave.biz.paidFee, FEE_FEN);
      assert.equal(leave.biz.operator, "王五");
      const pre = lot.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo });
      assert.equal(pre.length, 1, "the bill was sent once");
      assert.equal(lot.find("fee-due", { plate: "粤B12347" }).length, 0, "settled before the fee was announced: it is not announced");
    } finally {
      stop();
    }
  } finally {
    await lot.stop();
  }
});

test("awaiting payment, then the platform's payment notice (4.2) quoting the plateId opens", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A71001", STAY_MS);
    await lot.arrive("out1", "粤A71001");
    await lot.awaitingPayment("out1");
    const due = await lot.waitForEvent("fee-due", { plate: "粤A71001" });
    await lot.waitForEvent("awaiting-payment", { plate: "粤A71001" });
    await sleep(100);
    assert.equal(lot.barrier("out1"), "closed");
    assert.ok(
      lot.displayHistory("out1").some((line) => line.includes("7")),
      "the fee is shown",
    );
    const notice = await lot.callBox("payNotify", {
      recordNo: stay.recordNo,
      plateNum: "粤A71001",
      orderNo: "PAY-71001",
      payType: 2,
      payFee: FEE_FEN,
      payTime: lot.wireTime(Date.now()),
      payScene: 1,
      outChannelid: "2",
      plateId: due.plateId,
    });
    assert.equal((notice.body as { code: number }).code, 200, notice.bodyText);
    await lot.pass("out1");
    const { leave } = await leaveReport(lot, stay.recordNo);
    assert.equal(leave.biz.payType, 2);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.orderNo, "PAY-71001");
    assert.equal(leave.biz.releaseType, 0);
  } finally {
    await lot.stop();
  }
});

test("remoteDev type 0 (paid) and type 2 (free, openGateCase) release the waiting car and are audited", async () => {
  const lot = await LotHarness.create();
  try {
    const paid = await lot.park("粤A72001", STAY_MS);
    const free = await lot.park("粤A72002", STAY_MS);

    await lot.arrive("out1", "粤A72001");
    await lot.awaitingPayment("out1");
    const due1 = await lot.waitForEvent("fee-due", { plate: "粤A72001" });
    const r1 = await lot.callBox("remoteDev", { channelid: "2", type: 0, plateId: due1.plateId, operator: "cloud-ops" });
    assert.equal((r1.body as { code: number }).code, 200, r1.bodyText);
    await lot.pass("out1");

    await lot.arrive("out1", "粤A72002");
    await lot.awaitingPayment("out1");
    const due2 = await lot.waitForEvent("fee-due", { plate: "粤A72002" });
    // A stale plateId (the first car's) is refused and opens nothing.
    const stale = await lot.callBox("remoteDev", { channelid: "2", type: 0, plateId: due1.plateId, operator: "cloud-ops" });
    assert.notEqual((stale.body as { code: number }).code, 200);
    await sleep(100);
    assert.equal(lot.barrier("out1"), "closed");
    const r2 = await lot.callBox("remoteDev", { channelid: "2", type: 2, plateId: due2.plateId, operator: "duty-manager", openGateCase: 1 });
    assert.equal((r2.body as { code: number }).code, 200, r2.bodyText);
    await lot.pass("out1");

    const audit = lot.find("remote-control");
    assert.ok(audit.some((e) => e.plateId === due1.plateId && e.operator === "cloud-ops" && e.remoteType === 0));
    assert.ok(audit.some((e) => e.plateId === due2.plateId && e.operator === "duty-manager" && e.remoteType === 2 && e.openGateCase === 1));
    const l1 = (await leaveReport(lot, paid.recordNo)).leave;
    assert.equal(l1.biz.releaseType, 0);
    assert.equal(l1.biz.operator, "cloud-ops");
    const l2 = (await leaveReport(lot, free.recordNo)).leave;
    assert.equal(l2.biz.releaseType, 1, "free release");
    assert.equal(l2.biz.paidFee, 0);
    assert.equal(l2.biz.operator, "duty-manager");
    // The audit is also in the store's history.
    await lot.waitForEvent("vehicle-left", { plate: "粤A72002" });
    const stays = await lot.app.store.recentStays("粤A72002");
    assert.equal(stays[0]?.exit.operator, "duty-manager");
  } finally {
    await lot.stop();
  }
});

test("a scanner-gun code: preLeaveNotify again with sweepCode 1 and the code; 200 opens", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A73001", STAY_MS);
    await lot.arrive("out1", "粤A73001");
    await lot.awaitingPayment("out1");
    await lot.waitForEvent("awaiting-payment", { plate: "粤A73001" });
    lot.scan("out1", "134567890123456789");
    await lot.pass("out1");
    const pushes = lot.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo });
    assert.equal(pushes.length, 2);
    const sweep = pushes.find((p) => p.biz.sweepCode === 1)!;
    assert.equal(sweep.biz.sweepAuthCode, "134567890123456789");
    assert.notEqual(sweep.biz.plateId, pushes.find((p) => p.biz.sweepCode === 0)!.biz.plateId, "a new bill, a new plateId");
    const payment = await lot.waitForEvent("payment", { plate: "粤A73001" });
    assert.equal(payment.path, "scanner");
    const { leave } = await leaveReport(lot, stay.recordNo);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.payType, 1);
    assert.equal(leave.biz.orderNo, (sweep.answer.data as { orderNo: string }).orderNo);
  } finally {
    await lot.stop();
  }
});

test("cash: the attendant's cashConfirm button, and POST /api/lanes/out1/commands cash-paid", async () => {
  const lot = await LotHarness.create();
  try {
    const a = await lot.park("粤A74001", STAY_MS);
    const b = await lot.park("粤A74002", STAY_MS);

    await lot.arrive("out1", "粤A74001");
    await lot.awaitingPayment("out1");
    await lot.press("out1", "cashConfirm");
    await lot.pass("out1");

    await lot.arrive("out1", "粤A74002");
    await lot.awaitingPayment("out1");
    const noToken = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王五" }, null);
    assert.equal(noToken.status, 401);
    await sleep(50);
    assert.equal(lot.barrier("out1"), "closed");
    const paid = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王五", reason: "cash at booth" });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    await lot.pass("out1");
    // Nobody waiting: a cash confirmation changes nothing.
    const nobody = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王五" });
    assert.equal(nobody.status, 409);

    const la = (await leaveReport(lot, a.recordNo)).leave;
    assert.equal(la.biz.payType, 4);
    assert.equal(la.biz.paidFee, FEE_FEN);
    assert.equal(la.biz.operator, "booth-button");
    assert.match(String(la.biz.orderNo), /^TC\d{19}$/);
    const lb = (await leaveReport(lot, b.recordNo)).leave;
    assert.equal(lb.biz.payType, 4);
    assert.equal(lb.biz.operator, "王五");
    assert.notEqual(la.biz.orderNo, lb.biz.orderNo);
  } finally {
    await lot.stop();
  }
});

test("in-lot prepayment (queryParkFee scene 0, payNotify scene 0) is honoured at the exit: no fee, report shows it prepaid", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A75001", STAY_MS);
    const quote = await lot.callBox("queryParkFee", { payScene: 0, plateNum: "粤A75001" });
    const data = (quote.body as { code: number; data: Record<string, unknown> }).data;
    assert.equal((quote.body as { code: number }).code, 200, quote.bodyText);
    assert.equal(data.recordNo, stay.recordNo);
    assert.equal(data.payableFee, FEE_FEN);
    assert.equal(data.paidFee, FEE_FEN);
    const notice = await lot.callBox("payNotify", {
      recordNo: stay.recordNo,
      plateNum: "粤A75001",
      orderNo: "PRE-75001",
      payType: 1,
      payFee: FEE_FEN,
      payTime: lot.wireTime(Date.now()),
      payScene: 0,
    });
    assert.equal((notice.body as { code: number }).code, 200, notice.bodyText);
    const after = await lot.callBox("queryParkFee", { payScene: 0, plateNum: "粤A75001" });
    assert.equal((after.body as { data: { paidFee: number } }).data.paidFee, 0, "nothing more to pay within the grace time");

    await lot.drive("out1", "粤A75001");
    const payment = await lot.waitForEvent("payment", { plate: "粤A75001" });
    assert.equal(payment.path, "prepaid");
    assert.equal(lot.find("fee-due", { plate: "粤A75001" }).length, 0);
    const { leave } = await leaveReport(lot, stay.recordNo);
    assert.equal(leave.biz.prepaidFee, FEE_FEN);
    assert.equal(leave.biz.paidFee, 0);
    assert.equal(leave.biz.releaseType, 0);
  } finally {
    await lot.stop();
  }
});

test("a coupon the platform issues (4.7) counts on the next bill at the exit", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A76001", STAY_MS);
    const coupon = await lot.callBox("issueCoupon", { couponNo: "CP-76001", recordNo: stay.recordNo, couponType: 1, value: 300, operator: "mall" });
    assert.equal((coupon.body as { code: number }).code, 200, coupon.bodyText);
    await lot.arrive("out1", "粤A76001");
    const due = await lot.waitForEvent("fee-due", { plate: "粤A76001" });
    assert.equal(due.feeFen, FEE_FEN - 300);
    await lot.press("out1", "cashConfirm");
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.payableFee, FEE_FEN);
    assert.equal(leave.biz.discountFee, 300);
    assert.equal(leave.biz.paidFee, FEE_FEN - 300);
  } finally {
    await lot.stop();
  }
});

function storedPath(lot: LotHarness, plate: string): unknown {
  return (lot.stayOf(plate)?.extra?.settlement as { path?: unknown } | undefined)?.path;
}

/** A parked car pays at out1 through the platform (frictionless), the arm opens, it backs out. */
async function payThenBackOut(lot: LotHarness, plate: string) {
  const stay = await lot.park(plate, STAY_MS);
  lot.emulator.setPlate(plate, "frictionless");
  await lot.arrive("out1", plate);
  await lot.waitForEvent("payment", { plate, path: "platform" });
  await lot.until(() => lot.barrier("out1") === "open", 4000, "out1 open");
  await lot.backOut("out1");
  await lot.until(() => lot.barrier("out1") === "closed", 4000, "out1 closed after the back-out");
  assert.ok(lot.stayOf(plate), "the car is still in the lot");
  return stay;
}

test("paid, then backed out: back within the grace it leaves on that payment; past the grace it pays only for the time since", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await payThenBackOut(lot, "粤B12346");

    await lot.drive("out1", "粤B12346");
    const again = await lot.waitForEvent("settled-earlier", { plate: "粤B12346" });
    assert.equal(again.path, "platform");
    const pre = lot.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo });
    assert.equal(pre.length, 1, "no second bill");
    const { leave } = await leaveReport(lot, stay.recordNo);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.payType, 1);
    assert.equal(leave.biz.orderNo, (pre[0]!.answer.data as { orderNo: string }).orderNo);
  } finally {
    await lot.stop();
  }

  // Backed off the lane while the platform's 200 was on its way: the payment is kept.
  const slow = await LotHarness.create();
  try {
    const stay = await slow.park("粤B12348", STAY_MS);
    slow.emulator.setPlate("粤B12348", "frictionless");
    await slow.emulator.setFaults({ rules: [{ service: "preLeaveNotify", plate: "粤B12348", action: { kind: "delay", ms: 400 } }] });
    await slow.arrive("out1", "粤B12348");
    await slow.waitForEvent("fee-due", { plate: "粤B12348" });
    await slow.backOut("out1");
    await slow.until(() => storedPath(slow, "粤B12348") === "platform", 3000, "the payment kept on the stay");
    assert.equal(slow.barrier("out1"), "closed", "nothing opened for a car no longer there");
    await slow.emulator.clearFaults();
    await slow.drive("out1", "粤B12348");
    await slow.waitForEvent("settled-earlier", { plate: "粤B12348" });
    assert.equal(slow.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo }).length, 1, "no second bill");
    const leave = await slow.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.paidFee, FEE_FEN);
  } finally {
    await slow.stop();
  }

  // No grace: the payment becomes a prepayment and the car is billed from it.
  const strict = await LotHarness.create({ mutate: (raw) => (raw.fees.tariffs.standard.postPayment = { graceMinutes: 0 }) });
  try {
    const stay = await payThenBackOut(strict, "粤B12347");
    await sleep(20);

    await strict.arrive("out1", "粤B12347");
    await strict.waitForEvent("settled-earlier-expired", { plate: "粤B12347" });
    await strict.until(() => strict.find("fee-due", { plate: "粤B12347" }).length === 2, 4000, "a second bill");
    const due = strict.find("fee-due", { plate: "粤B12347" })[1]!;
    await strict.emulator.waitFor({ service: "preLeaveNotify", plateId: String(due.plateId) });
    const pre = strict.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo });
    assert.equal(pre.length, 2);
    assert.notEqual(pre[1]!.biz.plateId, pre[0]!.biz.plateId, "a new bill, a new plateId");
    assert.ok(Number(due.feeFen) > 0 && Number(due.feeFen) < FEE_FEN, `only the time since the payment is due (${String(due.feeFen)})`);
    await strict.pass("out1");
    const leave = await strict.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.prepaidFee, FEE_FEN, "the first payment counts as prepaid");
    assert.equal(leave.biz.paidFee, due.feeFen);
  } finally {
    await strict.stop();
  }
});

test("a car that leaves twice in a day: the second bill counts the first stay under the re-entry cap", async () => {
  // Every started hour costs from the first minute, and the plate's stays within 24 h cost
  // 6 yuan together at most: the second short stay pays what the first left of the cap.
  const lot = await LotHarness.create({
    mutate: (raw) => {
      raw.fees.tariffs.standard.free = { minutes: 0 };
      raw.fees.tariffs.standard.reentryCap = { capFen: 600, windowHours: 24 };
      // The same plate at the same lane twice within seconds: not a camera's repeated read here.
      for (const lane of raw.lanes) lane.timers.dedupeWindowMs = 0;
    },
  });
  try {
    const plate = "粤B24680";
    lot.emulator.setPlate(plate, "frictionless");
    const first = await lot.park(plate, 20 * 60_000);
    await lot.arrive("out1", plate);
    assert.equal((await lot.waitForEvent("fee-due", { recordNo: first.recordNo })).feeFen, 500);
    await lot.until(() => lot.barrier("out1") === "open", 4000, "out1 open for the first stay");
    await lot.pass("out1");
    await lot.waitForEvent("vehicle-left", { recordNo: first.recordNo });

    // Back in through the entry lane (a real entry: the plate has no stay in the lot now).
    await lot.arrive("in1", plate);
    await lot.pass("in1");
    await lot.until(() => lot.stayOf(plate) !== undefined, 2000, "the second stay recorded");
    const second = lot.stayOf(plate)!;
    assert.notEqual(second.recordNo, first.recordNo);
    await lot.arrive("out1", plate);
    const due = await lot.waitForEvent("fee-due", { recordNo: second.recordNo });
    assert.equal(due.feeFen, 100, "500 for the started hour, capped at 600 − the 500 the first stay cost");
    await lot.until(() => lot.barrier("out1") === "open", 4000, "out1 open for the second stay");
    await lot.pass("out1");
    assert.equal(lot.find("decided", { reason: "internal-error" }).length, 0);
    const { leave } = await leaveReport(lot, second.recordNo);
    assert.equal(leave.biz.payableFee, 100);
  } finally {
    await lot.stop();
  }
});
