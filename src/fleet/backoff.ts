/**
 * Reconnect scheduling for the fleet link: thousands of boxes must not reconnect in
 * lock-step. Full jitter: the delay is uniform in [0, ceiling], where the ceiling
 * doubles per failure from `baseMs` up to `capMs`. After a broker restart the reconnects of a
 * fleet spread over the whole window instead of arriving in waves (the "Exponential Backoff
 * and Jitter" analysis: full jitter gives the fewest collisions for the least total wait).
 *
 * Pure: the failure count is state, the random number is an input.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 1000, capMs: 5 * 60_000 };

/** The upper bound of the delay after `failures` consecutive failures (1 = the first). */
export function backoffCeilingMs(failures: number, policy: BackoffPolicy = defaultBackoff): number {
  if (failures <= 0) return 0;
  // 2^exponent stays finite: past 40 doublings every realistic cap has been reached.
  const exponent = Math.min(failures - 1, 40);
  return Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
}

/** The delay before the next attempt; `random` returns a number in [0, 1). */
export function backoffDelayMs(failures: number, random: () => number, policy: BackoffPolicy = defaultBackoff): number {
  const ceiling = backoffCeilingMs(failures, policy);
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(unit * ceiling);
}
