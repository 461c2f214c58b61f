/**
 * Restart recovery: what a stop cut short is finished at the next start (entry reports never
 * queued, stays settled whose car was not seen leaving, bills the platform may have answered
 * 200), and a car back at an exit on a stay settled earlier is not billed twice.
 */
import type { InParkRecord } from "../store/records.js";
import { backoffCeilingMs } from "../kernel/backoff.js";
import { flatBill } from "../core/exit/bill-inputs.js";
import { earlierSettlement as earlierSettlementOf, prepaymentsWithSettlement, storedSettlementOf } from "../core/settlement/settlement.js";
import { after, emit, parseTime, track } from "./effects.js";
import { preLeaveBiz } from "./bills.js";
import { exitPassed, queueEntryReport } from "./passage.js";
import { writeSettlement } from "./settlement.js";
import { rememberExit } from "./stays.js";
import { newExit, type LanesState, type Settlement, type StoredSettlement } from "./lane-state.js";

/** At start, after the lane machines run: the re-entry memory, then what a stop cut short. */
export async function recoverAtStart(lanes: LanesState): Promise<void> {
  // The re-entry cap needs the stays that left within its window. They are kept in memory so
  // a bill never scans history (whose cost grows with it); filled once from history here.
  void track(
    lanes,
    lanes.deps.store.recentFinished(5000).then((stays) => {
      for (const stay of stays) rememberExit(lanes, stay.plate, stay.recordNo, stay.enterAtMs, stay.exit.leaveAtMs, stay.exit.payableFen);
    }),
  );
  // Stays that entered but whose entry report was never queued (a stop between the open and
  // the passage): the car most likely went in, so report it now.
  // A stay the platform added itself (4.13.4, source "platform") is known to it already.
  for (const record of lanes.deps.store.listInPark((r) => r.entryReport === "none" && r.source !== "platform").items) {
    await queueEntryReport(lanes, record).catch((error: unknown) => lanes.log.error({ err: error, recordNo: record.recordNo }, "entry report not queued"));
  }
  // Exits a stop cut short. A stay that holds its settlement was opened for (or about to be):
  // it waits for its car to be read again, else it is finished as left. A stay with a bill
  // the platform may have answered 200 (written after the open) asks the platform again.
  for (const record of lanes.deps.store.listInPark((r) => r.pendingExit !== undefined || r.extra?.settlement !== undefined).items) {
    if (storedSettlementOf(record)) holdSettled(lanes, record.recordNo);
    else void track(lanes, recoverPendingExit(lanes, record.recordNo, 0));
  }
}

/**
 * The settlement a stay already holds, if the car is back within the tariff's post-payment
 * grace. Past the grace, a collected amount becomes a prepayment of the stay (durably) and
 * the car is billed again from there, as after an in-lot payment (docs/tariffs.md, `postPayment`).
 */
export async function earlierSettlement(lanes: LanesState, record: InParkRecord, atMs: number): Promise<{ record: InParkRecord; settlement?: StoredSettlement }> {
  const earlier = earlierSettlementOf(record, atMs, lanes.tariff.postPayment.graceMinutes);
  if (earlier.kind === "none") return { record };
  if (earlier.kind === "within-grace") return { record, settlement: earlier.settlement };
  const { settlement } = earlier;
  emit(lanes, {
    type: "settled-earlier-expired",
    laneId: settlement.laneId,
    plate: record.plate,
    recordNo: record.recordNo,
    path: settlement.path,
    settledAtMs: settlement.settledAtMs,
  });
  return { record: await lanes.deps.store.updateInPark(record.recordNo, { extra: earlier.extra, prepayments: earlier.prepayments }) };
}

/**
 * A car with no stay whose newest stay was finished as left after a restart (a settled
 * leftover: not read again within `settledHoldMs`) had not left after all. That stay was
 * reported, so it is resumed under a new recordNo: same entry, what it paid counted as a
 * prepayment, so the car pays only for the time since (nothing within the post-payment
 * grace) instead of meeting the "no entry record" rule. Only within `settledResumeMs` of
 * the payment: a car away that long and back unseen is an unknown car again.
 */
