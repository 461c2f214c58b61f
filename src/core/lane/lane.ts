/**
 * One lane = two loop filters + the lane transaction machine + the barrier machine, composed
 * into one pure step: `stepLane(state, input, settings) → { state, effects }`. This is what
 * the effect runner drives, one `LaneState` per configured lane.
 *
 * Inputs (`LaneInput`):
 *   { kind: "gpio", input: InputName, level: 0|1, atMs }   raw edge of a lane input (logical level)
 *       loopA / loopB         → loop filters → presence → lane machine (and barrier for loopB)
 *       barrierOpened/Closed  → barrier limit switches
 *       manualOpen            → attendant open, reason "manual" (rising edge, 1 s lockout)
 *       cashConfirm           → `cashConfirmPressed` event for the payment policy (rising edge)
 *   plate / decision / settle / cancel / open / close      as in lane-machine.ts
 *   { kind: "timer", id, atMs }                            routed by id prefix (loopA/ loopB/ barrier/ lane/)
 *
 * Effects (`LaneEffect`):
 *   { kind: "pulse", output, ms, reason }    set the output active now, inactive after ms
 *   { kind: "release", output }              set the output inactive now (cancel its pulse timer)
 *   { kind: "startTimer", id, ms } / { kind: "cancelTimer", id }   ids are unique within one lane
 *   { kind: "requestDecision", ... }         ask the policy; answer with a `decision` input
 *   { kind: "event", type, laneId, atMs, ... }
 *   { kind: "display", laneId, message, data }
 *
 * Order inside one step (it matters for safety): a loopB change reaches the lane machine first
 * (it judges tailgates against the barrier position before the change), then the barrier (which
 * re-opens under a car at once), then the barrier commands the lane machine produced.
 */
import type { InputName } from "./io-names.js";
import { initLoop, stepLoop, type LoopEffect, type LoopSettings, type LoopState, type Level } from "../loops/loop-filter.js";
import type { TimerEffect, TimerInput } from "../loops/timers.js";
import {
  initBarrier,
  stepBarrier,
  type BarrierEffect,
  type BarrierInput,
  type BarrierPosition,
  type BarrierSettings,
  type BarrierState,
  type PulseEffect,
  type ReleaseEffect,
} from "../barrier/barrier-machine.js";
import {
  initLaneLogic,
  stepLaneLogic,
  type BarrierCommand,
  type DisplayEffect,
  type LaneDirection,
  type LaneEvent,
  type LaneEventType,
  type LaneEventFields,
  type LaneLogicEffect,
  type LaneLogicInput,
  type LaneLogicState,
  type RequestDecisionEffect,
  type TxPhase,
} from "./lane-machine.js";

export interface LaneSettings {
  laneId: string;
  direction: LaneDirection;
  detector: LoopSettings;
  barrier: BarrierSettings;
  plateWindowMs: number;
  dedupeWindowMs: number;
  backoutGraceMs: number;
}

export interface ButtonState {
  readonly level: Level;
  readonly lastPressMs: number | null;
}

export interface LaneState {
  readonly loopA: LoopState;
  readonly loopB: LoopState;
  readonly barrier: BarrierState;
  readonly logic: LaneLogicState;
  readonly buttons: { readonly manualOpen: ButtonState; readonly cashConfirm: ButtonState };
}

export type LaneInput = { kind: "gpio"; input: InputName; level: Level; atMs: number } | Exclude<LaneLogicInput, { kind: "presence" } | TimerInput> | TimerInput;

export type LaneEffect = PulseEffect | ReleaseEffect | TimerEffect | RequestDecisionEffect | LaneEvent | DisplayEffect;

export interface LaneStep {
  state: LaneState;
  effects: LaneEffect[];
}

/** Presses of an attendant button closer together than this are one press (contact bounce). */
export const buttonLockoutMs = 1000;

export function initLane(): LaneState {
  const idle: ButtonState = { level: 0, lastPressMs: null };
  return {
    loopA: initLoop("loopA"),
    loopB: initLoop("loopB"),
    barrier: initBarrier(),
    logic: initLaneLogic(),
    buttons: { manualOpen: idle, cashConfirm: idle },
  };
}

