/**
 * The payments a waiting car makes at the lane itself: a code read by the scanner gun (a new
 * bill with sweepCode 1) and the attendant's cash confirmation (the platform asked once more
 * first when a bill went unanswered; cash refused for a bill the platform collected).
 */
import type { PlatformSuccess } from "../platform/client.js";
import type { PreLeavePaidData } from "../platform/section3.js";
import { manualSettlement } from "../core/settlement/settlement.js";
import { emit, show } from "./effects.js";
import { afterBillFailure, afterPreLeave, billPaid, sendBill } from "./bills.js";
import { settle } from "./settlement.js";
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
  const { store } = lanes.deps;
  // A new bill for the same car gets a new plateId (docs/protocol.md 3.3).
  if (ctx.plateId) lanes.byPlateId.delete(ctx.plateId);
  ctx.plateId = lanes.numbers.plateId(ctx.laneId, lanes.deps.clock.now());
  lanes.byPlateId.set(ctx.plateId, ctx);
  await store.updateInPark(ctx.record!.recordNo, {
    pendingExit: { laneId: ctx.laneId, plateId: ctx.plateId, atMs: ctx.atMs, payableFen: ctx.bill!.payableFee, discountFen: ctx.bill!.discountFee, dueFen: ctx.dueFen },
  });
  emit(lanes, { type: "scan", laneId: ctx.laneId, plate: ctx.plate, plateId: ctx.plateId, code: `****${code.slice(-4)}` });
  const plateId = ctx.plateId;
  const result = await sendBill(lanes, ctx, plateId, "scanner", code);
  if (lanes.stopped) return;
  if (result.ok && ctx.phase !== "awaiting") billPaid(lanes, ctx, ctx.bills!.get(plateId)!, result);
  if (ctx.phase !== "awaiting") return;
  if (!result.ok && result.kind === "business-code") {
    emit(lanes, { type: "scan-refused", laneId: ctx.laneId, plate: ctx.plate, reason: result.msg ?? `code ${result.code}` });
    show(lanes, ctx.laneId, { kind: "feeDue", plate: ctx.plate, feeFen: ctx.dueFen });
    return;
  }
  afterPreLeave(lanes, ctx, result, "scanner");
  afterBillFailure(lanes, ctx, plateId, result);
}

/** The attendant's cash confirmation (button, API, panel); one at a time per exit. */
export function payCash(lanes: LanesState, ctx: ExitCtx, operator: string, reason: string): Promise<CommandResult> {
  if (ctx.cashCheck) return ctx.cashCheck;
  const done = payCashNow(lanes, ctx, operator, reason);
  ctx.cashCheck = done;
  void done.finally(() => {
    if (ctx.cashCheck === done) ctx.cashCheck = undefined;
  });
  return done;
}

async function payCashNow(lanes: LanesState, ctx: ExitCtx, operator: string, reason: string): Promise<CommandResult> {
  if (!ctx.record && ctx.path === "attendant") {
    // No entry record and nothing billed: the attendant's confirmation is a manual release
    // (leaveNotify releaseType 3 with the operator), not a cash payment of nothing.
    await settle(lanes, ctx, manualSettlement(operator), reason || "attendant release");
    return { ok: true, detail: `released ${ctx.plate} by hand` };
  }
  let blind = false;
  const unanswered = [...(ctx.bills?.values() ?? [])].filter((bill) => bill.unanswered && !bill.answered);
  if (unanswered.length > 0) {
    // A bill whose call timed out may have been paid on the platform meanwhile: ask once
    // more (same plateId, short deadline) before taking the driver's cash.
    const { cashCheckMs, preLeaveMs } = lanes.deps.config.platform.deadlines;
    emit(lanes, { type: "cash-check", laneId: ctx.laneId, plate: ctx.plate, plateIds: unanswered.map((b) => b.plateId) });
    const results = await Promise.all(unanswered.map((bill) => sendBill(lanes, ctx, bill.plateId, bill.path, bill.sweepCode, Math.min(cashCheckMs, preLeaveMs))));
    if (lanes.stopped) return { ok: false, code: "E_NO_VEHICLE", message: "the lanes are stopping" };
    const paid = results.findIndex((r) => r.ok);
    if (paid >= 0 && ctx.phase === "awaiting") billPaid(lanes, ctx, unanswered[paid]!, results[paid] as PlatformSuccess<PreLeavePaidData>);
    // Only when the platform cannot be asked is the cash taken blind (a 200 for the bill
    // afterwards is then a double payment: billPaid).
    blind = results.every((r) => !r.ok && r.kind !== "business-code");
  }
  if (ctx.phase === "settled" && (ctx.settlement?.path === "platform" || ctx.settlement?.path === "scanner")) {
    emit(lanes, { type: "cash-refused", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, operator, reason: "paid-online" });
    return paidOnlineRefusal(ctx.plate);
  }
  if (ctx.phase !== "awaiting") return { ok: false, code: "E_NO_VEHICLE", message: "no car is awaiting payment on this lane" };
  if (blind) emit(lanes, { type: "cash-blind", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, feeFen: ctx.dueFen, operator });
  const now = lanes.deps.clock.now();
  await settle(lanes, ctx, { releaseType: 0, payType: 4, paidFen: ctx.dueFen, orderNo: lanes.numbers.orderNo(now), payTimeMs: now, operator, path: "cash" }, reason || "cash");
  return { ok: true, detail: `cash ${ctx.dueFen} fen for ${ctx.plate}${blind ? " (platform not reachable)" : ""}` };
}
