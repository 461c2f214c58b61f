/**
 * The payments a waiting car makes at the lane itself: a code read by the scanner gun (a new
 * bill with sweepCode 1), and the refusal of the attendant's cash for a bill the platform
 * collected (the cash itself goes through the settlement machine: settlement-inputs.ts).
 */
import { scanned } from "./settlement-inputs.js";
import type { CommandResult, ExitCtx, LanesState } from "./lane-state.js";

/** The attendant's cash refused: the platform collected the bill (shown on the panel as 已在线支付). */
export const paidOnlineRefusal = (plate: string): CommandResult => ({
  ok: false,
  code: "E_PAID_ONLINE",
  message: `${plate || "the car"} has paid online (已在线支付): take no cash`,
});

/** The exit on this lane the platform collected, its car still there (cash is refused for it). */
export function paidOnlineExit(lanes: LanesState, laneId: string): ExitCtx | undefined {
  return [...lanes.exits.values()].find((c) => c.laneId === laneId && c.phase === "settled" && (c.settlement?.path === "platform" || c.settlement?.path === "scanner"));
}

/** A payment code read by the lane's scanner gun: bill again with sweepCode = 1. */
export async function payByScanner(lanes: LanesState, ctx: ExitCtx, code: string): Promise<void> {
  // A new bill for the same car gets a new plateId (docs/protocol.md 3.3).
  if (ctx.plateId) lanes.byPlateId.delete(ctx.plateId);
  ctx.plateId = lanes.numbers.plateId(ctx.laneId, lanes.deps.clock.now());
  lanes.byPlateId.set(ctx.plateId, ctx);
  // The settlement machine writes the bill's pending copy, then sends it and acts on its answer.
  await scanned(lanes, ctx, code);
}
