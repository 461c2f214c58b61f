import { constants } from "node:fs";
import { open, rename, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../kernel/log.js";
import { storeErrorFromFs, type StoreError } from "./errors.js";
import { fsyncDir } from "./store-dir.js";

export interface AppendLogOptions {
  log?: Logger;
  /**
   * Open with O_DSYNC: each batch's write returns only once it is on disk, so a durable
   * batch costs one system call instead of write + fdatasync (one thread-pool round trip
   * less per commit). Only for logs whose every append is durable: with O_DSYNC the
   * non-durable appends are synchronous too.
   */
  dsync?: boolean;
  /**
   * Called before each batch with the current file's size and the batch's size; returns a
   * new path to continue in (rotation) or undefined to stay. Synchronous on purpose: it
   * decides from the clock and the sizes only.
   */
  rotate?: (currentPath: string, sizeBytes: number, batchBytes: number) => string | undefined;
}

interface Pending {
  kind: "append";
  bytes: Buffer;
  durable: boolean;
  placed: ((path: string, offset: number) => void) | undefined;
  resolve: () => void;
  reject: (error: StoreError) => void;
}

interface Replace {
  kind: "replace";
  text: string;
  resolve: () => void;
  reject: (error: StoreError) => void;
}

export interface OpenedLog {
  log: AppendLog;
  /** Bytes cut off the end because the last line was torn (a crash mid-append). */
  repairedBytes: number;
}

/**
 * An append-only file of JSON lines with group commit: appends that arrive while a batch is
 * being written and fsynced form the next batch, so N concurrent durable appends cost one
 * fdatasync, not N. The cost of an append does not depend on the file's length (O_APPEND,
 * no read, no rewrite). A failed write is cut back to the last good length (ftruncate) so a
 * later append never lands glued to half a line; the failed lines are rejected to their
 * callers, who keep them in memory.
 */
export class AppendLog {
  private queue: Array<Pending | Replace> = [];
  private running = false;
  private unsynced = false;
  private closedFlag = false;
  private idleWaiters: Array<() => void> = [];
  private inFlight: Promise<void> | undefined;
  private counters = { batches: 0, syncs: 0, bytes: 0 };

  private constructor(
    private currentPath: string,
    private handle: FileHandle,
    private size: number,
    private readonly options: AppendLogOptions,
  ) {}

  /**
   * Opens (creating if needed) `path` for appending. A last line without its newline is the
   * remains of an append cut short by a crash; it was never acknowledged, so it is cut off.
   */
  static async open(path: string, options: AppendLogOptions = {}): Promise<OpenedLog> {
    const { handle, size, repairedBytes } = await openForAppend(path, options.log, options.dsync ?? false);
    return { log: new AppendLog(path, handle, size, options), repairedBytes };
  }

  get path(): string {
    return this.currentPath;
  }

  get sizeBytes(): number {
    return this.size;
  }

  /**
   * Appends `text` (one or more complete lines, each ending in "\n"). `durable` appends
   * resolve after fdatasync; others after the write (the next durable batch or `sync()`
   * covers them). `placed` is told the file and the byte offset the text landed at, once it
   * is written and before the promise resolves (an index of the lines is kept that way).
   */
  append(text: string, durable: boolean, placed?: (path: string, offset: number) => void): Promise<void> {
    if (this.closedFlag) return Promise.reject(storeErrorFromFs(new Error("log is closed"), this.currentPath, "appending"));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: "append", bytes: Buffer.from(text, "utf8"), durable, placed, resolve, reject });
      this.kick();
    });
  }

  /** Makes everything written so far durable. */
  sync(): Promise<void> {
    return this.append("", true);
  }

  /**
   * Atomically replaces the whole file with `text` (compaction): temp → fsync → rename →
   * fsync dir, ordered with the appends around it.
   */
  replace(text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: "replace", text, resolve, reject });
      this.kick();
    });
  }

  /** Batches written, fdatasyncs issued, bytes appended since open. */
  stats(): { batches: number; syncs: number; bytes: number } {
    return { ...this.counters };
  }

  /** A batch is queued or being written. */
  get busy(): boolean {
    return this.running || this.queue.length > 0;
  }

  /**
   * Resolves when the batch being written now (if any) is done, not waiting for the ones
   * queued behind it: for background work that should let a commit's fdatasync go first
   * without being starved by a steady stream of commits.
   */
  batchInFlight(): Promise<void> {
    return this.inFlight ?? Promise.resolve();
  }

  /** Resolves when no batch is queued or being written. */
  whenIdle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.whenIdle();
    this.closedFlag = true;
    try {
      if (this.unsynced) await this.handle.datasync();
    } finally {
      await this.handle.close();
    }
  }

  private kick(): void {
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === "replace") {
          this.queue.shift();
          await this.doReplace(head);
          continue;
        }
        const batch: Pending[] = [];
        while (this.queue.length > 0 && this.queue[0]!.kind === "append") batch.push(this.queue.shift() as Pending);
        this.inFlight = this.writeBatch(batch);
        try {
          await this.inFlight;
        } finally {
          this.inFlight = undefined;
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters.splice(0);
      for (const resolve of waiters) resolve();
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const bytes = Buffer.concat(batch.map((p) => p.bytes));
    const durable = batch.some((p) => p.durable);
    let goodSize = this.size;
    try {
      const next = bytes.length > 0 ? this.options.rotate?.(this.currentPath, this.size, bytes.length) : undefined;
      if (next !== undefined && next !== this.currentPath) {
        await this.switchTo(next);
        goodSize = this.size;
      }
      if (bytes.length > 0) {
        let offset = 0;
        while (offset < bytes.length) {
          const { bytesWritten } = await this.handle.write(bytes, offset, bytes.length - offset);
          offset += bytesWritten;
        }
        this.size += bytes.length;
        this.unsynced = !this.options.dsync;
        this.counters.bytes += bytes.length;
        if (this.options.dsync) this.counters.syncs++;
      }
      this.counters.batches++;
      if (durable && this.unsynced) {
        await this.handle.datasync();
        this.unsynced = false;
        this.counters.syncs++;
      }
    } catch (error) {
      const storeError = storeErrorFromFs(error, this.currentPath, "appending");
      if (bytes.length > 0) {
        // Cut back whatever part of the batch reached the file (ENOSPC mid-write).
        await this.handle.truncate(goodSize).catch(() => undefined);
        this.size = goodSize;
      }
      for (const p of batch) p.reject(storeError);
      return;
    }
    let offset = goodSize;
    for (const p of batch) {
      p.placed?.(this.currentPath, offset);
      offset += p.bytes.length;
    }
    for (const p of batch) p.resolve();
  }

  private async switchTo(path: string): Promise<void> {
    if (this.unsynced) await this.handle.datasync();
    await this.handle.close();
    const opened = await openForAppend(path, this.options.log, this.options.dsync ?? false);
    this.handle = opened.handle;
    this.size = opened.size;
    this.currentPath = path;
    this.unsynced = false;
  }

  private async doReplace(op: Replace): Promise<void> {
    const dir = dirname(this.currentPath);
    const tmp = join(dir, `.${basename(this.currentPath)}.tmp`);
    try {
      const out = await open(tmp, "w");
      try {
        await out.writeFile(op.text);
        await out.sync();
      } finally {
        await out.close();
      }
      await this.handle.close();
      await rename(tmp, this.currentPath);
      await fsyncDir(dir);
      const opened = await openForAppend(this.currentPath, this.options.log, this.options.dsync ?? false);
      this.handle = opened.handle;
      this.size = opened.size;
      this.unsynced = false;
    } catch (error) {
      // Keep appending to whatever is at the path (the old file if the rename did not happen).
      try {
        const opened = await openForAppend(this.currentPath, this.options.log, this.options.dsync ?? false);
        this.handle = opened.handle;
        this.size = opened.size;
      } catch {
        // The next append will fail and be reported; nothing more to do here.
      }
      op.reject(storeErrorFromFs(error, this.currentPath, "compacting"));
      return;
    }
    op.resolve();
  }
}

