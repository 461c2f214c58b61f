import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import cron from "node-cron";
import { systemClock, type Clock } from "../app/clock.js";
import type { Logger } from "../app/log.js";
import { AppendLog } from "./append-log.js";
import { StoreError, StoreErrorCode, storeErrorFromFs, type StoreWarning } from "./errors.js";
import { fsyncDir } from "./store-dir.js";

/**
 * No line of history can be older than the release that wrote it: a clock before this is a
 * box that booted without a real-time clock and without NTP yet (domain.md §8), and pruning
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

/** The cron scheduler seam (node-cron by default; tests can hand in their own). */
export type CronScheduler = (expression: string, run: () => void) => { stop(): void };

export interface HistoryOptions {
  /** The history directory (created if missing; its parent must exist). */
  dir: string;
  clock?: Clock;
  log?: Logger;
  segmentMaxBytes?: number;
  retentionDays?: number;
  clockFloorMs?: number;
  /** Cron expression, evaluated in UTC. */
  pruneSchedule?: string;
  /** Whether the wall clock is known good (NTP synchronised). Pruning waits until it is. */
  clockTrusted?: () => boolean;
  scheduler?: CronScheduler;
  /** Bounds for queries: how far back a plate query reads. */
  queryMaxSegments?: number;
  queryMaxBytes?: number;
}

