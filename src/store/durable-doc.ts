// Over 600 lines on purpose: snapshot, journal and recovery share one file layout and one write
// queue; the durability rules are checked by reading them together.
import { readdir, readFile, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Low } from "lowdb";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import { systemClock } from "../kernel/clock.js";
import { AppendLog } from "./append-log.js";
import { DurableFileAdapter, type DurableFileAdapterOptions, type LoadSource } from "./durable-file-adapter.js";
import { StoreError, StoreErrorCode, storeErrorFromFs, type StoreAlarm, type StoreWarning } from "./errors.js";

/** The keys of T whose values are string-keyed maps (the collections inside a document). */
export type MapKey<T> = { [K in keyof T]-?: T[K] extends Record<string, unknown> ? K : never }[keyof T] & string;
/** The item type of map K of T. */
export type MapItem<T, K extends keyof T> = T[K] extends Record<string, infer V> ? V : never;

export interface DurableDocOptions<T extends { version: number; seq?: number }> extends DurableFileAdapterOptions<T> {
  /** The document of a lot that never had one (a fresh install). */
  initial: () => T;
  /** How often a failed write is retried in the background. Default 5 s. */
  retryMs?: number;
  /** Batched changes (`markDirty`) are written at most this often. Default 60 s. */
  flushIntervalMs?: number;
  /**
   * Journal mode: each `commit()` appends the changed entries (`set`/`del`) to a journal
   * and fsyncs that (one fdatasync, shared by concurrent commits); the whole document is
   * rewritten (a snapshot, through the durable lowdb adapter) only now and then. The
   * document needs a `seq` field. Off: every commit rewrites the whole document.
   */
  journal?: boolean;
  /**
   * Journal mode: snapshot once the journal has grown by this many bytes since the last one,
   * or by the document's own size if that is larger. Default 1 MiB.
   */
  snapshotAfterBytes?: number;
  /** Journal mode: snapshot at the latest this long after the first change since the last one. Default 10 min. */
  snapshotIntervalMs?: number;
  /** Told of each `commit()` as it settles, with its wall time (the store commit latency metric). */
  onCommit?: (file: string, elapsedMs: number, ok: boolean) => void;
}

export interface DurableDocStatus {
  file: string;
  loadedFrom: LoadSource;
  /** Whole-document writes (snapshots). */
  writes: number;
  lastWriteBytes: number;
  lastWriteMs: number;
  /** Journal mode: change number of the last commit and of the newest snapshot. */
  seq: number;
  snapshotSeq: number;
  journalBytes: number;
  /** Changes made in memory and not yet on disk (batched, or held after a failed write). */
  unflushed: boolean;
  alarm: StoreAlarm | null;
}

/** One journal line: `{ s: seq, o: [[map, key, value] | [map, key]] }` (no value = delete). */
type Op = [string, string, unknown?];
/** A map entry as it was when a snapshot was cut (changed since): its value, or absent. */
type PreImage = { present: true; value: unknown } | { present: false };
/** What a snapshot writes: the document as it was at one moment, read piece by piece. */
interface SnapshotCut {
  seq: number;
  fields: Array<[string, unknown]>;
  /** The maps and their keys at the cut; entries changed since are read from `preImages`. */
  maps: Map<string, { items: Record<string, unknown>; keys: string[] }>;
}

/**
 * A snapshot is written in pieces of about this many characters, with the event loop free
 * between them: a 2 MB list serialised in one go would hold every lane's commit for tens of
 * milliseconds (longer on a Pi) and build a 2 MB string in a 1 MB young generation.
 */
const SNAPSHOT_CHUNK_CHARS = 64 * 1024;
interface JournalFile {
  gen: number;
  path: string;
  /** Highest seq in the file; -1 when empty. */
  maxSeq: number;
}

