/**
 * Settling an exit: how the stay was paid (or released) is written into it, durably and in
 * the order the safety rules need, then the barrier opens (release). The settlements
 * themselves and how a stay keeps one are the core's (core/settlement/settlement.ts).
 */
import { plateForRelease } from "../core/settlement/settlement-machine.js";
import { emit, feedDecision, show } from "./effects.js";
import type { ExitCtx, LanesState, Settlement, StoredSettlement } from "./lane-state.js";

/**
 * The stay is paid (or released): write how, durably, then let the machine open. The exit
 * report goes out after the passage.
 *
 * `openFirst` is for the platform's code 200 to the pre-leave bill only. What the barrier
 * moves for is that bill, and it is on disk before the open (pendingWrite); the answer is
 * the platform's own record, which it gives again for the same plateId (docs/protocol.md 3.3:
 * one bill, one plateId), so a stop between the open and this write is recovered at the next
 * start by asking again (recoverPendingExit). Every settlement only the box knows (cash, a
 * hand release, a notice the platform will not repeat) is durable before the open.
 * `written`: the stay already holds this settlement (one made before a restart).
 */
export async function settle(lanes: LanesState, ctx: ExitCtx, settlement: Settlement, reason: string, how: { openFirst?: boolean; written?: boolean } = {}): Promise<void> {
  if (ctx.phase === "settled") return;
  if (!lanes.exits.has(ctx.txId)) {
    // The car backed off the lane while the platform's 200 was on its way: the money is
    // taken, so the stay keeps it (its next exit leaves on it, not on a second bill).
    if (how.openFirst && ctx.record && settlement.paidFen > 0) {
      ctx.phase = "settled";
      ctx.settlement = settlement;
      await ctx.pendingWrite;
      await writeSettlement(lanes, ctx, settlement);
    }
    return;
  }
  ctx.phase = "settled";
  ctx.settlement = settlement;
  await ctx.pendingWrite;
  if (how.openFirst && ctx.record) {
    // Opened only while the car is still on the lane; the payment is written either way.
    if (lanes.exits.has(ctx.txId)) release(lanes, ctx, settlement, reason);
    ctx.pendingWrite = writeSettlement(lanes, ctx, settlement).catch((error: unknown) =>
      lanes.log.error({ err: error, recordNo: ctx.record?.recordNo }, "platform settlement not yet durable (asked again at the next start)"),
    );
    await ctx.pendingWrite;
    return;
  }
  if (!ctx.record && ctx.path === "attendant") {
    const write = stayForUnrecorded(lanes, ctx, settlement);
    // A marker for stop() to wait on; the write's own failure is thrown by the await below.
    ctx.pendingWrite = write.catch(() => undefined);
    try {
      await write;
    } catch (error) {
      // Not durable: the barrier stays down and the car waits, so the attendant can try again.
      ctx.phase = "awaiting";
      ctx.settlement = undefined;
      throw error;
    }
  } else if (ctx.record && !how.written) {
    await writeSettlement(lanes, ctx, settlement);
  }
  if (!lanes.exits.has(ctx.txId)) return;
  release(lanes, ctx, settlement, reason);
}

/** Writes the settlement into the stay, durably (a no-op for a stay already gone). */
export async function writeSettlement(lanes: LanesState, ctx: ExitCtx, settlement: Settlement): Promise<void> {
  await writeStored(lanes, ctx, stored(lanes, ctx, settlement));
}

/** Writes a settlement as the stay keeps it (`extra.settlement`), durably; a no-op for a stay already gone. */
export async function writeStored(lanes: LanesState, ctx: ExitCtx, settlement: StoredSettlement): Promise<void> {
  const fresh = ctx.record ? lanes.deps.store.getInPark(ctx.record.recordNo) : undefined;
  if (!fresh) return;
  ctx.record = await lanes.deps.store.updateInPark(fresh.recordNo, { extra: { ...(fresh.extra ?? {}), settlement } });
}

function stored(lanes: LanesState, ctx: ExitCtx, settlement: Settlement): StoredSettlement {
  return {
    ...settlement,
    settledAtMs: lanes.deps.clock.now(),
    laneId: ctx.laneId,
    billAtMs: ctx.atMs,
    payableFen: ctx.bill?.payableFee ?? ctx.dueFen,
    discountFen: ctx.bill?.discountFee ?? 0,
    prepaidFen: ctx.bill?.prepaidFee ?? 0,
  };
}

/** The lane machine opens for the settled exit: its pending decision is answered "allow", else it is told "settle". */
export function openFor(lanes: LanesState, ctx: ExitCtx, reason: string, operator: string): void {
  const runner = lanes.runners.get(ctx.laneId);
  const decisionPending = runner?.snapshot().pending.some((tx) => tx.txId === ctx.txId && tx.phase === "deciding");
  if (decisionPending) feedDecision(lanes, ctx, { verdict: "allow", reason });
  else runner?.feed({ kind: "settle", txId: ctx.txId, reason, atMs: lanes.deps.clock.now(), data: { operator } });
}

/** The settled exit opens: the machine is told, the board says paid, the event goes out. */
function release(lanes: LanesState, ctx: ExitCtx, settlement: Settlement, reason: string): void {
  openFor(lanes, ctx, settlement.path, settlement.operator);
  show(lanes, ctx.laneId, ctx.paidOnline ? { kind: "paidOnline", plate: ctx.plate } : { kind: "paid", plate: ctx.plate });
  emit(lanes, {
    type: "payment",
    laneId: ctx.laneId,
    plate: ctx.plate,
    recordNo: ctx.record?.recordNo,
    feeFen: settlement.paidFen,
    dueFen: ctx.dueFen,
    path: settlement.path,
    reason,
    ...(ctx.paidOnline ? { late: true } : {}),
    ...(settlement.operator ? { operator: settlement.operator } : {}),
  });
}

/**
 * A car with no in-park record (noRecord.mode "attendant", or no plate read) released by the
 * attendant: it gets a stay like the "charge" mode makes (entered at the exit read, source
 * manual), durably, so the passage finishes it and the platform hears of the exit with
 * releaseType 3 and the operator instead of the car leaving unreported. A car with no plate
 * read gets a virtual plate as unlicensed cars have (docs/protocol.md 4.3: 7 of [0-9A-Z] after
 * a 无): a hand release with no trace in the cloud is the attendant fraud operators look for.
 */
export async function stayForUnrecorded(lanes: LanesState, ctx: ExitCtx, settlement: Settlement): Promise<void> {
  if (ctx.record) return;
  ctx.plate = plateForRelease(ctx);
  const { store } = lanes.deps;
  const recordNo = lanes.numbers.recordNo(ctx.laneId, ctx.atMs, (candidate) => store.getInPark(candidate) !== undefined);
  ctx.madeStay = true;
  ctx.record = await store.addInPark({
    recordNo,
    plate: ctx.plate,
    ...(ctx.plateColor === undefined ? {} : { plateColor: ctx.plateColor }),
    laneId: ctx.laneId,
    enterAtMs: ctx.atMs,
    vehicleType: "temporary",
    carType: ctx.carType,
    carSubType: ctx.carSubType,
    source: "manual",
    entryReport: "none",
    extra: { noEntryRecord: true, settlement: stored(lanes, ctx, settlement) },
  });
  // Logged, not a new event type: the "payment" and "vehicle-left" events carry its recordNo.
  lanes.log.info({ laneId: ctx.laneId, plate: ctx.plate, recordNo, operator: settlement.operator }, "stay made at the exit for a car with no entry record");
}