export function stepLane(state: LaneState, input: LaneInput, settings: LaneSettings): LaneStep {
  const run = new LaneRun(state, settings, input.atMs);
  switch (input.kind) {
    case "gpio":
      run.gpio(input.input, input.level);
      break;
    case "timer":
      run.timer(input);
      break;
    default:
      run.logic(input);
  }
  return { state: run.s, effects: run.fx };
}

/** What the status page and MQTT `state/<laneId>` show. */
export interface LaneSnapshot {
  laneId: string;
  direction: LaneDirection;
  barrier: BarrierPosition;
  loopA: boolean;
  loopB: boolean;
  detectorFaults: ("loopA" | "loopB")[];
  pending: { txId: string; phase: TxPhase; plate: string | null; manual: boolean }[];
}

export function laneSnapshot(state: LaneState, settings: Pick<LaneSettings, "laneId" | "direction">): LaneSnapshot {
  const faults: ("loopA" | "loopB")[] = [];
  if (state.loopA.fault) faults.push("loopA");
  if (state.loopB.fault) faults.push("loopB");
  return {
    laneId: settings.laneId,
    direction: settings.direction,
    barrier: state.barrier.position,
    loopA: state.loopA.occupied,
    loopB: state.loopB.occupied,
    detectorFaults: faults,
    pending: state.logic.txs.map((t) => ({ txId: t.txId, phase: t.phase, plate: t.plate, manual: t.manual })),
  };
}

/** True when nothing is going on: no transaction, loops free, barrier down. */
export function laneIsIdle(state: LaneState): boolean {
  return state.logic.txs.length === 0 && !state.loopA.occupied && !state.loopB.occupied && state.barrier.position === "closed";
}

class LaneRun {
  readonly fx: LaneEffect[] = [];

  constructor(
    public s: LaneState,
    private readonly settings: LaneSettings,
    private readonly atMs: number,
  ) {}

  gpio(name: InputName, level: Level): void {
    if (level !== 0 && level !== 1) return this.event("inputIgnored", { why: `bad level for ${String(name)}` });
    switch (name) {
      case "loopA":
      case "loopB":
        return this.loop(name, { kind: "edge", level, atMs: this.atMs });
      case "barrierOpened":
        return this.barrier({ kind: "limit", which: "opened", level, atMs: this.atMs });
      case "barrierClosed":
        return this.barrier({ kind: "limit", which: "closed", level, atMs: this.atMs });
      case "manualOpen":
        if (this.press("manualOpen", level)) this.logic({ kind: "open", reason: "manual", operator: "button", atMs: this.atMs });
        return;
      case "cashConfirm":
        if (this.press("cashConfirm", level)) {
          const awaiting = this.s.logic.txs.find((t) => t.phase === "awaitingPayment" && t.onLoopA) ?? this.s.logic.txs.find((t) => t.phase === "awaitingPayment");
          this.event("cashConfirmPressed", awaiting ? { txId: awaiting.txId, plate: awaiting.plate ?? undefined } : {});
        }
        return;
      default:
        return this.event("inputIgnored", { why: `unknown input ${String(name)}` });
    }
  }

  timer(input: TimerInput): void {
    const id = input.id;
    if (typeof id !== "string") return this.event("inputIgnored", { why: "timer without id" });
    if (id.startsWith("loopA/")) return this.loop("loopA", input);
    if (id.startsWith("loopB/")) return this.loop("loopB", input);
    if (id.startsWith("barrier/")) return this.barrier(input);
    if (id.startsWith("lane/")) return this.logic(input);
  }

  logic(input: LaneLogicInput): void {
    const step = stepLaneLogic(this.s.logic, input, this.logicSettings(), { position: this.s.barrier.position });
    this.s = { ...this.s, logic: step.state };
    this.absorbLogic(step.effects);
  }

