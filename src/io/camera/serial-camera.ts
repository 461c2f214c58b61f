import type { Logger } from "../../app/log.js";
import type { SerialLink, SerialLinkStatus } from "../serial/serial-link.js";
import type { CameraOptions } from "./config.js";
import { CameraLineParser, formatCameraLine, type CameraLineCounts, type CameraLineFields, type CameraRejectReason } from "./line-parser.js";
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

/** Rejections are logged at most this often (a noisy line at 9600 baud is ~1000 lines/s). */
const rejectLogIntervalMs = 10_000;

/**
 * A plate camera printing reads on a serial line. Turns link bytes into `PlateRead`s for its
 * lane; a bad line is counted and logged (rate-limited) and never stops the next good one.
 */
export class SerialCamera {
  readonly name: string;
  private readonly parser: CameraLineParser;
  private readonly listeners = new Set<PlateReadListener>();
  private readonly log: Logger;
  private unsubscribe: (() => void) | undefined;
  private lastReadAtMs: number | null = null;
  private lastRejection: { reason: CameraRejectReason; atMs: number } | undefined;
  private lastRejectLogMs = -Infinity;
  private rejectsSinceLog = 0;

  constructor(
    readonly laneId: string,
    readonly link: SerialLink,
    readonly options: CameraOptions,
    log: Logger,
  ) {
    this.name = link.name;
    this.parser = new CameraLineParser(options);
    this.log = log.child({ device: link.name, laneId });
  }

  /** Subscribes to reads; returns an unsubscribe function. */
  onRead(listener: PlateReadListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    this.unsubscribe ??= this.link.onData((chunk, atMs) => this.receive(chunk, atMs));
    await this.link.open();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.link.close();
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

  private receive(chunk: Buffer, atMs: number): void {
    for (const result of this.parser.push(chunk, atMs)) {
      if (!result.ok) {
        this.lastRejection = { reason: result.reason, atMs };
        this.rejectsSinceLog++;
        if (atMs - this.lastRejectLogMs >= rejectLogIntervalMs) {
          this.log.warn({ reason: result.reason, detail: result.detail, rejectedSinceLastLog: this.rejectsSinceLog }, "camera line rejected");
          this.lastRejectLogMs = atMs;
          this.rejectsSinceLog = 0;
        }
        continue;
      }
      const read: PlateRead = { ...result.read, laneId: this.laneId };
      this.lastReadAtMs = atMs;
      this.log.debug({ plate: read.plate, noPlate: read.noPlate === true }, "plate read");
      for (const listener of this.listeners) {
        try {
          listener(read);
        } catch (error) {
          this.log.error({ err: error }, "plate read listener failed");
        }
      }
    }
  }
}
