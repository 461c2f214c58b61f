import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { AppendLog } from "../store/append-log.js";
import { storeErrorFromFs, type StoreAlarm, type StoreError, type StoreWarning } from "../store/errors.js";
import { prepareStoreDir } from "../store/store-dir.js";
import { parkCauses, type ParkedInfo } from "./refusal.js";
import type { OutboxEntry } from "./types.js";

/*
 * Why a journal and not a lowdb document: a lowdb write rewrites the whole document, so
 * with a backlog of N reports every enqueue would rewrite N entries — during a long outage
 * the cost of each new report (and the wear on the SD card) would grow with the backlog,
 * exactly when the box is busiest queueing. The journal appends one line per change
 * (`add`, `done`, `park`, `unpark`, `discard`): an enqueue is one append and one
 * fdatasync (shared by concurrent enqueues), whatever the depth. The journal is compacted
 * (atomically replaced by the live entries: temp → fsync → rename → fsync dir) once it
 * holds mostly delivered entries. Attempt counts are not journaled: after a restart every
 * entry is retried at once, which is what a restart should do anyway.
 *
 * Only `add` and `discard` are fsynced before their call resolves. Losing a `done` in a
 * crash re-sends an already delivered report, which the platform de-duplicates by its key;
 * losing a `park` retries a parked report once more. Neither loses a report.
 */

const entryRecordSchema = z.object({
  key: z.string().min(1),
  recordNo: z.string(),
  kind: z.string().min(1),
  service: z.string().min(1),
  biz: z.record(z.string(), z.unknown()),
  createdAtMs: z.number(),
  seq: z.number().int(),
  notBeforeMs: z.number().optional(),
});
const journalLineSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("add"), e: entryRecordSchema }),
  z.object({ op: z.literal("done"), key: z.string() }),
  z.object({ op: z.literal("discard"), key: z.string(), reason: z.string().optional() }),
  z.object({
    op: z.literal("park"),
    key: z.string(),
    reason: z.string(),
    atMs: z.number(),
    cause: z.enum(parkCauses).optional(),
    code: z.number().int().optional(),
    platformMsg: z.string().optional(),
  }),
  z.object({ op: z.literal("unpark"), key: z.string() }),
]);
type JournalLine = z.infer<typeof journalLineSchema>;

export interface OutboxJournalOptions {
  /** The store directory; the journal is `<dir>/outbox.journal`. */
  dir: string;
  clock: Clock;
  log: Logger | undefined;
  /** Retry period for persisting lines while the disk refuses writes. */
  persistRetryMs: number;
  /** Compact once the journal has this many lines and 4× more than live entries. */
  compactMinOps: number;
  minFreeBytes?: number;
}

/**
 * What the outbox holds, in memory and on disk: the queued reports (per record, in enqueue
 * order), which of them are parked, and the journal that makes each change durable. It
 * decides nothing about sending (the delivery loop in delivery.ts does); it records what the
 * delivery loop decided.
 *
 * A disk that refuses writes never loses an entry: the lines wait in memory, in order, an
 * alarm shows in status, and writing is retried every `persistRetryMs`.
 */
export class OutboxJournal {
  readonly path: string;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private file: AppendLog | undefined;
  private open = false;
  private readonly entries = new Map<string, OutboxEntry>();
  private readonly byRecord = new Map<string, OutboxEntry[]>();
  private readonly unpersistedKeys = new Set<string>();
  /** Journal lines not yet written because the disk refused; written in order on recovery. */
  private backlog: string[] = [];
  private persistAlarm: StoreAlarm | null = null;
  private persistTimer: TimerHandle | undefined;
  private nextSeq = 1;
  private journalOps = 0;
  private compacting = false;
  private readonly warningList: StoreWarning[] = [];

  constructor(private readonly options: OutboxJournalOptions) {
    this.clock = options.clock;
    this.log = options.log;
    this.path = join(options.dir, "outbox.journal");
  }

