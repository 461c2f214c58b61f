/**
 * Barrier machine (hw/wiring.md §2; docs/architecture.md "How one car travels through the box",
 * step 7). Pure:
 * `stepBarrier(state, input, settings) → { state, effects }`.
 *
 * State (`BarrierState`): `position` ∈ closed | opening | open | closing | fault, the safety
 * loop's presence (`loopB`), how many allowed passages are still owed, whether a vehicle has
 * been on loopB since the last open, a pending close, running timers, and until when each
 * relay output is on (so the machine never re-triggers or overlaps its own pulses).
 *
 * Inputs (`BarrierInput`):
 *   { kind: "open", reason, atMs, txId? }          lift for one passage (reason is mandatory)
 *   { kind: "close", reason, atMs }                close as soon as it is safe (attendant)
 *   { kind: "withdraw", reason, atMs, txId? }      one allowed passage will not happen (car backed out)
 *   { kind: "loopB", occupied, atMs }              debounced safety-loop presence
 *   { kind: "limit", which: "opened"|"closed", level, atMs }   limit-switch edge (ignored unless configured)
 *   { kind: "timer", id, atMs }
 *
 * Effects (`BarrierEffect`):
 *   { kind: "pulse", output: "relayOpen"|"relayClose"|"relayStop", ms, reason }  on now, off after ms
 *   { kind: "release", output }       end a pulse early (the opposite command follows at once)
 *   { kind: "startTimer", id, ms } / { kind: "cancelTimer", id }
 *   { kind: "event", type: BarrierEventType, atMs, reason?, commanded?, during? }
 *
 * Rules (the property tests prove them):
 * - Every close goes through `closeNow`, which refuses while loopB is occupied: the close is
 *   remembered and issued when the loop clears. No other path emits relayClose.
 * - A vehicle on loopB while closing re-opens (anti-smash), reason "safety".
 * - After a passage (loopB on, then off) the barrier closes at once when no further passage is
 *   owed (anti-tailgate). Each open request owes one passage, so a second car allowed while the
 *   first is still passing keeps the arm up for both.
 * - The reclose timer (`recloseMs`) closes an open barrier nobody drove through.
 * - Without limit switches the position follows the commands and `travelTimeMs`; with them, a
 *   travel that has not reached its limit after `travelTimeoutMs` is a fault: one event, one
 *   STOP pulse, no retries. Only a new command or a limit switch leaves `fault`.
 * - A limit switch reaching its end unasked (the gate's own remote, its obstruction reversal)
 *   moves the state there: the switch is the truth, the last command is not.
 * - Pulses never overlap: an opposite command releases the running pulse first; a repeat of the
 *   same command while its pulse is on is not re-sent.
 */
import { cancelTimer, startTimer, type TimerEffect, type TimerInput } from "../loops/timers.js";

export type BarrierPosition = "closed" | "opening" | "open" | "closing" | "fault";
export type RelayOutput = "relayOpen" | "relayClose" | "relayStop";
export const relayOutputs: readonly RelayOutput[] = ["relayOpen", "relayClose", "relayStop"];

export interface BarrierSettings {
  relayPulseMs: number;
  travelTimeMs: number;
  travelTimeoutMs: number;
  recloseMs: number;
  /** Which limit switches are wired (config inputs barrierOpened / barrierClosed). */
  limitSwitches: { opened: boolean; closed: boolean };
}

export const defaultBarrierSettings: BarrierSettings = {
  relayPulseMs: 500,
  travelTimeMs: 3000,
  travelTimeoutMs: 8000,
  recloseMs: 30_000,
  limitSwitches: { opened: false, closed: false },
};

export interface BarrierState {
  readonly position: BarrierPosition;
  readonly loopB: boolean;
  /** Allowed passages not yet driven through. */
  readonly passagesOwed: number;
  /** A vehicle has been on loopB since the barrier last started opening. */
  readonly vehicleSeen: boolean;
  /** A close was asked for but had to wait (loopB occupied, or still opening). */
  readonly closePending: string | null;
  readonly seq: number;
  readonly travelTimer: string | null;
  readonly recloseTimer: string | null;
  /** Until when each output is on (epoch ms), null when off. */
  readonly pulseUntil: Readonly<Record<RelayOutput, number | null>>;
  readonly lastOpenReason: string | null;
}

