/**
 * The exit's settlement machine state, kept on the exit (`ExitCtx.machine`). The exit flow
 * still owns some of what the machine reads — the exit's phase while it decides, the stay, the
 * bill and its amounts, the current plateId — so those are copied into the machine's state
 * before each step, and what the step decided (phase, path, settlement, the plate of a stay
 * made at the release) is copied back, so both sides see one exit.
 */
import { initSettlement, type SettlementState } from "../core/settlement/settlement-machine.js";
import type { ExitCtx, LanesState } from "./lane-state.js";

/** The machine's state of this exit, brought up to date with what the exit flow changed. */
export function machineOf(lanes: LanesState, ctx: ExitCtx): SettlementState {
  const kept = ctx.machine ?? initSettlement({ txId: ctx.txId, plate: ctx.plate, recordNo: ctx.record?.recordNo, atMs: ctx.atMs, attendant: ctx.path === "attendant" });
  return {
    ...kept,
    // A restored machine's phases (kept, recovering) and its end (reported, closed) are its own.
    phase: machineOnly(kept.phase) ? kept.phase : ctx.phase === "held" ? "denied" : ctx.phase,
    plate: ctx.plate,
    recordNo: ctx.record?.recordNo,
    atMs: ctx.atMs,
    payableFen: ctx.bill?.payableFee ?? ctx.dueFen,
    discountFen: ctx.bill?.discountFee ?? 0,
    prepaidFen: ctx.bill?.prepaidFee ?? 0,
    dueFen: ctx.dueFen,
    path: ctx.path,
    plateId: ctx.plateId,
    settlement: ctx.settlement,
    paidOnline: ctx.paidOnline === true,
    onLane: lanes.exits.has(ctx.txId),
    madeStay: ctx.madeStay === true,
  };
}

function machineOnly(phase: SettlementState["phase"]): boolean {
  return phase === "kept" || phase === "recovering" || phase === "reported" || phase === "closed";
}

/** What a step decided, on the exit (synchronously: an input in the same turn sees it). */
export function mirrorBack(lanes: LanesState, ctx: ExitCtx, before: SettlementState, after: SettlementState): void {
  ctx.machine = after;
  if (after.phase !== before.phase) {
    if (after.phase === "denied") ctx.phase = "held";
    else if (after.phase === "deciding" || after.phase === "awaiting" || after.phase === "settled") ctx.phase = after.phase;
  }
  ctx.settlement = after.settlement;
  ctx.paidOnline = after.paidOnline;
  // The exit's path as the status shows it: awaiting payment, cash fallback (a settlement's
  // own path is on the settlement).
  if (after.path !== before.path && after.phase !== "settled") {
    ctx.path = after.path;
    lanes.deps.bus.changed();
  }
  // A car with no plate read is released under the virtual plate of the stay made for it.
  if (after.plate !== before.plate) ctx.plate = after.plate;
}
