/**
 * The outbox's public face: the durable offline queue of reports to the platform. The queue
 * is two parts with one job each: journal.ts holds what is queued, parked and on disk;
 * delivery.ts (the `Outbox` component) decides what is sent when — order, retries, park
 * rules (refusal.ts), probes.
 */
export { Outbox } from "./delivery.js";
export type { EnqueueInput, OutboxEntry, OutboxOptions, OutboxSender, SendOptions, SendResult } from "./types.js";
