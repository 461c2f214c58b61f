/**
 * The signatures of section-4 requests seen inside the timestamp window (docs/protocol.md,
 * "Replays"). The signature covers pid, serviceName, timestamp and bizContent, so a second
 * request with the same signature is the same request sent again: answered once, refused after.
 *
 * Memory is bounded twice: an entry is dropped once its timestamp has left the window (a
 * replay then fails the timestamp check anyway), and at most `maxEntries` are kept — only
 * requests with a valid signature get in, so only the cloud itself could fill it; the oldest
 * entry then makes room and is counted in `evictions`.
 */
export class ReplayCache {
  /** sign (upper case) → the epoch second after which it can no longer pass the window. */
  private readonly entries = new Map<string, number>();
  private evicted = 0;
  private nextSweepS = 0;

  constructor(
    private readonly windowS: number,
    private readonly maxEntries: number,
  ) {}

  /**
   * Records a verified request's signature. Returns false when the same signature was already
   * recorded and has not expired (a replay), true otherwise.
   */
  remember(sign: string, timestampS: number, nowS: number): boolean {
    const key = sign.toUpperCase();
    this.sweep(nowS);
    const expiresAtS = this.entries.get(key);
    if (expiresAtS !== undefined && expiresAtS >= nowS) return false;
    if (expiresAtS !== undefined) this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      this.sweep(nowS, true);
      if (this.entries.size >= this.maxEntries) {
        // Insertion order is arrival order: the first key is the oldest arrival.
        this.entries.delete(this.entries.keys().next().value!);
        this.evicted++;
      }
    }
    // A request answered although outside the window (rejectStaleTimestamps off) is kept for
    // one window from now, so it cannot be replayed at once either.
    this.entries.set(key, Math.max(timestampS, nowS) + this.windowS);
    return true;
  }

  stats(): { entries: number; evictions: number } {
    return { entries: this.entries.size, evictions: this.evicted };
  }

  /** Drops expired entries: at most once a second unless forced (a full pass is O(entries)). */
  private sweep(nowS: number, force = false): void {
    if (!force && nowS < this.nextSweepS) return;
    this.nextSweepS = nowS + 1;
    for (const [key, expiresAtS] of this.entries) if (expiresAtS < nowS) this.entries.delete(key);
  }
}
