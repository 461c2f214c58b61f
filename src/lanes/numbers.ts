/** The numbers the lanes issue: recordNo, plateId, orderNo; and the platform's plate colour codes. */
import { compactWireTime } from "../platform/wire.js";

/**
 * The lanes' record numbers, as the platform's examples show them (docs/protocol.md 3.1, 3.3):
 * `recordNo = <laneId>_<YYYYMMDDHHmmssSSS>`, `orderNo = TC<YYYYMMDDHHmmss><5 digits>`, and a
 * pre-exit event handle `plateId = EX<YYYYMMDDHHmmssSSS><laneId>`. Unique within the box: a
 * number already issued in the same millisecond moves on by one millisecond, and the last
 * issued instant is remembered so a backwards clock step cannot repeat one either.
 */
export class RecordNumbers {
  private lastRecordMs = 0;
  private lastPlateIdMs = 0;

  constructor(
    private readonly timeZone: string,
    private readonly nextSequence: () => number,
  ) {}

  recordNo(laneId: string, atMs: number, taken: (candidate: string) => boolean = () => false): string {
    let ms = Math.max(atMs, this.lastRecordMs + 1);
    let candidate = `${laneId}_${compactWireTime(ms, this.timeZone)}`;
    while (taken(candidate)) candidate = `${laneId}_${compactWireTime(++ms, this.timeZone)}`;
    this.lastRecordMs = ms;
    return candidate;
  }

  plateId(laneId: string, atMs: number): string {
    const ms = Math.max(atMs, this.lastPlateIdMs + 1);
    this.lastPlateIdMs = ms;
    return `EX${compactWireTime(ms, this.timeZone)}${laneId}`;
  }

  orderNo(atMs: number): string {
    const digits = String(this.nextSequence() % 100_000).padStart(5, "0");
    return `TC${compactWireTime(atMs, this.timeZone).slice(0, 14)}${digits}`;
  }
}

/** The platform's plate colour (enterNotify `plateColor`, docs/protocol.md 3.1) from the camera's colour name. */
export function platformPlateColor(color: string | undefined): number {
  switch (color) {
    case "blue":
      return 0;
    case "yellow":
      return 1;
    case "black":
      return 2;
    case "white":
      return 3;
    case "green":
      return 4;
    case "yellow-green":
      return 5;
    default:
      return 9;
  }
}
