import type { BackoffPolicy } from "../kernel/backoff.js";

/**
 * The fleet link's reconnect pacing: thousands of boxes must not reconnect in lock-step, so
 * after a broker restart their reconnects spread over the whole window (full jitter, the
 * ceiling doubling per failure from 1 s up to 5 min; see src/kernel/backoff.ts).
 */
export const defaultBackoff: BackoffPolicy = { baseMs: 1000, capMs: 5 * 60_000, jitter: "full" };
