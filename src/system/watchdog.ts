import type { Logger } from "../kernel/log.js";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";

/**
 * The systemd watchdog, fed from the main event loop (systemd/README.md "Readiness, watchdog, stopping"). systemd kills and
 * restarts the service when no WATCHDOG=1 arrives within WatchdogSec. Pinging from a timer on
 * the main loop already catches a loop that is blocked for good; on top of that a tick is
 * skipped when the loop lagged by more than `maxLagMs` since the previous tick, so a loop that
 * keeps stalling (a runaway synchronous job, a disk that blocks every write) also misses two
 * pings in a row and gets the process restarted, instead of limping on with barriers
 * answering seconds late.
 */

export type WatchdogEnv = { enabled: true; timeoutMs: number } | { enabled: false; reason: string };

/**
 * What systemd asked for, read like sd_watchdog_enabled(3): WATCHDOG_USEC is the timeout;
 * WATCHDOG_PID, when set, must be this process (otherwise the variables were inherited by a
 * child and the watchdog is someone else's).
 */
export function watchdogFromEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): WatchdogEnv {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || usecText === "") return { enabled: false, reason: "WATCHDOG_USEC not set" };
  const usec = Number(usecText);
  if (!Number.isSafeInteger(usec) || usec <= 0) return { enabled: false, reason: `WATCHDOG_USEC=${usecText} is not a positive integer` };
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== "" && Number(pidText) !== pid) {
    return { enabled: false, reason: `WATCHDOG_PID=${pidText} is another process (this is ${pid})` };
  }
  return { enabled: true, timeoutMs: usec / 1000 };
}

/** Reports the worst event-loop delay since the previous call. */
export interface LagProbe {
  start(): void;
  stop(): void;
  /** Largest loop delay in ms since the last call (or start); resets the window. */
  takeMaxMs(): number;
}

/**
 * A timer every `resolutionMs` records how late it ran, so a block anywhere between two
 * watchdog ticks shows, not only one that happens to delay the tick itself. Not perf_hooks'
 * monitorEventLoopDelay: its reset() forgets the interval in progress, so a block that starts
 * right after a watchdog tick (the usual case: work triggered by the same timers phase) would
 * be invisible to the next one.
 */
export function eventLoopDelayProbe(resolutionMs = 20): LagProbe {
  let timer: NodeJS.Timeout | undefined;
  let lastMs = 0;
  let maxMs = 0;
  return {
    start() {
      if (timer) return;
      lastMs = performance.now();
      maxMs = 0;
      timer = setInterval(() => {
        const nowMs = performance.now();
        maxMs = Math.max(maxMs, nowMs - lastMs - resolutionMs);
        lastMs = nowMs;
      }, resolutionMs);
      // Never keeps the process alive on its own.
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    takeMaxMs() {
      if (!timer) return 0;
      const nowMs = performance.now();
      // The interval in progress counts too: a block that ended just before this call has not
      // been seen by the probe's own timer yet.
      const worstMs = Math.max(maxMs, nowMs - lastMs - resolutionMs, 0);
      maxMs = 0;
      lastMs = nowMs;
      return worstMs;
    },
  };
}

export interface LoopWatchdogOptions {
  /** Sends WATCHDOG=1 (SystemdNotifier.watchdog). */
  ping: () => Promise<unknown> | unknown;
  clock: Clock;
  log: Logger;
  /** WatchdogSec in ms (from WATCHDOG_USEC). */
  timeoutMs: number;
  /** Ping period. Default timeoutMs / 2, as sd_watchdog_enabled(3) recommends. */
  intervalMs?: number;
  /** A tick whose window saw a larger loop delay sends no ping. Default min(5000, timeoutMs / 4). */
  maxLagMs?: number;
  /** Default: eventLoopDelayProbe(). */
  probe?: LagProbe;
}

export interface WatchdogStats {
  timeoutMs: number;
  intervalMs: number;
  maxLagMs: number;
  pings: number;
  skippedLag: number;
  /** Loop delay seen by the last tick, ms. */
  lastLagMs: number;
  /** Ticks skipped in a row right now. */
  skippedInARow: number;
}

export class LoopWatchdog implements Component {
  readonly name = "watchdog";
  private readonly ping: () => Promise<unknown> | unknown;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly probe: LagProbe;
  private readonly timeoutMs: number;
  private readonly intervalMs: number;
  private readonly maxLagMs: number;
  private timer: TimerHandle | undefined;
  private expectedAtMs = 0;
  private running = false;
  private pings = 0;
  private skippedLag = 0;
  private skippedInARow = 0;
  private lastLagMs = 0;

  constructor(options: LoopWatchdogOptions) {
    this.ping = options.ping;
    this.clock = options.clock;
    this.log = options.log;
    this.timeoutMs = options.timeoutMs;
    this.intervalMs = Math.max(1, Math.floor(options.intervalMs ?? options.timeoutMs / 2));
    this.maxLagMs = options.maxLagMs ?? Math.min(5000, options.timeoutMs / 4);
    this.probe = options.probe ?? eventLoopDelayProbe();
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.probe.start();
    this.log.info({ timeoutMs: this.timeoutMs, intervalMs: this.intervalMs, maxLagMs: this.maxLagMs }, "systemd watchdog armed");
    // First ping at once: systemd may already count from the start of the process.
    this.tick(true);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.probe.stop();
  }

  stats(): WatchdogStats {
    return {
      timeoutMs: this.timeoutMs,
      intervalMs: this.intervalMs,
      maxLagMs: this.maxLagMs,
      pings: this.pings,
      skippedLag: this.skippedLag,
      lastLagMs: Math.round(this.lastLagMs),
      skippedInARow: this.skippedInARow,
    };
  }

  private tick(first = false): void {
    if (!this.running) return;
    const nowMs = this.clock.monotonicMs();
    // Two views of the same thing: how late this very timer ran, and the worst delay anywhere
    // in the window (a block that ended long before the tick).
    const driftMs = first ? 0 : Math.max(0, nowMs - this.expectedAtMs);
    const lagMs = Math.max(driftMs, this.probe.takeMaxMs());
    this.lastLagMs = lagMs;
    if (!first && lagMs > this.maxLagMs) {
      this.skippedLag++;
      this.skippedInARow++;
      this.log.warn(
        { lagMs: Math.round(lagMs), maxLagMs: this.maxLagMs, skippedInARow: this.skippedInARow },
        "event loop lagged; watchdog ping withheld (two in a row and systemd restarts the service)",
      );
    } else {
      if (this.skippedInARow > 0) this.log.info({ skipped: this.skippedInARow }, "event loop recovered; watchdog pings resume");
      this.skippedInARow = 0;
      this.pings++;
      try {
        const result = this.ping();
        if (result instanceof Promise) result.catch((error: unknown) => this.log.warn({ err: error }, "watchdog ping failed"));
      } catch (error) {
        this.log.warn({ err: error }, "watchdog ping failed");
      }
    }
    this.expectedAtMs = nowMs + this.intervalMs;
    this.timer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
  }
}
