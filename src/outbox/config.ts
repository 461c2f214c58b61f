import { z } from "zod";
import { DAY_MS } from "../core/time/zone.js";
import type { BackoffPolicy } from "../kernel/backoff.js";
import { defaultReturnCodes } from "../platform/config.js";

/**
 * Business codes that mean "this request will never be accepted as sent": the envelope,
 * signature or bizContent is wrong, or the report contradicts what the platform holds.
 * Sending the same report again cannot change the answer, so it is parked at once.
 *
 * The vendor's return-code table is missing; these are the placeholder codes of
 * docs/protocol.md §5 that the built-in emulator answers (and a lanekeeper box answers in
 * section 4). Left out on purpose: `staleTimestamp` (every resend is signed with a fresh
 * timestamp, and the clock may be fixed meanwhile), `internal`/`unavailable`/`busy` (passing
 * states) and any code the platform uses for "busy" (e.g. 0): those are retried.
 */
export const DEFAULT_PERMANENT_CODES: readonly number[] = [
  defaultReturnCodes.badJson,
  defaultReturnCodes.badContentType,
  defaultReturnCodes.tooLarge,
  defaultReturnCodes.badEnvelope,
  defaultReturnCodes.unknownService,
  defaultReturnCodes.badSign,
  defaultReturnCodes.wrongPid,
  defaultReturnCodes.wrongParkCode,
  defaultReturnCodes.badBizContent,
  defaultReturnCodes.conflict,
];

/**
 * Retry pacing of a report: capped exponential backoff with full jitter from 1 s up to 5 min,
 * never sooner than 200 ms (a draw near 0 must not become a hot retry loop).
 */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 5 * 60_000, minMs: 200, jitter: "full" };

/** The offline report queue: when a refused report stops being retried and is parked. */
export const outboxConfigSchema = z
  .strictObject({
    /** Business codes that park a report at the first refusal; any other code is retried. */
    permanentCodes: z
      .array(z.int())
      .max(200)
      .default([...DEFAULT_PERMANENT_CODES])
      .refine((codes) => !codes.includes(200), { message: "200 is success, not a refusal" }),
    /** A report the platform still refuses (any code) this long after it was queued is parked. */
    parkAfterMs: z
      .int()
      .min(60_000)
      .max(30 * DAY_MS)
      .default(DAY_MS),
    /** Parked reports are sent again this often (and whenever the platform answers 200). */
    probeParkedMs: z
      .int()
      .min(60_000)
      .max(7 * DAY_MS)
      .default(3_600_000),
  })
  .prefault({});
