import { z } from "zod";

/*
 * Hybrid logical clocks for the versions of a shared stay (docs/mqtt.md "Sharing one lot
 * between boxes"). A version is (wallMs, counter, deviceId): the wall time of the box that
 * wrote it, a counter that orders writes within one millisecond or behind a clock that went
 * back, and the writer's deviceId as the last tie-break. Every box orders every pair of
 * versions the same way without asking anyone, and a box never issues a version lower than
 * one it has seen: a box whose clock is minutes behind still writes after what it read.
 */

export const hlcSchema = z.strictObject({
  wallMs: z.int().min(0),
  counter: z.int().min(0).max(0xffff_ffff),
  deviceId: z.string().min(1).max(64),
});
export type Hlc = z.infer<typeof hlcSchema>;

/** <0, 0 or >0 as `a` is older than, the same version as, or newer than `b`. */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.deviceId === b.deviceId) return 0;
  // Code-unit order, not the locale's: every box must order the same strings the same way.
  return a.deviceId < b.deviceId ? -1 : 1;
}

/** The clock of one box: issues versions and follows the ones it receives. */
export class HlcClock {
  private last: Hlc;

  constructor(
    private readonly deviceId: string,
    private readonly wallNow: () => number,
  ) {
    this.last = { wallMs: 0, counter: 0, deviceId };
  }

  /** A version newer than every version this clock issued or observed. */
  now(): Hlc {
    const wallMs = this.wallNow();
    this.last = wallMs > this.last.wallMs ? { wallMs, counter: 0, deviceId: this.deviceId } : { wallMs: this.last.wallMs, counter: this.last.counter + 1, deviceId: this.deviceId };
    return this.last;
  }

  /** Takes in a version another box wrote, so the next one issued here is newer. */
  observe(remote: Hlc): void {
    if (remote.wallMs > this.last.wallMs || (remote.wallMs === this.last.wallMs && remote.counter > this.last.counter)) {
      this.last = { wallMs: remote.wallMs, counter: remote.counter, deviceId: this.deviceId };
    }
  }
}
