/**
 * The attendant's plate correction: the camera misread the car waiting at a lane, the attendant
 * types the right plate, and the lane decides again with it. At an exit the car is matched to
 * the right stay and billed again (the bill it was shown is withdrawn); at an entry refused on
 * the misread the entry decision runs again, and an entry already allowed has its stay's plate
 * put right before the car passes. Every correction is audited with operator and reason, and
 * the stay keeps the plate the camera read (`extra.plateCorrection`), while its reports carry
 * the corrected one.
 */
import type { RequestDecisionEffect } from "../core/lane/index.js";
import { readPlate } from "../core/plates/index.js";
import type { InParkRecord } from "../store/records.js";
import { cancelTimer, emit, show } from "./effects.js";
import { decideEntry } from "./entry-flow.js";
import { decideExit } from "./exit-flow.js";
import type { EntryCtx, ExitCtx, LanesState } from "./lane-state.js";

export type CorrectionRefusal = "E_LANE_UNKNOWN" | "E_NO_VEHICLE" | "E_BAD_PLATE" | "E_SAME_PLATE" | "E_NOT_CORRECTABLE";

export type CorrectionResult = { ok: true; laneId: string; plate: string; readPlate: string; detail: string } | { ok: false; code: CorrectionRefusal; message: string };

export interface CorrectionRequest {
  plate: string;
  operator: string;
  reason: string;
}

/** What the stay keeps of a correction. */
interface CorrectionNote {
  readPlate: string;
  plate: string;
  laneId: string;
  operator: string;
  reason: string;
  atMs: number;
}

/** Corrects the plate of the car waiting at `laneId` and decides again; resolves once the new decision is made. */
export async function correctPlate(lanes: LanesState, laneId: string, request: CorrectionRequest): Promise<CorrectionResult> {
  const lane = lanes.configs.get(laneId);
  if (!lane) return { ok: false, code: "E_LANE_UNKNOWN", message: `no lane ${laneId}` };
  const parsed = readPlate(request.plate);
  if (!parsed.ok || parsed.noPlate) return { ok: false, code: "E_BAD_PLATE", message: `${JSON.stringify(request.plate.slice(0, 16))} is not a plate` };
  const plate = parsed.plate;
  // A decision still running for the car finishes first: the correction replaces its outcome.
  const running = [...lanes.deciding.entries()].find(([txId]) => lanes.exits.get(txId)?.laneId === laneId || lanes.entries.get(txId)?.laneId === laneId);
  // Its failure is the decision's own (lanes.ts logs it and calls the attendant); the correction decides anew.
  if (running) await running[1].catch(() => undefined);
  return lane.direction === "out" ? correctExit(lanes, laneId, plate, request) : correctEntry(lanes, laneId, plate, request);
}

async function correctExit(lanes: LanesState, laneId: string, plate: string, request: CorrectionRequest): Promise<CorrectionResult> {
  const old = [...lanes.exits.values()].find((c) => c.laneId === laneId && c.phase === "awaiting");
  if (!old) {
    const other = [...lanes.exits.values()].find((c) => c.laneId === laneId);
    if (other)
      return {
        ok: false,
        code: "E_NOT_CORRECTABLE",
        message: `the car at ${laneId} is ${other.phase === "settled" ? "settled already" : `${other.phase}`}; only a car waiting to pay can be corrected`,
      };
    return { ok: false, code: "E_NO_VEHICLE", message: "no car is waiting on this lane" };
  }
  const readPlate = old.readPlate ?? old.plate;
  // Kept: the withdrawn exit leaves under an id of its own, the car's transaction stays.
  const txId = old.txId;
  if (plate === old.plate) return { ok: false, code: "E_SAME_PLATE", message: `the plate is ${plate} already` };
  const atMs = lanes.deps.clock.now();
  audit(lanes, laneId, { readPlate, plate, laneId, operator: request.operator, reason: request.reason, atMs }, old.record?.recordNo);
  await withdrawExit(lanes, old, request.operator);
  const decision: RequestDecisionEffect = {
    kind: "requestDecision",
    txId,
    laneId,
    direction: "out",
    plate,
    plateRaw: readPlate,
    source: "attendant",
    atMs: old.atMs,
  };
  await decideAgain(lanes, decision, decideExit, () => {
    // The new exit exists as soon as the decision starts: the card shows the read plate at once.
    const next = lanes.exits.get(txId);
    if (next) next.readPlate = readPlate;
  });
  const record = lanes.exits.get(txId)?.record;
  if (record) await noteOnStay(lanes, record, { readPlate, plate, laneId, operator: request.operator, reason: request.reason, atMs });
  const now = lanes.exits.get(txId);
  return { ok: true, laneId, plate, readPlate, detail: now ? `${plate}: ${now.dueFen} fen due (${now.phase})` : `${plate}: decided` };
}

