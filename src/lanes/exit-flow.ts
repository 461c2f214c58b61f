/**
 * The exit, carried out: the stay of the read (or a settled one resumed), then the core's exit
 * route (core/exit/exit-decision.ts: a listed car held, the "no entry record" rule, or the
 * bill), a settlement made earlier, the bill; then billAtExit runs what the bill means: open
 * for nothing due, or send the pre-leave bill and start every payment path at once.
 */
import type { RequestDecisionEffect } from "../core/lane/index.js";
import { flatBill } from "../core/exit/bill-inputs.js";
import { exitBillOutcome, exitCarTypes, routeExit } from "../core/exit/exit-decision.js";
import { emit, feedDecision, show } from "./effects.js";
import { preLeaveBiz } from "./bills.js";
import { platformPlateColor } from "./numbers.js";
import { queueEntryReport } from "./passage.js";
import { earlierSettlement, resumeSettledLeftover } from "./recovery.js";
import { billWithFee, leaveOnHeld, paidByNotice, settleNothingDue } from "./settlement-inputs.js";
import { findStay, fixedCarFor } from "./stays.js";
import { newExit, temporaryTypes, type ExitCtx, type LanesState } from "./lane-state.js";

export async function decideExit(lanes: LanesState, request: RequestDecisionEffect): Promise<void> {
  const { store, config } = lanes.deps;
  const atMs = request.atMs;
  // Released by hand before any plate came (unreadExit) and the read came late, while the
  // release was being written: the release stands; the attendant's open follows.
  if (lanes.exits.get(request.txId)?.phase === "settled") return;
  const ctx = newExit(lanes, {
    laneId: request.laneId,
    txId: request.txId,
    plate: request.plate,
    atMs,
    phase: "deciding",
    path: "awaiting-payment",
    plateColor: platformPlateColor(request.color),
  });
  lanes.exits.set(request.txId, ctx);

  const found = findStay(lanes, request.plate, request.laneId);
  ctx.record = found.record;
  ctx.matchedBy = found.by;
  if (!found.record && request.plate) {
    ctx.record = await resumeSettledLeftover(lanes, request.plate, request.laneId, atMs);
    if (ctx.record) ctx.matchedBy = "exact";
  }
  if (found.by === "fuzzy")
    emit(lanes, { type: "plate-fuzzy-matched", laneId: request.laneId, plate: request.plate, recordNo: found.record?.recordNo, matched: found.record?.plate });

  const route = routeExit(
    request.plate,
    { hasStay: ctx.record !== undefined, deniedOut: request.plate ? store.blacklistFor(request.plate, atMs).some((entry) => entry.denyOut) : false },
    config.policy.exit.noRecord,
  );
  if (route.kind === "held") {
    // Held with its stay attached: an attendant who releases it by hand finishes that stay
    // and reports it, with the bill it would have paid.
    ctx.phase = "held";
    show(lanes, request.laneId, { kind: "denied", plate: request.plate });
    emit(lanes, { type: "blacklisted-at-exit", laneId: request.laneId, plate: request.plate, recordNo: ctx.record?.recordNo, alarm: true });
    feedDecision(lanes, request, { verdict: route.verdict, reason: route.reason });
    if (ctx.record) {
      ctx.bill = await lanes.billFor(ctx.record, atMs, request.laneId);
      ctx.dueFen = ctx.bill.paidFee;
    }
    return;
  }

  if (route.kind !== "bill" || !ctx.record) {
    const rule = config.policy.exit.noRecord;
    emit(lanes, {
      type: "no-entry-record",
      laneId: request.laneId,
      plate: request.plate,
      reason: rule.mode,
      ...(found.by === "none" && found.ambiguous ? { candidates: found.ambiguous } : {}),
    });
    if (route.kind !== "charge") {
      ctx.phase = "awaiting";
      ctx.path = "attendant";
      show(lanes, request.laneId, { kind: "attendantCalled", ...(request.plate ? { plate: request.plate } : {}) });
      feedDecision(lanes, request, { verdict: "await", reason: "no-entry-record" });
      return;
    }
    // Charge the flat amount: a stay is made for it so the exit report has a recordNo. While
    // the lot is apart the car may have entered at a box this one cannot hear: the stay
    // is provisional, its reports held until the lot is back (src/lot/provisional-exits.ts).
    const provisional = lanes.deps.lotApart?.() === true;
    const recordNo = lanes.numbers.recordNo(request.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
    ctx.record = await store.addInPark({
      recordNo,
      plate: request.plate,
      plateColor: platformPlateColor(request.color),
      laneId: request.laneId,
      enterAtMs: atMs,
      vehicleType: "temporary",
      carType: ctx.carType,
      carSubType: ctx.carSubType,
      source: "manual",
      entryReport: "none",
      extra: { noEntryRecord: true },
      ...(provisional ? { provisional: true } : {}),
    });
    if (provisional) emit(lanes, { type: "lot-provisional-exit", laneId: request.laneId, plate: request.plate, recordNo });
    // Its entry report goes before the bill, so the platform knows the stay it is asked
    // to bill (delivered, or tried once, within a short bound: the car is waiting).
    await queueEntryReport(lanes, ctx.record);
    const { outbox } = lanes.deps;
    let bounded: NodeJS.Timeout | undefined;
    // (A provisional stay's entry report is held: nothing to wait for.)
    if (!provisional) await Promise.race([outbox.whenIdle(), new Promise((resolve) => (bounded = setTimeout(resolve, Math.min(1000, config.platform.deadlines.preLeaveMs))))]);
    clearTimeout(bounded);
    if (lanes.stopped) return;
    ctx.record = store.getInPark(ctx.record.recordNo) ?? ctx.record;
    ctx.dueFen = route.amountFen;
    ctx.bill = flatBill({ payableFen: route.amountFen, discountFen: 0, paidFen: route.amountFen, prepaidFen: 0 });
  } else {
    Object.assign(ctx, exitCarTypes(ctx.record, undefined, ctx.dueFen, temporaryTypes(lanes)));
    const earlier = await earlierSettlement(lanes, ctx.record, atMs);
    ctx.record = earlier.record;
    if (earlier.settlement) {
      // Paid (or released) already — the open was cut short by a stop, or the car backed
      // out after paying — and back within the grace: it leaves on that settlement, not a
      // second bill.
      const s = earlier.settlement;
      ctx.bill = flatBill(s);
      ctx.dueFen = s.paidFen;
      await leaveOnHeld(lanes, ctx, s);
      return;
    }
    const record = ctx.record;
    ctx.bill = await lanes.billFor(record, atMs, request.laneId);
    ctx.dueFen = ctx.bill.paidFee;
    Object.assign(ctx, exitCarTypes(record, fixedCarFor(lanes, record.plate, atMs), ctx.dueFen, temporaryTypes(lanes)));
  }
  await billAtExit(lanes, ctx);
}

/** The exit bill is known: open for nothing due, or start every payment path at once. */
async function billAtExit(lanes: LanesState, ctx: ExitCtx): Promise<void> {
  const { config, platform } = lanes.deps;
  const record = ctx.record!;
  const bill = ctx.bill!;
  // A payment notice that came while this bill was being made (quoting only the recordNo):
  // it settles the exit now, unless the bill already counted it as a prepayment.
  const outcome = exitBillOutcome({ paidFee: ctx.dueFen, prepaidFee: bill.prepaidFee }, record, ctx.earlyPayment, config.policy.exit);
  if (outcome.kind === "early-payment" && ctx.earlyPayment) {
    await paidByNotice(lanes, ctx, ctx.earlyPayment, { keptWhileDeciding: true });
    return;
  }
  if (outcome.kind === "nothing-due") {
    if (outcome.pushZeroBill) {
      ctx.plateId = lanes.numbers.plateId(ctx.laneId, ctx.atMs);
      void platform.preLeaveNotify(preLeaveBiz(lanes, ctx, {}), { deadlineMs: config.platform.deadlines.preLeaveMs });
    }
    // Through the settlement machine (effects-executor.ts): written, then opened as free or prepaid.
    await settleNothingDue(lanes, ctx, bill);
    return;
  }

  const plateId = lanes.numbers.plateId(ctx.laneId, ctx.atMs);
  ctx.plateId = plateId;
  lanes.byPlateId.set(plateId, ctx);
  // Gone, or released by hand (the manualOpen button) while the bill was being prepared.
  if (!lanes.exits.has(ctx.txId) || ctx.phase !== "deciding") return;
  // Through the settlement machine (effects-executor.ts): the bill goes on the wire first, its
  // durable copy (with the plateId) is written while it is in flight, and the board, the event
  // and the machine's "await" follow; the answer decides (paid, awaiting payment, cash).
  await billWithFee(lanes, ctx, bill);
}
