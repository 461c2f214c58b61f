/**
 * The serial link contract shared by the real adapter (`SerialPortLink`, over `serialport`)
 * and its simulated twin (`SimSerialLink`). Devices (camera, scanner, display) talk to a
 * SerialLink and never know which one they hold (docs/architecture.md "Layers").
 */

import type { BackoffPolicy } from "../../kernel/backoff.js";

/** up: open and usable; down: closed (stopped, or just lost); retrying: waiting to reopen. */
export type LinkState = "up" | "down" | "retrying";

/** Link health as data, for /api/status and the fleet health report. */
export interface SerialLinkStatus {
  name: string;
  kind: "serialport" | "sim";
  /** Device path (real links only). */
  path?: string;
  state: LinkState;
  /** While retrying: seconds until the next attempt to reopen. */
  retryInS?: number;
  /** Epoch ms of the last state change. */
  sinceMs: number;
  /** Epoch ms of the last byte received; null when nothing has arrived since start. */
  lastRxAtMs: number | null;
  rxBytes: number;
  txBytes: number;
  /** IO errors: failed opens, read/write errors, unexpected closes. */
  errors: number;
  /** Times the link came back up after being lost. */
  reconnects: number;
  /**
   * Up, but nothing received for `silenceTimeoutS`: a camera that says nothing while cars
   * pass is suspect (unplugged, or its output switched off); a vanished peer on a pty or RS-485 bus is otherwise only
   * noticed on the next write.
   */
  silent: boolean;
  lastError?: string;
}

export type DataListener = (chunk: Buffer, atMs: number) => void;
export type StateListener = (status: SerialLinkStatus) => void;

export interface SerialLink {
  readonly name: string;
  readonly kind: "serialport" | "sim";
  /**
   * Opens the link. A device that is absent does not fail the open: the link reports
   * `retrying` and keeps trying with backoff (a box must boot with a camera unplugged).
   */
  open(): Promise<void>;
  /** Closes the link and stops retrying. */
  close(): Promise<void>;
  /** Resolves once the bytes are handed to the device; rejects with a SerialLinkError. */
  write(bytes: Uint8Array): Promise<void>;
  /** Subscribes to received bytes; returns an unsubscribe function. */
  onData(listener: DataListener): () => void;
  /** Subscribes to state and silence changes; returns an unsubscribe function. */
  onStateChange(listener: StateListener): () => void;
  status(): SerialLinkStatus;
}

export type SerialLinkErrorCode = "E_SERIAL_DOWN" | "E_SERIAL_WRITE" | "E_SERIAL_WRITE_TIMEOUT" | "E_SERIAL_OPEN";

export class SerialLinkError extends Error {
  constructor(
    readonly code: SerialLinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SerialLinkError";
  }
}

/**
 * Reopen schedule after a device vanished: from 1 s doubling up to 30 s, each delay spread
 * over ±20 % so a bus of devices does not retry in lock-step (src/kernel/backoff.ts).
 */
export const defaultBackoff: BackoffPolicy = { baseMs: 1000, capMs: 30_000, factor: 2, minMs: 1, jitter: { spread: 0.2 } };
