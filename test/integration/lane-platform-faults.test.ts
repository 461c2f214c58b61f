import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness, sleep } from "../helpers/lot-harness.js";

/*
 * The lanes when the platform misbehaves (docs/architecture.md "How one car travels through the box", step 4): refused and hung
 * pre-leave bills fall back to cash, and a platform that is down for a whole scenario still
 * sees every stay afterwards, each report exactly once and the entry before the exit.
 */

const HOUR_MS = 3_600_000;
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700;

test("platform refusing connections: cash fallback at once, 请现金缴费 on the board, the attendant's cash opens", async () => {
  // The default 3 s pre-leave deadline: "at once" must be far sooner than waiting it out.
  const lot = await LotHarness.create({ mutate: (raw) => (raw.platform.deadlines.preLeaveMs = 3000) });
  try {
    const stay = await lot.park("粤A81001", STAY_MS);
    await lot.emulator.setFaults({ refuse: true });
    await lot.arrive("out1", "粤A81001");
    const due = await lot.waitForEvent("fee-due", { plate: "粤A81001" });
    const fallback = await lot.waitForEvent("cash-fallback", { plate: "粤A81001" }, 2000);
    const afterMs = fallback.atMs - due.atMs;
    assert.ok(afterMs < 1000, `cash fallback ${afterMs} ms after the bill: not "at once"`);
    assert.equal(fallback.feeFen, FEE_FEN);
    await lot.until(() => lot.displayHistory("out1").some((line) => line.includes("请现金缴费")), 2000, "请现金缴费 on the board");
    assert.ok(
      lot.displayHistory("out1").some((line) => line.includes("请现金缴费7")),
      lot.displayHistory("out1").join(" | "),
    );
    await sleep(100);
    assert.equal(lot.barrier("out1"), "closed", "the fallback itself opens nothing");

    const paid = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
    assert.equal(paid.status, 200);
    await lot.pass("out1");
    await lot.waitForEvent("vehicle-left", { plate: "粤A81001" });
    const history = await lot.app.store.recentStays("粤A81001");
    assert.equal(history[0]?.exit.paidFen, FEE_FEN);

    await lot.emulator.clearFaults();
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo }, 5000);
    assert.equal(leave.biz.payType, 4, "reported later with pay type cash");
    assert.equal(leave.biz.paidFee, FEE_FEN);
  } finally {
    await lot.stop();
  }
});

test("platform hanging: the exit is decided at the pre-leave deadline (cash fallback after preLeaveMs)", async () => {
  const lot = await LotHarness.create();
  try {
    await lot.park("粤A82001", STAY_MS);
    await lot.emulator.setFaults({ hang: true });
    await lot.arrive("out1", "粤A82001");
    const due = await lot.waitForEvent("fee-due", { plate: "粤A82001" });
    const fallback = await lot.waitForEvent("cash-fallback", { plate: "粤A82001" }, 4000);
    const afterMs = fallback.atMs - due.atMs;
    const deadlineMs = lot.config.platform.deadlines.preLeaveMs;
    assert.ok(afterMs >= deadlineMs - 50 && afterMs < deadlineMs + 1000, `cash fallback ${afterMs} ms after the bill, deadline ${deadlineMs} ms`);
    assert.equal(fallback.reason, "timeout");
    await lot.press("out1", "cashConfirm");
    await lot.pass("out1");
    assert.equal((await lot.waitForEvent("payment", { plate: "粤A82001" })).path, "cash");
  } finally {
    await lot.stop();
  }
});

test("platform down for the whole scenario: every car is served, every report arrives after recovery exactly once, entry before exit", async () => {
  const lot = await LotHarness.create();
  try {
    const now = Date.now();
    await lot.app.store.upsertVehicle({ carNum: "粤B83003", carTypeCode: 81, timeStartMs: now - HOUR_MS, timeEndMs: now + 30 * 24 * HOUR_MS });
    const parked = await lot.park("粤A83001", STAY_MS);
    await lot.emulator.setFaults({ refuse: true });

    await lot.drive("in1", "粤A83002");
    await lot.drive("in1", "粤B83003");
    // The paying car: cash fallback, the attendant takes the cash.
    await lot.arrive("out1", "粤A83001");
    await lot.waitForEvent("cash-fallback", { plate: "粤A83001" });
    await lot.press("out1", "cashConfirm");
    await lot.pass("out1");
    // The two that came in leave (free time, monthly).
    await lot.drive("out1", "粤A83002");
    await lot.drive("out1", "粤B83003");
    assert.equal(lot.app.store.inParkCount(), 0, "every car was served");
    assert.equal(lot.emulator.stats().received, 0, "nothing reached the platform during the outage");
    assert.equal(lot.app.outbox.status().depth, 6);

    await lot.emulator.clearFaults();
    await lot.drained(8000);
    const enters = lot.emulator.received({ service: "enterNotify" });
    const leaves = lot.emulator.received({ service: "leaveNotify" });
    assert.equal(enters.length, 3);
    assert.equal(leaves.length, 3);
    assert.equal(lot.emulator.duplicates(), 0, "each report delivered exactly once");
    assert.equal(lot.emulator.rejected().length, 0, JSON.stringify(lot.emulator.rejected()));
    for (const leave of leaves) {
      const enter = enters.find((e) => e.biz.recordNo === leave.biz.recordNo);
      assert.ok(enter, `entry report of ${String(leave.biz.recordNo)}`);
      assert.ok(enter.seq < leave.seq, "entry before exit");
      assert.equal(enter.count, 1);
      assert.equal(leave.count, 1);
      assert.equal(leave.biz.enterTime, enter.biz.enterTime);
    }
    const paidLeave = leaves.find((l) => l.biz.recordNo === parked.recordNo)!;
    assert.equal(paidLeave.biz.payType, 4);
    assert.equal(paidLeave.biz.paidFee, FEE_FEN);
  } finally {
    await lot.stop();
  }
});

test("a misread plate at the exit is matched by the fuzzy rule (B/8 misread, province character)", async () => {
  const lot = await LotHarness.create();
  try {
    await lot.drive("in1", "粤B1D345");
    await lot.drive("in1", "粤A6Z777");
    const first = lot.stayOf("粤B1D345")!;
    const second = lot.stayOf("粤A6Z777")!;

    // D read as 0.
    await lot.drive("out1", "粤B10345");
    const matched = await lot.waitForEvent("plate-fuzzy-matched", { plate: "粤B10345" });
    assert.equal(matched.recordNo, first.recordNo);
    assert.equal(matched.matched, "粤B1D345");
    // A wrong province character.
    await lot.drive("out1", "鄂A6Z777");
    assert.equal((await lot.waitForEvent("plate-fuzzy-matched", { plate: "鄂A6Z777" })).recordNo, second.recordNo);
    assert.equal(lot.app.store.inParkCount(), 0);

    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: first.recordNo });
    assert.equal(leave.biz.plateNum, "粤B1D345", "the stay's plate, not the misread");
    await lot.waitForEvent("vehicle-left", { plate: "粤B1D345" });
    const history = await lot.app.store.recentStays("粤B1D345");
    assert.equal(history[0]?.exit.exitPlate, "粤B10345");
    // A read that fits no stay is a stay without an entry record (the flat amount, here).
    await lot.arrive("out1", "粤Q99999");
    const none = await lot.waitForEvent("no-entry-record", { plate: "粤Q99999" });
    assert.equal(none.reason, "charge");
    assert.equal((await lot.waitForEvent("fee-due", { plate: "粤Q99999" })).feeFen, lot.config.policy.exit.noRecord.amountFen);
  } finally {
    await lot.stop();
  }
});
