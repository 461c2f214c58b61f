import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness, sleep } from "../helpers/lot-harness.js";

/*
 * Two exit gaps, closed on the real composition:
 * - a car with no in-park record, released by the attendant (`noRecord.mode: "attendant"`),
 *   gets a stay so its exit is reported (leaveNotify releaseType 3 with the operator), once;
 * - a payment notice (4.2) quoting only the recordNo while the exit is still being decided
 *   settles that exit (it is not merely filed as a prepayment while the car waits). The exit
 *   is "awaiting" once its pre-leave bill is in flight, so a notice then was already matched;
 *   that case is kept as a guard, and the deciding window (bill still being made) is held
 *   open by delaying the service's bill step.
 */

const HOUR_MS = 3_600_000;
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700;

function attendantMode(raw: Record<string, any>): void {
  raw.policy.exit = { noRecord: { mode: "attendant" } };
}

test("no entry record, attendant mode: the API open releases the car with a stay made for it, reported once as manual", async () => {
  const lot = await LotHarness.create({ mutate: attendantMode });
  try {
    await lot.arrive("out1", "粤A60001");
    const noRecord = await lot.waitForEvent("no-entry-record", { plate: "粤A60001" });
    assert.equal(noRecord.reason, "attendant");
    await sleep(100);
    assert.equal(lot.barrier("out1"), "closed", "the car waits for the attendant");
    assert.equal(lot.stayOf("粤A60001"), undefined, "no stay before the attendant acts");

    // Durable before the barrier moves: at the moment the open relay is written, the stay is on disk.
    const durable = lot.durableAtOpen("out1", () => lot.stayOf("粤A60001")?.recordNo);
    const opened = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "李值班", reason: "no entry record" });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    await lot.pass("out1");
    assert.equal(durable(), true, "the stay was durable when the open relay was written");

    const left = await lot.waitForEvent("vehicle-left", { plate: "粤A60001" });
    assert.equal(typeof left.recordNo, "string", "the car left with a recordNo");
    const recordNo = left.recordNo as string;
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.equal(leave.biz.releaseType, 3);
    assert.equal(leave.biz.operator, "李值班");
    assert.equal(leave.biz.paidFee, 0);
    assert.equal(leave.biz.plateNum, "粤A60001");
    assert.equal(leave.biz.outChannelid, "2");
    assert.equal(leave.biz.enterTime, leave.biz.leaveTime, "the stay starts at the exit read");
    assert.equal(lot.stayOf("粤A60001"), undefined, "the stay is finished by the passage");
    const finished = (await lot.app.store.recentStays("粤A60001"))[0]!;
    assert.equal(finished.recordNo, recordNo);
    assert.equal(finished.exit.reason, "manual");
    assert.equal(finished.exit.operator, "李值班");

    await lot.drained();
    await sleep(200);
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo }).length, 1, "reported exactly once");
  } finally {
    await lot.stop();
  }
});

test("no entry record, attendant mode: cash-paid (nothing due) is reported as the attendant's manual release", async () => {
  const lot = await LotHarness.create({ mutate: attendantMode });
  try {
    await lot.arrive("out1", "粤A60002");
    await lot.waitForEvent("no-entry-record", { plate: "粤A60002" });
    const paid = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth-2" });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    await lot.pass("out1");
    const left = await lot.waitForEvent("vehicle-left", { plate: "粤A60002" });
    const recordNo = left.recordNo as string;
    assert.equal(typeof recordNo, "string");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.equal(leave.biz.releaseType, 3);
    assert.equal(leave.biz.operator, "booth-2");
    assert.equal(leave.biz.paidFee, 0);
    await lot.drained();
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo }).length, 1);
  } finally {
    await lot.stop();
  }
});

test("a payNotify quoting only the recordNo while the pre-leave bill is in flight settles the exit once, with the payment's fields", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines.preLeaveMs = 3000) });
  try {
    const stay = await lot.park("粤A61001", STAY_MS);
    await lot.emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 1500 } }] });
    await lot.arrive("out1", "粤A61001");
    const due = await lot.waitForEvent("fee-due", { plate: "粤A61001" });
    assert.equal(due.feeFen, FEE_FEN);
    const notice = await lot.callBox("payNotify", {
      recordNo: stay.recordNo,
      plateNum: "粤A61001",
      orderNo: "PAY-61001",
      payType: 2,
      payFee: FEE_FEN,
      payTime: lot.wireTime(Date.now()),
      payScene: 0,
    });
    assert.equal((notice.body as { code: number }).code, 200, notice.bodyText);
    // Opens on the notice, well before the slow pre-leave answer would.
    await lot.until(() => lot.barrier("out1") === "open", 1000, "out1 open on the payment notice");
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.payType, 2);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.orderNo, "PAY-61001");
    assert.equal(leave.biz.releaseType, 0);
    await sleep(1600); // the delayed pre-leave answer arrives: it must not settle again
    await lot.drained();
    assert.equal(lot.find("payment", { plate: "粤A61001" }).length, 1, "settled once");
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: stay.recordNo }).length, 1, "reported once");
  } finally {
    await lot.stop();
  }
});