/**
 * The bill shown for the misread plate no longer stands: its re-asks stop, a payment quoting
 * it no longer finds this car (one that comes is money taken on a withdrawn bill, owed back),
 * its pending mark leaves the wrong stay, and a stay made at this exit for the misread plate
 * is cancelled.
 */
async function withdrawExit(lanes: LanesState, old: ExitCtx, operator: string): Promise<void> {
  for (const handle of old.machineTimers?.values() ?? []) cancelTimer(lanes, handle);
  old.machineTimers?.clear();
  for (const [plateId, ctx] of lanes.byPlateId) if (ctx === old) lanes.byPlateId.delete(plateId);
  lanes.exits.delete(old.txId);
  // Not "awaiting" any more, and under a transaction id of its own: a late answer to its bill
  // is not this car's payment, and nothing it still does can open the arm (the lane machine
  // knows no such transaction, and the exit flows act only on exits still on the lane).
  old.phase = "held";
  old.txId = `${old.txId}:withdrawn`;
  await old.pendingWrite;
  const record = old.record;
  if (!record) return;
  const { store } = lanes.deps;
  const current = store.getInPark(record.recordNo);
  if (!current) return;
  if (current.extra?.noEntryRecord === true && current.enterAtMs === old.atMs) {
    await store.cancelStay(record.recordNo, { reason: "plate-corrected", operator, atMs: lanes.deps.clock.now() });
    return;
  }
  if (current.pendingExit?.plateId !== undefined && current.pendingExit.plateId === old.plateId) await store.updateInPark(record.recordNo, { pendingExit: undefined });
}

async function correctEntry(lanes: LanesState, laneId: string, plate: string, request: CorrectionRequest): Promise<CorrectionResult> {
  const old = [...lanes.entries.values()].find((c) => c.laneId === laneId && (c.phase === "denied" || c.phase === "allowed"));
  if (!old) {
    const other = [...lanes.entries.values()].find((c) => c.laneId === laneId);
    if (other) return { ok: false, code: "E_NOT_CORRECTABLE", message: `the car at ${laneId} is ${other.phase}; wait for the decision` };
    return { ok: false, code: "E_NO_VEHICLE", message: "no car is waiting on this lane" };
  }
  const readPlate = old.readPlate ?? old.plate;
  if (plate === old.plate) return { ok: false, code: "E_SAME_PLATE", message: `the plate is ${plate} already` };
  const atMs = lanes.deps.clock.now();
  const note: CorrectionNote = { readPlate, plate, laneId, operator: request.operator, reason: request.reason, atMs };
  audit(lanes, laneId, note, old.recordNo);
  if (old.phase === "allowed") return allowedEntry(lanes, old, note);

  // Refused on the misread: the entry decision again, as the camera had read the right plate.
  const runner = lanes.runners.get(laneId);
  lanes.entries.delete(old.txId);
  const decision: RequestDecisionEffect = {
    kind: "requestDecision",
    txId: old.txId,
    laneId,
    direction: "in",
    plate,
    plateRaw: readPlate,
    source: "attendant",
    atMs: lanes.deps.clock.now(),
  };
  await decideAgain(lanes, decision, decideEntry, () => {
    const next = lanes.entries.get(old.txId);
    if (next) next.readPlate = readPlate;
  });
  const decided = lanes.entries.get(old.txId);
  if (decided?.phase === "allowed" && decided.recordNo) {
    const record = lanes.deps.store.getInPark(decided.recordNo);
    if (record) await noteOnStay(lanes, record, note);
    // The lane machine refused the car already (a decision is taken once): the allowed
    // entry opens as an attendant's open, the correction's operator and reason with it.
    if (runner?.currentTx()?.txId === old.txId && runner.currentTx()?.phase === "denied") {
      runner.feed({ kind: "open", reason: `plate corrected: ${request.reason}`, operator: request.operator, atMs: lanes.deps.clock.now() });
    }
  }
  return { ok: true, laneId, plate, readPlate, detail: `${plate}: ${decided?.phase ?? "decided"}` };
}