  /** Prepares the directory, repairs a torn last line and loads the entries the journal holds. */
  async load(): Promise<void> {
    await prepareStoreDir(this.options.dir, this.options.minFreeBytes !== undefined ? { minFreeBytes: this.options.minFreeBytes } : {});
    const opened = await AppendLog.open(this.path, this.log ? { log: this.log } : {});
    this.file = opened.log;
    if (opened.repairedBytes > 0) {
      this.warn("torn-tail", `cut ${opened.repairedBytes} bytes of a journal line interrupted by a crash (never acknowledged)`);
    }
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      throw storeErrorFromFs(error, this.path, "reading the outbox journal");
    }
    this.replay(text);
    this.open = true;
  }

  /** Writes what it can (held lines, then a sync) and closes the file; never throws. */
  async close(): Promise<void> {
    this.open = false;
    if (this.persistTimer) this.clock.clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    const file = this.file;
    this.file = undefined;
    if (!file) return;
    try {
      if (this.backlog.length > 0) await file.append(this.backlog.join(""), true).then(() => (this.backlog = []));
      await file.sync();
    } catch (error) {
      this.log?.error({ err: error, unpersisted: this.unpersistedKeys.size }, "outbox: could not persist everything at stop");
    }
    await file.close().catch((error: unknown) => this.log?.warn({ err: error }, "outbox: closing the journal failed"));
  }

  // ---- what is queued ----------------------------------------------------------------

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The live entry (the delivery loop changes its in-memory fields); undefined when gone. */
  entry(key: string): OutboxEntry | undefined {
    return this.entries.get(key);
  }

  entryValues(): IterableIterator<OutboxEntry> {
    return this.entries.values();
  }

  /** Each record's entries in enqueue order. */
  records(): IterableIterator<readonly OutboxEntry[]> {
    return this.byRecord.values();
  }

  /** The first queued entry of a record. */
  firstOf(recordNo: string): OutboxEntry | undefined {
    return this.byRecord.get(recordNo)?.[0];
  }

  /** The next enqueue number (delivery order within a record). */
  takeSeq(): number {
    return this.nextSeq++;
  }

  /** Copies of the entries, oldest first. */
  list(filter: { parked?: boolean; recordNo?: string; limit?: number } = {}): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    for (const entry of [...this.entries.values()].sort((a, b) => a.seq - b.seq)) {
      if (filter.parked !== undefined && !!entry.parked !== filter.parked) continue;
      if (filter.recordNo !== undefined && entry.recordNo !== filter.recordNo) continue;
      out.push(structuredClone(entry));
      if (filter.limit !== undefined && out.length >= filter.limit) break;
    }
    return out;
  }

  parkedCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.parked) n++;
    return n;
  }

  /** Whether the entry's `add` line is on disk. */
  isPersisted(key: string): boolean {
    return !this.unpersistedKeys.has(key);
  }

  get unpersistedCount(): number {
    return this.unpersistedKeys.size;
  }

  get alarm(): StoreAlarm | null {
    return this.persistAlarm;
  }

  get sizeBytes(): number {
    return this.file?.sizeBytes ?? 0;
  }

  get warnings(): StoreWarning[] {
    return [...this.warningList];
  }

  // ---- changes -----------------------------------------------------------------------

  /**
   * Queues a new entry; resolves with whether its `add` line is fsynced. The line is queued
   * synchronously, before any later line about this entry can be, so the journal's order is
   * right even if the report is sent before the fsync completes.
   */
  add(entry: OutboxEntry): Promise<boolean> {
    const line = this.line({ op: "add", e: recordOf(entry) });
    this.insert(entry);
    return this.writeLines([line], true, [entry.key]);
  }

  /** The platform took the report. */
  done(entry: OutboxEntry): void {
    this.remove(entry);
    void this.writeLines([this.line({ op: "done", key: entry.key })], false);
  }

  /** Dropped on purpose (an operator's decision); durable before it resolves. */
  async discard(entry: OutboxEntry, reason: string): Promise<void> {
    this.remove(entry);
    await this.writeLines([this.line({ op: "discard", key: entry.key, reason })], true);
  }

  park(entry: OutboxEntry, parked: ParkedInfo): void {
    entry.parked = parked;
    void this.writeLines([this.line({ op: "park", key: entry.key, ...parked })], false);
  }

  /** Takes the entries out of the parked state; resolves once the lines are written or held. */
  async unpark(entries: readonly OutboxEntry[]): Promise<void> {
    for (const entry of entries) delete entry.parked;
    await this.writeLines(
      entries.map((e) => this.line({ op: "unpark", key: e.key })),
      false,
    );
  }

  // ---- memory ------------------------------------------------------------------------

  private insert(entry: OutboxEntry): void {
    this.entries.set(entry.key, entry);
    const list = this.byRecord.get(entry.recordNo);
    if (list) {
      list.push(entry);
      list.sort((a, b) => a.seq - b.seq);
    } else this.byRecord.set(entry.recordNo, [entry]);
  }

  private remove(entry: OutboxEntry): void {
    this.entries.delete(entry.key);
    this.unpersistedKeys.delete(entry.key);
    const list = this.byRecord.get(entry.recordNo);
    if (!list) return;
    const index = list.indexOf(entry);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.byRecord.delete(entry.recordNo);
  }

  // ---- disk --------------------------------------------------------------------------

  private line(op: JournalLine): string {
    return JSON.stringify(op) + "\n";
  }

  private replay(text: string): void {
    const now = this.clock.now();
    let bad = 0;
    let ops = 0;
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      ops++;
      let parsed: JournalLine;
      try {
        const result = journalLineSchema.safeParse(JSON.parse(raw));
        if (!result.success) throw new Error(result.error.message);
        parsed = result.data;
      } catch {
        // Counted and reported below as one warning; the other lines still load.
        bad++;
        continue;
      }
      switch (parsed.op) {
        case "add": {
          if (this.entries.has(parsed.e.key)) break;
          const { notBeforeMs, ...added } = parsed.e;
          this.insert({ ...added, ...notBefore({ notBeforeMs }), attempts: 0, nextAttemptAtMs: Math.max(now, notBeforeMs ?? now) });
          this.nextSeq = Math.max(this.nextSeq, parsed.e.seq + 1);
          break;
        }
        case "done":
        case "discard": {
          const entry = this.entries.get(parsed.key);
          if (entry) this.remove(entry);
          break;
        }
        case "park": {
          const entry = this.entries.get(parsed.key);
          if (!entry) break;
          const { reason, atMs, cause, code, platformMsg } = parsed;
          entry.parked = { reason, atMs, ...(cause !== undefined ? { cause } : {}), ...(code !== undefined ? { code, platformMsg: platformMsg ?? "" } : {}) };
          if (code !== undefined) {
            entry.lastCode = code;
            entry.platformMsg = platformMsg ?? "";
          }
          break;
        }
        case "unpark": {
          const entry = this.entries.get(parsed.key);
          if (entry) delete entry.parked;
          break;
        }
      }
    }
    this.journalOps = ops;
    if (bad > 0) this.warn("bad-line", `${bad} unreadable journal line(s) skipped`);
  }

  /**
   * Appends journal lines. Returns whether they are on disk. On failure (or while earlier
   * lines still wait) the lines join the in-memory backlog, in order, and a retry is
   * scheduled; `keys` are the entries whose `add` is among them (shown as unpersisted).
   * Never rejects.
   */
  private async writeLines(lines: string[], durable: boolean, keys: string[] = []): Promise<boolean> {
    const file = this.file;
    if (!file || this.backlog.length > 0) {
      this.holdInMemory(lines, keys);
      return false;
    }
    try {
      await file.append(lines.join(""), durable);
    } catch (error) {
      this.holdInMemory(lines, keys);
      this.raisePersistAlarm(storeErrorFromFs(error, this.path, "appending to the outbox journal"));
      return false;
    }
    this.journalOps += lines.length;
    this.maybeCompact();
    return true;
  }

  private holdInMemory(lines: string[], keys: string[]): void {
    this.backlog.push(...lines);
    for (const key of keys) this.unpersistedKeys.add(key);
    this.schedulePersistRetry();
  }

  private raisePersistAlarm(error: StoreError): void {
    if (this.persistAlarm) return;
    this.persistAlarm = { code: error.code, message: `${error.message}; reports are kept in memory and still delivered`, sinceMs: this.clock.now() };
    this.log?.error({ code: error.code, err: error }, "outbox: cannot write the journal; holding reports in memory");
  }

  private schedulePersistRetry(): void {
    if (this.persistTimer || !this.open) return;
    this.persistTimer = this.clock.setTimeout(() => {
      this.persistTimer = undefined;
      void this.flushBacklog();
    }, this.options.persistRetryMs);
  }

  /** Never rejects: a failed write raises the alarm and schedules the next try. */
  private async flushBacklog(): Promise<void> {
    const file = this.file;
    if (!file || this.backlog.length === 0) return;
    const lines = this.backlog;
    try {
      await file.append(lines.join(""), true);
    } catch (error) {
      this.raisePersistAlarm(storeErrorFromFs(error, this.path, "appending to the outbox journal"));
      this.schedulePersistRetry();
      return;
    }
    // Lines that arrived while this write was in flight stay for the next round.
    this.backlog = this.backlog.slice(lines.length);
    this.journalOps += lines.length;
    if (this.backlog.length === 0) {
      this.unpersistedKeys.clear();
      if (this.persistAlarm) {
        this.log?.info({ sinceMs: this.persistAlarm.sinceMs }, "outbox: journal writable again; held reports persisted");
        this.persistAlarm = null;
      }
    } else {
      void this.flushBacklog();
    }
  }

  private maybeCompact(): void {
    if (this.compacting || !this.file || this.backlog.length > 0) return;
    if (this.journalOps < this.options.compactMinOps || this.journalOps < 4 * this.entries.size) return;
    this.compacting = true;
    const live = [...this.entries.values()].sort((a, b) => a.seq - b.seq);
    const lines: string[] = [];
    for (const e of live) {
      lines.push(this.line({ op: "add", e: recordOf(e) }));
      if (e.parked) lines.push(this.line({ op: "park", key: e.key, ...e.parked }));
    }
    this.file
      .replace(lines.join(""))
      .then(() => {
        this.journalOps = lines.length;
        this.log?.debug({ live: live.length }, "outbox journal compacted");
      })
      .catch((error: unknown) => this.log?.warn({ err: error }, "outbox journal compaction failed; will retry later"))
      .finally(() => {
        this.compacting = false;
      });
  }

  private warn(code: string, detail: string): void {
    const warning = { atMs: this.clock.now(), code, file: this.path, detail };
    this.warningList.push(warning);
    this.log?.warn(warning, "outbox");
  }
}

/** What the journal keeps of an entry (attempts and errors live in memory only). */
function recordOf(e: OutboxEntry): z.infer<typeof entryRecordSchema> {
  return { key: e.key, recordNo: e.recordNo, kind: e.kind, service: e.service, biz: e.biz, createdAtMs: e.createdAtMs, seq: e.seq, ...notBefore(e) };
}

/** The journal's copy of an entry's not-before time (absent for most entries). */
function notBefore(entry: { notBeforeMs?: number | undefined }): { notBeforeMs?: number } {
  return entry.notBeforeMs !== undefined ? { notBeforeMs: entry.notBeforeMs } : {};
}
