import { join } from "node:path";
import type { WriteOptions } from "./collection.js";
import { DurableDoc } from "./durable-doc.js";
import { SETTINGS_DOC_VERSION, settingsDocSchema, type SettingsDoc } from "./records.js";
import type { StorePart } from "./store-part.js";

/*
 * The settings: `settings.json` (counters, last-seen times, small values). Batched: written
 * at most once per `batchFlushMs` and at stop, to spare the card; nothing a car's passage
 * depends on lives here.
 */

export class Settings {
  readonly doc: DurableDoc<SettingsDoc>;

  constructor(
    private readonly part: StorePart,
    private readonly options: { batchFlushMs?: number; counterCrashGap?: number } = {},
  ) {
    this.doc = new DurableDoc<SettingsDoc>({
      ...part.docOptions,
      path: join(part.dir, "settings.json"),
      schema: settingsDocSchema,
      version: SETTINGS_DOC_VERSION,
      initial: () => ({ version: SETTINGS_DOC_VERSION, counters: {}, lastSeen: {}, values: {} }),
      flushIntervalMs: options.batchFlushMs ?? 60_000,
    });
  }

  /** After the document opened: counters skip past anything a crash may have issued but not written. */
  async recover(): Promise<void> {
    const counters = this.doc.data.counters;
    if (Object.keys(counters).length > 0) {
      const gap = this.options.counterCrashGap ?? 1000;
      for (const name of Object.keys(counters)) counters[name] = counters[name]! + gap;
      await this.doc.commit();
    }
  }

  /**
   * The next value of a named counter (starts at 1). Batched: never reissued after a crash
   * because recover() skips `counterCrashGap` ahead.
   */
  nextCounter(name: string): number {
    this.part.ensureOpen();
    const counters = this.doc.data.counters;
    const value = (counters[name] ?? 0) + 1;
    counters[name] = value;
    this.doc.markDirty();
    return value;
  }

  setLastSeen(key: string, atMs: number = this.part.clock.now()): void {
    this.part.ensureOpen();
    this.doc.data.lastSeen[key] = atMs;
    this.doc.markDirty();
  }

  lastSeen(key: string): number | undefined {
    return this.doc.data.lastSeen[key];
  }

  getSetting<T = unknown>(key: string): T | undefined {
    return this.doc.data.values[key] as T | undefined;
  }

  /** A small setting; batched unless `durable`. The value must be JSON. */
  async setSetting(key: string, value: unknown, options: WriteOptions = { durable: false }): Promise<void> {
    this.part.ensureOpen();
    this.doc.data.values[key] = structuredClone(value);
    if (options.durable === false) this.doc.markDirty();
    else await this.doc.commit();
  }
}
