/**
 * Capped exponential backoff with jitter: the one retry pacing of the box (the outbox's
 * reports, the fleet link's reconnects, a serial device that vanished, a bill asked again).
 *
 * The ceiling of retry number `attempt` (1 = the first retry) is
 * `min(capMs, baseMs · factor^(attempt − 1))`; the delay is drawn under it:
 * - `"full"`: uniform in [0, ceiling]. Thousands of boxes that lost the same server at the
 *   same moment spread over the whole window instead of coming back in waves; of the usual
 *   schemes it gives the fewest collisions for the least total wait (the "Exponential Backoff
 *   and Jitter" analysis of the AWS architecture blog).
 * - `"equal"`: uniform in [ceiling / 2, ceiling]: never much sooner than the ceiling.
 * - `{ spread }`: uniform in [ceiling · (1 − spread), ceiling · (1 + spread)]: a few devices on
 *   one bus that must not retry in lock-step, around a schedule a person can read in the log.
 * - `"none"`: the ceiling itself.
 * Whatever the draw, the delay stays within [minMs, capMs] (`minMs` keeps a draw near 0 from
 * turning into a hot retry loop) and is a whole number of milliseconds.
 *
 * Pure: the attempt count is the caller's state and the random source is a parameter, so
 * tests pin it.
 */
export type BackoffJitter = "full" | "equal" | "none" | { spread: number };

export interface BackoffPolicy {
  /** Ceiling of the first retry. */
  baseMs: number;
  /** No retry waits longer than this. */
  capMs: number;
  /** Growth of the ceiling per attempt. Default 2. */
  factor?: number;
  /** No retry comes sooner than this. Default 0. */
  minMs?: number;
  /** How the delay is drawn under the ceiling. Default "full". */
  jitter?: BackoffJitter;
}

/** Past this many doublings every realistic cap has been reached; it keeps the power finite. */
const MAX_EXPONENT = 64;

/** The upper bound (whole ms) of the delay before retry number `attempt` (1-based); 0 before any failure. */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy): number {
  if (!(attempt >= 1)) return 0;
  const exponent = Math.min(Math.floor(attempt) - 1, MAX_EXPONENT);
  const grown = policy.baseMs * (policy.factor ?? 2) ** exponent;
  const capped = Math.min(policy.capMs, Number.isNaN(grown) ? 0 : grown);
  return Math.max(policy.minMs ?? 0, Math.floor(capped));
}

/**
 * The delay before retry number `attempt` (1-based), in [minMs, capMs]; 0 before any failure.
 * `random` returns a number in [0, 1); anything else it returns is clamped (NaN counts as 0).
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  if (!(attempt >= 1)) return 0;
  const ceiling = backoffCeilingMs(attempt, policy);
  const drawn = random();
  const r = Number.isFinite(drawn) ? Math.min(Math.max(drawn, 0), 1) : 0;
  const jitter = policy.jitter ?? "full";
  let delay: number;
  if (jitter === "full") delay = r * ceiling;
  else if (jitter === "equal") delay = ceiling / 2 + (r * ceiling) / 2;
  else if (jitter === "none") delay = ceiling;
  else {
    const spread = Math.min(Math.max(jitter.spread, 0), 1);
    delay = ceiling * (1 - spread + 2 * spread * r);
  }
  return Math.max(policy.minMs ?? 0, Math.min(policy.capMs, Math.floor(delay)));
}
