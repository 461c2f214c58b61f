import { systemClock, type Clock } from "../../src/kernel/clock.js";

/**
 * Days of a lot in seconds: every box's wall clock is the true time plus its own skew plus a
 * warp that all of them share, which the test moves forward (as if the lot had stood idle for
 * hours). Timers still run on true time, so a lane's debounce, deadlines and retries fire as
 * they always do; only what the boxes (and the platform) read as "now" jumps, all together,
 * each keeping its skew.
 */
export class ClockWarp {
  private offsetMs: number;

  /** `startAtMs`: what the unskewed lot clock reads now (default: the true time). */
  constructor(startAtMs = Date.now()) {
    this.offsetMs = startAtMs - Date.now();
  }

  /** How far the lot's time is ahead of the true time. */
  get aheadMs(): number {
    return this.offsetMs;
  }

  /** Every clock of the lot jumps `ms` forward (never back: a lot's day does not run backwards). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a warp moves forward only (got ${ms} ms)`);
    this.offsetMs += ms;
  }

  /** A clock of the lot, `skewMs` off its warped time (a box whose clock runs ahead or behind). */
  clock(skewMs = 0): Clock {
    return { ...systemClock, now: () => Date.now() + this.offsetMs + skewMs };
  }
}
