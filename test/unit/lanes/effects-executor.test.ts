import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness } from "../../helpers/lot-harness.js";
import { EffectNotWiredError, settleNothingDue } from "../../../src/lanes/effects-executor.js";
import { newExit, type LanesState } from "../../../src/lanes/lane-state.js";

/*
 * The settlement machine's executor on the real composition: the exit with nothing due runs
 * through the machine (billed → writeSettlement, open, show, emit), and an effect the executor
 * does not run yet is refused before anything of its step runs.
 */

const stateOf = (lot: LotHarness): LanesState => (lot.app.lanes as unknown as { state: LanesState }).state;

test("nothing due, through the machine: the free settlement is acknowledged by the store when relayOpen goes high", async () => {
  const lot = await LotHarness.create();
  try {
    const plate = "粤A70101";
    const stay = await lot.park(plate, 60_000);
    const atOpen: boolean[] = [];
    lot.gpio.onWrite = (key, level) => {
      if (key !== "out1.relayOpen" || level !== 1) return;
      atOpen.push(lot.durableWrites.some((write) => write.includes(stay.recordNo) && write.includes('"path":"free"')));
    };
    await lot.arrive("out1", plate);
    const payment = await lot.waitForEvent("payment", { plate });
    assert.equal(payment.path, "free");
    assert.equal(payment.laneId, "out1");
    assert.equal(payment.recordNo, stay.recordNo);
    assert.equal(payment.feeFen, 0);
    await lot.pass("out1");
    lot.gpio.onWrite = undefined;
    assert.deepEqual(atOpen, [true], "one open, after the settlement was durable");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.releaseType, 0);
    assert.equal(leave.biz.paidFee, 0);
  } finally {
    await lot.stop();
  }
});

test("an effect not wired yet (a fee due sends a bill) is refused with E_EFFECT_NOT_WIRED before anything runs", async () => {
  const lot = await LotHarness.create();
  try {
    const lanes = stateOf(lot);
    const stay = await lot.park("粤A70102", 3 * 3_600_000);
    const writesBefore = lot.durableWrites.length;
    const ctx = newExit(lanes, { laneId: "out1", txId: "executor-test", plate: stay.plate, atMs: Date.now(), phase: "deciding", path: "awaiting-payment", record: stay });
    ctx.dueFen = 700;
    lanes.exits.set(ctx.txId, ctx);
    try {
      const bill = { payableFee: 700, discountFee: 0, paidFee: 700, prepaidFee: 0, breakdown: [], discounts: [] };
      await assert.rejects(
        settleNothingDue(lanes, ctx, bill),
        (error: unknown) => error instanceof EffectNotWiredError && error.code === "E_EFFECT_NOT_WIRED" && error.kind === "sendBill",
      );
    } finally {
      lanes.exits.delete(ctx.txId);
    }
    assert.equal(ctx.phase, "deciding", "the exit is left as it was");
    assert.equal(lot.durableWrites.length, writesBefore, "nothing written");
    assert.equal(lot.emulator.received({ service: "preLeaveNotify" }).length, 0, "no bill sent");
    assert.equal(lot.stayOf(stay.plate)?.extra?.settlement, undefined);
  } finally {
    await lot.stop();
  }
});
