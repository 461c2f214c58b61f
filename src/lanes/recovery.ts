/**
 * Restart recovery: what a stop cut short is finished at the next start (entry reports never
 * queued, stays settled whose car was not seen leaving, bills the platform may have answered
 * 200), and a car back at an exit on a stay settled earlier is not billed twice.
 */
import type { InParkRecord } from "../store/records.js";
import { flatBill } from "../core/exit/bill-inputs.js";
import { earlierSettlement as earlierSettlementOf, prepaymentsWithSettlement, storedSettlementOf } from "../core/settlement/settlement.js";
import { emit, track } from "./effects.js";
import { restoreExit } from "./effects-executor.js";
import { queueEntryReport } from "./passage.js";
import { rememberExit } from "./stays.js";
import { newExit, type LanesState, type StoredSettlement } from "./lane-state.js";

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
  // Exits a stop cut short, each restarted in its settlement machine (restoreStay).
  for (const record of lanes.deps.store.listInPark((r) => r.pendingExit !== undefined || r.extra?.settlement !== undefined).items) {
    void track(lanes, restoreStay(lanes, record));
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

/**
 * A stay found at start with its exit cut short, restarted in its settlement machine
 * (effects-executor.ts restoreExit) on an exit of its own, on no lane:
 * - holding a settlement: its car gets `settledHoldMs` to be read at an exit (then it leaves on
 *   it, exit-flow.ts); if not, it left during the stop and is finished as left at its bill's
 *   time (the machine's report, settledLeftover);
 * - holding a pre-leave bill and no settlement: the platform may have answered 200 and the
 *   barrier opened before the answer was written (the 200 opens first). The same bill, same
 *   plateId, is asked again; 200 settles the stay as the platform says (then held as any
 *   settled stay), another code leaves it as it is (the car did not pay that way), and no
 *   answer is asked again with backoff until the platform answers.
 * Either ends once the stay moves on without it: its car is read again (its new exit decides),
 * or the stay is gone.
 */
async function restoreStay(lanes: LanesState, record: InParkRecord): Promise<void> {
  const settlement = storedSettlementOf(record);
  const pending = record.pendingExit;
  if (settlement) {
    const laneId = lanes.configs.has(settlement.laneId) ? settlement.laneId : [...lanes.configs.values()].find((l) => l.direction === "out")?.id;
    if (!laneId) return;
    const ctx = newExit(lanes, {
      laneId,
      txId: `leftover-${record.recordNo}`,
      plate: record.plate,
      atMs: settlement.billAtMs,
      record,
      matchedBy: "exact",
      bill: flatBill(settlement),
      dueFen: settlement.paidFen,
      phase: "settled",
      path: settlement.path,
      settlement,
    });
    ctx.movedOn = () => {
      const now = lanes.deps.store.getInPark(record.recordNo);
      return !now || !storedSettlementOf(now) || exitInProgress(lanes, record.recordNo);
    };
    await restoreExit(lanes, ctx, { recordNo: record.recordNo, plate: record.plate, pendingExit: undefined, settlement });
    return;
  }
  if (!pending || exitInProgress(lanes, record.recordNo) || !lanes.configs.has(pending.laneId)) return;
  const ctx = newExit(lanes, {
    laneId: pending.laneId,
    txId: `recover-${record.recordNo}`,
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
  // Once its answer settled the stay, it is held like any settled stay (the guard above).
  ctx.movedOn = () => {
    const now = lanes.deps.store.getInPark(record.recordNo);
    if (!now || exitInProgress(lanes, record.recordNo)) return true;
    return ctx.machine?.phase === "recovering" ? now.pendingExit?.plateId !== pending.plateId || storedSettlementOf(now) !== undefined : !storedSettlementOf(now);
  };
  await restoreExit(lanes, ctx, { recordNo: record.recordNo, plate: record.plate, pendingExit: pending, settlement: undefined });
}

function exitInProgress(lanes: LanesState, recordNo: string): boolean {
  return [...lanes.exits.values()].some((c) => c.record?.recordNo === recordNo);
}