  private loop(which: "loopA" | "loopB", input: Parameters<typeof stepLoop>[1]): void {
    const step = stepLoop(this.s[which], input, this.settings.detector);
    this.s = which === "loopA" ? { ...this.s, loopA: step.state } : { ...this.s, loopB: step.state };
    for (const effect of step.effects) this.absorbLoop(which, effect);
  }

  private absorbLoop(which: "loopA" | "loopB", effect: LoopEffect): void {
    const loop = which === "loopA" ? "A" : "B";
    switch (effect.kind) {
      case "startTimer":
      case "cancelTimer":
        this.fx.push(effect);
        return;
      case "detectorFault":
        return this.event("detectorFault", { loop, heldMs: effect.heldMs, reason: effect.fault });
      case "detectorRecovered":
        return this.event("detectorRecovered", { loop, heldMs: effect.heldMs });
      case "presence": {
        this.event("presence", { loop, occupied: effect.occupied });
        const step = stepLaneLogic(this.s.logic, { kind: "presence", loop, occupied: effect.occupied, atMs: this.atMs }, this.logicSettings(), {
          position: this.s.barrier.position,
        });
        this.s = { ...this.s, logic: step.state };
        const commands = step.effects.filter((e) => e.kind === "barrier");
        this.absorbLogic(step.effects.filter((e) => e.kind !== "barrier"));
        if (loop === "B") this.barrier({ kind: "loopB", occupied: effect.occupied, atMs: this.atMs });
        this.absorbLogic(commands);
        return;
      }
    }
  }

  private absorbLogic(effects: LaneLogicEffect[]): void {
    for (const effect of effects) {
      if (effect.kind === "barrier") this.barrier(toBarrierInput(effect.command, this.atMs));
      else this.fx.push(effect);
    }
  }

  private barrier(input: BarrierInput): void {
    const step = stepBarrier(this.s.barrier, input, this.settings.barrier);
    this.s = { ...this.s, barrier: step.state };
    for (const effect of step.effects) this.absorbBarrier(effect);
  }

  private absorbBarrier(effect: BarrierEffect): void {
    if (effect.kind !== "event") {
      this.fx.push(effect);
      return;
    }
    const fields: LaneEventFields = {};
    if (effect.reason !== undefined) fields.reason = effect.reason;
    if (effect.commanded !== undefined) fields.commanded = effect.commanded;
    if (effect.during !== undefined) fields.during = effect.during;
    if (effect.txId !== undefined) fields.txId = effect.txId;
    this.event(effect.type, fields);
  }

  private press(button: "manualOpen" | "cashConfirm", level: Level): boolean {
    const current = this.s.buttons[button];
    if (current.level === level) return false;
    const pressed = level === 1 && (current.lastPressMs === null || this.atMs - current.lastPressMs >= buttonLockoutMs);
    const next: ButtonState = { level, lastPressMs: pressed ? this.atMs : current.lastPressMs };
    this.s = { ...this.s, buttons: { ...this.s.buttons, [button]: next } };
    return pressed;
  }

  private logicSettings() {
    const t = this.settings;
    return {
      laneId: t.laneId,
      direction: t.direction,
      plateWindowMs: t.plateWindowMs,
      dedupeWindowMs: t.dedupeWindowMs,
      backoutGraceMs: t.backoutGraceMs,
      recloseMs: t.barrier.recloseMs,
    };
  }

  private event(type: LaneEventType, fields: LaneEventFields): void {
    const event: LaneEvent = { kind: "event", type, laneId: this.settings.laneId, atMs: this.atMs };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) (event as unknown as Record<string, unknown>)[key] = value;
    this.fx.push(event);
  }
}

function toBarrierInput(command: BarrierCommand, atMs: number): BarrierInput {
  switch (command.kind) {
    case "open":
      return command.txId === undefined ? { kind: "open", reason: command.reason, atMs } : { kind: "open", reason: command.reason, atMs, txId: command.txId };
    case "close":
      return { kind: "close", reason: command.reason, atMs };
    case "withdraw":
      return command.txId === undefined ? { kind: "withdraw", reason: command.reason, atMs } : { kind: "withdraw", reason: command.reason, atMs, txId: command.txId };
  }
}
