import { compareHlc } from "./hlc.js";
import type { BoxPayload, StayPayload } from "./lot-payloads.js";

/*
 * The lot as the broker's retained messages describe it: the newest version of every stay
 * and what every box last said about itself. Pure: no broker, no store, no clock of its own.
 *
 * Which version of a stay wins (docs/mqtt.md "Sharing one lot between boxes", the conflict
 * rule): a "left" version beats any "in-park" one (a stay that ended at any gate has ended;
 * a late edit from a box that had not heard yet cannot bring the car back), and between two
 * versions of the same state the higher hybrid logical clock wins (wall ms, then counter,
 * then deviceId). That is a total order on versions, so every box that has received the same
 * versions, in whatever order and however often, holds the same view.
 */

export function compareStayVersions(a: StayPayload, b: StayPayload): number {
  const rank = (s: StayPayload) => (s.state === "left" ? 1 : 0);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  return compareHlc(a.hlc, b.hlc);
}

export interface LotBox {
  deviceId: string;
  online: boolean;
  lanes: BoxPayload["lanes"];
  /** When the box last said something (its own clock, as it said it). */
  lastSeenMs: number;
}

export class LotView {
  private readonly stays = new Map<string, StayPayload>();
  private readonly boxes = new Map<string, LotBox>();

  /** Takes a version in; true when it is now the stay's winning version (it changed the view). */
  applyStay(stay: StayPayload): boolean {
    const held = this.stays.get(stay.recordNo);
    if (held && compareStayVersions(stay, held) <= 0) return false;
    this.stays.set(stay.recordNo, stay);
    return true;
  }

  applyBox(box: BoxPayload): void {
    this.boxes.set(box.deviceId, { deviceId: box.deviceId, online: box.online, lanes: box.lanes, lastSeenMs: box.seenAtMs });
  }

  stay(recordNo: string): StayPayload | undefined {
    return this.stays.get(recordNo);
  }

  /** Every stay's winning version, in record number order. */
  allStays(): StayPayload[] {
    return [...this.stays.values()].sort((a, b) => (a.recordNo < b.recordNo ? -1 : a.recordNo > b.recordNo ? 1 : 0));
  }

  inPark(): StayPayload[] {
    return this.allStays().filter((s) => s.state === "in-park");
  }

  allBoxes(): LotBox[] {
    return [...this.boxes.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  /** Forgets "left" versions written before `beforeMs` (their retained messages expire too). */
  forgetLeft(beforeMs: number): number {
    let forgotten = 0;
    for (const [recordNo, stay] of this.stays) {
      if (stay.state === "left" && stay.hlc.wallMs < beforeMs) {
        this.stays.delete(recordNo);
        forgotten++;
      }
    }
    return forgotten;
  }
}
