/**
 * The pre-leave bill's calls (preLeaveNotify, docs/protocol.md 3.3): sending a bill and
 * acting on its answer, late answers heard within the late-answer window, re-asks of a bill
 * with no answer while its car waits, and a 200 that comes after the exit settled another way.
 */
import type { PlatformClient, PlatformResult, PlatformSuccess } from "../platform/client.js";
import type { PreLeavePaidData } from "../platform/section3.js";
import { formatWireTime } from "../platform/wire.js";
import type { InParkRecord } from "../store/records.js";
import type { Bill } from "../core/fees/index.js";
import { backoffCeilingMs } from "../kernel/backoff.js";
import { after, cancelTimer, emit, parseTime, show, track } from "./effects.js";
import { secondPayment } from "./double-payment.js";
import { settle } from "./settlement.js";
import type { BillCall, ExitCtx, LanesState } from "./lane-state.js";

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
    leaveTime: formatWireTime(ctx.atMs, config.lot.timeZone),
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

/** The answer to a pre-leave bill decides the exit: paid, awaiting payment, or cash. */
export function afterPreLeave(lanes: LanesState, ctx: ExitCtx, result: PlatformResult<unknown>, path: "platform" | "scanner"): void {
  if (result.ok) {
    const data = (result.data ?? {}) as { payType?: unknown; payTime?: unknown; orderNo?: unknown };
    const payTimeMs = typeof data.payTime === "string" ? parseTime(lanes, data.payTime) : lanes.deps.clock.now();
    void track(
      lanes,
      settle(
        lanes,
        ctx,
        {
          releaseType: 0,
          payType: Number(data.payType ?? (path === "scanner" ? 1 : 0)) || 0,
          paidFen: ctx.dueFen,
          orderNo: typeof data.orderNo === "string" ? data.orderNo : "",
          payTimeMs: payTimeMs ?? lanes.deps.clock.now(),
          operator: "",
          path,
        },
        path,
        // Frictionless (not a scanned code, whose credential is never kept): the platform
        // holds this answer and gives it again for the same plateId, so it is written just
        // after the open (see settle).
        { openFirst: path === "platform" },
      ),
    );
    return;
  }
  if (result.kind === "business-code") {
    ctx.path = "awaiting-payment";
    emit(lanes, { type: "awaiting-payment", laneId: ctx.laneId, plate: ctx.plate, feeFen: ctx.dueFen, reason: result.msg ?? `code ${result.code}` });
    lanes.deps.bus.changed();
    return;
  }
  // Refused, timed out, HTTP error, garbage: the platform cannot take the payment now. Cash
  // at once (docs/protocol.md 3.3); the bill is reported later with pay type cash.
  if (path === "scanner") {
    emit(lanes, { type: "scan-failed", laneId: ctx.laneId, plate: ctx.plate, reason: result.kind });
  }
  ctx.path = "cash-fallback";
  show(lanes, ctx.laneId, { kind: "payCash", plate: ctx.plate, feeFen: ctx.dueFen });
  emit(lanes, { type: "cash-fallback", laneId: ctx.laneId, plate: ctx.plate, feeFen: ctx.dueFen, reason: result.kind });
  lanes.deps.bus.changed();
}

/**
 * Sends one pre-leave bill (a new one, a re-ask or the check before cash). The call keeps
 * listening for the late-answer window after its deadline: a 200 heard then is handled by
 * billPaid (the barrier opens as a platform payment, or a double payment is recorded).
 */
export function sendBill(
  lanes: LanesState,
  ctx: ExitCtx,
  plateId: string,
  path: BillCall["path"],
  sweepCode: string | undefined,
  deadlineMs = lanes.deps.config.platform.deadlines.preLeaveMs,
): Promise<PlatformResult<PreLeavePaidData>> {
  const { config, platform } = lanes.deps;
  ctx.bills ??= new Map();
  let bill = ctx.bills.get(plateId);
  if (!bill) {
    bill = { plateId, path, sweepCode, open: 0, unanswered: false, answered: false, lastFailure: undefined, reasks: 0, reaskTimer: undefined, listenUntilMs: 0 };
    ctx.bills.set(plateId, bill);
  }
  const call = bill;
  call.open++;
  const listenMs = config.platform.deadlines.lateAnswerMs;
  const late = listenMs > deadlineMs;
  call.listenUntilMs = Math.max(call.listenUntilMs, lanes.deps.clock.now() + Math.max(listenMs, deadlineMs));
  const answer = platform.preLeaveNotify(
    { ...preLeaveBiz(lanes, ctx, sweepCode ? { code: sweepCode } : {}), plateId },
    {
      deadlineMs,
      signal: lanes.abort.signal,
      ...(late
        ? {
            listenMs,
            onLateAnswer: (result: PlatformResult<PreLeavePaidData>) => {
              call.open--;
              heard(call, result);
              if (!lanes.stopped && result.ok) billPaid(lanes, ctx, call, result);
            },
          }
        : {}),
    },
  );
  return answer.then((result) => {
    if (!(late && !result.ok && result.kind === "timeout")) call.open--;
    heard(call, result);
    return result;
  });
}

