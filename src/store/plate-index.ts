// Plates compare by the core's one plate key (camera reads and platform entries differ in
// spacing, case, width and the virtual plate's 无 prefix).
import { plateKey } from "../core/plates/index.js";

/**
 * plate → keys, built on first use and then kept up to date change by change (a rebuild per
 * change would cost O(n) per platform edit: 5 ms per car with 5,000 cars).
 */
export class PlateIndex {
  private map: Map<string, Set<string>> | undefined;

  constructor(private readonly all: () => Iterable<{ key: string; plate: string }>) {}

  keys(plate: string): string[] {
    if (!this.map) {
      this.map = new Map();
      for (const { key, plate: p } of this.all()) this.add(p, key);
    }
    return [...(this.map.get(plateKey(plate)) ?? [])];
  }

  /** One item changed (undefined plate = absent); an undefined key (a clear) drops the index. */
  change(key: string | undefined, before: string | undefined, after: string | undefined): void {
    if (!this.map) return;
    if (key === undefined) {
      this.map = undefined;
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
  }

  private add(plate: string, key: string): void {
    const norm = plateKey(plate);
    const set = this.map!.get(norm);
    if (set) set.add(key);
    else this.map!.set(norm, new Set([key]));
  }
}
