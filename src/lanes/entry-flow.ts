/**
 * The entry decision: blacklist, duplicate entry, fixed car and its group, free spaces, and
 * optionally the platform's confirmation (preEnterNotify, then remoteDev); the in-park record
 * is durable before "allow" is fed. Also the answer to an unlicensed car's entry request.
 */
import type { LaneMessage } from "../io/display/messages.js";
import type { RequestDecisionEffect } from "../core/lane/index.js";
import { formatWireTime } from "../platform/wire.js";
import { after, emit, feedDecision, show } from "./effects.js";
import { platformPlateColor } from "./numbers.js";
import { fixedCarFor } from "./stays.js";
import { temporaryTypes, type EntryCtx, type LanesState, type PreEnterReason, type UnlicensedAnswer } from "./lane-state.js";

export async function decideEntry(lanes: LanesState, request: RequestDecisionEffect): Promise<void> {
  const { store, config } = lanes.deps;
  const policy = config.policy.entry;
  const plate = request.plate;
  const ctx: EntryCtx = { laneId: request.laneId, txId: request.txId, plate, source: request.source, recordNo: undefined, phase: "deciding" };
  lanes.entries.set(request.txId, ctx);
  const atMs = request.atMs;
  const deny = (reason: string, message: LaneMessage): void => {
    ctx.phase = "denied";
    show(lanes, request.laneId, message);
    emit(lanes, { type: "entry-denied", laneId: request.laneId, plate, reason });
    feedDecision(lanes, request, { verdict: "deny", reason });
    answerUnlicensed(lanes, plate, request.laneId, { ok: false, reason: reason === "lot-full" ? "lot-full" : "denied", msg: `entry refused: ${reason}` });
  };

  if (!plate) return deny("no-plate", { kind: "attendantCalled" });
  if (store.blacklistFor(plate, atMs).some((entry) => entry.denyIn)) return deny("blacklisted", { kind: "denied", plate });
  const already = store.findInParkByPlate(plate);
  if (already.length > 0 && policy.duplicateEntry === "deny") return deny("already-in-park", { kind: "attendantCalled", plate });

  const fixed = request.source === "unlicensed" ? undefined : fixedCarFor(lanes, plate, atMs);
  const carClass = fixed?.pass === "free" && !fixed.groupFull ? "fixed" : "temporary";
  if (carClass === "temporary" && freeSpaces(lanes) <= 0) return deny("lot-full", { kind: "lotFull", plate });
  const { carType, carSubType } = fixed && carClass === "fixed" ? fixed : temporaryTypes(lanes);

  const recordNo = lanes.numbers.recordNo(request.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
  ctx.recordNo = recordNo;

  const confirm = policy.confirmWithPlatform === "all" || (policy.confirmWithPlatform === "temporary" && carClass === "temporary");
  if (confirm) {
    // Why the lot asks (docs/protocol.md 3.4): a listed plate (not one refused outright), a
    // monthly pass that lapsed, no space left (a fixed car may still enter), or the policy.
    const why: PreEnterReason =
      store.blacklistFor(plate, atMs).length > 0 ? "blacklist" : fixed?.pass === "temporary" ? "monthly-expired" : freeSpaces(lanes) <= 0 ? "lot-full" : "confirm-required";
    const verdict = await confirmEntry(lanes, ctx, request, recordNo, carType, carSubType, why);
    if (!lanes.entries.has(request.txId)) return;
    if (verdict === "deny") return deny("platform-refused", { kind: "denied", plate });
  }
  if (!lanes.entries.has(request.txId)) return;

  // Durable first: the record exists on disk before the barrier moves for it.
  await store.addInPark({
    recordNo,
    plate,
    plateColor: platformPlateColor(request.color),
    laneId: request.laneId,
    enterAtMs: atMs,
    vehicleType: request.source === "unlicensed" ? "unlicensed" : carClass === "fixed" ? "monthly" : "temporary",
    carType,
    carSubType,
    source: request.source === "unlicensed" ? "unlicensed" : "camera",
    entryReport: "none",
    extra: {
      plateRaw: request.plateRaw,
      ...(fixed?.groupKey ? { groupKey: fixed.groupKey } : {}),
      // Its group's spaces were all taken: this stay pays as a temporary car's, whatever its card says.
      ...(fixed?.pass === "free" && fixed.groupFull ? { groupOverflow: true } : {}),
      ...(request.confidence === undefined ? {} : { confidence: request.confidence }),
    },
  });
  if (!lanes.entries.has(request.txId)) {
    // The car backed out while the record was being written.
    await store.cancelStay(recordNo, { reason: "backed-out" });
    return;
  }
  for (const old of already) {
    await store.cancelStay(old.recordNo, { reason: "re-entry", atMs }).catch((error: unknown) => lanes.log.warn({ err: error, recordNo: old.recordNo }, "old stay not closed"));
    emit(lanes, { type: "stay-replaced", laneId: request.laneId, plate, recordNo: old.recordNo, reason: "re-entry" });
  }
  ctx.phase = "allowed";
  feedDecision(lanes, request, { verdict: "allow", reason: carClass === "fixed" ? "fixed-car" : "temporary", recordNo });
  if (carClass === "fixed" && fixed) show(lanes, request.laneId, { kind: "monthly", plate, daysLeft: fixed.daysLeft });
  else show(lanes, request.laneId, { kind: "welcome", plate });
  emit(lanes, { type: "entry-allowed", laneId: request.laneId, plate, recordNo, reason: carClass });
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
