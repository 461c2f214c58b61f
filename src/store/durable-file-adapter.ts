import { open, readFile, rename, stat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Adapter } from "lowdb";
import type { z } from "zod";
import { systemClock, type Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { StoreError, StoreErrorCode, storeErrorFromFs, type StoreWarning } from "./errors.js";
import { fsyncDir } from "./store-dir.js";

/*
 * Where lowdb 7 falls short on a box that loses power, and what this module does about it:
 * - lowdb's TextFile/JSONFile (through steno) writes a temp file and renames it, but never
 *   fsyncs the file nor the directory: after a power cut the renamed file can be empty or
 *   the rename can be lost. Here: temp → fsync → rename → fsync the directory.
 * - lowdb keeps one generation and a failed parse throws at start: the lot would either
 *   refuse to run or, worse, be restarted with default data. Here the previous generation
 *   is kept as `<name>.prev`; a newest file that does not parse or fails the schema is kept
 *   aside as `<name>.corrupt-<stamp>` and the previous generation is loaded, with a warning.
 * - lowdb does not validate nor migrate. Here every read goes through a zod schema, and a
 *   `version` field drives explicit, stepwise migrations.
 * - `JSONFilePreset` silently swaps the file for memory when NODE_ENV=test: a test would pass
 *   without ever touching the disk. It is not used anywhere; the store always writes files.
 * - Every `write` rewrites the whole document. That is why only small mutable state lives in
 *   lowdb documents (in-park records, lists, settings) and finished stays go to append-only
 *   history segments (history.ts): the cost of a write must not grow with history.
 */

export type Migration = (doc: Record<string, unknown>) => unknown;

export interface DurableFileAdapterOptions<T extends { version: number }> {
  /** The document's file, e.g. `<store>/inpark.json`. */
  path: string;
  /** Validates the document of the current version; types come from it. */
  schema: z.ZodType<T>;
  /** The version this build writes. */
  version: number;
  /**
   * `migrations[n]` turns a version-n document into version n+1 (raw JSON in, raw JSON out;
   * the schema checks the result). A missing step is a hard error, never a silent reset.
   */
  migrations?: Readonly<Record<number, Migration>>;
  clock?: Clock;
  log?: Logger;
  /** Called for every warning as it is raised (the owner aggregates them for status). */
  onWarning?: (warning: StoreWarning) => void;
}

/** Which file the last read came from. */
export type LoadSource = "newest" | "previous" | "interrupted-rotation" | "initial";

/** A write from pieces is fdatasynced every this many bytes (see writeNow). */
const CHUNKED_SYNC_BYTES = 64 * 1024;

type Candidate = { ok: true; data: unknown } | { ok: false; missing: boolean; reason: string };

/**
 * A lowdb `Adapter<T>` that makes every write durable and every read safe (docs/architecture.md
 * "Store and write discipline"). Writes are serialised: one in flight; calls arriving meanwhile share the
 * next write, which serialises the newest data when it starts, so a caller is resolved only
 * by a write that began after its call.
 */
export class DurableFileAdapter<T extends { version: number }> implements Adapter<T> {
  readonly path: string;
  readonly prevPath: string;
  readonly tmpPath: string;
  /** Written once after the first durable write: "this document has existed". */
  readonly bornPath: string;
  private readonly dir: string;
  private readonly clock: Clock;
  private readonly warningList: StoreWarning[] = [];
  private targetExists = false;
  private born = false;
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  /** A write from pieces (writeChunks) queued or in flight. */
  private chunked: Promise<void> | undefined;
  private pendingData: T | undefined;
  private lastLoadSource: LoadSource = "initial";
  private stats = { writes: 0, lastWriteBytes: 0, lastWriteMs: 0, lastWriteAtMs: 0 };

  constructor(private readonly options: DurableFileAdapterOptions<T>) {
    this.path = options.path;
    this.dir = dirname(options.path);
    this.prevPath = `${options.path}.prev`;
    this.tmpPath = join(this.dir, `.${basename(options.path)}.tmp`);
    this.bornPath = `${options.path}.born`;
    this.clock = options.clock ?? systemClock;
  }

  /** Warnings raised by reads (corrupt or missing newest generation). */
  warnings(): readonly StoreWarning[] {
    return this.warningList;
  }

  loadSource(): LoadSource {
    return this.lastLoadSource;
  }

  writeStats(): { writes: number; lastWriteBytes: number; lastWriteMs: number; lastWriteAtMs: number } {
    return { ...this.stats };
  }

  /**
   * Loads the newest good generation:
   * 1. the newest file parses, migrates and passes the schema → it;
   * 2. it is missing but a complete temp file is there (a crash between the two renames of
   *    a write) → finish that rotation and use it;
   * 3. otherwise the previous generation; a bad newest file is renamed aside
   *    (`.corrupt-<stamp>`), and either case raises a warning;
   * 4. nothing at all → `null` (lowdb then keeps the initial data), but only when the
   *    document never existed; if its birth marker is there the data went missing and that
   *    is E_STORE_DATA_MISSING, not an empty lot.
   * A document written by a newer release is E_STORE_VERSION_NEWER (no fallback: the
   * previous generation would silently drop what the newer release added).
   */
  async read(): Promise<T | null> {
    this.born = await exists(this.bornPath);
    const newest = await this.loadCandidate(this.path);
    if (newest.ok) {
      this.targetExists = true;
      // A leftover temp file (usually absent) is never read; the next write truncates it.
      await unlink(this.tmpPath).catch(() => undefined);
      this.lastLoadSource = "newest";
      return newest.data as T;
    }
    this.targetExists = !newest.missing;

    if (newest.missing) {
      const temp = await this.loadCandidate(this.tmpPath);
      const prevExists = await exists(this.prevPath);
      if (temp.ok && prevExists) {
        // Crash after rename(target → prev) and before rename(temp → target): the temp file
        // was fsynced before the first rename, so it is complete. Finish the rotation.
        await rename(this.tmpPath, this.path);
        await fsyncDir(this.dir);
        this.targetExists = true;
        this.lastLoadSource = "interrupted-rotation";
        this.options.log?.info({ file: this.path }, "completed a write interrupted between its two renames");
        return temp.data as T;
      }
    }

    let quarantinedAs: string | undefined;
    if (!newest.missing) {
      quarantinedAs = await this.quarantine(this.path);
      this.targetExists = false;
    }
    const previous = await this.loadCandidate(this.prevPath);
    if (previous.ok) {
      this.warn({
        code: newest.missing ? "missing-newest" : "corrupt-newest",
        file: this.path,
        detail: newest.missing
          ? "the newest generation is missing; loaded the previous generation"
          : `the newest generation is unusable (${newest.reason}); loaded the previous generation`,
        ...(quarantinedAs ? { quarantinedAs } : {}),
      });
      // A leftover temp file (usually absent) is never read; the next write truncates it.
      await unlink(this.tmpPath).catch(() => undefined);
      this.lastLoadSource = "previous";
      return previous.data as T;
    }

    if (newest.missing && previous.missing) {
      if (this.born) {
        throw new StoreError(
          StoreErrorCode.DataMissing,
          `${this.path} existed before (marker ${basename(this.bornPath)}) but it and its previous generation are gone; refusing to start empty. Restore the files, or delete the marker to start this document afresh.`,
          this.path,
        );
      }
      // A leftover temp file (usually absent) is never read; the next write truncates it.
      await unlink(this.tmpPath).catch(() => undefined);
      this.lastLoadSource = "initial";
      return null;
    }

    throw new StoreError(
      StoreErrorCode.Corrupt,
      `${this.path}: no usable generation (newest: ${newest.ok ? "ok" : newest.reason}; previous: ${previous.reason})` +
        (quarantinedAs ? `; the bad newest file was kept as ${basename(quarantinedAs)}` : ""),
      this.path,
    );
  }

  /** Durable, serialised, coalescing write (see the class comment). */
  write(data: T): Promise<void> {
    this.pendingData = data;
    if (!this.next) {
      const previous = Promise.allSettled([this.current, this.chunked]);
      this.next = previous.then(() => {
        const snapshot = this.pendingData as T;
        this.pendingData = undefined;
        this.next = undefined;
        this.current = this.writeNow(snapshot);
        return this.current;
      });
    }
    return this.next;
  }

  /**
   * Writes the document from pieces of its JSON text (a large document's snapshot, so that
   * neither the event loop is held for its whole length nor the text built as one string),
   * with the same durability and generations as `write`, after any write queued or in
   * flight. The pieces are trusted to make up one JSON document: the caller serialises.
   */
  writeChunks(chunks: AsyncIterable<string>): Promise<void> {
    const run = Promise.allSettled([this.next, this.current, this.chunked]).then(() => this.writeNow(chunks));
    this.chunked = run;
    const clear = (): void => {
      if (this.chunked === run) this.chunked = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** Resolves when no write is queued or in flight (whatever their outcome). */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [this.next, this.current, this.chunked] as const;
      await Promise.allSettled(pending.filter((write) => write !== undefined));
      if (pending[0] === this.next && pending[1] === this.current && pending[2] === this.chunked) return;
    }
  }

  private async writeNow(source: T | AsyncIterable<string>): Promise<void> {
    const begun = performance.now();
    let bytes = 0;
    try {
      const handle = await open(this.tmpPath, "w");
      try {
        if (isChunks(source)) {
          let unsyncedBytes = 0;
          for await (const chunk of source) {
            const written = await writeAll(handle, Buffer.from(chunk, "utf8"));
            bytes += written;
            unsyncedBytes += written;
            // Flushed as it goes: one fsync of megabytes at the end would hold the card (and
            // every lane's commit waiting on it) for the whole flush.
            if (unsyncedBytes >= CHUNKED_SYNC_BYTES) {
              await handle.datasync();
              unsyncedBytes = 0;
            }
          }
        } else {
          bytes = await writeAll(handle, Buffer.from(JSON.stringify(source) + "\n", "utf8"));
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (this.targetExists) {
        await rename(this.path, this.prevPath);
        this.targetExists = false;
      }
      await rename(this.tmpPath, this.path);
      this.targetExists = true;
      await fsyncDir(this.dir);
      if (!this.born) {
        // After the first durable write, never before: a marker without data would make
        // the next start refuse an empty document that was never acknowledged.
        await writeFile(this.bornPath, JSON.stringify({ createdAtMs: this.clock.now() }) + "\n", { flush: true });
        await fsyncDir(this.dir);
        this.born = true;
      }
    } catch (error) {
      // Best-effort cleanup: the error below is the one that matters.
      await unlink(this.tmpPath).catch(() => undefined);
      throw storeErrorFromFs(error, this.path, "writing the document");
    }
    this.stats = {
      writes: this.stats.writes + 1,
      lastWriteBytes: bytes,
      lastWriteMs: performance.now() - begun,
      lastWriteAtMs: this.clock.now(),
    };
  }

  private async loadCandidate(path: string): Promise<Candidate> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { ok: false, missing: true, reason: "missing" };
      throw storeErrorFromFs(error, path, "reading the document");
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      return { ok: false, missing: false, reason: `not JSON (${text.length} bytes): ${(error as Error).message}` };
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return { ok: false, missing: false, reason: "not a JSON object" };
    }
    const version = (raw as { version?: unknown }).version;
    if (typeof version !== "number" || !Number.isInteger(version) || version < 0) {
      return { ok: false, missing: false, reason: "no integer version field" };
    }
    if (version > this.options.version) {
      throw new StoreError(
        StoreErrorCode.VersionNewer,
        `${path} is version ${version}, newer than the ${this.options.version} this release reads (a downgrade?); refusing rather than dropping its fields`,
        path,
      );
    }
    let migrated: unknown = raw;
    for (let from = version; from < this.options.version; from++) {
      const step = this.options.migrations?.[from];
      if (!step) {
        throw new StoreError(StoreErrorCode.Corrupt, `${path} is version ${from} and there is no migration from it to ${from + 1}`, path);
      }
      migrated = step(migrated as Record<string, unknown>);
      if (typeof migrated === "object" && migrated !== null) (migrated as { version: number }).version = from + 1;
    }
    const parsed = this.options.schema.safeParse(migrated);
    if (!parsed.success) {
      const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
      return { ok: false, missing: false, reason: `fails the schema: ${first.join("; ")}` };
    }
    if (version !== this.options.version) {
      this.options.log?.info({ file: path, from: version, to: this.options.version }, "document migrated on read");
    }
    return { ok: true, data: parsed.data };
  }

  private async quarantine(path: string): Promise<string | undefined> {
    const stamp = new Date(this.clock.now())
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z");
    let target = `${path}.corrupt-${stamp}`;
    for (let n = 1; await exists(target); n++) target = `${path}.corrupt-${stamp}-${n}`;
    try {
      await rename(path, target);
      await fsyncDir(this.dir);
      return target;
    } catch (error) {
      this.options.log?.error({ file: path, err: error }, "could not keep the corrupt file aside");
      return undefined;
    }
  }

  private warn(warning: Omit<StoreWarning, "atMs">): void {
    const full: StoreWarning = { atMs: this.clock.now(), ...warning };
    this.warningList.push(full);
    this.options.log?.warn({ ...full }, "store: loaded the previous generation");
    this.options.onWarning?.(full);
  }
}

function isChunks(source: unknown): source is AsyncIterable<string> {
  return typeof source === "object" && source !== null && Symbol.asyncIterator in source;
}

async function writeAll(handle: FileHandle, buffer: Buffer): Promise<number> {
  let offset = 0;
  while (offset < buffer.length) offset += (await handle.write(buffer, offset, buffer.length - offset)).bytesWritten;
  return buffer.length;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
