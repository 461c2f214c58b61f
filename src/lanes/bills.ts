/**
 * The pre-leave bill's calls (preLeaveNotify, docs/protocol.md 3.3) as the settlement machine
 * asks for them (its `sendBill` effect): the bill's body, one call with its deadline and its
 * late-answer window, and the answer as the machine reads it. What an answer means (paid,
 * awaiting payment, cash fallback, a re-ask, a second payment) is the machine's.
 */
import { leaveNotBeforeEnter } from "../lot/reconcile.js";
import type { PlatformClient, PlatformResult } from "../platform/client.js";
import { formatWireTime } from "../platform/wire.js";
import type { InParkRecord } from "../store/records.js";
import type { Bill } from "../core/fees/index.js";
import type { BillOutcome, SettlementEffect } from "../core/settlement/settlement-machine.js";
import { parseTime } from "./effects.js";
import type { ExitCtx, LanesState } from "./lane-state.js";

/** What the pre-leave bill and the exit report of a stay say alike (in the wire order): the stay, its exit and its bill. */
export function exitBiz(lanes: LanesState, ctx: ExitCtx, record: InParkRecord, bill: Pick<Bill, "payableFee" | "discountFee">) {
  const { config } = lanes.deps;
  return {
    parkCode: config.lot.parkCode,
    recordNo: record.recordNo,
    plateNum: record.plate || ctx.plate,
    carType: ctx.carType,
    carSubType: ctx.carSubType,
    enterTime: formatWireTime(record.enterAtMs, config.lot.timeZone),
    // Never before the entry: the entry may carry another box's clock, minutes ahead of this one
    // (docs/mqtt.md "Partitions and reconciliation"); the stay is then a zero-minute one.
    leaveTime: formatWireTime(leaveNotBeforeEnter(record.enterAtMs, ctx.atMs).leaveAtMs, config.lot.timeZone),
    payableFee: bill.payableFee,
    discountFee: bill.discountFee,
  };
}

/** The body of a pre-leave bill for this exit (`sweep.code`: a scanned payment code). */
export function preLeaveBiz(lanes: LanesState, ctx: ExitCtx, sweep: { code?: string }): Parameters<PlatformClient["preLeaveNotify"]>[0] {
  return {
    ...exitBiz(lanes, ctx, ctx.record!, ctx.bill!),
    paidFee: ctx.dueFen,
    outChannelid: lanes.configs.get(ctx.laneId)!.channelId,
    sweepCode: sweep.code ? 1 : 0,
    ...(sweep.code ? { sweepAuthCode: sweep.code } : {}),
    plateId: ctx.plateId!,
  };
}

/**
 * One call of a bill (a new one, a scanned code, a re-ask, the check before cash). It resolves
 * with the answer by the deadline; a call sent with `listenMs` keeps listening for the
 * late-answer window, and what it hears then (an answer, or the final failure) goes to `late`.
 */
export function callBill(lanes: LanesState, ctx: ExitCtx, call: Extract<SettlementEffect, { kind: "sendBill" }>, late: (outcome: BillOutcome) => void): Promise<BillOutcome> {
  const answer = lanes.deps.platform.preLeaveNotify(
    { ...preLeaveBiz(lanes, ctx, call.sweepCode ? { code: call.sweepCode } : {}), plateId: call.plateId },
    {
      deadlineMs: call.deadlineMs,
      signal: lanes.abort.signal,
      ...(call.listenMs === undefined ? {} : { listenMs: call.listenMs, onLateAnswer: (result: PlatformResult<unknown>) => late(billOutcome(lanes, result)) }),
    },
  );
  return answer.then((result) => billOutcome(lanes, result));
}

/** A platform answer to a pre-leave bill as the machine reads it. */
function billOutcome(lanes: LanesState, result: PlatformResult<unknown>): BillOutcome {
  if (result.ok) {
    const data = (result.data ?? {}) as { payType?: unknown; payTime?: unknown; orderNo?: unknown };
    return {
      kind: "paid",
      payType: data.payType === undefined || data.payType === null ? undefined : Number(data.payType),
      orderNo: typeof data.orderNo === "string" ? data.orderNo : "",
      payTimeMs: typeof data.payTime === "string" ? parseTime(lanes, data.payTime) : null,
    };
  }
  if (result.kind === "business-code") return { kind: "unpaid", msg: result.msg ?? `code ${result.code}` };
  if (result.kind === "aborted") return { kind: "aborted" };
  return { kind: "failed", reason: result.kind };
}