/**
 * One lowdb document on the durable adapter, with the store's write discipline
 * (docs/architecture.md "Store and write discipline"):
 * - `commit()` resolves after the change is on disk (critical state: a stay, a payment);
 * - `markDirty()` batches a change (counters, last-seen) into a write at most every
 *   `flushIntervalMs`, and on `close()`;
 * - a failed write keeps the change in memory, raises an alarm and is retried every
 *   `retryMs` until the disk recovers; `commit()` then rejects with E_STORE_HELD_IN_MEMORY
 *   so the caller knows it is not durable yet, but nothing is rolled back or lost.
 *
 * Why a journal in front of lowdb (journal mode): lowdb rewrites the whole document on
 * every write, which costs two fsyncs (file and directory) plus the document's size per
 * change. For the in-park document that is tens of KB per car, and for the vehicle list
 * (5,000 cars ≈ 2 MB) a platform bulk sync would rewrite gigabytes of an SD card. The journal
 * makes a commit one append and one fdatasync whatever the document's size, which is what
 * a decision can afford (bench/lane-flows.bench.ts: one fsync + 2 ms); snapshots bound the journal.
 *
 * Recovery: load the newest good snapshot (falling back to the previous generation), then
 * replay journal lines with a higher seq, in order. Lines are whole-value sets and deletes,
 * so replaying one whose effect the snapshot already holds is harmless. Journal files are
 * removed only once both snapshot generations cover them, so a fallback to the previous
 * generation still finds every change since.
 */
export class DurableDoc<T extends { version: number; seq?: number }> {
  readonly adapter: DurableFileAdapter<T>;
  private readonly low: Low<T>;
  private readonly clock: Clock;
  private readonly retryMs: number;
  private readonly flushIntervalMs: number;
  private readonly journalMode: boolean;
  private readonly snapshotAfterBytes: number;
  private readonly snapshotIntervalMs: number;
  private dirty = false;
  private alarmState: StoreAlarm | null = null;
  private retryTimer: TimerHandle | undefined;
  private flushTimer: TimerHandle | undefined;
  private snapshotTimer: TimerHandle | undefined;
  /** Entry counts of the maps asked about (`size`), kept by set/del; cleared when the data is replaced. */
  private readonly sizes = new Map<string, number>();
  private opened = false;
  private closed = false;
  // journal mode
  private journal: AppendLog | undefined;
  private journalFiles: JournalFile[] = [];
  private seq = 0;
  private snapshotSeq = 0;
  private pendingOps: Op[] = [];
  private backlog: Array<{ seq: number; line: string }> = [];
  private lastAppend: Promise<void> = Promise.resolve();
  private bytesSinceSnapshot = 0;
  private snapshotChain: Promise<void> = Promise.resolve();
  /** A background snapshot is queued or running (requests meanwhile are one request). */
  private snapshotRequested = false;
  /** After a failed background snapshot, none is tried before this (the disk needs time). */
  private snapshotNotBeforeMs = 0;
  private lastSnapshotBytes = 0;
  /** Set while a snapshot is being written: the values set/del replaced since its cut. */
  private preImages: Map<string, Map<string, PreImage>> | undefined;
  private readonly extraWarnings: StoreWarning[] = [];

  constructor(private readonly options: DurableDocOptions<T>) {
    this.clock = options.clock ?? systemClock;
    this.adapter = new DurableFileAdapter(options);
    this.low = new Low<T>(this.adapter, options.initial());
    this.retryMs = options.retryMs ?? 5000;
    this.flushIntervalMs = options.flushIntervalMs ?? 60_000;
    this.journalMode = options.journal ?? false;
    this.snapshotAfterBytes = options.snapshotAfterBytes ?? 1024 * 1024;
    this.snapshotIntervalMs = options.snapshotIntervalMs ?? 10 * 60_000;
  }

  get file(): string {
    return this.options.path;
  }

  /** Reads the document (see DurableFileAdapter.read for the fallback rules), then replays the journal. */
  async open(): Promise<void> {
    await this.low.read();
    this.sizes.clear();
    this.seq = this.low.data.seq ?? 0;
    this.snapshotSeq = this.seq;
    this.closed = false;
    if (this.journalMode) {
      this.lastSnapshotBytes = await stat(this.file).then(
        (s) => s.size,
        () => 0,
      );
      const replayed = await this.replayJournals();
      const gen = (this.journalFiles.at(-1)?.gen ?? 0) + 1;
      const path = this.journalPath(gen);
      this.journal = (await AppendLog.open(path, { dsync: true, ...(this.options.log ? { log: this.options.log } : {}) })).log;
      this.journalFiles.push({ gen, path, maxSeq: -1 });
      this.opened = true;
      // A fresh snapshot so the next start has little to replay; in the background, since
      // the journal already holds everything (start-up stays fast with a large document).
      if (replayed > 0) this.requestSnapshot();
    } else {
      this.opened = true;
    }
  }

