/**
 * Settling an exit, the lanes' part: a settlement written into its stay (`extra.settlement`),
 * the lane machine told to open, and a stay made for a car with no record. Which settlement,
 * and in which order things are written and opened, is the settlement machine's
 * (core/settlement/settlement-machine.ts, run by effects-executor.ts); the settlements
 * themselves are core/settlement/settlement.ts.
 */
import { feedDecision } from "./effects.js";
import type { ExitCtx, LanesState, StoredSettlement } from "./lane-state.js";

/** Writes a settlement as the stay keeps it (`extra.settlement`), durably; a no-op for a stay already gone. */
export async function writeStored(lanes: LanesState, ctx: ExitCtx, settlement: StoredSettlement): Promise<void> {
  const fresh = ctx.record ? lanes.deps.store.getInPark(ctx.record.recordNo) : undefined;
  if (!fresh) return;
  ctx.record = await lanes.deps.store.updateInPark(fresh.recordNo, { extra: { ...(fresh.extra ?? {}), settlement } });
}

/** The lane machine opens for the settled exit: its pending decision is answered "allow", else it is told "settle". */
export function openFor(lanes: LanesState, ctx: ExitCtx, reason: string, operator: string): void {
  const runner = lanes.runners.get(ctx.laneId);
  const decisionPending = runner?.snapshot().pending.some((tx) => tx.txId === ctx.txId && tx.phase === "deciding");
  if (decisionPending) feedDecision(lanes, ctx, { verdict: "allow", reason });
  else runner?.feed({ kind: "settle", txId: ctx.txId, reason, atMs: lanes.deps.clock.now(), data: { operator } });
}

/**
 * A car with no in-park record (noRecord.mode "attendant", or no plate read) released by the
 * attendant: it gets a stay like the "charge" mode makes (entered at the exit read, source
 * manual), durably, so the passage finishes it and the platform hears of the exit with
 * releaseType 3 and the operator instead of the car leaving unreported. A car with no plate
 * read gets a virtual plate as unlicensed cars have (docs/protocol.md 4.3: 7 of [0-9A-Z] after
 * a 无): a hand release with no trace in the cloud is the attendant fraud operators look for.
 */
export async function stayForUnrecorded(lanes: LanesState, ctx: ExitCtx, plate: string, settlement: StoredSettlement): Promise<void> {
  if (ctx.record) return;
  ctx.plate = plate;
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
    extra: { noEntryRecord: true, settlement },
  });
  // Logged, not a new event type: the "payment" and "vehicle-left" events carry its recordNo.
  lanes.log.info({ laneId: ctx.laneId, plate: ctx.plate, recordNo, operator: settlement.operator }, "stay made at the exit for a car with no entry record");
}