async function openForAppend(path: string, log: Logger | undefined, dsync: boolean): Promise<{ handle: FileHandle; size: number; repairedBytes: number }> {
  let handle: FileHandle;
  let created = false;
  try {
    handle = await open(path, "r+");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw storeErrorFromFs(error, path, "opening for append");
    try {
      handle = await open(path, "w+");
      created = true;
    } catch (inner) {
      throw storeErrorFromFs(inner, path, "creating");
    }
  }
  try {
    if (created) {
      // The new name must survive a power cut before anything in it is acknowledged.
      await fsyncDir(dirname(path));
      return { handle: await reopenAppend(handle, path, dsync), size: 0, repairedBytes: 0 };
    }
    const { size } = await handle.stat();
    const goodSize = await lastNewlineEnd(handle, size);
    if (goodSize < size) {
      await handle.truncate(goodSize);
      await handle.datasync();
      log?.warn({ file: path, cutBytes: size - goodSize }, "cut a torn last line (an append interrupted by a crash)");
    }
    return { handle: await reopenAppend(handle, path, dsync), size: goodSize, repairedBytes: size - goodSize };
  } catch (error) {
    // Best-effort cleanup: the error below is the one that matters.
    await handle.close().catch(() => undefined);
    throw storeErrorFromFs(error, path, "opening for append");
  }
}

async function reopenAppend(handle: FileHandle, path: string, dsync: boolean): Promise<FileHandle> {
  await handle.close();
  return open(path, dsync ? constants.O_WRONLY | constants.O_APPEND | constants.O_DSYNC : "a");
}

/** The length of the file up to and including its last "\n" (0 if there is none). */
async function lastNewlineEnd(handle: FileHandle, size: number): Promise<number> {
  const chunk = 64 * 1024;
  let end = size;
  const buffer = Buffer.alloc(chunk);
  while (end > 0) {
    const start = Math.max(0, end - chunk);
    const { bytesRead } = await handle.read(buffer, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (buffer[i] === 0x0a) return start + i + 1;
    }
    end = start;
  }
  return 0;
}
