import type { OutboxEntry, OutboxSender } from "../outbox/outbox.js";
import type { LotStore } from "../store/lot-store.js";
import type { InParkRecord } from "../store/records.js";
import type { LotShareConfig } from "./config.js";

/*
 * The lanes' and the outbox's side of "entry report before exit report" (src/lot/entry-first.ts
 * is the lot's side, loaded only with lot.share): whether a leave report waits, the durable note
 * that it does, and the sender that tells the lot an entry report was delivered. Kept apart so
 * every box's start-up loads these few lines, not the reconciliation code.
 */

/** The durable note "this box holds the leave report of stay R for its entry report" (settings key prefix). */
export const NOTE_KEY = "lot.entryFirst.";
export interface EntryFirstNote {
  /** The end of the bill's late-answer window, when the report waits for it too. */
  lateUntilMs?: number;
}

/**
 * When the leave report of `record` (a stay being finished at this box) waits for its entry
 * report: a stay entered at another box of the lot whose entry report the lot has not said
 * delivered. Undefined: it does not wait.
 */
export function entryReportHoldUntil(record: InParkRecord, deviceId: string, share: LotShareConfig, nowMs: number): number | undefined {
  if (!share.enabled || share.entryReportWaitS === 0 || record.provisional) return undefined;
  const enteredAt = record.replicaOf?.deviceId;
  if (enteredAt === undefined || enteredAt === deviceId || record.entryReport === "delivered") return undefined;
  return nowMs + share.entryReportWaitS * 1000;
}

/** Notes durably that the leave report of `recordNo` is held for its entry report (before it is queued). */
export async function noteEntryReportHold(store: Pick<LotStore, "setSetting">, recordNo: string, lateUntilMs: number | undefined): Promise<void> {
  const note: EntryFirstNote = lateUntilMs !== undefined ? { lateUntilMs } : {};
  await store.setSetting(NOTE_KEY + recordNo, note, { durable: true });
}

/** The outbox's sender, telling `onDelivered` of every report the platform took. */
export function withDeliveryNotice(send: OutboxSender, onDelivered: (entry: Readonly<OutboxEntry>) => void): OutboxSender {
  return async (entry, options) => {
    const result = await send(entry, options);
    if (result.ok) onDelivered(entry);
    return result;
  };
}