export type BarrierInput =
  | { kind: "open"; reason: string; atMs: number; txId?: string }
  | { kind: "close"; reason: string; atMs: number }
  | { kind: "withdraw"; reason: string; atMs: number; txId?: string }
  | { kind: "loopB"; occupied: boolean; atMs: number }
  | { kind: "limit"; which: "opened" | "closed"; level: 0 | 1; atMs: number }
  | TimerInput;

export interface PulseEffect {
  kind: "pulse";
  output: RelayOutput;
  ms: number;
  reason: string;
}

export interface ReleaseEffect {
  kind: "release";
  output: RelayOutput;
}

export type BarrierEventType = "barrierOpening" | "barrierOpened" | "barrierClosing" | "barrierClosed" | "barrierReopened" | "barrierFault" | "closeDeferred";

export interface BarrierEvent {
  kind: "event";
  type: BarrierEventType;
  atMs: number;
  reason?: string;
  /** False when a limit switch reported a move the machine did not command. */
  commanded?: boolean;
  during?: "opening" | "closing";
  txId?: string;
}

export type BarrierEffect = PulseEffect | ReleaseEffect | TimerEffect | BarrierEvent;

export interface BarrierStep {
  state: BarrierState;
  effects: BarrierEffect[];
}

export function initBarrier(position: "closed" | "open" = "closed"): BarrierState {
  return {
    position,
    loopB: false,
    passagesOwed: 0,
    vehicleSeen: false,
    closePending: null,
    seq: 0,
    travelTimer: null,
    recloseTimer: null,
    pulseUntil: { relayOpen: null, relayClose: null, relayStop: null },
    lastOpenReason: null,
  };
}

export function stepBarrier(state: BarrierState, input: BarrierInput, settings: BarrierSettings): BarrierStep {
  const fx: BarrierEffect[] = [];
  const s = settle(state, input.atMs);
  switch (input.kind) {
    case "open":
      return { state: onOpen(s, input.reason, input.atMs, settings, fx, input.txId), effects: fx };
    case "close":
      return { state: onClose(s, input.reason, input.atMs, settings, fx), effects: fx };
    case "withdraw":
      return { state: onWithdraw(s, input.reason, input.atMs, settings, fx), effects: fx };
    case "loopB":
      if (input.occupied === s.loopB) return { state: s, effects: fx }; // no change, nothing to do
      return { state: input.occupied ? onLoopBOccupied(s, input.atMs, settings, fx) : onLoopBClear(s, input.atMs, settings, fx), effects: fx };
    case "limit":
      return { state: onLimit(s, input.which, input.level, input.atMs, settings, fx), effects: fx };
    case "timer":
      return { state: onTimer(s, input.id, input.atMs, settings, fx), effects: fx };
    default:
      return { state, effects: fx };
  }
}

/** Forget pulses that have already ended by the time of this input. */
function settle(state: BarrierState, atMs: number): BarrierState {
  const p = state.pulseUntil;
  if ((p.relayOpen === null || p.relayOpen > atMs) && (p.relayClose === null || p.relayClose > atMs) && (p.relayStop === null || p.relayStop > atMs)) return state;
  const off = (until: number | null): number | null => (until !== null && until <= atMs ? null : until);
  return { ...state, pulseUntil: { relayOpen: off(p.relayOpen), relayClose: off(p.relayClose), relayStop: off(p.relayStop) } };
}

function onOpen(s: BarrierState, reason: string, atMs: number, settings: BarrierSettings, fx: BarrierEffect[], txId?: string): BarrierState {
  const owed = s.passagesOwed + 1;
  switch (s.position) {
    case "opening":
      return { ...s, passagesOwed: owed, closePending: null, lastOpenReason: reason };
    case "open": {
      // A fresh allowance deserves the full reclose time.
      const next = { ...s, passagesOwed: owed, closePending: null, lastOpenReason: reason };
      return s.loopB ? next : armReclose(next, settings, fx);
    }
    case "closed":
    case "closing":
    case "fault":
      return openNow({ ...s, passagesOwed: owed }, reason, atMs, settings, fx, s.position === "closing" ? "barrierReopened" : "barrierOpening", txId);
  }
}

