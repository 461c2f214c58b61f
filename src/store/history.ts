// Over 600 lines on purpose: the segment files, their plate-index sidecars and crash repair share
// one append position and one view of which segment is open.
import { mkdir, open, readdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";
import { systemClock, type Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { AppendLog } from "./append-log.js";
import { parseDailyExpression, scheduleDaily } from "./daily-job.js";
import { StoreError, StoreErrorCode, storeErrorFromFs, type StoreWarning } from "./errors.js";
import {
  IndexEntries,
  MAX_INDEXED_SEGMENT_BYTES,
  encodeSidecar,
  fileIdentity,
  indexSegmentRange,
  lookupSidecar,
  parseHeader,
  plateHash,
  segmentTailCrc,
  sidecarName,
  validateSidecar,
  writeSidecar,
  type SidecarHeader,
} from "./history-index.js";
import { fsyncDir } from "./store-dir.js";
import { DAY_MS } from "../core/time/zone.js";

/**
 * No line of history can be older than the release that wrote it: a clock before this is a
 * box that booted without a real-time clock and without NTP yet (systemd/README.md "Clock"), and pruning
 * by it would be pruning by a wrong clock. Raised with each release.
 */
export const DEFAULT_CLOCK_FLOOR_MS = Date.UTC(2026, 0, 1);

/** Daily, in UTC (a lot's local midnight is busy on some sites; 03:23 UTC rarely is). */
export const DEFAULT_PRUNE_SCHEDULE = "23 3 * * *";

/**
 * One line of history. `t` says what it is ("stay" for a finished stay, "event" for a lane or
 * device event); `plate` and `recordNo` are top-level so queries can filter without knowing
 * the rest of the shape.
 */
export interface HistoryLine {
  t: string;
  atMs: number;
  plate?: string;
  recordNo?: string;
  [key: string]: unknown;
}

export interface SegmentInfo {
  name: string;
  /** UTC day the segment was started, YYYYMMDD. */
  day: string;
  seq: number;
}

export interface PruneResult {
  removed: string[];
  /** Set when the run refused to prune, with the reason. */
  refused?: string;
}

/** The scheduler seam (src/store/daily-job.ts by default; tests can hand in their own). */
export type CronScheduler = (expression: string, run: () => void) => { stop(): void };

export interface HistoryOptions {
  /** The history directory (created if missing; its parent must exist). */
  dir: string;
  clock?: Clock;
  log?: Logger;
  segmentMaxBytes?: number;
  retentionDays?: number;
  clockFloorMs?: number;
  /** When the daily prune runs: "M H * * *" (minute, hour), UTC. */
  pruneSchedule?: string;
  /** Whether the wall clock is known good (NTP synchronised). Pruning waits until it is. */
  clockTrusted?: () => boolean;
  scheduler?: CronScheduler;
  /** Bounds for queries: how far back a plate query reads. */
  queryMaxSegments?: number;
  queryMaxBytes?: number;
}

const SEGMENT_RE = /^history-(\d{8})-(\d{4,})\.jsonl$/;
const SIDECAR_RE = /^history-(\d{8})-(\d{4,})\.idx$/;
const SIDECAR_TMP_RE = /^\.history-.*\.idx\.tmp$/;

/**
 * The plate index of the segment being appended to: the lines appended since open, placed
 * as they are written, and (built from the file on first use) the lines it held at open.
 */
interface OpenSegmentIndex {
  name: string;
  baseBytes: number;
  base: Promise<IndexEntries> | undefined;
  appended: IndexEntries;
}

type PlateQueryOptions = { limit?: number; maxSegments?: number; maxBytes?: number; sinceMs?: number; kind?: HistoryLine["t"]; index?: boolean };

export function utcDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear().toString().padStart(4, "0")}${(d.getUTCMonth() + 1).toString().padStart(2, "0")}${d.getUTCDate().toString().padStart(2, "0")}`;
}

export function segmentName(day: string, seq: number): string {
  return `history-${day}-${seq.toString().padStart(4, "0")}.jsonl`;
}

export function parseSegmentName(name: string): SegmentInfo | undefined {
  const m = SEGMENT_RE.exec(name);
  return m ? { name, day: m[1]!, seq: Number(m[2]) } : undefined;
}

function compareSegments(a: SegmentInfo, b: SegmentInfo): number {
  return a.day < b.day ? -1 : a.day > b.day ? 1 : a.seq - b.seq;
}

/**
 * Append-only history of finished stays and events (docs/architecture.md "Store and write discipline"): JSON lines in
 * segment files rotated by size and by UTC day, pruned by retention. An append touches only
 * the current segment (O_APPEND, no read), so its cost does not grow with history; durable
 * appends share one fdatasync per batch (group commit).
 *
 * Pruning decides from segment names alone (no file is read) and refuses when the clock
 * looks wrong: before the build-time floor, earlier than the newest segment's day, or not
 * yet trusted. Retention counts back from the earlier of "now" and the newest segment's
 * day, so a clock that jumped forward (and the cron catch-up that follows such a jump)
 * cannot sweep away the lot's history. The current segment is never pruned.
 *
 * Plate queries go through a plate index kept with the segments (history-index.ts): a
 * sidecar per sealed segment, written when it is sealed and pruned with it, and entries in
 * memory for the open one. A sidecar found missing or unsound is never used: the segment is
 * scanned and the sidecar rebuilt in the background, so the answers are always the scan's.
 */
export class History {
  private log: AppendLog | undefined;
  private segmentList: SegmentInfo[] = [];
  private readonly clock: Clock;
  private readonly segmentMaxBytes: number;
  private readonly retentionDays: number;
  private readonly clockFloorMs: number;
  private readonly warningList: StoreWarning[] = [];
  private cronTask: { stop(): void } | undefined;
  private lastPrune: (PruneResult & { atMs: number }) | undefined;
  private pruning: Promise<PruneResult> | undefined;
  private appendedLines = 0;
  // plate index (history-index.ts)
  private openIndex: OpenSegmentIndex | undefined;
  /** Sidecars found sound in this process, by segment, with the file identity then. */
  private readonly trusted = new Map<string, { identity: string; header: SidecarHeader }>();
  private readonly rebuildQueue: Array<{ name: string; entries?: () => Promise<IndexEntries | undefined> }> = [];
  private rebuilding: Promise<void> | undefined;
  private closing = false;
  /** Opens so far: a prune job scheduled for an earlier open is not scheduled late. */
  private indexCounters = { built: 0, indexedQueries: 0, scannedSegments: 0 };

  constructor(private readonly options: HistoryOptions) {
    this.clock = options.clock ?? systemClock;
    this.segmentMaxBytes = options.segmentMaxBytes ?? 8 * 1024 * 1024;
    this.retentionDays = options.retentionDays ?? 180;
    this.clockFloorMs = options.clockFloorMs ?? DEFAULT_CLOCK_FLOOR_MS;
  }

  get dir(): string {
    return this.options.dir;
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.options.dir, { recursive: false });
      await fsyncDir(join(this.options.dir, ".."));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw storeErrorFromFs(error, this.options.dir, "creating the history directory");
    }
    let names: string[];
    try {
      names = await readdir(this.options.dir);
    } catch (error) {
      throw storeErrorFromFs(error, this.options.dir, "listing history segments");
    }
    this.segmentList = names
      .map(parseSegmentName)
      .filter((s): s is SegmentInfo => s !== undefined)
      .sort(compareSegments);
    const newest = this.segmentList.at(-1);
    const first = newest ?? { name: segmentName(utcDay(this.clock.now()), 1), day: utcDay(this.clock.now()), seq: 1 };
    if (!newest) this.segmentList.push(first);
    const opened = await AppendLog.open(join(this.options.dir, first.name), {
      ...(this.options.log ? { log: this.options.log } : {}),
      rotate: (path, size, batchBytes) => this.rotateIfNeeded(path, size, batchBytes),
    });
    this.log = opened.log;
    this.closing = false;
    this.openIndex = { name: first.name, baseBytes: opened.log.sizeBytes, base: undefined, appended: new IndexEntries() };
    if (opened.repairedBytes > 0) {
      this.warn({ code: "torn-tail", file: first.name, detail: `cut ${opened.repairedBytes} bytes of an append interrupted by a crash` });
    }
    // In the background: a start must not wait for the index of a year of history.
    this.enqueueRebuild(undefined);
  }

  /** Appends a line; `durable` resolves only after it is fsynced (group commit). */
  async append(line: HistoryLine, durable: boolean): Promise<void> {
    if (!this.log) throw new StoreError(StoreErrorCode.Closed, "history is not open", this.options.dir);
    const text = JSON.stringify(line) + "\n";
    const placed: Array<[number | undefined, number]> = [[typeof line.plate === "string" ? plateHash(line.plate) : undefined, Buffer.byteLength(text)]];
    await this.log.append(text, durable, (path, offset) => this.placed(path, offset, placed));
    this.appendedLines++;
  }

  /** Several lines in one write (and one fsync when durable). */
  async appendMany(lines: readonly HistoryLine[], durable: boolean): Promise<void> {
    if (!this.log) throw new StoreError(StoreErrorCode.Closed, "history is not open", this.options.dir);
    if (lines.length === 0) return;
    const texts = lines.map((l) => JSON.stringify(l) + "\n");
    const placed = lines.map((l, i): [number | undefined, number] => [typeof l.plate === "string" ? plateHash(l.plate) : undefined, Buffer.byteLength(texts[i]!)]);
    await this.log.append(texts.join(""), durable, (path, offset) => this.placed(path, offset, placed));
    this.appendedLines += lines.length;
  }

  /** Makes every appended line durable (used at stop and after batched event appends). */
  async sync(): Promise<void> {
    await this.log?.sync();
  }

  segments(): readonly SegmentInfo[] {
    return this.segmentList;
  }

  currentSegment(): string | undefined {
    return this.segmentList.at(-1)?.name;
  }

  /**
   * The newest lines matching `match`, newest first, scanning segments from the newest
   * backwards and stopping at `limit` lines, `maxSegments` segments or `maxBytes` read.
   */
  async recent(
    match: (line: HistoryLine) => boolean,
    options: { limit?: number; maxSegments?: number; maxBytes?: number; prefilter?: string; sinceMs?: number } = {},
  ): Promise<HistoryLine[]> {
    const limit = options.limit ?? 50;
    const maxBytes = options.maxBytes ?? this.options.queryMaxBytes ?? 64 * 1024 * 1024;
    await this.log?.whenIdle();
    const prefilter = options.prefilter === undefined ? undefined : Buffer.from(options.prefilter, "utf8");
    const out: HistoryLine[] = [];
    let bytesRead = 0;
    for (const segment of this.querySegments(options.sinceMs, options.maxSegments)) {
      const buffer = await this.readSegment(segment.name);
      if (!buffer) continue;
      bytesRead += buffer.length;
      scanRows(buffer, prefilter, match, limit, out);
      if (out.length >= limit || bytesRead >= maxBytes) break;
    }
    return out;
  }

  /**
   * The newest lines for a plate (any kind), newest first; bounded as `recent` (a segment
   * counts its whole size against `maxBytes`, read or not), with the same answers. Reads
   * the plate's lines through the plate index; a segment whose index is missing or not to
   * be trusted is scanned and its index rebuilt in the background. `index: false` scans.
   */
  async recentByPlate(plate: string, options: PlateQueryOptions = {}): Promise<HistoryLine[]> {
    const { kind, index = true, ...rest } = options;
    const match = (line: HistoryLine): boolean => line.plate === plate && (kind === undefined || line.t === kind);
    // The plate as it appears inside the JSON text, so most lines are skipped unparsed.
    const needle = JSON.stringify(plate).slice(1, -1);
    if (!index) return this.recent(match, { ...rest, prefilter: needle });
    const limit = options.limit ?? 50;
    const maxBytes = options.maxBytes ?? this.options.queryMaxBytes ?? 64 * 1024 * 1024;
    await this.log?.whenIdle();
    this.indexCounters.indexedQueries++;
    const hash = plateHash(plate);
    const out: HistoryLine[] = [];
    let bytesRead = 0;
    for (const segment of this.querySegments(options.sinceMs, options.maxSegments)) {
      const size = await this.plateLinesOf(segment.name, hash, Buffer.from(needle, "utf8"), match, limit, out);
      if (size === undefined) continue;
      bytesRead += size;
      if (out.length >= limit || bytesRead >= maxBytes) break;
    }
    return out;
  }

  /** Resolves when no index is being rebuilt or waits to be (tests, the bench, backups). */
  async whenIndexed(): Promise<void> {
    while (this.rebuilding) await this.rebuilding;
  }

  /**
   * Deletes segments older than the retention, deciding by their names. See the class
   * comment for when it refuses.
   */
  prune(nowMs: number = this.clock.now()): Promise<PruneResult> {
    this.pruning ??= this.pruneNow(nowMs).finally(() => {
      this.pruning = undefined;
    });
    return this.pruning;
  }

  private async pruneNow(nowMs: number): Promise<PruneResult> {
    const refuse = (reason: string): PruneResult => {
      const result = { removed: [], refused: reason };
      this.lastPrune = { ...result, atMs: nowMs };
      this.warn({ code: "prune-refused", file: this.options.dir, detail: reason });
      return result;
    };
    if (nowMs < this.clockFloorMs) {
      return refuse(`clock ${new Date(nowMs).toISOString()} is before the build-time floor ${new Date(this.clockFloorMs).toISOString()}`);
    }
    if (this.options.clockTrusted && !this.options.clockTrusted()) return refuse("the clock is not synchronised yet");
    const newest = this.segmentList.at(-1);
    const today = utcDay(nowMs);
    if (newest && today < newest.day) {
      return refuse(`clock day ${today} is earlier than the newest history segment ${newest.name}`);
    }
    // Count back from the earlier of today and the newest segment: a forward jump of the
    // clock must not age everything out at once.
    const anchorDay = newest && newest.day < today ? newest.day : today;
    const anchorMs = Date.UTC(Number(anchorDay.slice(0, 4)), Number(anchorDay.slice(4, 6)) - 1, Number(anchorDay.slice(6, 8)));
    const cutoffDay = utcDay(anchorMs - this.retentionDays * DAY_MS);
    const current = this.currentSegment();
    const removed: string[] = [];
    for (const segment of [...this.segmentList]) {
      // Day rotation means a segment named for day D holds lines of day D only (a clock
      // that went backwards keeps writing into the newer name, which errs on keeping).
      if (segment.day >= cutoffDay || segment.name === current) break;
      try {
        await unlink(join(this.options.dir, segment.name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
          this.options.log?.error({ file: segment.name, err: error }, "could not prune a history segment");
          break;
        }
      }
      // Its index goes with it (one left behind by a crash here is removed at the next open).
      await unlink(join(this.options.dir, sidecarName(segment.name))).catch(() => undefined);
      this.trusted.delete(segment.name);
      removed.push(segment.name);
      this.segmentList = this.segmentList.filter((s) => s.name !== segment.name);
    }
    if (removed.length > 0) {
      // Without it a crash may bring an old segment back; the next prune removes it again.
      await fsyncDir(this.options.dir).catch(() => undefined);
      this.options.log?.info({ removed: removed.length, cutoffDay }, "pruned history segments");
    }
    const result = { removed };
    this.lastPrune = { ...result, atMs: nowMs };
    return result;
  }

  /**
   * Schedules the daily prune (UTC, `pruneSchedule`). Idempotent; resolves once the job is
   * scheduled (a bad schedule rejects with E_STORE_INVALID).
   */
  startPruneJob(): Promise<void> {
    if (this.cronTask || this.closing) return Promise.resolve();
    // A promise, so a caller chains its log the same way whatever the scheduler.
    return new Promise((resolve) => {
      this.schedulePruneJob();
      resolve();
    });
  }

  private schedulePruneJob(): void {
    const expression = this.options.pruneSchedule ?? DEFAULT_PRUNE_SCHEDULE;
    const run = (): void => {
      // The clock read here, not the time cron thinks it is: a catch-up run after a jump
      // still goes through the clock checks in prune().
      this.prune(this.clock.now()).catch((error: unknown) => this.options.log?.error({ err: error }, "history prune failed"));
    };
    if (this.options.scheduler) {
      this.cronTask = this.options.scheduler(expression, run);
      return;
    }
    const at = parseDailyExpression(expression);
    if (!at) throw new StoreError(StoreErrorCode.Invalid, `history prune schedule "${expression}" is not a daily "M H * * *" expression`);
    this.cronTask = scheduleDaily(this.clock, at, run);
  }

  warnings(): readonly StoreWarning[] {
    return this.warningList;
  }

  status(): {
    dir: string;
    segments: number;
    currentSegment: string | undefined;
    currentBytes: number;
    appendedLines: number;
    syncs: number;
    lastPrune: (PruneResult & { atMs: number }) | undefined;
    index: { built: number; indexedQueries: number; scannedSegments: number; rebuildsQueued: number };
  } {
    return {
      dir: this.options.dir,
      segments: this.segmentList.length,
      currentSegment: this.currentSegment(),
      currentBytes: this.log?.sizeBytes ?? 0,
      appendedLines: this.appendedLines,
      syncs: this.log?.stats().syncs ?? 0,
      lastPrune: this.lastPrune,
      index: { ...this.indexCounters, rebuildsQueued: this.rebuildQueue.length },
    };
  }

  async close(): Promise<void> {
    this.cronTask?.stop();
    this.cronTask = undefined;
    this.closing = true;
    this.rebuildQueue.length = 0;
    await this.whenIndexed();
    // Only waiting for it to end: its outcome went to whoever asked for the prune.
    await this.pruning?.catch(() => undefined);
    const log = this.log;
    this.log = undefined;
    await log?.close();
  }

  /** Segments a query reads, newest first (see `recent`). */
  private querySegments(sinceMs: number | undefined, maxSegments: number | undefined): SegmentInfo[] {
    // A segment is named by the UTC day it was started and rotates on the next day, so lines
    // written at or after `sinceMs` are all in segments of that day or later (decided by names,
    // like prune). Lines inside those segments are not filtered by time.
    const fromDay = sinceMs === undefined ? undefined : utcDay(sinceMs);
    return [...this.segmentList]
      .reverse()
      .filter((segment) => fromDay === undefined || segment.day >= fromDay)
      .slice(0, maxSegments ?? this.options.queryMaxSegments ?? 60);
  }

  private async readSegment(name: string): Promise<Buffer | undefined> {
    try {
      const handle = await open(join(this.options.dir, name), "r");
      try {
        return await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw storeErrorFromFs(error, name, "reading history");
    }
  }

  /**
   * Adds the lines of a plate in one segment to `out` (newest first, up to `limit`) and
   * returns the segment's size; undefined when the segment is gone.
   */
  private async plateLinesOf(name: string, hash: number, needle: Buffer, match: (line: HistoryLine) => boolean, limit: number, out: HistoryLine[]): Promise<number | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(join(this.options.dir, name), "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw storeErrorFromFs(error, name, "reading history");
    }
    try {
      const { size } = await handle.stat();
      const candidates = await this.indexedLines(name, handle, size, hash);
      if (!candidates) {
        this.indexCounters.scannedSegments++;
        scanRows(await handle.readFile(), needle, match, limit, out);
        return size;
      }
      for (const [offset, length] of candidates) {
        if (out.length >= limit) break;
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        const line = parseRow(buffer.toString("utf8", 0, bytesRead > 0 && buffer[bytesRead - 1] === 0x0a ? bytesRead - 1 : bytesRead));
        if (line && match(line)) out.push(line);
      }
      return size;
    } catch (error) {
      throw storeErrorFromFs(error, name, "reading history");
    } finally {
      await handle.close();
    }
  }

  /** [offset, length] of the lines of `hash` in a segment, newest first; undefined: scan it. */
  private async indexedLines(name: string, segment: FileHandle, size: number, hash: number): Promise<Array<[number, number]> | undefined> {
    const current = this.openIndex;
    if (current?.name === name) {
      current.base ??= this.buildBase(name, current.baseBytes);
      // A failed index build falls back to scanning the segment (below).
      const base = await current.base.catch(() => undefined);
      if (!base) {
        current.base = undefined;
        return undefined;
      }
      return [...current.appended.lookup(hash), ...base.lookup(hash)];
    }
    const sidecarPath = join(this.options.dir, sidecarName(name));
    let sidecar: FileHandle;
    try {
      sidecar = await open(sidecarPath, "r");
    } catch {
      this.enqueueRebuild(name);
      return undefined;
    }
    try {
      // Checked whole once per process and file (a rewrite or rename is a new file).
      const identity = await fileIdentity(sidecar);
      let header = this.trusted.get(name);
      if (!header || header.identity !== identity || header.header.segmentBytes !== size) {
        const checked = await validateSidecar(await sidecar.readFile(), { handle: segment, sizeBytes: size });
        if (!checked) {
          this.trusted.delete(name);
          this.enqueueRebuild(name);
          return undefined;
        }
        header = { identity, header: checked };
        this.trusted.set(name, header);
      }
      return await lookupSidecar(sidecar, header.header, hash);
    } finally {
      await sidecar.close();
    }
  }

  private async buildBase(name: string, baseBytes: number): Promise<IndexEntries> {
    const entries = new IndexEntries();
    if (baseBytes === 0) return entries;
    const handle = await open(join(this.options.dir, name), "r");
    try {
      await indexSegmentRange(handle, 0, baseBytes, entries);
    } finally {
      await handle.close();
    }
    return entries;
  }

  /** Told by the log where each append landed: keeps the open segment's index. */
  private placed(path: string, offset: number, lines: ReadonlyArray<[number | undefined, number]>): void {
    const name = basename(path);
    if (this.openIndex?.name !== name) {
      // The log moved to a new segment: the previous one is sealed; its index goes to disk.
      const sealed = this.openIndex;
      this.openIndex = { name, baseBytes: offset, base: undefined, appended: new IndexEntries() };
      if (sealed) {
        this.enqueueRebuild(sealed.name, async () => {
          // A failed index build leaves the segment unindexed: reads scan it instead.
          const base = await sealed.base?.catch(() => undefined);
          if (!base) return undefined;
          const all = new IndexEntries();
          for (const [hash, at, length] of base.entries()) all.add(hash, at, length);
          for (const [hash, at, length] of sealed.appended.entries()) all.add(hash, at, length);
          return all;
        });
      }
    }
    let at = offset;
    for (const [hash, length] of lines) {
      if (hash !== undefined) this.openIndex.appended.add(hash, at, length);
      at += length;
    }
  }

  /**
   * Queues the (re)building of a sealed segment's sidecar; `undefined` queues the check at
   * open (orphans removed, every sealed segment without a current sidecar queued). One job
   * at a time, in the background.
   */
  private enqueueRebuild(name: string | undefined, entries?: () => Promise<IndexEntries | undefined>): void {
    if (this.closing) return;
    if (name === undefined) this.rebuildQueue.push({ name: "" });
    else if (!this.rebuildQueue.some((job) => job.name === name)) this.rebuildQueue.push({ name, ...(entries ? { entries } : {}) });
    this.rebuilding ??= this.runRebuilds();
  }

  private async runRebuilds(): Promise<void> {
    // Not within the caller's turn (an append's completion, a query).
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      for (let job = this.rebuildQueue.shift(); job && !this.closing; job = this.rebuildQueue.shift()) {
        try {
          if (job.name === "") await this.checkSidecars();
          else await this.rebuild(job.name, job.entries);
        } catch (error) {
          this.options.log?.warn({ file: job.name, err: error }, "could not build a history index; the segment is scanned instead");
        }
      }
    } finally {
      // Cleared in the same turn the queue was found empty, so a job queued next starts a runner.
      this.rebuilding = undefined;
    }
  }

  private async checkSidecars(): Promise<void> {
    const names = await readdir(this.options.dir);
    const segments = new Set(this.segmentList.map((s) => s.name));
    for (const name of names) {
      const orphan = (SIDECAR_RE.test(name) && !segments.has(name.replace(/\.idx$/, ".jsonl"))) || SIDECAR_TMP_RE.test(name);
      // An orphan left behind is never read and is tried again at the next start.
      if (orphan) await unlink(join(this.options.dir, name)).catch(() => undefined);
    }
    for (const segment of [...this.segmentList].reverse()) {
      if (this.closing) return;
      if (segment.name === this.openIndex?.name) continue;
      const size = await fileSize(join(this.options.dir, segment.name));
      if (size === undefined || size > MAX_INDEXED_SEGMENT_BYTES) continue;
      // Checked in full now, in the background, so the first queries need not.
      if (!(await this.trustSidecar(segment.name, size))) this.rebuildQueue.push({ name: segment.name });
    }
  }

  /** Validates a sealed segment's sidecar in full and remembers it as sound; false if not. */
  private async trustSidecar(name: string, size: number): Promise<boolean> {
    let sidecar: FileHandle;
    let segment: FileHandle;
    try {
      sidecar = await open(join(this.options.dir, sidecarName(name)), "r");
    } catch {
      return false;
    }
    try {
      segment = await open(join(this.options.dir, name), "r");
    } catch {
      await sidecar.close();
      return false;
    }
    try {
      const identity = await fileIdentity(sidecar);
      const header = await validateSidecar(await sidecar.readFile(), { handle: segment, sizeBytes: size });
      if (header) this.trusted.set(name, { identity, header });
      return header !== undefined;
    } finally {
      await sidecar.close();
      await segment.close();
    }
  }

  private async rebuild(name: string, precomputed: (() => Promise<IndexEntries | undefined>) | undefined): Promise<void> {
    if (name === this.openIndex?.name || !this.segmentList.some((s) => s.name === name)) return;
    const path = join(this.options.dir, name);
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch {
      return;
    }
    try {
      const { size } = await handle.stat();
      if (size > MAX_INDEXED_SEGMENT_BYTES) return;
      let entries = await precomputed?.();
      if (!entries) {
        entries = new IndexEntries();
        if (!(await indexSegmentRange(handle, 0, size, entries, () => this.closing))) return;
      }
      const content = encodeSidecar(entries, size, await segmentTailCrc(handle, size));
      await writeSidecar(path, content);
      // Made from the segment just now: trusted as long as the file is the one written.
      const header = parseHeader(content, content.length);
      // Without an identity the sidecar is simply not trusted and gets verified before use.
      const identity = await fileIdentity(join(this.options.dir, sidecarName(name))).catch(() => undefined);
      if (header && identity) this.trusted.set(name, { identity, header });
      else this.trusted.delete(name);
      this.indexCounters.built++;
    } finally {
      await handle.close();
    }
    // Pruned meanwhile: the sidecar goes too.
    if (!this.segmentList.some((s) => s.name === name)) await unlink(join(this.options.dir, sidecarName(name))).catch(() => undefined);
  }

  private rotateIfNeeded(path: string, size: number, batchBytes: number): string | undefined {
    const current = parseSegmentName(basename(path));
    if (!current) return undefined;
    const today = utcDay(this.clock.now());
    let next: SegmentInfo | undefined;
    // A clock that went backwards never makes a segment name go backwards.
    if (today > current.day) next = { name: segmentName(today, 1), day: today, seq: 1 };
    else if (size > 0 && size + batchBytes > this.segmentMaxBytes) {
      next = { name: segmentName(current.day, current.seq + 1), day: current.day, seq: current.seq + 1 };
    }
    if (!next) return undefined;
    this.segmentList.push(next);
    return join(this.options.dir, next.name);
  }

  private warn(warning: Omit<StoreWarning, "atMs">): void {
    const full = { atMs: this.clock.now(), ...warning };
    this.warningList.push(full);
    if (this.warningList.length > 50) this.warningList.shift();
    this.options.log?.warn(full, "history");
  }
}

function parseRow(raw: string): HistoryLine | undefined {
  try {
    return JSON.parse(raw) as HistoryLine;
  } catch {
    // A damaged line is skipped; the rest of the segment is still history.
    return undefined;
  }
}

/**
 * The rows of a segment (split at "\n") from the last to the first, into `out` while they
 * match, up to `limit`. Works on the bytes: no copy of the segment as one string, no array
 * of all its rows; `prefilter` (bytes a matching row must contain) skips most rows unparsed.
 */
function scanRows(buffer: Buffer, prefilter: Buffer | undefined, match: (line: HistoryLine) => boolean, limit: number, out: HistoryLine[]): void {
  let end = buffer.length;
  while (out.length < limit) {
    const newline = end === 0 ? -1 : buffer.lastIndexOf(0x0a, end - 1);
    const start = newline + 1;
    if (end > start && (!prefilter || buffer.subarray(start, end).includes(prefilter))) {
      const line = parseRow(buffer.toString("utf8", start, end));
      if (line && match(line)) out.push(line);
    }
    if (newline < 0) break;
    end = newline;
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
