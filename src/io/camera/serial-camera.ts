import type { Logger } from "../../kernel/log.js";
import { SerialLineDevice } from "../serial/line-device.js";
import type { SerialLink, SerialLinkStatus } from "../serial/serial-link.js";
import type { CameraOptions } from "./config.js";
import { CameraLineParser, formatCameraLine, type CameraLineCounts, type CameraLineFields, type CameraLineResult, type CameraRejectReason } from "./line-parser.js";
import type { PlateRead } from "./plate-read.js";

export type PlateReadListener = (read: PlateRead) => void;

export interface SerialCameraStatus {
  device: string;
  laneId: string;
  kind: "camera";
  link: SerialLinkStatus;
  reads: number;
  lastReadAtMs: number | null;
  rejected: number;
  rejectedByReason: Record<CameraRejectReason, number>;
  droppedBytes: number;
  lastRejection?: { reason: CameraRejectReason; atMs: number };
}

/**
 * A plate camera printing reads on a serial line. Turns link bytes into `PlateRead`s for its
 * lane; a bad line is counted and logged (rate-limited) and never stops the next good one.
 */
export class SerialCamera extends SerialLineDevice<PlateRead, CameraRejectReason, { read: PlateRead }> {
  private readonly parser: CameraLineParser;
  private lastReadAtMs: number | null = null;

  constructor(
    laneId: string,
    link: SerialLink,
    readonly options: CameraOptions,
    log: Logger,
  ) {
    super(laneId, link, log, "camera line");
    this.parser = new CameraLineParser(options);
  }

  /** Subscribes to reads; returns an unsubscribe function. */
  onRead(listener: PlateReadListener): () => void {
    return this.listen(listener);
  }

  /** The bytes a camera with this configuration prints for a read (the simulator uses it). */
  formatLine(fields: CameraLineFields): Buffer {
    return formatCameraLine(this.options, fields);
  }

  status(): SerialCameraStatus {
    const counts: CameraLineCounts = this.parser.stats();
    const status: SerialCameraStatus = {
      device: this.name,
      laneId: this.laneId,
      kind: "camera",
      link: this.link.status(),
      reads: counts.reads,
      lastReadAtMs: this.lastReadAtMs,
      rejected: counts.rejected,
      rejectedByReason: counts.byReason,
      droppedBytes: counts.droppedBytes,
    };
    if (this.lastRejection) status.lastRejection = { ...this.lastRejection };
    return status;
  }

  protected parse(chunk: Buffer, atMs: number): CameraLineResult[] {
    return this.parser.push(chunk, atMs);
  }

  protected accept(parsed: { read: PlateRead }, atMs: number): void {
    const read: PlateRead = { ...parsed.read, laneId: this.laneId };
    this.lastReadAtMs = atMs;
    this.log.debug({ plate: read.plate, noPlate: read.noPlate === true }, "plate read");
    this.deliver(read, { plate: read.plate });
  }
}