export async function resumeSettledLeftover(lanes: LanesState, plate: string, laneId: string, atMs: number): Promise<InParkRecord | undefined> {
  const { store, config } = lanes.deps;
  const windowMs = config.policy.exit.settledResumeMs;
  if (windowMs === 0) return undefined;
  // Only the history written within the window is read: this runs for every car with no
  // stay, and a year of history on an SD card is slow to scan.
  const [newest] = await store.recentStays(plate, { limit: 1, sinceMs: atMs - windowMs });
  if (!newest || newest.exit.extra?.settledLeftover !== true) return undefined;
  const settlement = storedSettlementOf(newest);
  if (!settlement || atMs - settlement.settledAtMs > windowMs) return undefined;
  const prepayments = prepaymentsWithSettlement(newest, settlement);
  const { settlement: _reported, ...extra } = newest.extra ?? {};
  const recordNo = lanes.numbers.recordNo(laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
  const record = await store.addInPark({
    recordNo,
    plate: newest.plate,
    ...(newest.plateColor === undefined ? {} : { plateColor: newest.plateColor }),
    laneId: newest.laneId,
    enterAtMs: newest.enterAtMs,
    vehicleType: newest.vehicleType,
    ...(newest.carType === undefined ? {} : { carType: newest.carType }),
    ...(newest.carSubType === undefined ? {} : { carSubType: newest.carSubType }),
    source: "manual",
    entryReport: "none",
    prepayments,
    coupons: newest.coupons,
    extra: { ...extra, resumes: newest.recordNo },
  });
  emit(lanes, { type: "settled-stay-resumed", laneId, plate, recordNo, resumes: newest.recordNo, settledAtMs: settlement.settledAtMs, paidFen: settlement.paidFen });
  return record;
}

/** A settled stay found at start: its car gets `settledHoldMs` to be read at an exit. */
function holdSettled(lanes: LanesState, recordNo: string): void {
  after(lanes, lanes.deps.config.policy.exit.settledHoldMs, () => void track(lanes, finishSettledLeftover(lanes, recordNo)));
}

/** The car of a settled stay was not seen since the start: it left during the stop. */
async function finishSettledLeftover(lanes: LanesState, recordNo: string): Promise<void> {
  const record = lanes.deps.store.getInPark(recordNo);
  const settlement = record ? storedSettlementOf(record) : undefined;
  if (!record || !settlement || exitInProgress(lanes, recordNo)) return;
  const laneId = lanes.configs.has(settlement.laneId) ? settlement.laneId : [...lanes.configs.values()].find((l) => l.direction === "out")?.id;
  if (!laneId) return;
  const ctx = newExit(lanes, {
    laneId,
    txId: `leftover-${recordNo}`,
    plate: record.plate,
    atMs: settlement.billAtMs,
    record,
    matchedBy: "exact",
    bill: flatBill(settlement),
    dueFen: settlement.paidFen,
    phase: "settled",
    path: settlement.path,
    settlement,
    settledLeftover: true,
  });
  lanes.log.info({ recordNo, plate: record.plate, path: settlement.path }, "settled stay not seen since the start: finished as left at its bill's time");
  emit(lanes, { type: "settled-stay-finished", laneId, plate: record.plate, recordNo, path: settlement.path, reason: "not seen since the start" });
  await exitPassed(lanes, ctx);
}

/**
 * A stay with a pre-leave bill and no settlement at start: the platform may have answered
 * 200 and the barrier opened before the answer was written (settle, openFirst). The same
 * bill, same plateId, is asked again; 200 settles the stay as the platform says (then held as
 * any settled stay), another code leaves it as it is (the car did not pay that way), and no
 * answer is asked again with backoff until the car is read again or the platform answers.
 */
async function recoverPendingExit(lanes: LanesState, recordNo: string, attempt: number): Promise<void> {
  const { store, config, platform } = lanes.deps;
  const record = store.getInPark(recordNo);
  const pending = record?.pendingExit;
  if (!record || !pending || storedSettlementOf(record) || exitInProgress(lanes, recordNo) || !lanes.configs.has(pending.laneId)) return;
  const ctx = newExit(lanes, {
    laneId: pending.laneId,
    txId: `recover-${recordNo}`,
    plate: record.plate,
    atMs: pending.atMs,
    record,
    matchedBy: "exact",
    bill: flatBill({
      payableFen: pending.payableFen,
      discountFen: pending.discountFen,
      paidFen: pending.dueFen,
      prepaidFen: Math.max(0, pending.payableFen - pending.discountFen - pending.dueFen),
    }),
    dueFen: pending.dueFen,
    plateId: pending.plateId,
    phase: "awaiting",
    path: "platform",
  });
  const result = await platform.preLeaveNotify(preLeaveBiz(lanes, ctx, {}), { deadlineMs: config.platform.deadlines.preLeaveMs });
  // The car was read again meanwhile (its new bill decides), or the stay went.
  const now = store.getInPark(recordNo);
  if (!now || now.pendingExit?.plateId !== pending.plateId || exitInProgress(lanes, recordNo)) return;
  if (result.ok) {
    const data = (result.data ?? {}) as { payType?: unknown; payTime?: unknown; orderNo?: unknown };
    const settlement: Settlement = {
      releaseType: 0,
      payType: Number(data.payType ?? 0) || 0,
      paidFen: pending.dueFen,
      orderNo: typeof data.orderNo === "string" ? data.orderNo : "",
      payTimeMs: (typeof data.payTime === "string" ? parseTime(lanes, data.payTime) : null) ?? lanes.deps.clock.now(),
      operator: "",
      path: "platform",
    };
    ctx.record = now;
    await writeSettlement(lanes, ctx, settlement);
    emit(lanes, { type: "payment-recovered", laneId: ctx.laneId, plate: record.plate, recordNo, plateId: pending.plateId, feeFen: pending.dueFen, path: "platform" });
    holdSettled(lanes, recordNo);
    return;
  }
  if (result.kind === "business-code") {
    lanes.log.info({ recordNo, plateId: pending.plateId, code: result.code }, "bill pending at the stop is not paid on the platform");
    return;
  }
  const delayMs = backoffCeilingMs(attempt + 1, { baseMs: 1000, capMs: 60_000 });
  lanes.log.warn({ recordNo, plateId: pending.plateId, reason: result.kind, retryInMs: delayMs }, "bill pending at the stop: platform not reachable, asking again later");
  after(lanes, delayMs, () => void track(lanes, recoverPendingExit(lanes, recordNo, attempt + 1)));
}

function exitInProgress(lanes: LanesState, recordNo: string): boolean {
  return [...lanes.exits.values()].some((c) => c.record?.recordNo === recordNo);
}
