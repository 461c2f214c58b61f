/**
 * Loop filter: raw detector edges → debounced vehicle presence (hw/wiring.md §1).
 *
 * Pure: `stepLoop(state, input, settings) → { state, effects }`. No clock, no timers: time
 * arrives on every input as `atMs` and the filter asks for timers as effects.
 *
 * State (`LoopState`): the raw level and since when, the debounced contact level, the presence
 * it stands for, a fault flag and the ids of its running timers.
 *
 * Inputs (`LoopInput`):
 *   { kind: "edge", level: 0 | 1, atMs }     a raw edge from the GPIO input (logical level)
 *   { kind: "timer", id, atMs }              a timer this filter started has expired
 *
 * Effects (`LoopEffect`):
 *   { kind: "presence", loop, occupied, atMs, edgeAtMs }     presence changed (edgeAtMs: raw edge behind it)
 *   { kind: "detectorFault", loop, fault: "stuckOn", atMs, heldMs }
 *   { kind: "detectorRecovered", loop, atMs, heldMs }
 *   { kind: "startTimer", id, ms } / { kind: "cancelTimer", id }
 *
 * How it filters:
 * - A raw level must hold `minOnMs` (rising) / `minOffMs` (falling) before the contact level
 *   follows it; a level that returns first cancels the pending change, so chatter faster than
 *   that produces no effect at all except timer bookkeeping.
 * - presence detectors: occupied = contact level.
 * - pulse detectors: each debounced contact pulse is one event. "arrival-and-departure"
 *   toggles presence per pulse; "arrival-only" sets presence and holds it `pulseHoldMs` after
 *   the last pulse. A 150 ms pulse is caught as long as `minOnMs` < 150 (default 100).
 * - A contact held on for `stuckOnLimitMs` is a detector fault ("limited presence" or a
 *   welded relay), reported once. Presence then stays occupied until the contact
 *   drops: a safety loop that cannot be trusted must keep the barrier up, not report that the
 *   car vanished. When the contact drops the fault is cleared and presence becomes free.
 */
import { cancelTimer, startTimer, type TimerEffect, type TimerInput } from "./timers.js";

export type Level = 0 | 1;

export interface LoopSettings {
  type: "presence" | "pulse";
  minOnMs: number;
  minOffMs: number;
  pulseMeaning: "arrival-and-departure" | "arrival-only";
  pulseHoldMs: number;
  stuckOnLimitMs: number;
}

/** The schema's defaults (src/config/schema.ts `detectorSchema`). */
export const defaultLoopSettings: LoopSettings = {
  type: "presence",
  minOnMs: 100,
  minOffMs: 300,
  pulseMeaning: "arrival-and-departure",
  pulseHoldMs: 5000,
  stuckOnLimitMs: 600_000,
};

export interface LoopState {
  /** Logical loop name; prefixes timer ids and names the loop in effects. */
  readonly name: string;
  readonly raw: Level;
  readonly rawSinceMs: number | null;
  readonly contact: Level;
  /** When the raw rise behind the current "on" contact happened (null while off). */
  readonly onSinceMs: number | null;
  readonly occupied: boolean;
  readonly fault: boolean;
  readonly seq: number;
  readonly debounceTimer: string | null;
  readonly stuckTimer: string | null;
  readonly holdTimer: string | null;
}

export interface EdgeInput {
  kind: "edge";
  level: Level;
  atMs: number;
}

export type LoopInput = EdgeInput | TimerInput;

export interface PresenceEffect {
  kind: "presence";
  loop: string;
  occupied: boolean;
  atMs: number;
  edgeAtMs: number;
}

export interface DetectorFaultEffect {
  kind: "detectorFault";
  loop: string;
  fault: "stuckOn";
  atMs: number;
  heldMs: number;
}

export interface DetectorRecoveredEffect {
  kind: "detectorRecovered";
  loop: string;
  atMs: number;
  heldMs: number;
}

export type LoopEffect = PresenceEffect | DetectorFaultEffect | DetectorRecoveredEffect | TimerEffect;

export interface LoopStep {
  state: LoopState;
  effects: LoopEffect[];
}

export function initLoop(name: string): LoopState {
  return {
    name,
    raw: 0,
    rawSinceMs: null,
    contact: 0,
    onSinceMs: null,
    occupied: false,
    fault: false,
    seq: 0,
    debounceTimer: null,
    stuckTimer: null,
    holdTimer: null,
  };
}

export function stepLoop(state: LoopState, input: LoopInput, settings: LoopSettings): LoopStep {
  const effects: LoopEffect[] = [];
  if (input.kind === "edge") return { state: onEdge(state, input, settings, effects), effects };
  if (input.id === state.debounceTimer) return { state: onDebounced(state, input.atMs, settings, effects), effects };
  if (input.id === state.stuckTimer) return { state: onStuck(state, input.atMs, effects), effects };
  if (input.id === state.holdTimer) return { state: onHoldExpired(state, input.atMs, effects), effects };
  // Someone else's or a stale timer: not ours to act on.
  return { state, effects };
}

