/**
 * A small reference effect runner for the pure lane core, on simulated time. It does what the
 * real runner does (timers by id, pulses as on-then-off, release = off now) and records what
 * the safety properties check: the longest time any output stayed on, overlapping opposite
 * outputs, close pulses while the safety loop was occupied, decisions requested per txId.
 */
import { stepLane, initLane, type LaneEffect, type LaneInput, type LaneSettings, type LaneState } from "../../../src/core/lane/lane.js";
import type { RelayOutput } from "../../../src/core/barrier/barrier-machine.js";
import type { LaneEvent } from "../../../src/core/lane/lane-machine.js";
import { defaultLoopSettings } from "../../../src/core/loops/loop-filter.js";

export const T0 = Date.UTC(2024, 0, 15, 2, 0, 0);

export function laneSettings(overrides: Partial<LaneSettings> = {}): LaneSettings {
  return {
    laneId: "in1",
    direction: "in",
    detector: { ...defaultLoopSettings },
    barrier: { relayPulseMs: 500, travelTimeMs: 3000, travelTimeoutMs: 8000, recloseMs: 30_000, limitSwitches: { opened: false, closed: false } },
    plateWindowMs: 5000,
    dedupeWindowMs: 30_000,
    backoutGraceMs: 5000,
    ...overrides,
  };
}

interface OutputTrack {
  on: boolean;
  sinceMs: number;
  offAtMs: number;
}

export class LaneHarness {
  state: LaneState = initLane();
  nowMs: number;
  readonly effects: LaneEffect[] = [];
  readonly timers = new Map<string, number>();
  readonly outputs = new Map<RelayOutput, OutputTrack>();
  /** Longest continuous on-time per output, and the pulse width asked for. */
  readonly maxOnMs = new Map<RelayOutput, number>();
  readonly problems: string[] = [];
  readonly decisionsRequested = new Map<string, number>();
  /** Debounced presence as the lane reported it. */
  loopA = false;
  loopB = false;
  private order = 0;
  private readonly timerOrder = new Map<string, number>();

  constructor(
    readonly settings: LaneSettings = laneSettings(),
    startMs = T0,
  ) {
    this.nowMs = startMs;
  }

  /** Feed one input at `atMs` (timers due before it fire first). */
  send(input: LaneInput): LaneEffect[] {
    this.runUntil(input.atMs);
    this.nowMs = Math.max(this.nowMs, input.atMs);
    return this.apply(input);
  }

  /** Raw edge helper. */
  edge(input: "loopA" | "loopB" | "barrierOpened" | "barrierClosed" | "manualOpen" | "cashConfirm", level: 0 | 1, atMs = this.nowMs): LaneEffect[] {
    return this.send({ kind: "gpio", input, level, atMs });
  }

  /** Advance simulated time, firing timers and ending pulses in order. */
  advance(ms: number): void {
    this.runUntil(this.nowMs + ms);
    this.nowMs += ms;
    this.settleOutputs(this.nowMs);
  }

  /** Fire every timer there is (bounded), as if a long time passed with no input. */
  drain(maxSteps = 10_000): void {
    for (let i = 0; i < maxSteps && this.timers.size > 0; i++) {
      const next = this.nextTimer();
      if (!next) break;
      this.runUntil(next[1]);
    }
    this.settleOutputs(Number.POSITIVE_INFINITY);
  }

  events(type?: string): LaneEvent[] {
    return this.effects.filter((e): e is LaneEvent => e.kind === "event" && (type === undefined || e.type === type));
  }

  outputOn(output: RelayOutput): boolean {
    return this.outputs.get(output)?.on ?? false;
  }

  private runUntil(t: number): void {
    for (;;) {
      const next = this.nextTimer();
      if (!next || next[1] > t) break;
      const [id, due] = next;
      this.timers.delete(id);
      this.nowMs = Math.max(this.nowMs, due);
      this.apply({ kind: "timer", id, atMs: due });
    }
    this.settleOutputs(t);
  }

  private nextTimer(): [string, number] | undefined {
    let best: [string, number] | undefined;
    for (const [id, due] of this.timers) {
      if (!best || due < best[1] || (due === best[1] && this.timerOrder.get(id)! < this.timerOrder.get(best[0])!)) best = [id, due];
    }
    return best;
  }

  private apply(input: LaneInput): LaneEffect[] {
    this.settleOutputs(input.atMs);
    const step = stepLane(this.state, input, this.settings);
    this.state = step.state;
    for (const effect of step.effects) this.run(effect, input.atMs);
    this.effects.push(...step.effects);
    return step.effects;
  }

  private run(effect: LaneEffect, atMs: number): void {
    switch (effect.kind) {
      case "startTimer":
        this.timers.set(effect.id, atMs + effect.ms);
        this.timerOrder.set(effect.id, this.order++);
        return;
      case "cancelTimer":
        this.timers.delete(effect.id);
        return;
      case "pulse": {
        if (effect.output === "relayClose" && this.loopB) this.problems.push(`close pulse at ${atMs} while loopB occupied`);
        if (effect.output === "relayOpen" && !effect.reason) this.problems.push(`open pulse without reason at ${atMs}`);
        const current = this.outputs.get(effect.output);
        // A runner re-arms the off timer on a repeated pulse: the on-time grows. The property
        // below catches it.
        const sinceMs = current?.on ? current.sinceMs : atMs;
        this.outputs.set(effect.output, { on: true, sinceMs, offAtMs: atMs + effect.ms });
        for (const [other, track] of this.outputs) {
          if (other !== effect.output && track.on && track.offAtMs > atMs) this.problems.push(`${effect.output} and ${other} on together at ${atMs}`);
        }
        return;
      }
      case "release": {
        const current = this.outputs.get(effect.output);
        if (current?.on) {
          this.noteOn(effect.output, atMs - current.sinceMs);
          this.outputs.set(effect.output, { ...current, on: false });
        }
        return;
      }
      case "requestDecision":
        this.decisionsRequested.set(effect.txId, (this.decisionsRequested.get(effect.txId) ?? 0) + 1);
        return;
      case "event":
        if (effect.type === "presence") {
          if (effect.loop === "A") this.loopA = effect.occupied === true;
          else this.loopB = effect.occupied === true;
        }
        return;
      default:
        return;
    }
  }

  private settleOutputs(t: number): void {
    for (const [output, track] of this.outputs) {
      if (track.on && track.offAtMs <= t) {
        this.noteOn(output, track.offAtMs - track.sinceMs);
        this.outputs.set(output, { ...track, on: false });
      }
    }
  }

  private noteOn(output: RelayOutput, ms: number): void {
    this.maxOnMs.set(output, Math.max(this.maxOnMs.get(output) ?? 0, ms));
  }
}
