import type { Logger } from "../kernel/log.js";

/** Who made a change: this box ("local": lanes, platform, operator) or the lot (another box's version written here). */
export type ChangeSource = "local" | "lot";

/**
 * Tells listeners of a journaled document's changes once per key per commit, after the commit
 * (a change is never told before it is durable, unless the disk refused it: then it is told as
 * the store holds it in memory). A key changed twice before its commit is told once, as it is
 * then; "local" wins over "lot" for it, so a box's own edit is never taken for an echo.
 *
 * Writes made inside `fromLot` are the lot's: the collections tell their change synchronously
 * inside the write, before its first await.
 */
export class ChangeNotices<K, C> {
  private readonly listeners = new Set<(change: C) => void>();
  private readonly pending = new Map<string, { key: K; source: ChangeSource }>();
  private scheduled = false;
  private writingFromLot = false;

  constructor(
    private readonly doc: { commitsInFlight(): Promise<void> | undefined },
    /** The change as it is told: what the store holds for the key now. */
    private readonly describe: (key: K, source: ChangeSource) => C,
    private readonly idOf: (key: K) => string,
    private readonly log: Logger | undefined,
  ) {}

  /** Returns the unsubscribe function. */
  listen(listener: (change: C) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs a write whose changes are the lot's, not this box's. */
  fromLot<T>(write: () => Promise<T>): Promise<T> {
    this.writingFromLot = true;
    try {
      return write();
    } finally {
      this.writingFromLot = false;
    }
  }

  changed(key: K): void {
    if (this.listeners.size === 0) return;
    const source: ChangeSource = this.writingFromLot ? "lot" : "local";
    const id = this.idOf(key);
    if (this.pending.get(id)?.source !== "local") this.pending.set(id, { key, source });
    if (this.scheduled) return;
    this.scheduled = true;
    // The commit that carries the change starts in the same synchronous step as the change;
    // a microtask later it is in flight, and the listeners hear of it once it is done.
    queueMicrotask(() => {
      const told = () => this.tell();
      const inFlight = this.doc.commitsInFlight();
      if (inFlight) inFlight.then(told, told);
      else told();
    });
  }

  private tell(): void {
    this.scheduled = false;
    const changes = [...this.pending.values()];
    this.pending.clear();
    for (const { key, source } of changes) {
      const change = this.describe(key, source);
      for (const listener of this.listeners) {
        try {
          listener(change);
        } catch (error) {
          this.log?.error({ err: error, key: this.idOf(key) }, "store change listener failed");
        }
      }
    }
  }
}