  /** The live document. Change it with `set`/`del` (journaled) or directly plus `markDirty()`. */
  get data(): T {
    return this.low.data;
  }

  /**
   * How many entries map `map` holds. Counted once and then kept by `set`/`del` (a lane asks
   * for the in-park count at every entry decision; counting 1,000 keys each time was a tenth of
   * a millisecond of the decision). Maps changed only through `set`/`del` (every collection).
   */
  size<K extends MapKey<T>>(map: K): number {
    let size = this.sizes.get(map);
    if (size === undefined) {
      size = Object.keys(this.low.data[map] as Record<string, unknown>).length;
      this.sizes.set(map, size);
    }
    return size;
  }

  /** Sets `data[map][key] = value` and records the change for the next commit. */
  set<K extends MapKey<T>>(map: K, key: string, value: MapItem<T, K>): void {
    this.keepPreImage(map, key);
    const size = this.sizes.get(map);
    if (size !== undefined && !Object.hasOwn(this.low.data[map] as Record<string, unknown>, key)) this.sizes.set(map, size + 1);
    // defineProperty, not assignment: a key such as "__proto__" must be stored as data, not
    // replace the map's prototype (the write would be acknowledged and lost).
    Object.defineProperty(this.low.data[map] as Record<string, unknown>, key, { value, enumerable: true, writable: true, configurable: true });
    if (this.journalMode) this.pendingOps.push([map, key, value]);
  }

  /** Deletes `data[map][key]` and records the change for the next commit. */
  del<K extends MapKey<T>>(map: K, key: string): void {
    this.keepPreImage(map, key);
    const size = this.sizes.get(map);
    if (size !== undefined && Object.hasOwn(this.low.data[map] as Record<string, unknown>, key)) this.sizes.set(map, size - 1);
    delete (this.low.data[map] as Record<string, unknown>)[key];
    if (this.journalMode) this.pendingOps.push([map, key]);
  }

  /** Writes the changes durably; resolves when they are on disk (see the class comment). */
  async commit(): Promise<void> {
    const onCommit = this.options.onCommit;
    if (!onCommit) return this.commitChanges();
    const startedMs = performance.now();
    let ok = false;
    try {
      await this.commitChanges();
      ok = true;
    } finally {
      try {
        onCommit(this.file, performance.now() - startedMs, ok);
      } catch {
        // A metrics hook must never turn a durable commit into a failed one.
      }
    }
  }

  private async commitChanges(): Promise<void> {
    if (!this.opened) throw new StoreError(StoreErrorCode.Closed, `${this.file} is not open`, this.file);
    if (!this.journalMode) return this.writeWhole();
    const ops = this.pendingOps;
    this.pendingOps = [];
    if (ops.length === 0) {
      // Nothing of ours: still wait for appends in flight (they may carry our changes).
      await this.lastAppend;
      if (this.backlog.length > 0) this.throwHeld(this.alarmState?.message ?? "earlier changes are still held");
      return;
    }
    const seq = ++this.seq;
    (this.low.data as { seq?: number }).seq = seq;
    const line = JSON.stringify({ s: seq, o: ops }) + "\n";
    if (this.backlog.length > 0 || !this.journal) {
      this.backlog.push({ seq, line });
      if (await this.flushBacklog()) return;
      this.throwHeld(this.alarmState?.message ?? "the journal is not writable");
    }
    const journal = this.journal;
    const file = this.journalFiles.at(-1)!;
    const append = journal.append(line, true);
    // Awaited (and its error handled) just below; lastAppend only orders later appends.
    this.lastAppend = append.catch(() => undefined);
    try {
      await append;
    } catch (error) {
      const cause = storeErrorFromFs(error, journal.path, "appending to the journal");
      this.backlog.push({ seq, line });
      this.raiseAlarm(cause);
      this.throwHeld(cause.message, cause);
    }
    file.maxSeq = Math.max(file.maxSeq, seq);
    this.bytesSinceSnapshot += line.length;
    this.afterJournalWrite();
  }