test("a payNotify quoting only the recordNo while the bill is still being made settles the exit on the notice", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A61002", STAY_MS);
    // Hold the exit in its deciding phase: the bill is made, then held back until the notice is in.
    const lanes = lot.app.lanes as unknown as { billFor: (...args: unknown[]) => Promise<unknown> };
    const billFor = lanes.billFor.bind(lanes);
    let billMade!: () => void;
    const made = new Promise<void>((resolve) => (billMade = resolve));
    let releaseBill!: () => void;
    const released = new Promise<void>((resolve) => (releaseBill = resolve));
    lanes.billFor = async (...args: unknown[]) => {
      const bill = await billFor(...args);
      billMade();
      await released;
      return bill;
    };
    await lot.arrive("out1", "粤A61002");
    await made;
    assert.equal(lot.app.lanes.status().find((l) => l.id === "out1")?.phase, "deciding");
    const notice = await lot.callBox("payNotify", {
      recordNo: stay.recordNo,
      plateNum: "粤A61002",
      orderNo: "PAY-61002",
      payType: 1,
      payFee: FEE_FEN,
      payTime: lot.wireTime(Date.now()),
      payScene: 0,
    });
    assert.equal((notice.body as { code: number }).code, 200, notice.bodyText);
    releaseBill();
    await lot.until(() => lot.barrier("out1") === "open", 1500, "out1 open on the payment notice");
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.payType, 1);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.orderNo, "PAY-61002");
    assert.equal(leave.biz.releaseType, 0);
    await lot.drained();
    await sleep(150);
    const payments = lot.find("payment", { plate: "粤A61002" });
    assert.equal(payments.length, 1, "settled once");
    assert.equal(payments[0]!.path, "platform");
    assert.equal(lot.emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo }).length, 0, "no bill pushed for a stay already paid");
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: stay.recordNo }).length, 1, "reported once");
  } finally {
    await lot.stop();
  }
});

test("no entry record, attendant mode: the manualOpen button releases the car; its stay is made and reported once", async () => {
  const lot = await LotHarness.create({
    mutate: (raw) => {
      attendantMode(raw);
      raw.lanes[1].inputs.manualOpen = { line: 26, activeLow: true };
    },
  });
  try {
    await lot.arrive("out1", "粤A60003");
    await lot.waitForEvent("no-entry-record", { plate: "粤A60003" });
    const durable = lot.durableAtOpen("out1", () => lot.stayOf("粤A60003")?.recordNo);
    await lot.press("out1", "manualOpen");
    await lot.pass("out1");
    assert.equal(durable(), true, "the stay made for the car was on disk when the button's open reached the relay");
    const left = await lot.waitForEvent("vehicle-left", { plate: "粤A60003" });
    const recordNo = left.recordNo as string;
    assert.equal(typeof recordNo, "string", "the car left with a recordNo");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.equal(leave.biz.releaseType, 3);
    assert.notEqual(leave.biz.operator, "", "the report says who released it");
    await lot.drained();
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo }).length, 1);
    assert.equal(lot.stayOf("粤A60003"), undefined);
  } finally {
    await lot.stop();
  }
});

test("no entry record, attendant mode: a car released by hand that backs out leaves no stay behind", async () => {
  const lot = await LotHarness.create({ mutate: attendantMode });
  try {
    await lot.arrive("out1", "粤A60004");
    await lot.waitForEvent("no-entry-record", { plate: "粤A60004" });
    const opened = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "op3", reason: "no record" });
    assert.equal(opened.status, 200);
    await lot.until(() => lot.barrier("out1") === "open", 2000, "open");
    await lot.until(() => lot.stayOf("粤A60004") !== undefined, 2000, "a stay made for the released car");
    const made = lot.stayOf("粤A60004")!;
    assert.equal(made.source, "manual");
    assert.equal(made.extra?.noEntryRecord, true);
    await lot.backOut("out1");
    await lot.until(() => lot.stayOf("粤A60004") === undefined, 3000, "the stay made at the exit is withdrawn");
    await lot.drained();
    await sleep(150);
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: made.recordNo }).length, 0, "nothing reported for a car that did not leave");
  } finally {
    await lot.stop();
  }
});

