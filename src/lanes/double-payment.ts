/**
 * A stay paid twice: the platform collected a bill of an exit already settled another way
 * (cash taken while the platform could not be asked, say). Recorded in the refunds ledger as
 * a refund owed, and raised as an alarm.
 */
import type { PlatformSuccess } from "../platform/client.js";
import type { PreLeavePaidData } from "../platform/section3.js";
import type { RefundPayment } from "./refunds.js";
import { emit, parseTime } from "./effects.js";
import type { BillCall, ExitCtx, LanesState } from "./lane-state.js";

export async function secondPayment(lanes: LanesState, ctx: ExitCtx, bill: BillCall, result: PlatformSuccess<PreLeavePaidData>): Promise<void> {
  const first = ctx.settlement!;
  const data = result.data ?? ({} as Partial<PreLeavePaidData>);
  const orderNo = typeof data.orderNo === "string" ? data.orderNo : "";
  // The same payment heard twice (the on-time answer and a re-ask's): nothing new.
  if ((first.path === "platform" || first.path === "scanner") && (first.orderNo === orderNo || orderNo === "")) return;
  const record = ctx.record;
  const second: RefundPayment = {
    payType: Number(data.payType ?? (bill.path === "scanner" ? 1 : 0)) || 0,
    amountFen: ctx.dueFen,
    orderNo,
    payTimeMs: (typeof data.payTime === "string" ? parseTime(lanes, data.payTime) : null) ?? lanes.deps.clock.now(),
    path: bill.path,
    operator: "",
    plateId: bill.plateId,
  };
  if (first.paidFen <= 0 || !record) {
    // Released by hand or for free, then paid on the platform: paid once, not a refund.
    emit(lanes, {
      type: "late-platform-payment",
      laneId: ctx.laneId,
      plate: ctx.plate,
      recordNo: record?.recordNo,
      plateId: bill.plateId,
      feeFen: second.amountFen,
      orderNo,
      settledBy: first.path,
    });
    return;
  }
  const viaCash = first.path === "cash" || first.path === "cash-fallback";
  const { entry, added } = await lanes.refunds.add({
    id: `${record.recordNo}:${bill.plateId}`,
    kind: "double-payment",
    laneId: ctx.laneId,
    plate: record.plate || ctx.plate,
    recordNo: record.recordNo,
    first: {
      payType: first.payType,
      amountFen: first.paidFen,
      orderNo: first.orderNo,
      payTimeMs: first.payTimeMs,
      path: first.path,
      operator: first.operator,
      ...(ctx.plateId && !viaCash ? { plateId: ctx.plateId } : {}),
    },
    second,
    // Cash taken blind is handed back by the attendant; a second online collection is
    // refunded through the platform.
    amountFen: viaCash ? first.paidFen : second.amountFen,
    refundVia: viaCash ? "cash" : "platform",
  });
  if (!added || lanes.stopped) return;
  lanes.log.warn({ laneId: ctx.laneId, recordNo: record.recordNo, plateId: bill.plateId, refundFen: entry.amountFen, refundVia: entry.refundVia }, "stay paid twice: refund owed");
  emit(lanes, {
    type: "double-payment",
    laneId: ctx.laneId,
    plate: entry.plate,
    recordNo: entry.recordNo,
    plateId: bill.plateId,
    refundId: entry.id,
    refundFen: entry.amountFen,
    refundVia: entry.refundVia,
    firstPath: first.path,
    firstFen: first.paidFen,
    secondPath: second.path,
    secondFen: second.amountFen,
    secondOrderNo: orderNo,
    alarm: true,
  });
}
