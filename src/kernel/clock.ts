/**
 * The one seam through which the runtime reads time and sets timers. The pure core never
 * sees it (time arrives there as an input); adapters and the effect runner receive a Clock so
 * tests can drive hours of lane traffic in milliseconds.
 */
export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds, for measuring durations across wall-clock jumps. */
  monotonicMs(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

let nextTimerId = 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, Math.max(0, ms));
    const handle = { id: nextTimerId++, timer };
    return handle;
  },
  clearTimeout(handle) {
    const timer = (handle as { timer?: NodeJS.Timeout }).timer;
    if (timer) clearTimeout(timer);
  },
};
