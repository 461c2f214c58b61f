/**
 * The real GPIO adapter, on `onoff` over the
 * kernel's sysfs GPIO interface. Same contract as SimGpio (gpio.ts).
 *
 * Where onoff falls short, and what this adapter does about it:
 * - onoff takes the *sysfs* number and knows nothing of chip bases. On Raspberry Pi OS kernels
 *   ≥ 6.6 the pin controller starts at 512 (571 on a Pi 5), so `new Gpio(17, …)` fails with
 *   EINVAL. The adapter resolves every BCM line through sysfs-resolver.ts first and logs the
 *   table, so an installer can see which number was used for which pin.
 * - onoff hard-codes `/sys/class/gpio/`; `sysfsRoot` only moves where the resolver looks (tests
 *   and unusual kernels). A different root with the real module is logged as a warning.
 * - The sysfs GPIO interface is deprecated upstream in favour of the GPIO character device
 *   (`/dev/gpiochipN`, libgpiod). It still works on Raspberry Pi OS (CONFIG_GPIO_SYSFS=y) but
 *   may disappear; moving off it means a character-device adapter behind the same contract.
 * - Outputs are claimed with direction "high"/"low", which the kernel applies as the *raw*
 *   level before active_low: direction "out" would drive raw 0, i.e. energise an active-low
 *   relay for a moment at every start. Each output is therefore claimed at its inactive level.
 * - onoff delivers edges from epoll with the value read after the interrupt; a bounce can
 *   report the same level twice. Repeated levels are dropped here, debouncing is the core's.
 *
 * `onoff` (and its native `epoll`) is imported lazily in `start()` so sim mode and tests on a
 * laptop never load it. Tests inject a stand-in module through `loadOnoff`.
 */
import type { Clock } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import { GpioError, type Gpio, type GpioLineSpec, type GpioListener, type Level } from "./gpio.js";
import { defaultSysfsRoot, resolveSysfsLines, type ResolvedLine, type SysfsResolution } from "./sysfs-resolver.js";

