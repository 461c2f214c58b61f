import type { Clock } from "../../kernel/clock.js";
import { GpioError, type Gpio, type GpioLineSpec, type GpioListener, type Level } from "./gpio.js";

export interface OutputChange {
  key: string;
  level: Level;
  atMs: number;
}

/**
 * The simulated twin of the GPIO adapter: same contract, plus test controls (`setInput`,
 * `outputs`, `outputHistory`). Used by `hardware.gpio: "sim"`, by the demo and by tests.
 */
export class SimGpio implements Gpio {
  readonly kind = "sim" as const;
  private readonly specs = new Map<string, GpioLineSpec>();
  private readonly levels = new Map<string, Level>();
  private readonly listeners = new Set<GpioListener>();
  private history: OutputChange[] = [];
  private running = false;

  constructor(
    lines: readonly GpioLineSpec[],
    private readonly clock: Clock,
    private readonly historyLimit = 10_000,
  ) {
    for (const spec of lines) {
      this.specs.set(spec.key, spec);
      this.levels.set(spec.key, 0);
    }
  }

  async start(): Promise<void> {
    this.running = true;
  }

  async stop(): Promise<void> {
    this.allOutputsSafe();
    this.running = false;
  }

  allOutputsSafe(): void {
    for (const spec of this.specs.values()) {
      if (spec.direction === "out" && this.levels.get(spec.key) !== 0) this.setOutput(spec.key, 0);
    }
  }

  read(key: string): Level {
    this.spec(key);
    return this.levels.get(key) ?? 0;
  }

  write(key: string, level: Level): void {
    const spec = this.spec(key);
    if (spec.direction !== "out") throw new GpioError("E_GPIO_DIRECTION", `${key} is an input; it cannot be written`);
    if (!this.running) throw new GpioError("E_GPIO_NOT_STARTED", `GPIO not started; cannot write ${key}`);
    this.setOutput(key, level);
  }

  onEdge(listener: GpioListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- test controls ----

  /** Sets a simulated input level; emits an edge when the level changes. */
  setInput(key: string, level: Level): void {
    const spec = this.spec(key);
    if (spec.direction !== "in") throw new GpioError("E_GPIO_DIRECTION", `${key} is an output; it cannot be driven as an input`);
    if (this.levels.get(key) === level) return;
    this.levels.set(key, level);
    if (!this.running) return;
    const edge = { key, level, atMs: this.clock.now() };
    for (const listener of this.listeners) listener(edge);
  }

  /** Current level of every output. */
  outputs(): Record<string, Level> {
    const result: Record<string, Level> = {};
    for (const spec of this.specs.values()) if (spec.direction === "out") result[spec.key] = this.levels.get(spec.key) ?? 0;
    return result;
  }

  /** Current level of every input. */
  inputs(): Record<string, Level> {
    const result: Record<string, Level> = {};
    for (const spec of this.specs.values()) if (spec.direction === "in") result[spec.key] = this.levels.get(spec.key) ?? 0;
    return result;
  }

  outputHistory(): readonly OutputChange[] {
    return this.history;
  }

  clearHistory(): void {
    this.history = [];
  }

  lines(): readonly GpioLineSpec[] {
    return [...this.specs.values()];
  }

  private setOutput(key: string, level: Level): void {
    this.levels.set(key, level);
    this.history.push({ key, level, atMs: this.clock.now() });
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
  }

  private spec(key: string): GpioLineSpec {
    const spec = this.specs.get(key);
    if (!spec) throw new GpioError("E_GPIO_UNKNOWN_LINE", `unknown GPIO line ${key}`);
    return spec;
  }
}