function onClose(s: BarrierState, reason: string, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  const next = { ...s, passagesOwed: 0 };
  switch (s.position) {
    case "closed":
    case "closing":
      return next;
    case "opening":
      fx.push({ kind: "event", type: "closeDeferred", atMs, reason });
      return { ...next, closePending: reason };
    case "open":
    case "fault":
      return closeNow(next, reason, atMs, settings, fx);
  }
}

function onWithdraw(s: BarrierState, reason: string, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  const owed = Math.max(0, s.passagesOwed - 1);
  const next = { ...s, passagesOwed: owed };
  if (owed > 0) return next;
  if (s.position === "open") return closeNow(next, reason, atMs, settings, fx);
  if (s.position === "opening") return { ...next, closePending: reason };
  return next;
}

function onLoopBOccupied(s: BarrierState, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  const next: BarrierState = { ...s, loopB: true };
  switch (s.position) {
    case "closed":
      return next;
    case "closing":
      // Anti-smash: a vehicle under a closing arm re-opens it.
      return openNow({ ...next, vehicleSeen: true }, "safety", atMs, settings, fx, "barrierReopened");
    case "open":
      return { ...cancelReclose(next, fx), vehicleSeen: true };
    case "opening":
    case "fault":
      return { ...next, vehicleSeen: true };
  }
}

function onLoopBClear(s: BarrierState, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  let next: BarrierState = { ...s, loopB: false };
  if (s.position === "closed" || s.position === "closing") return next;
  // In fault only an explicit close acts (no automatic moves on a barrier we lost track of).
  if (s.position === "fault") return next.closePending !== null ? closeNow(next, next.closePending, atMs, settings, fx) : next;
  if (next.vehicleSeen) {
    // A passage: one allowance used.
    next = { ...next, vehicleSeen: false, passagesOwed: Math.max(0, next.passagesOwed - 1) };
    if (next.passagesOwed === 0 && next.closePending === null) next = { ...next, closePending: "passage" };
  }
  if (s.position === "opening") return next; // decided when the arm is up
  if (next.closePending !== null) return closeNow(next, next.closePending, atMs, settings, fx);
  if (s.position === "open") return armReclose(next, settings, fx);
  return next;
}

function onLimit(s: BarrierState, which: "opened" | "closed", level: 0 | 1, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  if (!settings.limitSwitches[which] || level !== 1) return s;
  if (which === "opened") {
    if (s.position === "open") return s;
    return reachedOpen(s, atMs, settings, fx, s.position === "opening");
  }
  if (s.position === "closed") return s;
  return reachedClosed(s, atMs, fx, s.position === "closing");
}

function onTimer(s: BarrierState, id: string, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  if (id === s.travelTimer) {
    const next = { ...s, travelTimer: null };
    if (s.position === "opening") {
      return settings.limitSwitches.opened ? travelFault(next, "opening", atMs, settings, fx) : reachedOpen(next, atMs, settings, fx, true);
    }
    if (s.position === "closing") {
      return settings.limitSwitches.closed ? travelFault(next, "closing", atMs, settings, fx) : reachedClosed(next, atMs, fx, true);
    }
    return next;
  }
  if (id === s.recloseTimer) {
    const next = { ...s, recloseTimer: null };
    if (s.position !== "open" || s.loopB) return next;
    return closeNow({ ...next, passagesOwed: 0 }, "reclose", atMs, settings, fx);
  }
  return s;
}

function reachedOpen(s: BarrierState, atMs: number, settings: BarrierSettings, fx: BarrierEffect[], commanded: boolean): BarrierState {
  let next: BarrierState = { ...cancelTravel(s, fx), position: "open" };
  if (!commanded) next = { ...next, vehicleSeen: next.loopB };
  fx.push({ kind: "event", type: "barrierOpened", atMs, commanded });
  if (next.loopB) return next; // wait for the loop to clear
  if (next.closePending !== null) return closeNow(next, next.closePending, atMs, settings, fx);
  return armReclose(next, settings, fx);
}