/** A car on the lane's loop whose plate the camera never reads: the lane gives up and calls the attendant. */
async function unreadCarAt(lot: LotHarness, laneId: string): Promise<void> {
  await lot.onLoopA(laneId);
  await lot.waitForEvent("plate-timeout", { laneId });
}

/** The attendant opens the lane through the local API. */
async function openByApi(lot: LotHarness, laneId: string, operator: string): Promise<void> {
  const opened = await lot.api("POST", `/api/lanes/${laneId}/commands`, { command: "open", operator, reason: "camera blind" });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
}

test("no plate read at the exit: the attendant's release makes a stay under a virtual plate first, reported once as manual", async () => {
  const lot = await LotHarness.create();
  try {
    await unreadCarAt(lot, "out1");
    assert.equal(lot.barrier("out1"), "closed");
    const durable = lot.durableAtOpen("out1", () => lot.find("payment", { laneId: "out1" })[0]?.plate);
    await openByApi(lot, "out1", "op7");
    await lot.pass("out1");
    assert.equal(durable(), true, "the stay was on disk when the open relay was written");
    const left = await lot.waitForEvent("vehicle-left", { laneId: "out1" });
    assert.match(String(left.plate), /^无[0-9A-Z]{7}$/, "a virtual plate, as unlicensed cars have");
    const recordNo = String(left.recordNo);
    const enter = await lot.emulator.waitFor({ service: "enterNotify", recordNo });
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.ok(enter.seq < leave.seq);
    assert.equal(leave.biz.plateNum, left.plate);
    assert.equal(leave.biz.releaseType, 3);
    assert.equal(leave.biz.operator, "op7");
    assert.equal((await lot.waitForEvent("payment", { laneId: "out1" })).plate, left.plate, "the payment event names the same plate");
    await lot.drained();
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo }).length, 1);
  } finally {
    await lot.stop();
  }
});

test("no plate read at the exit, released by hand, then backs out: the stay made for it is withdrawn, nothing reported", async () => {
  const lot = await LotHarness.create();
  try {
    await unreadCarAt(lot, "out1");
    await openByApi(lot, "out1", "op8");
    await lot.until(() => lot.barrier("out1") === "open", 2000, "open");
    const plate = String((await lot.waitForEvent("payment", { laneId: "out1" })).plate);
    assert.match(plate, /^无[0-9A-Z]{7}$/);
    const made = lot.stayOf(plate);
    assert.ok(made, "a stay made for the released car");
    await lot.backOut("out1");
    await lot.until(() => lot.stayOf(plate) === undefined, 3000, "the stay made at the exit is withdrawn");
    await lot.drained();
    await sleep(150);
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: made.recordNo }).length, 0);
    assert.equal(lot.emulator.received({ service: "enterNotify", recordNo: made.recordNo }).length, 0);
  } finally {
    await lot.stop();
  }
});

test("no plate read at the exit: a read that comes while the hand release is being written changes nothing", async () => {
  const lot = await LotHarness.create();
  try {
    const inParkBefore = lot.app.store.inParkCount();
    await unreadCarAt(lot, "out1");
    // Hold the release's write until the late read has been decided on.
    const store = lot.app.store as unknown as { addInPark: (...args: unknown[]) => Promise<unknown> };
    const addInPark = store.addInPark.bind(lot.app.store);
    let releaseWrite!: () => void;
    const released = new Promise<void>((resolve) => (releaseWrite = resolve));
    store.addInPark = async (...args: unknown[]) => {
      await released;
      return addInPark(...args);
    };
    await openByApi(lot, "out1", "op9");
    lot.read("out1", "粤A60099");
    await lot.waitForEvent("plate-read", { plate: "粤A60099" });
    await sleep(100);
    store.addInPark = addInPark;
    releaseWrite();
    await lot.pass("out1");
    const left = await lot.waitForEvent("vehicle-left", { laneId: "out1" });
    assert.match(String(left.plate), /^无[0-9A-Z]{7}$/, "left as the hand release");
    assert.equal(lot.find("no-entry-record", { plate: "粤A60099" }).length, 0, "the late read was not decided on");
    assert.equal(lot.find("payment", { laneId: "out1" }).length, 1);
    await lot.drained();
    assert.equal(lot.app.store.inParkCount(), inParkBefore, "no stay left behind");
  } finally {
    await lot.stop();
  }
});
