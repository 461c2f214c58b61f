import type { PlatformClient, PlatformResult } from "../platform/client.js";
import type { OutboxSender, SendResult } from "./outbox.js";

export const MAX_PLATFORM_MSG_CHARS = 500;

/**
 * The outbox's view of a platform answer (docs/protocol.md "Client results"):
 * - `code = 200` → delivered;
 * - a well-formed answer with another code → refused, with the code and the platform's
 *   text: the outbox retries it with backoff, or parks it when the code is a permanent one
 *   or the report is too old (refusal.ts);
 * - refused connection, timeout, non-2xx status, unreadable answer → transient: retried
 *   with backoff.
 */
export function sendResultFrom(result: PlatformResult): SendResult {
  if (result.ok) return { ok: true };
  if (result.kind === "business-code" && result.code !== undefined) {
    // The platform's text goes into the journal, status and health: bounded, whatever it sent.
    const platformMsg = (result.msg ?? "").slice(0, MAX_PLATFORM_MSG_CHARS);
    return { ok: false, retry: "refused", reason: `code ${String(result.code)}: ${platformMsg}`.trim(), code: result.code, platformMsg };
  }
  const detail = result.status !== undefined ? ` ${result.status}` : result.detail ? ` ${result.detail}` : "";
  return { ok: false, retry: "transient", reason: `${result.kind}${detail}` };
}

/**
 * An OutboxSender over the platform client: `entry.service` is the section-3 id or
 * serviceName. The outbox's stop signal goes to the call, so a stop cuts a hanging
 * delivery off at once (`aborted`, which the outbox does not count as a failure).
 */
export function platformOutboxSender(client: Pick<PlatformClient, "call">, options: { deadlineMs?: number } = {}): OutboxSender {
  return async (entry, { signal }) =>
    sendResultFrom(await client.call(entry.service, entry.biz, { signal, ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}) }));
}
