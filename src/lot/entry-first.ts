import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import type { Outbox, OutboxEntry } from "../outbox/outbox.js";
import type { LotStore } from "../store/lot-store.js";
import type { LotShare } from "./lot-share.js";
import type { StayPayload } from "./lot-payloads.js";
import { releaseHeld } from "./provisional-exits.js";
import { NOTE_KEY, type EntryFirstNote } from "./entry-report-hold.js";

/*
 * Entry report before exit report, across boxes (docs/mqtt.md "Partitions and reconciliation").
 * A car that entered at box A and leaves at box B is reported by two outboxes: A's
 * `enterNotify`, B's `leaveNotify`. B holds its leave report (queued durably, not sent) until
 * the lot says A's entry report was delivered — A publishes that fact as `entryReported` on the
 * stay's version — or until `lot.share.entryReportWaitS` is over (the leave report carries the
 * plate and the entry time, so the platform can build the stay from it alone). Only the report
 * waits: the barrier and the payment never do.
 *
 * A held leave is marked by a durable setting, written before it is queued, that also keeps the
 * end of its bill's late-answer window (the report never goes before that); a restart finds
 * both on disk, and the lot's retained versions release it.
 */

/** Record numbers seen reported in a version that lost to a newer one (kept for a leave about to be queued). */
const SEEN_LIMIT = 2000;

export interface EntryFirstOptions {
  deviceId: string;
  lot: Pick<LotShare, "onVersion" | "onLive" | "view" | "entryReported">;
  store: Pick<LotStore, "getInPark" | "listInPark" | "updateInPark" | "getSetting" | "setSetting" | "onInParkChange">;
  outbox: Pick<Outbox, "list" | "get" | "enqueue" | "discard">;
  log: Logger;
}

export class EntryFirst implements Component {
  readonly name = "lot-entry-first";
  private unsubscribes: Array<() => void> = [];
  private chain: Promise<void> = Promise.resolve();
  private readonly seenReported = new Set<string>();
  readonly counters = { entriesMarked: 0, leavesReleased: 0 };

  constructor(private readonly options: EntryFirstOptions) {}

  async start(): Promise<void> {
    const { lot } = this.options;
    this.unsubscribes = [
      lot.onVersion((stay) => this.onVersion(stay)),
      lot.onLive(() => void this.serial(() => this.releaseReported())),
      // The fact may have come while the car was at the exit: its leave is queued before the stay is finished.
      this.options.store.onInParkChange((change) => {
        if (change.kind === "finished" && this.seenReported.has(change.stay.recordNo)) void this.serial(() => this.release(change.stay.recordNo));
      }),
    ];
    // The retained set may have come in before this started: what the view says already counts.
    await this.serial(() => this.releaseReported());
    // Not awaited: a first start after an update may mark every stay in the park.
    void this.serial(() => this.markDeliveredBefore());
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.unsubscribes = [];
    await this.chain;
  }

  /** A report this box sent was delivered (the outbox's sender calls this). */
  delivered(entry: Readonly<OutboxEntry>): void {
    if (entry.kind === "enter") void this.serial(() => this.markEntryReported(entry.recordNo));
    // A held leave that went by itself (its bound) leaves its note behind: forget it.
    else if (entry.kind === "leave" && this.options.store.getSetting(NOTE_KEY + entry.recordNo) !== undefined) {
      void this.serial(() => this.options.store.setSetting(NOTE_KEY + entry.recordNo, undefined, { durable: false }));
    }
  }

  /** Runs `step` after the previous ones: a release is never done twice at once. */
  private serial(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step).catch((error: unknown) => this.options.log.error({ err: error }, "entry-before-exit step failed"));
    return this.chain;
  }

  /** This box's entry report is delivered: its stay says so on the lot (in the park, or already left at another box). */
  private async markEntryReported(recordNo: string): Promise<void> {
    const { store, lot } = this.options;
    const record = store.getInPark(recordNo);
    // An own stay in the park: its next version (published for this change) says it.
    // Batched: a mark lost in a crash is made again at the next start (markDeliveredBefore).
    if (record && !record.replicaOf && record.entryReport !== "delivered") await store.updateInPark(recordNo, { entryReport: "delivered" }, { durable: false });
    // Left at another box already (or the publish above had nothing new to say): a version with the fact.
    lot.entryReported(recordNo);
    this.counters.entriesMarked++;
  }

  /**
   * Own stays whose entry report is no longer in the outbox but not marked delivered: delivered
   * before this started (the outbox drains from the start; a stay entered before the lot said
   * it), or given up by an operator (nothing left to wait for either).
   */
  private async markDeliveredBefore(): Promise<void> {
    const { store, outbox } = this.options;
    const pending = new Set(outbox.list().flatMap((entry) => (entry.kind === "enter" ? [entry.recordNo] : [])));
    const unmarked = store.listInPark((r) => !r.replicaOf && r.entryReport === "queued" && !pending.has(r.recordNo)).items;
    for (const record of unmarked) await this.markEntryReported(record.recordNo);
  }

  private onVersion(stay: StayPayload): void {
    if (stay.entryReported !== true) return;
    if (this.seenReported.size >= SEEN_LIMIT) this.seenReported.delete(this.seenReported.values().next().value!);
    this.seenReported.add(stay.recordNo);
    void this.serial(() => this.release(stay.recordNo));
  }

  /** Every held leave whose entry the lot now says reported goes. */
  private async releaseReported(): Promise<void> {
    const { outbox, store, lot } = this.options;
    for (const entry of outbox.list()) {
      if (entry.kind !== "leave" || entry.notBeforeMs === undefined || entry.key !== `${entry.recordNo}:leave`) continue;
      if (store.getSetting(NOTE_KEY + entry.recordNo) === undefined) continue;
      if (lot.view.stay(entry.recordNo)?.entryReported === true || this.seenReported.has(entry.recordNo)) await this.release(entry.recordNo);
    }
  }

  /** The held leave of `recordNo` goes now (after its late-answer window, if that is still open). */
  private async release(recordNo: string): Promise<void> {
    const { outbox, store, log } = this.options;
    const note = store.getSetting<EntryFirstNote>(NOTE_KEY + recordNo);
    const held = outbox.get(`${recordNo}:leave`);
    if (note === undefined || !held || held.notBeforeMs === undefined) return;
    await releaseHeld(outbox, [held], "entry report delivered by the entering box", note.lateUntilMs);
    this.counters.leavesReleased++;
    this.seenReported.delete(recordNo);
    await store.setSetting(NOTE_KEY + recordNo, undefined, { durable: true });
    log.info({ recordNo }, "leave report released: the lot says its entry report was delivered");
  }
}