  /**
   * A direct change to `data` (not through set/del) that may be lost in a crash: written
   * with the next batch (journal mode: the next snapshot).
   */
  markDirty(): void {
    this.dirty = true;
    this.scheduleFlush();
  }

  /** Changes made with set/del that may wait: committed with the next commit or batch. */
  commitLater(): void {
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = this.clock.setTimeout(() => {
      this.flushTimer = undefined;
      // A failed write raises the store alarm, holds the changes and retries (raiseAlarm).
      this.flush().catch(() => undefined);
    }, this.flushIntervalMs);
  }

  /** Writes batched changes now (no-op when nothing changed). */
  async flush(): Promise<void> {
    if (!this.journalMode) {
      if (this.dirty) await this.writeWhole();
      return;
    }
    if (this.pendingOps.length > 0 || this.backlog.length > 0) await this.commit();
    if (this.dirty) await this.snapshot();
  }

  /**
   * Journal mode: rewrites the whole document (durably, through the adapter) and starts a
   * new journal file; old journal files covered by both snapshot generations are removed.
   * Serialised; a request while one runs waits for it and then runs its own.
   */
  snapshot(): Promise<void> {
    // The previous snapshot's error went to its own caller; this one runs regardless.
    const run = this.snapshotChain.catch(() => undefined).then(() => this.snapshotNow());
    // The caller gets `run` and its error; the chain only serialises.
    this.snapshotChain = run.catch(() => undefined);
    return run;
  }

  alarm(): StoreAlarm | null {
    return this.alarmState;
  }

  warnings(): readonly StoreWarning[] {
    return [...this.adapter.warnings(), ...this.extraWarnings];
  }

  status(): DurableDocStatus {
    const stats = this.adapter.writeStats();
    return {
      file: this.file,
      loadedFrom: this.adapter.loadSource(),
      writes: stats.writes,
      lastWriteBytes: stats.lastWriteBytes,
      lastWriteMs: Math.round(stats.lastWriteMs * 1000) / 1000,
      seq: this.seq,
      snapshotSeq: this.snapshotSeq,
      journalBytes: this.bytesSinceSnapshot,
      unflushed: this.dirty || this.pendingOps.length > 0 || this.backlog.length > 0,
      alarm: this.alarmState,
    };
  }

  /** A journal commit is queued or in flight: resolves when none is; undefined when idle. */
  commitsInFlight(): Promise<void> | undefined {
    return this.journal?.busy ? this.journal.whenIdle() : undefined;
  }

  /** Writes everything (one last try if the disk is failing) and stops the timers. */
  async close(): Promise<void> {
    // From here no timer is set and no background snapshot starts.
    this.closed = true;
    for (const timer of [this.flushTimer, this.retryTimer, this.snapshotTimer]) if (timer) this.clock.clearTimeout(timer);
    this.flushTimer = undefined;
    this.retryTimer = undefined;
    this.snapshotTimer = undefined;
    try {
      // A batched write started by a timer may still be in flight: wait for it.
      await this.snapshotChain;
      await this.adapter.idle();
      // Journal mode: the journal is enough; no whole-document rewrite at stop (it could
      // outlast the stop timeout with a large document, and the next start replays).
      if (this.opened) await this.flush();
      await this.snapshotChain;
    } catch (error) {
      this.options.log?.error({ file: this.file, err: error }, "could not write the document at stop; changes since the last write are lost");
    } finally {
      this.opened = false;
      const journal = this.journal;
      this.journal = undefined;
      // Every append was synced when it resolved; closing only releases the descriptor.
      await journal?.close().catch(() => undefined);
    }
  }

  // ---- internals ----------------------------------------------------------------------

