import { z } from "zod";
import { DAY_MS } from "../core/time/zone.js";
import type { Logger } from "../kernel/log.js";
import { JsonStateFile } from "./state-file.js";
import { commandStatuses, type CommandStatus } from "./payloads.js";

const entrySchema = z.strictObject({
  name: z.string(),
  atMs: z.int().min(0),
  keepUntilMs: z.int().min(0),
  /** "running" until the handler finished (or the process died while it ran). */
  status: z.union([z.enum(commandStatuses), z.literal("running")]),
});
const fileSchema = z.strictObject({ ids: z.record(z.string(), entrySchema) });

export type SeenEntry = z.infer<typeof entrySchema>;

export interface SeenIdsOptions {
  /** How long an id is remembered at least (durably, across restarts). */
  retainMs?: number;
  /** A bound on the file: past it the oldest ids are forgotten first. */
  maxIds?: number;
}

/**
 * Command and job ids the box has accepted. An id is written durably BEFORE its handler runs,
 * so a crash in the middle of an `open` cannot make a redelivered command lift the barrier a
 * second time. An id is kept for `retainMs` and at least until its command's `expiresAt`
 * (a command that could still be delivered must still be recognised).
 */
export class SeenIds {
  private ids = new Map<string, SeenEntry>();
  private readonly file: JsonStateFile<z.infer<typeof fileSchema>>;
  private readonly retainMs: number;
  private readonly maxIds: number;

  constructor(path: string, log: Logger, options: SeenIdsOptions = {}) {
    this.file = new JsonStateFile(path, fileSchema, log);
    this.retainMs = options.retainMs ?? DAY_MS;
    this.maxIds = options.maxIds ?? 10_000;
  }

  get warning(): string | undefined {
    return this.file.warning;
  }

  get size(): number {
    return this.ids.size;
  }

  async load(nowMs: number): Promise<void> {
    const stored = await this.file.read();
    this.ids = new Map(Object.entries(stored?.ids ?? {}));
    this.prune(nowMs);
  }

  get(id: string): SeenEntry | undefined {
    return this.ids.get(id);
  }

  /** Remembers an id; resolves when that is durable. */
  async remember(id: string, name: string, nowMs: number, expiresAtMs: number | undefined): Promise<void> {
    this.prune(nowMs);
    this.ids.set(id, { name, atMs: nowMs, keepUntilMs: Math.max(nowMs + this.retainMs, expiresAtMs ?? 0), status: "running" });
    await this.persist();
  }

  async settle(id: string, status: CommandStatus): Promise<void> {
    const entry = this.ids.get(id);
    if (!entry) return;
    entry.status = status;
    await this.persist();
  }

  /** Resolves when queued writes are done (stop() waits for it). */
  idle(): Promise<void> {
    return this.file.idle();
  }

  private prune(nowMs: number): void {
    for (const [id, entry] of this.ids) if (entry.keepUntilMs < nowMs) this.ids.delete(id);
    if (this.ids.size >= this.maxIds) {
      const oldest = [...this.ids].sort((a, b) => a[1].atMs - b[1].atMs).slice(0, this.ids.size - this.maxIds + 1);
      for (const [id] of oldest) this.ids.delete(id);
    }
  }

  private persist(): Promise<void> {
    return this.file.write({ ids: Object.fromEntries(this.ids) });
  }
}
