import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness } from "../../helpers/lot-harness.js";
import { EffectNotWiredError, runStep, stepExit } from "../../../src/lanes/effects-executor.js";
import { machineOf } from "../../../src/lanes/settlement-mirror.js";
import type { SettlementEffect } from "../../../src/core/settlement/settlement-types.js";
import { payCash, releaseByHand } from "../../../src/lanes/settlement-inputs.js";
import { awaitingExit, newExit, type ExitCtx, type LanesState } from "../../../src/lanes/lane-state.js";

/*
 * The settlement machine's executor on the real composition (a real store in a temporary
 * directory, the platform emulator over HTTP): each effect kind runs in the machine's order, a
 * durable one on disk before the next; a durable write that fails stops its step and is fed
 * back as writeFailed; an effect the executor does not run is refused before anything of its
 * step runs.
 */

const stateOf = (lot: LotHarness): LanesState => (lot.app.lanes as unknown as { state: LanesState }).state;

/** A lot on real files and the platform emulator, stopped whatever the test does. */
async function withLot(run: (lot: LotHarness, lanes: LanesState) => Promise<void>): Promise<void> {
  const lot = await LotHarness.create();
  try {
    await run(lot, stateOf(lot));
  } finally {
    await lot.stop();
  }
}

/** Everything the executor does, in order: durable writes, relay moves, board messages and events. */
function recordOrder(lot: LotHarness, lanes: LanesState, recordNo: string): string[] {
  const order: string[] = [];
  lot.gpio.onWrite = (key, level) => {
    if (key === "out1.relayOpen" && level === 1) order.push("open");
  };
  const store = lanes.deps.store as unknown as Record<"updateInPark", (...args: unknown[]) => Promise<unknown>>;
  const update = store.updateInPark.bind(lanes.deps.store);
  store.updateInPark = (...args: unknown[]) =>
    update(...args).then((result) => {
      if (args[0] === recordNo && JSON.stringify(args).includes('"settlement"')) order.push("writeSettlement");
      if (args[0] === recordNo && JSON.stringify(args).includes('"pendingExit":{')) order.push("writePending");
      return result;
    });
  const display = lanes.deps.displays.get("out1")!;
  const showOn = display.show.bind(display);
  display.show = (message) => {
    order.push(`show:${message.kind}`);
    return showOn(message);
  };
  lanes.deps.bus.on((event) => {
    if (["payment", "cash-check", "scan", "fee-due"].includes(event.type)) order.push(`emit:${event.type}`);
  });
  const platform = lanes.deps.platform as unknown as Record<"preLeaveNotify", (...args: unknown[]) => Promise<unknown>>;
  const preLeave = platform.preLeaveNotify.bind(lanes.deps.platform);
  platform.preLeaveNotify = (...args: unknown[]) => {
    order.push("sendBill");
    return preLeave(...args);
  };
  return order;
}

test("nothing due, through the machine: the free settlement is acknowledged by the store when relayOpen goes high", () =>
  withLot(async (lot) => {
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
  }));

test("a hand release runs writeSettlement, open, show and emit in that order, each after the one before", () =>
  withLot(async (lot, lanes) => {
    const stay = await lot.park("粤A70103", 3 * 3_600_000);
    await lot.arrive("out1", stay.plate);
    await lot.awaitingPayment("out1");
    const ctx = awaitingExit(lanes, "out1")!;
    const order = recordOrder(lot, lanes, stay.recordNo);
    await releaseByHand(lanes, ctx, "amy", "driver has no phone");
    await lot.until(() => order.includes("open"), 2000, "the relay opened");
    // The relay's pulse comes from the lane machine a moment after it is told to open; the
    // durable write is acknowledged before that, and the board and the event follow the order.
    assert.equal(order[0], "writeSettlement", JSON.stringify(order));
    assert.ok(order.indexOf("show:paid") < order.indexOf("emit:payment"), JSON.stringify(order));
    assert.equal(ctx.phase, "settled");
    assert.equal(ctx.settlement?.path, "manual");
    assert.equal(ctx.machine?.phase, "settled", "the machine's state is kept on the exit");
    assert.equal((lot.stayOf(stay.plate)?.extra?.settlement as { operator?: string } | undefined)?.operator, "amy");
    lot.gpio.onWrite = undefined;
  }));