function onEdge(state: LoopState, edge: EdgeInput, settings: LoopSettings, effects: LoopEffect[]): LoopState {
  if (edge.level !== 0 && edge.level !== 1) return state;
  if (edge.level === state.raw) return state; // a repeated level is not an edge
  let next: LoopState = { ...state, raw: edge.level, rawSinceMs: edge.atMs };
  if (next.debounceTimer) {
    effects.push(cancelTimer(next.debounceTimer));
    next = { ...next, debounceTimer: null };
  }
  if (edge.level === next.contact) return next; // the level came back before it counted: chatter
  const holdMs = edge.level === 1 ? settings.minOnMs : settings.minOffMs;
  if (holdMs <= 0) return applyContact(next, edge.atMs, settings, effects);
  const seq = next.seq + 1;
  const id = `${next.name}/debounce/${seq}`;
  effects.push(startTimer(id, holdMs));
  return { ...next, seq, debounceTimer: id };
}

function onDebounced(state: LoopState, atMs: number, settings: LoopSettings, effects: LoopEffect[]): LoopState {
  const next = { ...state, debounceTimer: null };
  if (next.raw === next.contact) return next;
  return applyContact(next, atMs, settings, effects);
}

/** The raw level has held long enough: the contact follows it. */
function applyContact(state: LoopState, atMs: number, settings: LoopSettings, effects: LoopEffect[]): LoopState {
  const edgeAtMs = state.rawSinceMs ?? atMs;
  let next: LoopState = { ...state, contact: state.raw, onSinceMs: state.raw === 1 ? edgeAtMs : null };
  if (next.contact === 1) {
    const seq = next.seq + 1;
    const id = `${next.name}/stuck/${seq}`;
    effects.push(startTimer(id, settings.stuckOnLimitMs - (atMs - edgeAtMs)));
    next = { ...next, seq, stuckTimer: id };
    if (settings.type === "presence") return setOccupied(next, true, atMs, edgeAtMs, effects);
    if (settings.pulseMeaning === "arrival-and-departure") return setOccupied(next, !next.occupied, atMs, edgeAtMs, effects);
    // arrival-only: every pulse (re)starts the hold.
    if (next.holdTimer) effects.push(cancelTimer(next.holdTimer));
    const holdSeq = next.seq + 1;
    const holdId = `${next.name}/hold/${holdSeq}`;
    effects.push(startTimer(holdId, settings.pulseHoldMs));
    next = { ...next, seq: holdSeq, holdTimer: holdId };
    return setOccupied(next, true, atMs, edgeAtMs, effects);
  }
  if (next.stuckTimer) {
    effects.push(cancelTimer(next.stuckTimer));
    next = { ...next, stuckTimer: null };
  }
  if (next.fault) {
    // The contact finally dropped: trust the detector again, and start from "free".
    effects.push({ kind: "detectorRecovered", loop: next.name, atMs, heldMs: heldSince(state, edgeAtMs) });
    next = { ...next, fault: false };
    return setOccupied(next, false, atMs, edgeAtMs, effects);
  }
  if (settings.type === "presence") return setOccupied(next, false, atMs, edgeAtMs, effects);
  return next; // the end of a pulse means nothing by itself
}

function onStuck(state: LoopState, atMs: number, effects: LoopEffect[]): LoopState {
  let next: LoopState = { ...state, stuckTimer: null, fault: true };
  effects.push({ kind: "detectorFault", loop: next.name, fault: "stuckOn", atMs, heldMs: heldSince(state, atMs) });
  if (next.holdTimer) {
    effects.push(cancelTimer(next.holdTimer));
    next = { ...next, holdTimer: null };
  }
  // Untrusted loop: report it occupied so nothing closes on it.
  return setOccupied(next, true, atMs, state.onSinceMs ?? atMs, effects);
}

function onHoldExpired(state: LoopState, atMs: number, effects: LoopEffect[]): LoopState {
  const next = { ...state, holdTimer: null };
  if (next.fault) return next;
  return setOccupied(next, false, atMs, atMs, effects);
}

function setOccupied(state: LoopState, occupied: boolean, atMs: number, edgeAtMs: number, effects: LoopEffect[]): LoopState {
  if (state.occupied === occupied) return state;
  effects.push({ kind: "presence", loop: state.name, occupied, atMs, edgeAtMs });
  return { ...state, occupied };
}

function heldSince(state: LoopState, atMs: number): number {
  return state.onSinceMs === null ? 0 : Math.max(0, atMs - state.onSinceMs);
}
