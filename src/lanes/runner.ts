/** The effect runner of one lane (LaneRunner): the pure lane step driven by GPIO edges, timers and reads. */
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { LaneConfig, InputName } from "../config/schema.js";
import { inputNames } from "../config/schema.js";
import type { Gpio, GpioEdge } from "../io/gpio/gpio.js";
import { lineKey } from "../io/gpio/lines.js";
import {
  initLane,
  stepLane,
  laneSettingsFromConfig,
  laneSnapshot,
  laneIsIdle,
  type LaneEffect,
  type LaneInput,
  type LaneSettings,
  type LaneState,
  type LaneSnapshot,
  type RequestDecisionEffect,
  type DisplayEffect,
  type LaneEvent as CoreLaneEvent,
  type RelayOutput,
} from "../core/lane/index.js";

export interface LaneRunnerHooks {
  /** The machine asks for a decision (once per transaction); answer later with `decide`. */
  onRequestDecision(request: RequestDecisionEffect): void;
  onEvent(event: CoreLaneEvent): void;
  onDisplay(effect: DisplayEffect): void;
  /** Any input was stepped (the panel and MQTT lane state refresh from this). */
  onStep?(): void;
  /**
   * The manualOpen button was pressed: a promise holds the press (and the button's later
   * edges) until it settles, so what the policy must write for the car the arm lifts for is
   * durable first. Settled or failed, the press then goes through: the attendant's open is
   * never lost to a disk fault.
   */
  beforeAttendantOpen?(operator: string, reason: string): Promise<void> | undefined;
}

/**
 * The effect runner of one lane: feeds timestamped inputs into the pure lane step and carries
 * out its effects — relay pulses on GPIO, timers on the Clock, decision requests, events and
 * display messages through the hooks. It holds the only mutable copy of the lane's state.
 */
export class LaneRunner {
  readonly laneId: string;
  readonly settings: LaneSettings;
  private state: LaneState = initLane();
  private readonly timers = new Map<string, TimerHandle>();
  private readonly pulseTimers = new Map<RelayOutput, TimerHandle>();
  private unsubscribe: (() => void) | undefined;
  private running = false;
  private stepping = false;
  private readonly queue: LaneInput[] = [];
  private buttonGate: Promise<void> | undefined;
  private readonly heldButtonEdges: LaneInput[] = [];

  constructor(
    readonly lane: LaneConfig,
    private readonly gpio: Gpio,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly hooks: LaneRunnerHooks,
  ) {
    this.laneId = lane.id;
    this.settings = laneSettingsFromConfig(lane);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const byKey = new Map<string, InputName>();
    for (const name of inputNames) if (this.lane.inputs[name]) byKey.set(lineKey(this.laneId, name), name);
    this.unsubscribe = this.gpio.onEdge((edge: GpioEdge) => {
      const input = byKey.get(edge.key);
      if (input === "manualOpen") this.feedButton({ kind: "gpio", input, level: edge.level, atMs: edge.atMs });
      else if (input) this.feed({ kind: "gpio", input, level: edge.level, atMs: edge.atMs });
    });
    // A car already standing on a loop at start-up counts from now.
    for (const [key, input] of byKey) {
      if (this.gpio.read(key) === 1) this.feed({ kind: "gpio", input, level: 1, atMs: this.clock.now() });
    }
  }

  stop(): void {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const handle of this.timers.values()) this.clock.clearTimeout(handle);
    this.timers.clear();
    for (const [output, handle] of this.pulseTimers) {
      this.clock.clearTimeout(handle);
      this.safeWrite(output, 0);
    }
    this.pulseTimers.clear();
  }

  /**
   * Steps one input. Inputs that arrive while effects of the previous one are being run (a
   * hook that feeds synchronously) are queued and stepped in order, never re-entrantly.
   */
  feed(input: LaneInput): void {
    if (!this.running) return;
    this.queue.push(input);
    if (this.stepping) return;
    this.stepping = true;
    try {
      while (this.queue.length > 0) {
        const next = this.queue.shift()!;
        const { state, effects } = stepLane(this.state, next, this.settings);
        this.state = state;
        for (const effect of effects) this.run(effect);
      }
    } finally {
      this.stepping = false;
    }
    this.hooks.onStep?.();
  }

  /** A manualOpen edge, held behind `beforeAttendantOpen` when a press needs a write first. */
  private feedButton(input: LaneInput & { kind: "gpio" }): void {
    if (this.buttonGate) {
      this.heldButtonEdges.push(input);
      return;
    }
    const gate = input.level === 1 ? this.hooks.beforeAttendantOpen?.("button", "manual") : undefined;
    if (!gate) {
      this.feed(input);
      return;
    }
    this.heldButtonEdges.push(input);
    this.buttonGate = gate
      .catch((error: unknown) => this.log.error({ laneId: this.laneId, err: error }, "write before the attendant's open failed; opening anyway"))
      .then(() => {
        this.buttonGate = undefined;
        for (const held of this.heldButtonEdges.splice(0)) this.feed(held);
      });
  }

  snapshot(): LaneSnapshot {
    return laneSnapshot(this.state, this.settings);
  }

  isIdle(): boolean {
    return laneIsIdle(this.state);
  }

  /** The transaction now deciding or awaiting payment with the car on loopA, if any. */
  currentTx(): LaneSnapshot["pending"][number] | undefined {
    const pending = this.snapshot().pending;
    return pending.find((tx) => tx.phase === "awaitingPayment" || tx.phase === "deciding") ?? pending.find((tx) => !tx.manual);
  }

  private run(effect: LaneEffect): void {
    switch (effect.kind) {
      case "pulse": {
        this.safeWrite(effect.output, 1);
        const running = this.pulseTimers.get(effect.output);
        if (running) this.clock.clearTimeout(running);
        this.pulseTimers.set(
          effect.output,
          this.clock.setTimeout(() => {
            this.pulseTimers.delete(effect.output);
            this.safeWrite(effect.output, 0);
          }, effect.ms),
        );
        return;
      }
      case "release": {
        const running = this.pulseTimers.get(effect.output);
        if (running) this.clock.clearTimeout(running);
        this.pulseTimers.delete(effect.output);
        this.safeWrite(effect.output, 0);
        return;
      }
      case "startTimer": {
        const existing = this.timers.get(effect.id);
        if (existing) this.clock.clearTimeout(existing);
        this.timers.set(
          effect.id,
          this.clock.setTimeout(() => {
            this.timers.delete(effect.id);
            this.feed({ kind: "timer", id: effect.id, atMs: this.clock.now() });
          }, effect.ms),
        );
        return;
      }
      case "cancelTimer": {
        const existing = this.timers.get(effect.id);
        if (existing) this.clock.clearTimeout(existing);
        this.timers.delete(effect.id);
        return;
      }
      case "requestDecision":
        this.hooks.onRequestDecision(effect);
        return;
      case "event":
        this.hooks.onEvent(effect);
        return;
      case "display":
        this.hooks.onDisplay(effect);
        return;
    }
  }

  private safeWrite(output: RelayOutput, level: 0 | 1): void {
    const key = lineKey(this.laneId, output);
    try {
      this.gpio.write(key, level);
    } catch (error) {
      // An output that is not wired (relayStop is optional) or a GPIO fault: log, keep going.
      this.log.warn({ laneId: this.laneId, output, level, err: error }, "relay write failed");
    }
  }
}