function heard(bill: BillCall, result: PlatformResult<unknown>): void {
  if (result.ok || result.kind === "business-code") {
    bill.answered = true;
    bill.lastFailure = undefined;
  } else if (result.kind !== "aborted") {
    bill.unanswered = true;
    bill.lastFailure = result.kind;
  }
}

/** Some call of this exit's bill timed out or failed while it is current: try a re-ask. */
export function afterBillFailure(lanes: LanesState, ctx: ExitCtx, plateId: string, result: PlatformResult<unknown>): void {
  if (result.ok || result.kind === "business-code" || result.kind === "aborted") return;
  const bill = ctx.bills?.get(plateId);
  if (bill) scheduleReask(lanes, ctx, bill);
}

function waitingOn(lanes: LanesState, ctx: ExitCtx, bill: BillCall): boolean {
  return !lanes.stopped && ctx.phase === "awaiting" && lanes.exits.has(ctx.txId) && !bill.answered;
}

/** A timed-out bill is asked again (same plateId) while its car waits, with backoff. */
function scheduleReask(lanes: LanesState, ctx: ExitCtx, bill: BillCall): void {
  if (bill.reaskTimer || !waitingOn(lanes, ctx, bill)) return;
  const { reaskFirstMs, reaskMaxMs } = lanes.deps.config.platform.deadlines;
  const delayMs = backoffCeilingMs(bill.reasks + 1, { baseMs: reaskFirstMs, capMs: reaskMaxMs });
  bill.reaskTimer = after(lanes, delayMs, () => {
    bill.reaskTimer = undefined;
    void track(lanes, reask(lanes, ctx, bill));
  });
}

/** The platform answered something: bills waiting out a timeout or refusal are asked now. */
export function reaskNow(lanes: LanesState): void {
  if (lanes.stopped) return;
  for (const ctx of lanes.exits.values()) {
    for (const bill of ctx.bills?.values() ?? []) {
      // A bill that itself got an HTTP answer waits out its backoff (no ping-pong of errors).
      if (!bill.reaskTimer || (bill.lastFailure !== "timeout" && bill.lastFailure !== "refused")) continue;
      cancelTimer(lanes, bill.reaskTimer);
      bill.reaskTimer = undefined;
      void track(lanes, reask(lanes, ctx, bill));
    }
  }
}

async function reask(lanes: LanesState, ctx: ExitCtx, bill: BillCall): Promise<void> {
  if (!waitingOn(lanes, ctx, bill)) return;
  bill.reasks++;
  emit(lanes, { type: "bill-reasked", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, plateId: bill.plateId, attempt: bill.reasks });
  const result = await sendBill(lanes, ctx, bill.plateId, bill.path, bill.sweepCode);
  if (lanes.stopped) return;
  if (result.ok) {
    billPaid(lanes, ctx, bill, result);
    return;
  }
  if (result.kind === "business-code") {
    // Heard at last: not paid. The cash prompt stays; the driver may still pay.
    if (ctx.phase === "awaiting") emit(lanes, { type: "awaiting-payment", laneId: ctx.laneId, plate: ctx.plate, feeFen: ctx.dueFen, reason: result.msg ?? `code ${result.code}` });
    return;
  }
  if (result.kind !== "aborted") scheduleReask(lanes, ctx, bill);
}

/**
 * The platform collected a bill of this exit (a late answer, a re-ask, the check before
 * cash). The car still waiting: it leaves on that payment, and the board says so. Already
 * settled another way: the driver paid twice, recorded as a refund owed.
 */
export function billPaid(lanes: LanesState, ctx: ExitCtx, bill: BillCall, result: PlatformSuccess<PreLeavePaidData>): void {
  if (lanes.stopped) return;
  if (ctx.phase === "awaiting") {
    emit(lanes, { type: "late-payment", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, plateId: bill.plateId, path: bill.path, feeFen: ctx.dueFen });
    ctx.paidOnline = true;
    afterPreLeave(lanes, ctx, result, bill.path);
    return;
  }
  if (ctx.phase === "settled" && ctx.settlement) void track(lanes, secondPayment(lanes, ctx, bill, result));
}