function reachedClosed(s: BarrierState, atMs: number, fx: BarrierEffect[], commanded: boolean): BarrierState {
  const next = cancelReclose(cancelTravel(s, fx), fx);
  fx.push({ kind: "event", type: "barrierClosed", atMs, commanded });
  return { ...next, position: "closed", passagesOwed: 0, vehicleSeen: false, closePending: null };
}

function travelFault(s: BarrierState, during: "opening" | "closing", atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  // One event, one STOP to spare the motor; no automatic retry (a jammed arm needs a person).
  let next = cancelReclose(s, fx);
  next = pulse(next, "relayStop", "travelTimeout", atMs, settings, fx);
  fx.push({ kind: "event", type: "barrierFault", atMs, during, reason: "travelTimeout" });
  return { ...next, position: "fault" };
}

function openNow(
  s: BarrierState,
  reason: string,
  atMs: number,
  settings: BarrierSettings,
  fx: BarrierEffect[],
  eventType: "barrierOpening" | "barrierReopened",
  txId?: string,
): BarrierState {
  let next = cancelReclose(cancelTravel(s, fx), fx);
  next = pulse(next, "relayOpen", reason, atMs, settings, fx);
  const event: BarrierEvent = { kind: "event", type: eventType, atMs, reason };
  if (txId !== undefined) event.txId = txId;
  fx.push(event);
  next = armTravel(next, "opened", settings, fx);
  return { ...next, position: "opening", closePending: null, vehicleSeen: next.loopB, lastOpenReason: reason };
}

/** The only path to a close command. Refuses while the safety loop is occupied. */
function closeNow(s: BarrierState, reason: string, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  if (s.loopB) {
    fx.push({ kind: "event", type: "closeDeferred", atMs, reason });
    return { ...s, closePending: reason };
  }
  let next = cancelReclose(cancelTravel(s, fx), fx);
  next = pulse(next, "relayClose", reason, atMs, settings, fx);
  fx.push({ kind: "event", type: "barrierClosing", atMs, reason });
  next = armTravel(next, "closed", settings, fx);
  return { ...next, position: "closing", passagesOwed: 0, closePending: null, vehicleSeen: false };
}

function pulse(s: BarrierState, output: RelayOutput, reason: string, atMs: number, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  const until: Record<RelayOutput, number | null> = { ...s.pulseUntil };
  for (const other of relayOutputs) {
    if (other !== output && until[other] !== null) {
      fx.push({ kind: "release", output: other });
      until[other] = null;
    }
  }
  if (until[output] === null) {
    fx.push({ kind: "pulse", output, ms: settings.relayPulseMs, reason });
    until[output] = atMs + settings.relayPulseMs;
  }
  return { ...s, pulseUntil: until };
}

function armTravel(s: BarrierState, limit: "opened" | "closed", settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  const seq = s.seq + 1;
  const id = `barrier/travel/${seq}`;
  fx.push(startTimer(id, settings.limitSwitches[limit] ? settings.travelTimeoutMs : settings.travelTimeMs));
  return { ...s, seq, travelTimer: id };
}

function cancelTravel(s: BarrierState, fx: BarrierEffect[]): BarrierState {
  if (s.travelTimer === null) return s;
  fx.push(cancelTimer(s.travelTimer));
  return { ...s, travelTimer: null };
}

function armReclose(s: BarrierState, settings: BarrierSettings, fx: BarrierEffect[]): BarrierState {
  const cleared = cancelReclose(s, fx);
  const seq = cleared.seq + 1;
  const id = `barrier/reclose/${seq}`;
  fx.push(startTimer(id, settings.recloseMs));
  return { ...cleared, seq, recloseTimer: id };
}

function cancelReclose(s: BarrierState, fx: BarrierEffect[]): BarrierState {
  if (s.recloseTimer === null) return s;
  fx.push(cancelTimer(s.recloseTimer));
  return { ...s, recloseTimer: null };
}