test("cash for a bill whose call went unanswered: sendBill's answer is fed back, and its step takes the cash and replies", () =>
  withLot(async (lot, lanes) => {
    const stay = await lot.park("粤A70104", 3 * 3_600_000);
    await lot.emulator.setFaults({ refuse: true });
    await lot.arrive("out1", stay.plate);
    await lot.waitForEvent("cash-fallback", { plate: stay.plate });
    await lot.emulator.clearFaults();
    const ctx = awaitingExit(lanes, "out1")!;
    const order = recordOrder(lot, lanes, stay.recordNo);
    const reply = await payCash(lanes, ctx, "amy", "cash");
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.equal(order[0], "emit:cash-check", JSON.stringify(order));
    assert.ok(order.indexOf("writeSettlement") > 0 && order.indexOf("writeSettlement") < order.indexOf("emit:payment"), JSON.stringify(order));
    assert.equal(ctx.settlement?.path, "cash");
    assert.equal(lot.emulator.received({ service: "preLeaveNotify" }).length, 1, "the bill the refused call could not deliver was asked once more");
    assert.equal(reply.ok && reply.detail, `cash ${ctx.dueFen} fen for ${stay.plate}`, "not blind: the platform answered the check");
    lot.gpio.onWrite = undefined;
  }));

test("a fee due and a scanned code: sendBill, writePending, show, emit, decide; the scanned bill's pending copy is on disk before its call", () =>
  withLot(async (lot, lanes) => {
    const stay = await lot.park("粤A70106", 3 * 3_600_000);
    const order = recordOrder(lot, lanes, stay.recordNo);
    await lot.arrive("out1", stay.plate);
    await lot.awaitingPayment("out1");
    await lot.waitForEvent("awaiting-payment", { plate: stay.plate });
    await lot.until(() => order.includes("writePending"), 2000, "the pending bill written");
    // The bill goes on the wire first; its copy is written while it is in flight.
    assert.deepEqual(order.slice(0, 2), ["sendBill", "show:feeDue"], JSON.stringify(order));
    assert.ok(order.indexOf("show:feeDue") < order.indexOf("emit:fee-due"), JSON.stringify(order));
    order.length = 0;
    lot.scan("out1", "134567890123456789");
    await lot.waitForEvent("payment", { plate: stay.plate });
    assert.deepEqual(order.slice(0, 3), ["writePending", "emit:scan", "sendBill"], JSON.stringify(order));
    assert.ok(order.indexOf("writeSettlement") < order.indexOf("emit:payment"), "a scanned code is written before the open: " + JSON.stringify(order));
    lot.gpio.onWrite = undefined;
  }));

test("a durable write that fails stops its step (no open, no board, no event) and writeFailed puts the car back to awaiting payment", () =>
  withLot(async (lot, lanes) => {
    const stay = await lot.park("粤A70105", 3 * 3_600_000);
    await lot.arrive("out1", stay.plate);
    await lot.awaitingPayment("out1");
    const ctx = awaitingExit(lanes, "out1")!;
    const opens: number[] = [];
    lot.gpio.onWrite = (key, level) => {
      if (key === "out1.relayOpen" && level === 1) opens.push(Date.now());
    };
    const store = lanes.deps.store as unknown as Record<"updateInPark", (...args: unknown[]) => Promise<unknown>>;
    const update = store.updateInPark;
    store.updateInPark = () => Promise.reject(new Error("disk gone"));
    const paymentsBefore = lot.find("payment", { plate: stay.plate }).length;
    await assert.rejects(payCash(lanes, ctx, "amy", "cash"), /disk gone/);
    store.updateInPark = update;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(opens, [], "the barrier stayed down");
    assert.equal(lot.find("payment", { plate: stay.plate }).length, paymentsBefore, "no payment event");
    assert.equal(ctx.phase, "awaiting", "the car waits; the attendant can try again");
    assert.equal(ctx.settlement, undefined);
    assert.equal(lot.stayOf(stay.plate)?.extra?.settlement, undefined, "nothing on disk");
    // Tried again with the disk back: written, then opened.
    const again = await payCash(lanes, ctx, "amy", "cash");
    assert.equal(again.ok, true, JSON.stringify(again));
    await lot.until(() => opens.length === 1, 2000, "the relay opened");
    assert.equal((lot.stayOf(stay.plate)?.extra?.settlement as { path?: string } | undefined)?.path, "cash");
    lot.gpio.onWrite = undefined;
  }));

