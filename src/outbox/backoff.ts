/**
 * Capped exponential backoff with full jitter (the AWS architecture blog's "full jitter":
 * sleep = random(0, min(cap, base · 2^(attempt−1)))), with a small floor so a random draw
 * near 0 never turns into a hot retry loop. Pure: the random source is a parameter, so
 * tests pin it and thousands of boxes in the field spread out by their own draws.
 */
export interface BackoffPolicy {
  /** Ceiling of the first retry. */
  baseMs: number;
  /** No retry waits longer than this. */
  capMs: number;
  /** No retry comes sooner than this. */
  minMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 5 * 60_000, minMs: 200 };

/** The upper bound of the wait before retry number `attempt` (1-based). */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^(n-1) overflows to Infinity long after the cap is reached; min() keeps it finite.
  return Math.max(policy.minMs, Math.min(policy.capMs, policy.baseMs * 2 ** (n - 1)));
}

/** The wait before retry number `attempt`, in [minMs, ceiling]. `random` returns [0, 1). */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = backoffCeilingMs(attempt, policy);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(policy.minMs, Math.min(ceiling, Math.floor(r * ceiling)));
}
