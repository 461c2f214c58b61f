/**
 * What a person does at a lane (the booth's buttons, the local API, the panel, the fleet, the
 * platform's manual raise): open, close, cash paid, cancel. Whatever the car under the arm
 * needs on disk is written before the barrier moves for it: a refused entry gets its stay, an
 * exit is settled as a manual release.
 */
import { emit, track } from "./effects.js";
import { paidOnlineExit, paidOnlineRefusal } from "./payments.js";
import { manualRelease, payCash, releaseByHand } from "./settlement-inputs.js";
import { awaitingExit, billUnanswered, newExit, temporaryTypes, type CommandResult, type EntryCtx, type ExitCtx, type LanesState } from "./lane-state.js";

/** One command at a lane (open, close, cash-paid, cancel; anything else is refused with E_BAD_COMMAND). */
export function command(lanes: LanesState, laneId: string, name: string, operator: string, reason: string): CommandResult {
  const runner = lanes.runners.get(laneId);
  const lane = lanes.configs.get(laneId);
  if (!runner || !lane) return { ok: false, code: "E_LANE_UNKNOWN", message: `no lane ${laneId}` };
  const atMs = lanes.deps.clock.now();
  emit(lanes, { type: "attendant-command", laneId, command: name, operator, reason });
  switch (name) {
    case "open": {
      const ctx = awaitingExit(lanes, laneId);
      if (ctx) {
        void track(lanes, releaseByHand(lanes, ctx, operator, reason));
        return { ok: true, detail: `released ${ctx.plate} by hand` };
      }
      openByHand(lanes, laneId, `manual: ${reason}`, operator);
      return { ok: true, detail: "opening" };
    }
    case "close":
      runner.feed({ kind: "close", reason: `manual: ${reason}`, operator, atMs });
      return { ok: true, detail: "closing once the safety loop is clear" };
    case "cash-paid": {
      if (lane.direction !== "out") return { ok: false, code: "E_NOT_EXIT", message: `${laneId} is not an exit lane` };
      const paidOnline = paidOnlineExit(lanes, laneId);
      if (paidOnline) return paidOnlineRefusal(paidOnline.plate);
      const ctx = awaitingExit(lanes, laneId);
      if (!ctx) return { ok: false, code: "E_NO_VEHICLE", message: "no car is awaiting payment on this lane" };
      void track(lanes, payCash(lanes, ctx, operator, reason));
      return { ok: true, detail: billUnanswered(ctx) ? `asking the platform once more, then cash ${ctx.dueFen} fen for ${ctx.plate}` : `cash ${ctx.dueFen} fen for ${ctx.plate}` };
    }
    case "cancel": {
      const tx = runner.currentTx();
      if (!tx) return { ok: false, code: "E_NO_VEHICLE", message: "no transaction on this lane" };
      runner.feed({ kind: "cancel", txId: tx.txId, atMs, reason, operator });
      return { ok: true, detail: `cancelled ${tx.plate ?? tx.txId}` };
    }
    default:
      return { ok: false, code: "E_BAD_COMMAND", message: `unknown command ${name}` };
  }
}

/**
 * The attendant's cash confirmation with its outcome (the API waits for it): refused with
 * E_PAID_ONLINE when the platform collected the bill, also when asking it once more (a bill
 * whose call timed out) finds it paid.
 */
export async function cashPaid(lanes: LanesState, laneId: string, operator: string, reason: string): Promise<CommandResult> {
  const first = command(lanes, laneId, "cash-paid", operator, reason);
  if (!first.ok) return first;
  const ctx = [...lanes.exits.values()].find((c) => c.laneId === laneId && c.cashCheck !== undefined);
  return ctx?.cashCheck ?? first;
}

