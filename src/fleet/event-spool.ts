import { open, readFile, rename, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Logger } from "../kernel/log.js";
import { eventPayloadSchema, type EventPayload } from "./payloads.js";
import { JsonStateFile, fsyncDir } from "./state-file.js";

/** One QoS 1 event waiting for the broker; `key` is `<boot>:<seq>`, unique across boots. */
export interface SpoolEntry {
  readonly key: string;
  readonly payload: EventPayload;
}

export function spoolKey(payload: EventPayload): string {
  return `${payload.boot}:${payload.seq}`;
}

const lineSchema = z.strictObject({ k: z.string().min(3), p: eventPayloadSchema });
const cursorSchema = z.strictObject({ last: z.string().nullable() });

export interface EventSpoolOptions {
  dir: string;
  maxEntries: number;
  log: Logger;
}

export interface SpoolOpenReport {
  loaded: number;
  dropped: number;
  corruptLines: number;
}

/**
 * The offline spool of QoS 1 events: spooled to disk while offline and sent in order after;
 * bounded, the oldest dropped with a counter, never silently.
 *
 * On disk: an append-only JSON-lines file plus a tiny cursor file naming the last entry taken
 * off the head (delivered or dropped). Appends are written and fsynced once per batch (all the
 * events of one tick); taking entries off the head only rewrites the cursor, so draining
 * 10 000 events does not rewrite the spool 10 000 times. The file is compacted when most of it
 * is consumed and truncated when the spool runs empty.
 *
 * Failure modes are duplicates, never loss: a cursor that names an entry not in the file
 * (after compaction, or a crash between two steps) means "everything in the file is pending",
 * and the backend drops duplicates by `(boot, seq)`.
 */
export class EventSpool {
  private pending: SpoolEntry[] = [];
  private unflushed: string[] = [];
  private fileLines = 0;
  private cursorKey: string | null = null;
  private cursorDirty = false;
  private handle: FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private readonly file: string;
  private readonly cursor: JsonStateFile<z.infer<typeof cursorSchema>>;
  /** Events dropped because the spool was full, since the process started. */
  droppedTotal = 0;
  /** Drops not yet announced to the backend (the link publishes an `events-dropped` event). */
  droppedUnreported = 0;
  /** Disk errors: the spool keeps working in memory and says so in health. */
  writeErrors = 0;

  constructor(private readonly options: EventSpoolOptions) {
    this.file = join(options.dir, "events.spool.jsonl");
    this.cursor = new JsonStateFile(join(options.dir, "events.spool.cursor.json"), cursorSchema, options.log);
  }

  get size(): number {
    return this.pending.length;
  }

  async open(): Promise<SpoolOpenReport> {
    let text = "";
    try {
      text = await readFile(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const cursor = (await this.cursor.read())?.last ?? null;
    const entries: SpoolEntry[] = [];
    let corruptLines = 0;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      try {
        const parsed = lineSchema.safeParse(JSON.parse(line));
        if (parsed.success) entries.push({ key: parsed.data.k, payload: parsed.data.p });
        else corruptLines++;
      } catch {
        corruptLines++; // a torn last line after a power cut
      }
    }
    const at = cursor === null ? -1 : entries.findIndex((entry) => entry.key === cursor);
    let pending = entries.slice(at + 1);
    let dropped = 0;
    if (pending.length > this.options.maxEntries) {
      dropped = pending.length - this.options.maxEntries;
      pending = pending.slice(dropped);
      this.droppedTotal += dropped;
      this.droppedUnreported += dropped;
      this.options.log.warn({ dropped, kept: pending.length }, "event spool over its bound at load: oldest events dropped");
    }
    if (corruptLines > 0) this.options.log.warn({ corruptLines }, "event spool had unreadable lines; skipped");
    this.pending = pending;
    // Start every process with a file that holds exactly the pending entries: no torn tail to
    // append after, no consumed head to skip.
    await this.rewrite();
    return { loaded: pending.length, dropped, corruptLines };
  }

  /** The oldest `n` pending entries, oldest first. */
  peek(n: number): SpoolEntry[] {
    return this.pending.slice(0, n);
  }

  /** Adds entries at the tail now; they reach the disk with the next batch. */
  append(entries: readonly SpoolEntry[]): void {
    if (entries.length === 0) return;
    for (const entry of entries) {
      this.pending.push(entry);
      this.unflushed.push(`${JSON.stringify({ k: entry.key, p: entry.payload })}\n`);
    }
    let dropped = 0;
    while (this.pending.length > this.options.maxEntries) {
      const oldest = this.pending.shift();
      if (!oldest) break;
      this.cursorKey = oldest.key;
      this.cursorDirty = true;
      dropped++;
    }
    if (dropped > 0) {
      this.droppedTotal += dropped;
      this.droppedUnreported += dropped;
      this.options.log.warn({ dropped, droppedTotal: this.droppedTotal, max: this.options.maxEntries }, "event spool full: oldest events dropped");
    }
    this.scheduleFlush();
  }

  /**
   * Takes delivered entries off the head. Entries dropped meanwhile are skipped; the cursor
   * only ever moves forward. Resolves when the cursor is durable.
   */
  consume(entries: readonly SpoolEntry[]): Promise<void> {
    for (const entry of entries) {
      if (this.pending[0] === entry) {
        this.pending.shift();
        this.cursorKey = entry.key;
        this.cursorDirty = true;
      }
    }
    return this.flush();
  }

  /** Writes whatever is pending now; resolves when it is on disk. */
  flush(): Promise<void> {
    const next = this.chain.then(() => this.flushNow());
    this.chain = next.catch((error: unknown) => {
      this.writeErrors++;
      this.options.log.error({ err: error }, "event spool write failed; events stay in memory");
    });
    return this.chain;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle?.close();
    this.handle = undefined;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One write + one fsync for everything appended in this tick ("fsync per batch").
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flushNow(): Promise<void> {
    if (this.unflushed.length > 0) {
      const lines = this.unflushed;
      this.unflushed = [];
      const handle = await this.appendHandle();
      await handle.write(lines.join(""));
      await handle.datasync();
      this.fileLines += lines.length;
    }
    if (!this.cursorDirty) return;
    this.cursorDirty = false;
    const consumedOnDisk = this.fileLines - this.pending.length;
    if (this.pending.length === 0 || (consumedOnDisk > 1000 && consumedOnDisk > this.fileLines / 2)) {
      await this.rewrite();
    } else {
      await this.cursor.write({ last: this.cursorKey });
    }
  }

  /** Replaces the file with exactly the pending entries and clears the cursor. */
  private async rewrite(): Promise<void> {
    // Snapshot synchronously: entries appended while the rewrite awaits stay in `unflushed`
    // and are appended after it; entries consumed meanwhile move the cursor, kept below.
    const snapshot = this.pending.slice();
    const cursorAtStart = this.cursorKey;
    this.unflushed = [];
    await this.handle?.close();
    this.handle = undefined;
    const tmp = `${this.file}.tmp`;
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.writeFile(snapshot.map((entry) => `${JSON.stringify({ k: entry.key, p: entry.payload })}\n`).join(""));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
    await fsyncDir(this.options.dir);
    this.fileLines = snapshot.length;
    // After the rename the old cursor names nothing in the file, which already means "all
    // pending"; clearing it is tidiness, so a crash between the two steps loses nothing.
    if (this.cursorKey === cursorAtStart) {
      this.cursorKey = null;
      await this.cursor.write({ last: null });
    }
  }

  private async appendHandle(): Promise<FileHandle> {
    this.handle ??= await open(this.file, "a", 0o600);
    return this.handle;
  }
}
