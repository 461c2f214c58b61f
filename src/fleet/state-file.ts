import { open, readFile, rename } from "node:fs/promises";
import { dirname, basename } from "node:path";
import type { z } from "zod";
import type { Logger } from "../kernel/log.js";

/**
 * A small JSON state file of the fleet link (boot counter, remembered command ids, applied
 * config version). Writes are durable the way the store's are: write a
 * temp file, fsync it, keep the previous generation, rename, fsync the directory. A torn or
 * corrupt newest file falls back to the previous generation with a warning, never silently to
 * nothing.
 */
export class JsonStateFile<T> {
  private chain: Promise<void> = Promise.resolve();
  /** Set when the last read had to fall back or found garbage; shown in health. */
  warning: string | undefined;

  constructor(
    readonly path: string,
    private readonly schema: z.ZodType<T>,
    private readonly log: Logger,
  ) {}

  async read(): Promise<T | undefined> {
    const current = await this.readOne(this.path);
    if (current.ok) return current.value;
    const previous = await this.readOne(`${this.path}.prev`);
    if (current.why !== "missing") {
      this.warning = `${basename(this.path)}: ${current.why}; ${previous.ok ? "using the previous generation" : "no usable previous generation"}`;
      this.log.warn({ file: this.path, why: current.why, fallback: previous.ok }, "state file unreadable");
      // Kept for a person to look at; if it cannot be moved, the next write replaces it anyway.
      await rename(this.path, `${this.path}.corrupt-${Date.now()}`).catch((error: unknown) =>
        this.log.warn({ file: this.path, err: error }, "could not set the unreadable state file aside"),
      );
    }
    return previous.ok ? previous.value : undefined;
  }

  /** Writes are queued so two quick updates land in order; each resolves once durable. */
  write(value: T): Promise<void> {
    const next = this.chain.then(() => writeDurable(this.path, JSON.stringify(value)));
    // The caller gets `next` and its error; the chain only keeps the order.
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Resolves when every write queued so far has finished (successfully or not). */
  idle(): Promise<void> {
    return this.chain;
  }

  private async readOne(file: string): Promise<{ ok: true; value: T } | { ok: false; why: string }> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { ok: false, why: code === "ENOENT" ? "missing" : `cannot read (${code ?? String(error)})` };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { ok: false, why: "not valid JSON (torn write?)" };
    }
    const parsed = this.schema.safeParse(raw);
    return parsed.success ? { ok: true, value: parsed.data } : { ok: false, why: "does not match its schema" };
  }
}

/** temp + fsync + keep previous + rename + fsync(dir). */
export async function writeDurable(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(file, `${file}.prev`).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
  await rename(tmp, file);
  await fsyncDir(dirname(file));
}

export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename is then as durable as they allow.
  } finally {
    await handle?.close();
  }
}