/**
 * The lane's decision once more, registered as the lane's running decision (an attendant's open
 * and a second correction wait for it; stop() waits for it briefly). A decision that fails is
 * handled as lanes.ts handles one: logged, an event, the attendant called; the API answers 500.
 */
async function decideAgain(
  lanes: LanesState,
  request: RequestDecisionEffect,
  decide: (lanes: LanesState, request: RequestDecisionEffect) => Promise<void>,
  started: () => void,
): Promise<void> {
  const deciding = decide(lanes, request);
  started();
  const settled = deciding.then(
    () => undefined,
    () => undefined,
  );
  lanes.deciding.set(request.txId, settled);
  lanes.inFlight.add(settled);
  try {
    await deciding;
  } catch (error) {
    lanes.log.error({ err: error, laneId: request.laneId, plate: request.plate }, "decision after a plate correction failed");
    emit(lanes, { type: "decision-failed", laneId: request.laneId, plate: request.plate, reason: String((error as Error)?.message ?? error) });
    show(lanes, request.laneId, { kind: "attendantCalled", plate: request.plate });
    throw error;
  } finally {
    if (lanes.deciding.get(request.txId) === settled) lanes.deciding.delete(request.txId);
    lanes.inFlight.delete(settled);
  }
}

/** Allowed on the misread and still under the arm: its stay takes the right plate before the entry report goes. */
async function allowedEntry(lanes: LanesState, ctx: EntryCtx, note: CorrectionNote): Promise<CorrectionResult> {
  ctx.readPlate = note.readPlate;
  ctx.plate = note.plate;
  const record = ctx.recordNo ? lanes.deps.store.getInPark(ctx.recordNo) : undefined;
  if (record) {
    await lanes.deps.store.updateInPark(record.recordNo, { plate: note.plate, extra: { ...record.extra, plateCorrection: note } });
  }
  return { ok: true, laneId: ctx.laneId, plate: note.plate, readPlate: note.readPlate, detail: `${note.plate}: stay ${ctx.recordNo ?? "?"} corrected` };
}

async function noteOnStay(lanes: LanesState, record: InParkRecord, note: CorrectionNote): Promise<void> {
  const current = lanes.deps.store.getInPark(record.recordNo);
  if (!current) return;
  await lanes.deps.store.updateInPark(current.recordNo, { extra: { ...current.extra, plateCorrection: note } });
}

function audit(lanes: LanesState, laneId: string, note: CorrectionNote, recordNo: string | undefined): void {
  lanes.log.info({ laneId, plate: note.plate, readPlate: note.readPlate, operator: note.operator, reason: note.reason, recordNo }, "plate corrected by the attendant");
  emit(lanes, { type: "plate-corrected", laneId, plate: note.plate, readPlate: note.readPlate, operator: note.operator, reason: note.reason, ...(recordNo ? { recordNo } : {}) });
}
