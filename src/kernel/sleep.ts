import type { Clock } from "./clock.js";

/**
 * Waits `ms` on the given clock (a fake clock in tests moves it), resolving early, without an
 * error, when `signal` aborts: callers check what they were waiting for afterwards anyway.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      resolve();
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
