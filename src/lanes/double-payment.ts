/**
 * A stay paid twice: the platform collected a bill of an exit already settled another way
 * (cash taken while the platform could not be asked, say). The settlement machine says so
 * (its `refundOwed` effect); here it is recorded in the refunds ledger as a refund owed,
 * durably, and raised as an alarm.
 */
import type { SettlementEffect } from "../core/settlement/settlement-machine.js";
import { emit } from "./effects.js";
import type { ExitCtx, LanesState } from "./lane-state.js";

export async function refundOwed(lanes: LanesState, ctx: ExitCtx, { refund }: Extract<SettlementEffect, { kind: "refundOwed" }>): Promise<void> {
  const { first, second } = refund;
  const viaCash = refund.refundVia === "cash";
  const { entry, added } = await lanes.refunds.add({
    id: refund.id,
    kind: "double-payment",
    laneId: ctx.laneId,
    plate: ctx.record?.plate || ctx.plate,
    recordNo: refund.recordNo,
    first: {
      payType: first.payType,
      amountFen: first.paidFen,
      orderNo: first.orderNo,
      payTimeMs: first.payTimeMs,
      path: first.path,
      operator: first.operator,
      ...(ctx.plateId && !viaCash ? { plateId: ctx.plateId } : {}),
    },
    second: { ...second, operator: "", plateId: refund.plateId },
    amountFen: refund.amountFen,
    refundVia: refund.refundVia,
  });
  if (!added || lanes.stopped) return;
  lanes.log.warn(
    { laneId: ctx.laneId, recordNo: refund.recordNo, plateId: refund.plateId, refundFen: entry.amountFen, refundVia: entry.refundVia },
    "stay paid twice: refund owed",
  );
  emit(lanes, {
    type: "double-payment",
    laneId: ctx.laneId,
    plate: entry.plate,
    recordNo: entry.recordNo,
    plateId: refund.plateId,
    refundId: entry.id,
    refundFen: entry.amountFen,
    refundVia: entry.refundVia,
    firstPath: first.path,
    firstFen: first.paidFen,
    secondPath: second.path,
    secondFen: second.amountFen,
    secondOrderNo: second.orderNo,
    alarm: true,
  });
}
