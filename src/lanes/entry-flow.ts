/**
 * The entry, carried out: the lot's snapshot of the plate (lists, stays, its registered car,
 * free spaces) goes to the core's entry decision (core/entry/entry-decision.ts); this runs
 * what it says: the platform's confirmation (preEnterNotify, then remoteDev), the in-park
 * record made durable before "allow" is fed, the board and the events. Also the answer to an
 * unlicensed car's entry request.
 */
import type { LaneMessage } from "../io/display/messages.js";
import type { RequestDecisionEffect } from "../core/lane/index.js";
import { formatWireTime } from "../platform/wire.js";
import { after, emit, feedDecision, show } from "./effects.js";
import { platformPlateColor } from "./numbers.js";
import { fixedCarFor } from "./stays.js";
import { decideEntry as decideEntryCore, type EntrySnapshot, type PreEnterReason } from "../core/entry/entry-decision.js";
import { temporaryTypes, type EntryCtx, type LanesState, type UnlicensedAnswer } from "./lane-state.js";

export async function decideEntry(lanes: LanesState, request: RequestDecisionEffect): Promise<void> {
  const { store, config } = lanes.deps;
  const plate = request.plate;
  const ctx: EntryCtx = { laneId: request.laneId, txId: request.txId, plate, source: request.source, recordNo: undefined, phase: "deciding" };
  lanes.entries.set(request.txId, ctx);
  const atMs = request.atMs;
  const deny = (reason: string, message: LaneMessage, unlicensedReason: "lot-full" | "denied"): void => {
    ctx.phase = "denied";
    show(lanes, request.laneId, message);
    emit(lanes, { type: "entry-denied", laneId: request.laneId, plate, reason });
    feedDecision(lanes, request, { verdict: "deny", reason });
    answerUnlicensed(lanes, plate, request.laneId, { ok: false, reason: unlicensedReason, msg: `entry refused: ${reason}` });
  };

  // The lot as it stands now (the registered car only when it counts: a camera read).
  const listed = plate ? store.blacklistFor(plate, atMs) : [];
  const already = plate ? store.findInParkByPlate(plate) : [];
  const lot: EntrySnapshot = {
    listed,
    inPark: already.map((record) => record.recordNo),
    fixedCar: plate && request.source !== "unlicensed" ? fixedCarFor(lanes, plate, atMs) : undefined,
    freeSpaces: freeSpaces(lanes),
  };
  const decision = decideEntryCore(request, lot, {
    duplicateEntry: config.policy.entry.duplicateEntry,
    confirmWithPlatform: config.policy.entry.confirmWithPlatform,
    temporaryTypes: temporaryTypes(lanes),
  });
  if (decision.verdict === "deny") return deny(decision.reason, decision.message, decision.unlicensedReason);
  const { carType, carSubType } = decision;

  const recordNo = lanes.numbers.recordNo(request.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
  ctx.recordNo = recordNo;

  if (decision.verdict === "confirm") {
    const verdict = await confirmEntry(lanes, ctx, request, recordNo, carType, carSubType, decision.preEnterReason ?? "confirm-required");
    if (!lanes.entries.has(request.txId)) return;
    if (verdict === "deny") return deny("platform-refused", { kind: "denied", plate }, "denied");
  }
  if (!lanes.entries.has(request.txId)) return;

  // Durable first: the record exists on disk before the barrier moves for it.
  await store.addInPark({
    recordNo,
    plate,
    plateColor: platformPlateColor(request.color),
    laneId: request.laneId,
    enterAtMs: atMs,
    vehicleType: decision.vehicleType,
    carType,
    carSubType,
    source: decision.source,
    entryReport: "none",
    extra: {
      plateRaw: request.plateRaw,
      ...(decision.groupKey ? { groupKey: decision.groupKey } : {}),
      ...(decision.groupOverflow ? { groupOverflow: true } : {}),
      ...(request.confidence === undefined ? {} : { confidence: request.confidence }),
    },
  });
  if (!lanes.entries.has(request.txId)) {
    // The car backed out while the record was being written.
    await store.cancelStay(recordNo, { reason: "backed-out" });
    return;
  }
  for (const old of decision.replaces) {
    await store.cancelStay(old, { reason: "re-entry", atMs }).catch((error: unknown) => lanes.log.warn({ err: error, recordNo: old }, "old stay not closed"));
    emit(lanes, { type: "stay-replaced", laneId: request.laneId, plate, recordNo: old, reason: "re-entry" });
  }
  ctx.phase = "allowed";
  feedDecision(lanes, request, { verdict: "allow", reason: decision.reason, recordNo });
  show(lanes, request.laneId, decision.message);
  emit(lanes, { type: "entry-allowed", laneId: request.laneId, plate, recordNo, reason: decision.carClass });
  answerUnlicensed(lanes, plate, request.laneId, { ok: true, value: { recordNo } });
}

/** Pre-entry push (3.4), then wait for the platform's remoteDev on its recordNo. */
async function confirmEntry(
  lanes: LanesState,
  ctx: EntryCtx,
  request: RequestDecisionEffect,
  recordNo: string,
  carType: number,
  carSubType: number,
  reason: PreEnterReason,
): Promise<"allow" | "deny"> {
  const { config, platform } = lanes.deps;
  ctx.phase = "confirming";
  lanes.pendingEntries.set(recordNo, ctx);
  try {
    const waitForRemote = new Promise<"allow" | "deny">((resolve) => {
      ctx.confirm = (verdict) => resolve(verdict);
      after(lanes, config.platform.deadlines.preEnterMs + config.policy.entry.confirmWaitMs, () => resolve(config.policy.entry.confirmDefault));
    });
    const result = await platform.preEnterNotify(
      {
        parkCode: config.lot.parkCode,
        recordNo,
        plateNum: request.plate,
        plateColor: platformPlateColor(request.color),
        carType,
        carSubType,
        inChannelid: lanes.configs.get(request.laneId)!.channelId,
        arriveTime: formatWireTime(request.atMs, config.lot.timeZone),
        reason,
      },
      { deadlineMs: config.platform.deadlines.preEnterMs, signal: lanes.abort.signal },
    );
    if (!result.ok && result.kind !== "business-code") {
      emit(lanes, { type: "entry-confirm-unreachable", laneId: request.laneId, plate: request.plate, reason: result.kind });
      return config.policy.entry.confirmDefault;
    }
    return await waitForRemote;
  } finally {
    lanes.pendingEntries.delete(recordNo);
    ctx.confirm = undefined;
    ctx.phase = "deciding";
  }
}

/** The lot's free spaces: its total less the stays in it (never below 0). */
export function freeSpaces(lanes: LanesState): number {
  return Math.max(0, lanes.deps.config.lot.totalSpaces - lanes.deps.store.inParkCount());
}

/** Answers the unlicensed car's entry request waiting for this lane's decision, if any. */
export function answerUnlicensed(lanes: LanesState, plate: string, laneId: string, answer: UnlicensedAnswer): void {
  const key = `${laneId}:${plate}`;
  const waiter = lanes.unlicensedWaiters.get(key);
  if (!waiter) return;
  lanes.unlicensedWaiters.delete(key);
  waiter(answer);
}
