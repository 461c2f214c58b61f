/**
 * What the outbox does with a report the platform did not take: retry it with backoff, or
 * park it. Pure, so the rule can be read and tested apart from the queue.
 *
 * A busy platform is not a broken report. A business code other than 200 (e.g. 0 "平台繁忙")
 * is retried with backoff like a transport failure; a report is parked only when
 * - its code is a permanent one (the envelope, signature or content is wrong: sending the
 *   same report again cannot change the answer), or
 * - the platform has refused it and it is older than `parkAfterMs` (a day by default), or
 * - a custom sender says it is permanent.
 * Transport failures (refused connection, timeout, HTTP status) never park: the platform did
 * not look at the report, and the link's own probing already paces the retries.
 */

export const parkCauses = ["permanent-code", "age", "permanent"] as const;
export type ParkCause = (typeof parkCauses)[number];

export interface ParkedInfo {
  reason: string;
  atMs: number;
  cause?: ParkCause;
  /** The platform's business code and text when it was parked for a refusal. */
  code?: number;
  platformMsg?: string;
}

export interface RefusalPolicy {
  permanentCodes: ReadonlySet<number>;
  parkAfterMs: number;
}

export interface FailureFacts {
  retry: "transient" | "refused" | "permanent";
  code?: number | undefined;
  /** When the report was queued. */
  createdAtMs: number;
  nowMs: number;
}

export type FailureDecision = { action: "retry" } | { action: "park"; cause: ParkCause };

export function decideFailure(facts: FailureFacts, policy: RefusalPolicy): FailureDecision {
  if (facts.retry === "permanent") return { action: "park", cause: facts.code !== undefined && policy.permanentCodes.has(facts.code) ? "permanent-code" : "permanent" };
  if (facts.retry === "transient") return { action: "retry" };
  if (facts.code !== undefined && policy.permanentCodes.has(facts.code)) return { action: "park", cause: "permanent-code" };
  if (facts.nowMs - facts.createdAtMs >= policy.parkAfterMs) return { action: "park", cause: "age" };
  return { action: "retry" };
}
