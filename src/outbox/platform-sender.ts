import type { PlatformClient, PlatformResult } from "../platform/client.js";
import type { OutboxSender, SendResult } from "./outbox.js";

/**
 * The outbox's view of a platform answer (platform-api.md §10 "as client"):
 * - `code = 200` → delivered;
 * - a well-formed answer with another code → permanent: the platform read the report and
 *   refused it, and sending the same bytes again will not change its mind → parked;
 * - refused connection, timeout, non-2xx status, unreadable answer → transient: retried
 *   with backoff.
 */
export function sendResultFrom(result: PlatformResult): SendResult {
  if (result.ok) return { ok: true };
  if (result.kind === "business-code") {
    return { ok: false, retry: "permanent", reason: `code ${String(result.code)}: ${result.msg ?? ""}`.trim() };
  }
  const detail = result.status !== undefined ? ` ${result.status}` : result.detail ? ` ${result.detail}` : "";
  return { ok: false, retry: "transient", reason: `${result.kind}${detail}` };
}

/** An OutboxSender over the platform client: `entry.service` is the section-3 id or serviceName. */
export function platformOutboxSender(client: Pick<PlatformClient, "call">, options: { deadlineMs?: number } = {}): OutboxSender {
  return async (entry) => sendResultFrom(await client.call(entry.service, entry.biz, options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}));
}