const SEGMENT_RE = /^history-(\d{8})-(\d{4,})\.jsonl$/;
const DAY_MS = 86_400_000;

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
 * Append-only history of finished stays and events (architecture.md §5): JSON lines in
 * segment files rotated by size and by UTC day, pruned by retention. An append touches only
 * the current segment (O_APPEND, no read), so its cost does not grow with history; durable
 * appends share one fdatasync per batch (group commit).
 *
 * Pruning decides from segment names alone (no file is read) and refuses when the clock
 * looks wrong: before the build-time floor, earlier than the newest segment's day, or not
 * yet trusted. Retention counts back from the earlier of "now" and the newest segment's
 * day, so a clock that jumped forward (and the cron catch-up that follows such a jump)
 * cannot sweep away the lot's history. The current segment is never pruned.
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
    this.segmentList = names.map(parseSegmentName).filter((s): s is SegmentInfo => s !== undefined).sort(compareSegments);
    const newest = this.segmentList.at(-1);
    const first = newest ?? { name: segmentName(utcDay(this.clock.now()), 1), day: utcDay(this.clock.now()), seq: 1 };
    if (!newest) this.segmentList.push(first);
    const opened = await AppendLog.open(join(this.options.dir, first.name), {
      ...(this.options.log ? { log: this.options.log } : {}),
      rotate: (path, size, batchBytes) => this.rotateIfNeeded(path, size, batchBytes),
    });
    this.log = opened.log;
    if (opened.repairedBytes > 0) {
      this.warn({ code: "torn-tail", file: first.name, detail: `cut ${opened.repairedBytes} bytes of an append interrupted by a crash` });
    }
  }

  /** Appends a line; `durable` resolves only after it is fsynced (group commit). */
  async append(line: HistoryLine, durable: boolean): Promise<void> {
    if (!this.log) throw new StoreError(StoreErrorCode.Closed, "history is not open", this.options.dir);
    await this.log.append(JSON.stringify(line) + "\n", durable);
    this.appendedLines++;
  }

  /** Several lines in one write (and one fsync when durable). */
  async appendMany(lines: readonly HistoryLine[], durable: boolean): Promise<void> {
    if (!this.log) throw new StoreError(StoreErrorCode.Closed, "history is not open", this.options.dir);
    if (lines.length === 0) return;
    await this.log.append(lines.map((l) => JSON.stringify(l) + "\n").join(""), durable);
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
    const maxSegments = options.maxSegments ?? this.options.queryMaxSegments ?? 60;
    const maxBytes = options.maxBytes ?? this.options.queryMaxBytes ?? 64 * 1024 * 1024;
    await this.log?.whenIdle();
    const out: HistoryLine[] = [];
    let bytesRead = 0;
    // A segment is named by the UTC day it was started and rotates on the next day, so lines
    // written at or after `sinceMs` are all in segments of that day or later (decided by names,
    // like prune). Lines inside those segments are not filtered by time.
    const fromDay = options.sinceMs === undefined ? undefined : utcDay(options.sinceMs);
    const segments = [...this.segmentList]
      .reverse()
      .filter((segment) => fromDay === undefined || segment.day >= fromDay)
      .slice(0, maxSegments);
    for (const segment of segments) {
      let text: string;
      try {
        text = await readFile(join(this.options.dir, segment.name), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw storeErrorFromFs(error, segment.name, "reading history");
      }
      bytesRead += text.length;
      const rows = text.split("\n");
      for (let i = rows.length - 1; i >= 0 && out.length < limit; i--) {
        const raw = rows[i]!;
        if (!raw || (options.prefilter !== undefined && !raw.includes(options.prefilter))) continue;
        try {
          const line = JSON.parse(raw) as HistoryLine;
          if (match(line)) out.push(line);
        } catch {
          // A damaged line is skipped; the rest of the segment is still history.
        }
      }
      if (out.length >= limit || bytesRead >= maxBytes) break;
    }
    return out;
  }

  /** The newest lines for a plate (any kind), newest first; bounded as `recent`. */
  recentByPlate(plate: string, options: { limit?: number; maxSegments?: number; maxBytes?: number; sinceMs?: number; kind?: HistoryLine["t"] } = {}): Promise<HistoryLine[]> {
    // The plate as it appears inside the JSON text, so most lines are skipped unparsed.
    const needle = JSON.stringify(plate).slice(1, -1);
    const { kind, ...rest } = options;
    return this.recent((line) => line.plate === plate && (kind === undefined || line.t === kind), { ...rest, prefilter: needle });
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
      removed.push(segment.name);
      this.segmentList = this.segmentList.filter((s) => s.name !== segment.name);
    }
    if (removed.length > 0) {
      await fsyncDir(this.options.dir).catch(() => undefined);
      this.options.log?.info({ removed: removed.length, cutoffDay }, "pruned history segments");
    }
    const result = { removed };
    this.lastPrune = { ...result, atMs: nowMs };
    return result;
  }

  /** Schedules the daily prune (node-cron, in UTC). */
  startPruneJob(): void {
    if (this.cronTask) return;
    const expression = this.options.pruneSchedule ?? DEFAULT_PRUNE_SCHEDULE;
    const run = (): void => {
      // The clock read here, not the time cron thinks it is: a catch-up run after a jump
      // still goes through the clock checks in prune().
      this.prune(this.clock.now()).catch((error: unknown) => this.options.log?.error({ err: error }, "history prune failed"));
    };
    if (this.options.scheduler) {
      this.cronTask = this.options.scheduler(expression, run);
    } else {
      if (!cron.validate(expression)) {
        throw new StoreError(StoreErrorCode.Invalid, `history prune schedule "${expression}" is not a cron expression`);
      }
      const task = cron.schedule(expression, run, { timezone: "Etc/UTC", name: "lanekeeper-history-prune", noOverlap: true });
      // destroy(), not stop(): it also leaves node-cron's task registry.
      this.cronTask = { stop: () => void task.destroy() };
    }
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
  } {
    return {
      dir: this.options.dir,
      segments: this.segmentList.length,
      currentSegment: this.currentSegment(),
      currentBytes: this.log?.sizeBytes ?? 0,
      appendedLines: this.appendedLines,
      syncs: this.log?.stats().syncs ?? 0,
      lastPrune: this.lastPrune,
    };
  }

  async close(): Promise<void> {
    this.cronTask?.stop();
    this.cronTask = undefined;
    await this.pruning?.catch(() => undefined);
    const log = this.log;
    this.log = undefined;
    await log?.close();
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