  private async writeWhole(): Promise<void> {
    this.dirty = false;
    try {
      await this.low.write();
    } catch (error) {
      this.dirty = true;
      const cause = storeErrorFromFs(error, this.file, "writing the document");
      this.raiseAlarm(cause);
      this.throwHeld(cause.message, cause);
    }
    this.clearAlarm();
  }

  private throwHeld(message: string, cause?: StoreError): never {
    throw new StoreError(StoreErrorCode.HeldInMemory, `${message}; the change is kept in memory and written when the disk recovers`, this.file, cause ? { cause } : undefined);
  }

  private async snapshotNow(): Promise<void> {
    if (!this.opened || !this.journal) return;
    if (this.snapshotTimer) this.clock.clearTimeout(this.snapshotTimer);
    this.snapshotTimer = undefined;
    // 1. New changes go to a new journal file from here on.
    const previousJournal = this.journal;
    const gen = this.journalFiles.at(-1)!.gen + 1;
    const path = this.journalPath(gen);
    let opened: AppendLog;
    try {
      opened = (await AppendLog.open(path, { dsync: true, ...(this.options.log ? { log: this.options.log } : {}) })).log;
    } catch (error) {
      this.options.log?.warn({ file: path, err: error }, "could not start a new journal file; snapshot postponed");
      this.snapshotNotBeforeMs = this.clock.now() + this.retryMs;
      return;
    }
    this.journal = opened;
    this.journalFiles.push({ gen, path, maxSeq: -1 });
    // Its appends were synced when they resolved; closing only releases the descriptor.
    await previousJournal.close().catch(() => undefined);
    // 2. The whole document as it is now (the cut, taken synchronously: every change up to
    //    `seq` is in memory), written durably in pieces while commits go on. Changes made
    //    meanwhile do not leak into it: set/del keep the values they replace (preImages),
    //    so the file is exactly the document at the cut, never half of a later commit.
    const cut = this.cutSnapshot();
    const cutBytes = this.bytesSinceSnapshot;
    const wasDirty = this.dirty;
    this.dirty = false;
    try {
      await this.adapter.writeChunks(this.serialise(cut));
    } catch (error) {
      this.dirty ||= wasDirty;
      const cause = storeErrorFromFs(error, this.file, "writing a snapshot");
      this.snapshotNotBeforeMs = this.clock.now() + this.retryMs;
      this.options.log?.warn({ file: this.file, code: cause.code }, "snapshot failed; the journal still holds every change");
      return;
    } finally {
      this.preImages = undefined;
    }
    const seq = cut.seq;
    const coveredByPrevious = this.snapshotSeq;
    this.snapshotSeq = seq;
    this.lastSnapshotBytes = this.adapter.writeStats().lastWriteBytes;
    // What was journaled after the cut still counts towards the next snapshot.
    this.bytesSinceSnapshot = Math.max(0, this.bytesSinceSnapshot - cutBytes);
    // Changes held in memory are in the snapshot now.
    if (this.backlog.length > 0) {
      this.backlog = this.backlog.filter((b) => b.seq > seq);
      if (this.backlog.length === 0) this.clearAlarm();
    }
    // 3. Journal files both snapshot generations cover are no longer needed.
    const current = this.journalFiles.at(-1)!;
    const keep: JournalFile[] = [];
    for (const file of this.journalFiles) {
      if (file !== current && file !== this.journalFiles.at(-2) && file.maxSeq <= coveredByPrevious) {
        // Both snapshots cover it: a file left behind only replays changes already in them.
        await unlink(file.path).catch(() => undefined);
      } else keep.push(file);
    }
    this.journalFiles = keep;
  }

