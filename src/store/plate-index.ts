// Plates compare by the core's one plate key (camera reads and platform entries differ in
// spacing, case, width and the virtual plate's 无 prefix).
import { plateKey } from "../core/plates/index.js";

/** How many items one background slice of `warm()` indexes before giving the event loop back. */
const WARM_SLICE_ITEMS = 250;

/**
 * plate → keys, kept up to date change by change (a rebuild per change would cost O(n) per
 * platform edit: 5 ms per car with 5,000 cars). Built by `warm()` in small slices after a
 * start, so neither a lane's first lookup nor a list change's commit pays for indexing the
 * whole list (5,000 vehicles: 11–17 ms here, about eight times that on a Pi 3); a lookup made
 * before the warm-up is done finishes the build at once.
 */
export class PlateIndex {
  private map: Map<string, Set<string>> | undefined;
  /** The keys still to index while a build is under way (in order; consumed from `next`). */
  private pending: { keys: string[]; next: number } | undefined;

  /**
   * @param allKeys every item's key, read when a build starts
   * @param plateOf the item's plate now (undefined once it is gone), read as the build reaches it
   */
  constructor(
    private readonly allKeys: () => string[],
    private readonly plateOf: (key: string) => string | undefined,
  ) {}

  keys(plate: string): string[] {
    this.build(Number.POSITIVE_INFINITY);
    return [...(this.map!.get(plateKey(plate)) ?? [])];
  }

  /** Indexes everything in slices with the event loop free between them; resolves when built. */
  async warm(sliceItems = WARM_SLICE_ITEMS): Promise<void> {
    while (!this.build(sliceItems)) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /**
   * One item changed (undefined plate = absent); an undefined key (a clear) drops the index.
   * During a build the change goes into the part built so far: an item the build has not
   * reached yet is read with its plate of that later moment, and a key added twice is one key.
   */
  change(key: string | undefined, before: string | undefined, after: string | undefined): void {
    if (!this.map) return;
    if (key === undefined) {
      this.reset();
      return;
    }
    if (before !== undefined) {
      const set = this.map.get(plateKey(before));
      set?.delete(key);
      if (set?.size === 0) this.map.delete(plateKey(before));
    }
    if (after !== undefined) this.add(after, key);
  }

  reset(): void {
    this.map = undefined;
    this.pending = undefined;
  }

  /** Indexes up to `budget` more items (starting a build if none is under way); true once built. */
  private build(budget: number): boolean {
    if (!this.map) {
      this.map = new Map();
      this.pending = { keys: this.allKeys(), next: 0 };
    }
    const pending = this.pending;
    if (!pending) return true;
    const end = Math.min(pending.keys.length, pending.next + budget);
    for (; pending.next < end; pending.next++) {
      const key = pending.keys[pending.next]!;
      const plate = this.plateOf(key);
      if (plate !== undefined) this.add(plate, key);
    }
    if (pending.next < pending.keys.length) return false;
    this.pending = undefined;
    return true;
  }

  private add(plate: string, key: string): void {
    const norm = plateKey(plate);
    const set = this.map!.get(norm);
    if (set) set.add(key);
    else this.map!.set(norm, new Set([key]));
  }
}