/** The part of onoff's `Gpio` class this adapter uses. */
export interface OnoffLine {
  readSync(): 0 | 1;
  writeSync(value: 0 | 1): void;
  watch(callback: (err: Error | null | undefined, value: 0 | 1) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

export interface OnoffModule {
  Gpio: {
    new (
      gpio: number,
      direction: "in" | "out" | "high" | "low",
      edge?: "none" | "rising" | "falling" | "both",
      options?: { activeLow?: boolean; reconfigureDirection?: boolean },
    ): OnoffLine;
    readonly accessible?: boolean;
  };
}

export interface OnoffGpioOptions {
  /** Where the resolver reads gpiochip*\/label and base (hardware.sysfsRoot). */
  sysfsRoot?: string;
  /** The pin controller's label when the known ones do not apply (hardware.chipLabel). */
  chipLabel?: string | undefined;
  /** Replaces `await import("onoff")` (tests). */
  loadOnoff?: () => Promise<OnoffModule>;
}

interface OpenLine {
  resolved: ResolvedLine;
  handle: OnoffLine;
  last: Level;
}

export class OnoffGpio implements Gpio {
  readonly kind = "onoff" as const;
  private readonly specs = new Map<string, GpioLineSpec>();
  private readonly open = new Map<string, OpenLine>();
  private readonly listeners = new Set<GpioListener>();
  private readonly sysfsRoot: string;
  private resolution: SysfsResolution | undefined;
  private running = false;

  constructor(
    lines: readonly GpioLineSpec[],
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: OnoffGpioOptions = {},
  ) {
    for (const spec of lines) this.specs.set(spec.key, spec);
    this.sysfsRoot = options.sysfsRoot ?? defaultSysfsRoot;
  }

  /** The BCM → sysfs table resolved at start (for status pages and `lanekeeper` diagnostics). */
  table(): readonly ResolvedLine[] {
    return this.resolution?.lines ?? [];
  }

  async start(): Promise<void> {
    if (this.running) return;
    const resolution = await resolveSysfsLines([...this.specs.values()], { sysfsRoot: this.sysfsRoot, chipLabel: this.options.chipLabel });
    this.resolution = resolution;
    this.log.info(
      {
        chip: resolution.chip,
        lines: resolution.lines.map((l) => ({ key: l.key, bcm: l.bcm, sysfs: l.sysfs, dir: l.direction, activeLow: l.activeLow })),
      },
      "gpio lines resolved",
    );
    const onoff = await this.load();
    if (onoff.Gpio.accessible === false) {
      throw new GpioError("E_GPIO_EXPORT", `cannot open ${this.sysfsRoot}/export: the user needs the gpio group (or the kernel lacks sysfs GPIO)`);
    }
    try {
      for (const line of resolution.lines) this.claim(onoff, line);
    } catch (error) {
      this.releaseAll();
      throw error;
    }
    this.running = true;
  }

  async stop(): Promise<void> {
    this.allOutputsSafe();
    this.releaseAll();
    this.running = false;
  }

  allOutputsSafe(): void {
    for (const line of this.open.values()) {
      if (line.resolved.direction !== "out") continue;
      try {
        line.handle.writeSync(0);
        line.last = 0;
      } catch (error) {
        this.log.error({ key: line.resolved.key, sysfs: line.resolved.sysfs, err: error }, "cannot drive output to its safe level");
      }
    }
  }

  read(key: string): Level {
    this.spec(key);
    const line = this.open.get(key);
    if (!this.running || !line) throw new GpioError("E_GPIO_NOT_STARTED", `GPIO not started; cannot read ${key}`);
    return line.handle.readSync() === 1 ? 1 : 0;
  }

  write(key: string, level: Level): void {
    const spec = this.spec(key);
    if (spec.direction !== "out") throw new GpioError("E_GPIO_DIRECTION", `${key} is an input; it cannot be written`);
    const line = this.open.get(key);
    if (!this.running || !line) throw new GpioError("E_GPIO_NOT_STARTED", `GPIO not started; cannot write ${key}`);
    line.handle.writeSync(level);
    line.last = level;
  }

  onEdge(listener: GpioListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async load(): Promise<OnoffModule> {
    if (this.options.loadOnoff) return this.options.loadOnoff();
    if (this.sysfsRoot !== defaultSysfsRoot) {
      this.log.warn({ sysfsRoot: this.sysfsRoot }, "onoff always uses /sys/class/gpio; sysfsRoot only changes where chip bases are read");
    }
    try {
      const mod = (await import("onoff")) as unknown as OnoffModule & { default?: OnoffModule };
      return mod.Gpio ? mod : mod.default!;
    } catch (error) {
      throw new GpioError("E_GPIO_EXPORT", `cannot load the onoff module: ${(error as Error).message}`);
    }
  }

  private claim(onoff: OnoffModule, line: ResolvedLine): void {
    let handle: OnoffLine;
    try {
      if (line.direction === "in") {
        handle = new onoff.Gpio(line.sysfs, "in", "both", { activeLow: line.activeLow });
      } else {
        // Raw level of "inactive": high for an active-low output, low otherwise (see header).
        handle = new onoff.Gpio(line.sysfs, line.activeLow ? "high" : "low", "none", { activeLow: line.activeLow });
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const hint =
        code === "EINVAL"
          ? " (no such line: wrong chip base?)"
          : code === "EBUSY"
            ? " (claimed by another driver or process)"
            : code === "EACCES"
              ? " (permission: gpio group?)"
              : "";
      throw new GpioError("E_GPIO_EXPORT", `cannot export ${line.key} (BCM ${line.bcm}, sysfs ${line.sysfs}): ${(error as Error).message}${hint}`);
    }
    const open: OpenLine = { resolved: line, handle, last: 0 };
    this.open.set(line.key, open);
    if (line.direction === "out") return;
    try {
      open.last = handle.readSync() === 1 ? 1 : 0;
    } catch {
      open.last = 0;
    }
    handle.watch((err, value) => {
      if (err) {
        this.log.warn({ key: line.key, sysfs: line.sysfs, err }, "gpio watch error");
        return;
      }
      const level: Level = value === 1 ? 1 : 0;
      if (level === open.last) return;
      open.last = level;
      const edge = { key: line.key, level, atMs: this.clock.now() };
      for (const listener of this.listeners) {
        try {
          listener(edge);
        } catch (error) {
          // A failing listener is logged and does not take the others down.
          this.log.error({ key: line.key, err: error }, "gpio edge listener failed");
        }
      }
    });
  }

  private releaseAll(): void {
    for (const line of this.open.values()) {
      try {
        line.handle.unwatchAll();
      } catch {
        // already unwatched
      }
      try {
        line.handle.unexport();
      } catch (error) {
        this.log.warn({ key: line.resolved.key, sysfs: line.resolved.sysfs, err: error }, "cannot unexport gpio line");
      }
    }
    this.open.clear();
  }

  private spec(key: string): GpioLineSpec {
    const spec = this.specs.get(key);
    if (!spec) throw new GpioError("E_GPIO_UNKNOWN_LINE", `unknown GPIO line ${key}`);
    return spec;
  }
}
