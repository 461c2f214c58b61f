import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness } from "../helpers/lot-harness.js";

/*
 * What the lane's pushes say: preEnterNotify's `reason` (docs/protocol.md 3.4) per case, and
 * the entry report of a stay made at an exit for a car with no entry record (its channel is
 * the configured "unknown entry channel", and it reaches the platform before the bill).
 */

const HOUR_MS = 3_600_000;

test("preEnterNotify says why the lot asks: confirm-required, monthly-expired, lot-full, blacklist", async () => {
  const lot = await LotHarness.create({
    mutate: (raw) => {
      raw.policy.entry = { confirmWithPlatform: "all", confirmWaitMs: 300, confirmDefault: "allow" };
      raw.lot.totalSpaces = 3;
    },
  });
  try {
    const now = Date.now();
    const reasonOf = async (plate: string): Promise<unknown> => {
      await lot.arrive("in1", plate);
      const pre = await lot.emulator.waitFor({ service: "preEnterNotify", plateNum: plate });
      await lot.pass("in1");
      return pre.biz.reason;
    };
    assert.equal(await reasonOf("粤A43001"), "confirm-required");
    await lot.app.store.upsertVehicle({ carNum: "粤B43002", carTypeCode: 81, timeStartMs: now - 60 * 24 * HOUR_MS, timeEndMs: now - 2 * 24 * HOUR_MS });
    assert.equal(await reasonOf("粤B43002"), "monthly-expired");
    // Listed, but only for the way out: the entry asks instead of refusing.
    await lot.app.store.addBlacklist({ carNum: "粤A43003", denyIn: false, denyOut: true, remark: "unpaid fees" });
    assert.equal(await reasonOf("粤A43003"), "blacklist");
    // The lot is full now (3 spaces, 3 stays): a valid monthly car still enters, asked as lot-full.
    assert.equal(lot.app.lanes.freeSpaces(), 0);
    await lot.app.store.upsertVehicle({ carNum: "粤B43004", carTypeCode: 81, timeStartMs: now - HOUR_MS, timeEndMs: now + 30 * 24 * HOUR_MS });
    assert.equal(await reasonOf("粤B43004"), "lot-full");
  } finally {
    await lot.stop();
  }
});

test("a car with no entry record: its entry report carries the unknown entry channel and reaches the platform before the bill", async () => {
  for (const channel of [undefined, "99"]) {
    const lot = await LotHarness.create({
      mutate: (raw) => {
        raw.policy.exit = { noRecord: { mode: "charge", amountFen: 1000 }, ...(channel === undefined ? {} : { unknownEntryChannel: channel }) };
      },
    });
    try {
      await lot.arrive("out1", "粤Q43005");
      const due = await lot.waitForEvent("fee-due", { plate: "粤Q43005" });
      const bill = await lot.emulator.waitFor({ service: "preLeaveNotify", plateId: String(due.plateId) });
      const enter = await lot.emulator.waitFor({ service: "enterNotify", recordNo: String(bill.biz.recordNo) });
      assert.equal(enter.biz.inChannelid, channel ?? "", "not the exit lane's channel");
      assert.notEqual(enter.biz.inChannelid, lot.channelOf("out1"));
      assert.ok(enter.seq < bill.seq, "the entry report first, then the bill");
      await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
      await lot.pass("out1");
      const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: String(bill.biz.recordNo) });
      assert.equal(leave.biz.paidFee, 1000);
      assert.equal(lot.emulator.received({ service: "enterNotify", recordNo: String(bill.biz.recordNo) })[0]?.count, 1, "the entry report went once");
      assert.equal(lot.emulator.rejected().length, 0, JSON.stringify(lot.emulator.rejected()));
    } finally {
      await lot.stop();
    }
  }
});