test("a car's back-out through the machine: its pending bill is cleared and the stay stays in the lot", () =>
  withLot(async (lot, lanes) => {
    const stay = await lot.park("粤A70102", 3 * 3_600_000);
    await lanes.deps.store.updateInPark(stay.recordNo, { pendingExit: { laneId: "out1", plateId: "P-backout", atMs: Date.now(), payableFen: 500, discountFen: 0, dueFen: 500 } });
    const ctx: ExitCtx = newExit(lanes, { laneId: "out1", txId: "executor-test", plate: stay.plate, atMs: Date.now(), phase: "awaiting", path: "awaiting-payment", record: stay });
    lanes.exits.set(ctx.txId, ctx);
    try {
      await stepExit(lanes, ctx, { kind: "abandoned", why: "backedOut", atMs: Date.now() });
    } finally {
      lanes.exits.delete(ctx.txId);
    }
    await lot.until(() => lot.stayOf(stay.plate)?.pendingExit === undefined, 2000, "the pending bill cleared");
    assert.equal(ctx.machine?.onLane, false, "the machine knows the car left the lane");
    assert.ok(lot.stayOf(stay.plate), "the stay is still in the lot, billed again at its next read");
  }));

test("a car's back-out after a stay was made for it at the exit: that stay is cancelled, once its write is done", () =>
  withLot(async (lot, lanes) => {
    const ctx: ExitCtx = newExit(lanes, { laneId: "out1", txId: "executor-made", plate: "粤A70103", atMs: Date.now(), phase: "awaiting", path: "attendant" });
    lanes.exits.set(ctx.txId, ctx);
    let recordNo = "";
    try {
      // The attendant releases a car with no entry record: a stay is made to report its exit.
      await releaseByHand(lanes, ctx, "amy", "no record, let out");
      recordNo = ctx.record?.recordNo ?? "";
      assert.ok(recordNo !== "" && ctx.madeStay === true, "a stay was made for the release");
      assert.ok(lanes.deps.store.getInPark(recordNo), "the made stay is in the lot");
      await stepExit(lanes, ctx, { kind: "abandoned", why: "backedOut", atMs: Date.now() });
    } finally {
      lanes.exits.delete(ctx.txId);
    }
    assert.equal(lanes.deps.store.getInPark(recordNo), undefined, "the stay made for the exit is gone: the car did not leave");
  }));

test("a step holding an effect the executor does not run is refused whole, with E_EFFECT_NOT_WIRED, before anything runs", () =>
  withLot(async (lot, lanes) => {
    const stay = await lot.park("粤A70104", 3 * 3_600_000);
    const writesBefore = lot.durableWrites.length;
    const ctx: ExitCtx = newExit(lanes, {
      laneId: "out1",
      txId: "executor-unknown",
      plate: stay.plate,
      atMs: Date.now(),
      phase: "deciding",
      path: "awaiting-payment",
      record: stay,
    });
    const before = machineOf(lanes, ctx);
    // A kind a later machine might add, after effects this executor knows: none of them may run.
    const effects = [
      { kind: "show", message: { kind: "paid", plate: stay.plate } },
      { kind: "writeSettlement", settlement: { path: "cash", atMs: Date.now() } },
      { kind: "printReceipt" },
    ] as unknown as SettlementEffect[];
    await assert.rejects(
      runStep(lanes, ctx, before, { state: { ...before, phase: "settled" }, effects }),
      (error: unknown) => error instanceof EffectNotWiredError && error.code === "E_EFFECT_NOT_WIRED" && String(error.kind) === "printReceipt",
    );
    assert.equal(ctx.machine, undefined, "the machine's state did not move");
    assert.equal(ctx.phase, "deciding", "the exit is left as it was");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(lot.durableWrites.length, writesBefore, "nothing written");
    assert.equal(lot.stayOf(stay.plate)?.extra?.settlement, undefined);
  }));
