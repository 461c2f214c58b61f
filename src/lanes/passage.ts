/**
 * The end of a lane transaction: a car passed (its report queued durably in the outbox, then
 * an exit's stay finished into history) or left the lane without passing (what was written
 * for it undone). Also the entry report, which a stay gets once.
 */
import { leaveNotBeforeEnter } from "../lot/reconcile.js";
import { entryReportHoldUntil, noteEntryReportHold } from "../lot/entry-report-hold.js";
import type { InParkRecord } from "../store/records.js";
import { exitPaymentFields } from "../platform/section3.js";
import { formatWireTime } from "../platform/wire.js";
import { flatBill } from "../core/exit/bill-inputs.js";
import { finishReason, manualSettlement } from "../core/settlement/settlement.js";
import { lateWindowEnd } from "../core/settlement/settlement-machine.js";
import { doublePaymentFields } from "./refunds.js";
import { emit, kebab, track } from "./effects.js";
import { stepExit } from "./effects-executor.js";
import { answerUnlicensed } from "./entry-flow.js";
import { rememberExit } from "./stays.js";
import { exitBiz } from "./bills.js";
import { temporaryTypes, type EntryCtx, type ExitCtx, type LanesState } from "./lane-state.js";

/**
 * An exit report held for its bill's late-answer window goes this long after the window: the
 * client starts its window a moment after the lane reads the clock, and a 200 heard at the
 * window's very end is committed to the refunds ledger (one fsync) before the report reads it.
 */
export const REPORT_AFTER_WINDOW_MS = 1000;

export async function entryPassed(lanes: LanesState, ctx: EntryCtx): Promise<void> {
  lanes.entries.delete(ctx.txId);
  await ctx.written;
  if (!ctx.recordNo) return;
  const record = lanes.deps.store.getInPark(ctx.recordNo);
  if (record) await queueEntryReport(lanes, record);
  emit(lanes, { type: "vehicle-entered", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.recordNo });
}

export async function entryAbandoned(lanes: LanesState, ctx: EntryCtx, why: string): Promise<void> {
  lanes.entries.delete(ctx.txId);
  if (ctx.recordNo) lanes.pendingEntries.delete(ctx.recordNo);
  ctx.confirm?.("deny", "");
  if (ctx.recordNo && ctx.phase === "allowed" && lanes.deps.store.getInPark(ctx.recordNo)) {
    await lanes.deps.store.cancelStay(ctx.recordNo, { reason: kebab(why) });
  }
  answerUnlicensed(lanes, ctx.plate, ctx.laneId, { ok: false, reason: "no-vehicle", msg: "the vehicle left the lane" });
}

/**
 * A car left the exit lane without passing (backed out, or the attendant cancelled): its
 * machine is told (`abandoned`), which undoes what the exit made for it (a stay made only to
 * report this exit is cancelled, a pending bill is cleared) through the executor.
 */
export function exitAbandoned(lanes: LanesState, ctx: ExitCtx, why: string): void {
  // Stepped while the exit is still on the lane (the machine reads onLane in this turn).
  const step = stepExit(lanes, ctx, { kind: "abandoned", why, atMs: lanes.deps.clock.now() });
  lanes.exits.delete(ctx.txId);
  if (ctx.plateId) lanes.byPlateId.delete(ctx.plateId);
  void track(
    lanes,
    step.catch((error: unknown) => lanes.log.warn({ err: error, plate: ctx.plate }, "exit back-out not undone")),
  );
  lanes.log.info({ laneId: ctx.laneId, plate: ctx.plate, why }, "exit transaction ended without passage");
}

/**
 * A provisional stay's reports (a no-record exit taken while the lot was apart) are queued
 * durably but held: the lot's reconciliation (src/lot/provisional-exits.ts) drops them when the
 * car turns out to have entered at another box, or lets them go; at the latest they go after
 * `lot.share.provisionalHoldS`.
 */
function provisionalHold(lanes: LanesState, record: InParkRecord): { notBeforeMs?: number } {
  return record.provisional ? { notBeforeMs: lanes.deps.clock.now() + lanes.deps.config.lot.share.provisionalHoldS * 1000 } : {};
}

export async function queueEntryReport(lanes: LanesState, record: InParkRecord): Promise<void> {
  const { config, outbox, store } = lanes.deps;
  const lane = lanes.configs.get(record.laneId);
  await outbox.enqueue({
    recordNo: record.recordNo,
    kind: "enter",
    service: config.platform.serviceNames.enterNotify,
    ...provisionalHold(lanes, record),
    biz: {
      parkCode: config.lot.parkCode,
      recordNo: record.recordNo,
      plateNum: record.plate,
      plateColor: record.plateColor ?? 9,
      carType: record.carType ?? temporaryTypes(lanes).carType,
      carSubType: record.carSubType ?? temporaryTypes(lanes).carSubType,
      enterTime: formatWireTime(record.enterAtMs, config.lot.timeZone),
      // A stay made at an exit for a car no entry lane saw: not the exit's channel.
      inChannelid: record.extra?.noEntryRecord === true ? config.policy.exit.unknownEntryChannel : (lane?.channelId ?? record.laneId),
    },
  });
  // Durably: start() re-queues every stay still marked "none", so a batched mark lost in a
  // crash would send the entry report a second time after it was delivered.
  if (store.getInPark(record.recordNo)) await store.updateInPark(record.recordNo, { entryReport: "queued" });
}