  private cutSnapshot(): SnapshotCut {
    const data = this.low.data as Record<string, unknown>;
    (data as { seq?: number }).seq = this.seq;
    const cut: SnapshotCut = { seq: this.seq, fields: Object.entries(data), maps: new Map() };
    for (const [field, value] of cut.fields) {
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        cut.maps.set(field, { items: value as Record<string, unknown>, keys: Object.keys(value) });
      }
    }
    this.preImages = new Map();
    return cut;
  }

  /** set/del while a snapshot is written: remember the entry as the snapshot must see it. */
  private keepPreImage(map: string, key: string): void {
    const images = this.preImages;
    if (!images) return;
    let kept = images.get(map);
    if (!kept) images.set(map, (kept = new Map()));
    if (kept.has(key)) return;
    const items = (this.low.data as Record<string, unknown>)[map] as Record<string, unknown>;
    kept.set(key, Object.hasOwn(items, key) ? { present: true, value: items[key] } : { present: false });
  }

  /**
   * The cut as JSON text (the same text JSON.stringify gives for the document at the cut),
   * in pieces. A commit in flight goes first: a piece waits for it rather than compete with
   * its fdatasync for the card.
   */
  private async *serialise(cut: SnapshotCut): AsyncGenerator<string> {
    let out = "{";
    let firstField = true;
    for (const [field, value] of cut.fields) {
      const map = cut.maps.get(field);
      if (!map) {
        const text = JSON.stringify(value);
        if (text === undefined) continue;
        out += `${firstField ? "" : ","}${JSON.stringify(field)}:${text}`;
        firstField = false;
        continue;
      }
      out += `${firstField ? "" : ","}${JSON.stringify(field)}:{`;
      firstField = false;
      let firstItem = true;
      for (const key of map.keys) {
        const kept = this.preImages?.get(field)?.get(key);
        let item: unknown;
        if (kept) {
          if (!kept.present) continue;
          item = kept.value;
        } else item = map.items[key];
        const text = JSON.stringify(item);
        if (text === undefined) continue;
        out += `${firstItem ? "" : ","}${JSON.stringify(key)}:${text}`;
        firstItem = false;
        if (out.length >= SNAPSHOT_CHUNK_CHARS) {
          await this.journal?.batchInFlight();
          yield out;
          out = "";
        }
      }
      out += "}";
    }
    yield `${out}}\n`;
  }

  private snapshotThresholdBytes(): number {
    // At least the document's size: a rewrite then never costs the card more than the
    // changes it folds in, and a start replays at most about one document of journal.
    return Math.max(this.snapshotAfterBytes, this.lastSnapshotBytes);
  }

  /**
   * Asks for a background snapshot. Requests while one is queued or running are the same
   * request: every commit past the threshold must not queue a whole-document rewrite of
   * its own (with a 2 MB list that was one rewrite per commit made during a snapshot).
   */
  private requestSnapshot(): void {
    if (this.snapshotRequested || this.closed || this.clock.now() < this.snapshotNotBeforeMs) return;
    this.snapshotRequested = true;
    this.snapshot()
      .catch((error: unknown) => this.options.log?.warn({ file: this.file, err: error }, "background snapshot failed"))
      .finally(() => {
        this.snapshotRequested = false;
      });
  }

  private afterJournalWrite(): void {
    if (this.closed) return;
    if (this.bytesSinceSnapshot >= this.snapshotThresholdBytes()) {
      this.requestSnapshot();
      return;
    }
    if (!this.snapshotTimer) {
      this.snapshotTimer = this.clock.setTimeout(() => {
        this.snapshotTimer = undefined;
        this.requestSnapshot();
      }, this.snapshotIntervalMs);
    }
  }

  /** Writes held journal lines in order; true when none is left. */
  private async flushBacklog(): Promise<boolean> {
    const journal = this.journal;
    if (this.backlog.length === 0) return true;
    if (!journal) return false;
    // In seq order: a later value of a key must land after an earlier one.
    this.backlog.sort((a, b) => a.seq - b.seq);
    const batch = [...this.backlog];
    const append = journal.append(batch.map((b) => b.line).join(""), true);
    // Awaited (and its error handled) just below; lastAppend only orders later appends.
    this.lastAppend = append.catch(() => undefined);
    try {
      await append;
    } catch (error) {
      this.raiseAlarm(storeErrorFromFs(error, journal.path, "appending to the journal"));
      return false;
    }
    const file = this.journalFiles.at(-1)!;
    for (const b of batch) file.maxSeq = Math.max(file.maxSeq, b.seq);
    this.bytesSinceSnapshot += batch.reduce((n, b) => n + b.line.length, 0);
    this.backlog = this.backlog.slice(batch.length);
    if (this.backlog.length === 0) this.clearAlarm();
    this.afterJournalWrite();
    return this.backlog.length === 0;
  }

  private journalPath(gen: number): string {
    return `${this.file}.journal.${String(gen).padStart(6, "0")}`;
  }

  /** Applies journal lines newer than the snapshot; returns how many lines were applied. */
  private async replayJournals(): Promise<number> {
    const dir = dirname(this.file);
    const prefix = `${basename(this.file)}.journal.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      throw storeErrorFromFs(error, dir, "listing journal files");
    }
    const files = names
      .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
      .map((n) => ({ gen: Number(n.slice(prefix.length)), path: join(dir, n), maxSeq: -1 }))
      .sort((a, b) => a.gen - b.gen);
    let applied = 0;
    let bad = 0;
    const snapshotSeq = this.seq;
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file.path, "utf8");
      } catch (error) {
        throw storeErrorFromFs(error, file.path, "reading the journal");
      }
      const lines = text.split("\n");
      // The part after the last newline is an append cut short by a crash: never acknowledged.
      lines.pop();
      for (const raw of lines) {
        if (!raw) continue;
        let entry: { s: number; o: Op[] };
        try {
          entry = JSON.parse(raw) as { s: number; o: Op[] };
          if (!Number.isInteger(entry.s) || !Array.isArray(entry.o)) throw new Error("not a journal line");
        } catch {
          bad++;
          continue;
        }
        file.maxSeq = Math.max(file.maxSeq, entry.s);
        if (entry.s <= snapshotSeq) continue;
        for (const [map, key, ...value] of entry.o) {
          const target = (this.low.data as Record<string, unknown>)[map];
          if (typeof target !== "object" || target === null) continue;
          if (value.length > 0) Object.defineProperty(target as Record<string, unknown>, key, { value: value[0], enumerable: true, writable: true, configurable: true });
          else delete (target as Record<string, unknown>)[key];
        }
        this.seq = Math.max(this.seq, entry.s);
        applied++;
      }
    }
    (this.low.data as { seq?: number }).seq = this.seq;
    this.journalFiles = files;
    if (bad > 0) {
      const warning = { atMs: this.clock.now(), code: "bad-journal-line", file: this.file, detail: `${bad} unreadable journal line(s) skipped` };
      this.extraWarnings.push(warning);
      this.options.log?.warn(warning, "store journal");
    }
    if (applied > 0) this.options.log?.info({ file: this.file, applied, seq: this.seq }, "replayed journal");
    // Replayed values bypass the schema check of the snapshot: check the result once.
    const checked = this.options.schema.safeParse(this.low.data);
    if (!checked.success) {
      throw new StoreError(
        StoreErrorCode.Corrupt,
        `${this.file}: the journal replays into an invalid document (${checked.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join(".")}: ${i.message}`)
          .join("; ")})`,
        this.file,
      );
    }
    // Keep the parsed document: a replayed value written by an older release gets the
    // defaults and field moves the schema gives (records.ts).
    if (applied > 0) {
      this.low.data = checked.data;
      this.sizes.clear();
    }
    return applied;
  }

  private raiseAlarm(cause: StoreError): void {
    if (!this.alarmState) {
      this.alarmState = { code: cause.code, message: cause.message, sinceMs: this.clock.now() };
      this.options.log?.error({ file: this.file, code: cause.code, err: cause }, "store write failed; holding changes in memory and retrying");
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      const retry = this.journalMode ? this.flushBacklog().then(async (done) => (done ? this.flush() : undefined)) : this.writeWhole();
      // A failure keeps the alarm raised (logged once) and the next retry is scheduled below.
      retry
        .catch(() => undefined)
        .finally(() => {
          if (this.alarmState) this.scheduleRetry();
        });
    }, this.retryMs);
  }

  private clearAlarm(): void {
    if (!this.alarmState) return;
    this.options.log?.info({ file: this.file, sinceMs: this.alarmState.sinceMs }, "store writes recovered");
    this.alarmState = null;
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