/** An open by a person (API, fleet, the platform's manual raise): what it needs written first, then the open. */
export function openByHand(lanes: LanesState, laneId: string, reason: string, operator: string): void {
  const runner = lanes.runners.get(laneId);
  if (!runner) return;
  const open = () => runner.feed({ kind: "open", reason, operator, atMs: lanes.deps.clock.now() });
  const ready = prepareAttendantOpen(lanes, laneId, operator, reason);
  if (!ready) open();
  else void track(lanes, ready.catch((error: unknown) => lanes.log.error({ err: error, laneId }, "write before the attendant's open failed; opening anyway")).then(open));
}

/**
 * An attendant is about to lift the arm (the manualOpen button, an API open): whatever the
 * car under it needs on disk is written first, so the record is durable before the barrier
 * moves — a refused entry gets its stay, a pending platform confirmation is answered "allow"
 * and its record written, an exit is settled as a manual release. Undefined when nothing
 * needs writing (the open goes at once).
 */
export function prepareAttendantOpen(lanes: LanesState, laneId: string, operator: string, reason: string): Promise<void> | undefined {
  const lane = lanes.configs.get(laneId);
  if (!lane) return undefined;
  if (lane.direction === "out") {
    const exit = [...lanes.exits.values()].find((c) => c.laneId === laneId && c.phase !== "settled") ?? unreadExit(lanes, laneId);
    return exit ? manualRelease(lanes, exit, operator, reason) : undefined;
  }
  const entry = [...lanes.entries.values()].find((c) => c.laneId === laneId && (c.phase === "denied" || c.phase === "confirming"));
  if (!entry) return undefined;
  if (entry.phase === "confirming") {
    // The decision goes on as if the platform had allowed: its record, then "allow".
    entry.confirm?.("allow", operator);
    return lanes.deciding.get(entry.txId)?.then(() => undefined);
  }
  return manualEntry(lanes, entry, operator, reason, lanes.deps.clock.now());
}

/**
 * The car on the exit's loop whose plate was never read (the camera gave up: plateTimeout)
 * and so has no decision: an exit of its own, so an attendant's release makes its stay
 * (under a virtual plate) and the passage reports it like any hand release.
 */
function unreadExit(lanes: LanesState, laneId: string): ExitCtx | undefined {
  const tx = lanes.runners.get(laneId)?.currentTx();
  if (!tx || tx.phase !== "waiting" || tx.plate !== null || lanes.exits.has(tx.txId)) return undefined;
  const ctx = newExit(lanes, { laneId, txId: tx.txId, plate: "", atMs: lanes.deps.clock.now(), phase: "awaiting", path: "attendant" });
  lanes.exits.set(tx.txId, ctx);
  return ctx;
}

/**
 * An attendant let a refused car in (lot full, blacklisted, platform refused): it gets a stay
 * like any other, so its exit finds a record and the platform hears of it. Written before the
 * open (prepareAttendantOpen); a pending platform confirmation is answered by the
 * attendant's open instead.
 */
export async function manualEntry(lanes: LanesState, ctx: EntryCtx, operator: string, reason: string, atMs: number): Promise<void> {
  if (ctx.phase === "confirming") {
    ctx.confirm?.("allow", operator);
    return;
  }
  if (ctx.phase !== "denied" || !ctx.plate) return;
  const { store } = lanes.deps;
  const recordNo = ctx.recordNo ?? lanes.numbers.recordNo(ctx.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
  ctx.recordNo = recordNo;
  ctx.phase = "allowed";
  const { carType, carSubType } = temporaryTypes(lanes);
  const written = store.addInPark({
    recordNo,
    plate: ctx.plate,
    laneId: ctx.laneId,
    enterAtMs: atMs,
    vehicleType: "temporary",
    carType,
    carSubType,
    source: "manual",
    entryReport: "none",
    extra: { manual: { operator, reason } },
  });
  // A marker for stop() to wait on; the write's own failure is thrown by the await below.
  ctx.written = written.catch(() => undefined);
  await written;
  emit(lanes, { type: "entry-allowed", laneId: ctx.laneId, plate: ctx.plate, recordNo, reason: "manual", operator });
}