export async function exitPassed(lanes: LanesState, ctx: ExitCtx): Promise<void> {
  lanes.exits.delete(ctx.txId);
  if (ctx.plateId) lanes.byPlateId.delete(ctx.plateId);
  // A stay made for a car released by the button may still be on its way to disk.
  await ctx.pendingWrite;
  const { config, outbox, store } = lanes.deps;
  const record = ctx.record ? (store.getInPark(ctx.record.recordNo) ?? ctx.record) : undefined;
  if (!record) {
    emit(lanes, { type: "vehicle-left", laneId: ctx.laneId, plate: ctx.plate, reason: "no record" });
    return;
  }
  const settlement = ctx.settlement ?? manualSettlement("");
  const bill = ctx.bill ?? flatBill({ payableFen: 0, discountFen: 0, paidFen: 0, prepaidFen: 0 });
  const { leaveAtMs, skewed } = leaveNotBeforeEnter(record.enterAtMs, ctx.atMs);
  if (skewed) emit(lanes, { type: "lot-clock-skew", laneId: ctx.laneId, plate: record.plate, recordNo: record.recordNo, enterAtMs: record.enterAtMs, readAtMs: ctx.atMs });
  // The entry report goes first when it never went out: the platform then sees the stay
  // in order, and the exit report alone would still let it rebuild the stay.
  if (record.entryReport === "none" && record.source !== "platform") await queueEntryReport(lanes, record);
  const paidFen = settlement.paidFen;
  // Paid twice and found before the report went: the report says how both were paid.
  const doubly = lanes.refunds.forRecord(record.recordNo);
  // A bill call of this exit still listens for its late answer (cash taken while the
  // platform could not be asked, say): a 200 heard now is a second payment the report must
  // carry. The report is queued durably now and goes once that window is over (the outbox
  // sender adds what the refunds ledger found by then: withDoublePaymentFields).
  // (The core's lateWindowEnd: the last late-answer window of a bill whose call timed out and
  // whose outcome the platform never told, plus REPORT_AFTER_WINDOW_MS; a bill the platform did
  // answer was settled knowingly.)
  const lateUntilMs = record.provisional ? provisionalHold(lanes, record).notBeforeMs : paidFen > 0 && ctx.machine ? lateWindowEnd(ctx.machine, REPORT_AFTER_WINDOW_MS) : undefined;
  if (lateUntilMs !== undefined)
    lanes.log.info({ laneId: ctx.laneId, recordNo: record.recordNo, notBeforeMs: lateUntilMs }, "exit report held until its bill's late-answer window closes");
  // A car that entered at another box of the lot: the report also waits for that box's entry
  // report (src/lot/entry-first.ts releases it), at most lot.share.entryReportWaitS.
  const entryUntilMs = entryReportHoldUntil(record, config.deviceId, config.lot.share, lanes.deps.clock.now());
  if (entryUntilMs !== undefined) {
    await noteEntryReportHold(store, record.recordNo, lateUntilMs);
    lanes.log.info({ laneId: ctx.laneId, recordNo: record.recordNo, enteredAt: record.replicaOf?.deviceId }, "exit report held until the entering box's entry report is delivered");
  }
  const notBeforeMs = entryUntilMs === undefined ? lateUntilMs : Math.max(entryUntilMs, lateUntilMs ?? 0);
  await outbox.enqueue({
    recordNo: record.recordNo,
    kind: "leave",
    service: config.platform.serviceNames.leaveNotify,
    ...(notBeforeMs !== undefined ? { notBeforeMs } : {}),
    biz: {
      ...exitBiz(lanes, ctx, record, bill),
      prepaidFee: bill.prepaidFee,
      ...exitPaymentFields({ paidFen, payType: settlement.payType, payTimeMs: settlement.payTimeMs, orderNo: settlement.orderNo }, config.lot.timeZone),
      outChannelid: lanes.configs.get(ctx.laneId)!.channelId,
      releaseType: settlement.releaseType,
      operator: settlement.operator,
      ...(doubly ? doublePaymentFields(doubly, config.lot.timeZone) : {}),
    },
  });
  rememberExit(lanes, record.plate, record.recordNo, record.enterAtMs, leaveAtMs, bill.payableFee);
  await store.finishStay(record.recordNo, {
    laneId: ctx.laneId,
    leaveAtMs,
    payableFen: bill.payableFee,
    discountFen: bill.discountFee,
    prepaidFen: bill.prepaidFee,
    paidFen,
    ...(settlement.payType ? { payType: String(settlement.payType) } : {}),
    ...(settlement.orderNo ? { orderNo: settlement.orderNo } : {}),
    reason: finishReason(settlement),
    ...(settlement.operator ? { operator: settlement.operator } : {}),
    ...(ctx.matchedBy === "fuzzy" ? { exitPlate: ctx.plate } : {}),
    ...(ctx.settledLeftover || doubly
      ? {
          extra: {
            ...(ctx.settledLeftover ? { settledLeftover: true } : {}),
            ...(doubly ? { doublePayment: { refundId: doubly.id, second: doubly.second, refundFen: doubly.amountFen, refundVia: doubly.refundVia } } : {}),
          },
        }
      : {}),
  });
  emit(lanes, { type: "vehicle-left", laneId: ctx.laneId, plate: record.plate, recordNo: record.recordNo, feeFen: paidFen, path: settlement.path });
}
