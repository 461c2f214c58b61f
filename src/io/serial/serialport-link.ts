import type { Clock, TimerHandle } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import { BaseSerialLink } from "./link-base.js";
import type { SerialPortSettings } from "./config.js";
import { backoffDelayMs, type BackoffPolicy } from "../../kernel/backoff.js";
import { SerialLinkError, defaultBackoff, type SerialLinkStatus } from "./serial-link.js";

/** The part of serialport's `SerialPort` stream this adapter uses (a seam for unit tests). */
export interface PortLike {
  readonly isOpen: boolean;
  open(callback: (error: Error | null) => void): void;
  close(callback?: (error: Error | null) => void): void;
  write(data: Buffer, callback: (error: Error | null | undefined) => void): boolean;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "close", listener: (error?: Error | null) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
}

export interface PortOpenOptions {
  path: string;
  baudRate: number;
  dataBits: 7 | 8;
  parity: "none" | "even" | "odd";
  stopBits: 1 | 2;
}

export type PortFactory = (options: PortOpenOptions) => PortLike;

export interface SerialPortLinkOptions {
  backoff?: BackoffPolicy;
  /** Jitter source, [0, 1). */
  random?: () => number;
  /** A write not handed to the device within this is failed (flow control stuck, USB hung). */
  writeTimeoutMs?: number;
  /** Replaces the lazily imported `serialport` (unit tests of the reconnect logic). */
  portFactory?: () => Promise<PortFactory>;
}

/** `serialport` is native: import it only when a real link opens (sim mode and tests never need the native build). */
async function importSerialPort(): Promise<PortFactory> {
  const { SerialPort } = await import("serialport");
  return (options) => new SerialPort({ ...options, autoOpen: false });
}

/**
 * The real serial link. When the device vanishes (USB unplugged: the port closes with a
 * disconnect error; the by-id path is gone, so a reopen fails with ENOENT) it reopens with
 * capped exponential backoff and jitter, on the Clock's timers.
 */
export class SerialPortLink extends BaseSerialLink {
  readonly kind = "serialport" as const;
  private port: PortLike | undefined;
  private wanted = false;
  private attempt = 0;
  private everUp = false;
  private retryTimer: TimerHandle | undefined;
  private factory: PortFactory | undefined;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly writeTimeoutMs: number;
  private readonly loadFactory: () => Promise<PortFactory>;

  constructor(
    name: string,
    private readonly settings: SerialPortSettings & { path: string },
    clock: Clock,
    log: Logger,
    options: SerialPortLinkOptions = {},
  ) {
    super(name, clock, log, settings.silenceTimeoutS * 1000);
    this.backoff = options.backoff ?? defaultBackoff;
    this.random = options.random ?? Math.random;
    this.writeTimeoutMs = options.writeTimeoutMs ?? 2000;
    this.loadFactory = options.portFactory ?? importSerialPort;
  }

  async open(): Promise<void> {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    await this.tryOpen();
  }

  async close(): Promise<void> {
    this.wanted = false;
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopWatchdog();
    const port = this.port;
    this.port = undefined;
    this.setState("down");
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  write(bytes: Uint8Array): Promise<void> {
    const port = this.port;
    if (this.linkState !== "up" || !port) {
      return Promise.reject(new SerialLinkError("E_SERIAL_DOWN", `serial link ${this.name} is ${this.linkState}`));
    }
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = this.clock.setTimeout(() => {
        if (settled) return;
        settled = true;
        this.noteError(new Error(`write of ${data.length} bytes timed out`));
        reject(new SerialLinkError("E_SERIAL_WRITE_TIMEOUT", `write to ${this.name} not done within ${this.writeTimeoutMs} ms`));
      }, this.writeTimeoutMs);
      try {
        port.write(data, (error) => {
          if (settled) return;
          settled = true;
          this.clock.clearTimeout(timer);
          if (error) {
            const text = this.noteError(error);
            reject(new SerialLinkError("E_SERIAL_WRITE", `write to ${this.name} failed: ${text}`));
          } else {
            this.txBytes += data.length;
            resolve();
          }
        });
      } catch (error) {
        settled = true;
        this.clock.clearTimeout(timer);
        const text = this.noteError(error);
        reject(new SerialLinkError("E_SERIAL_WRITE", `write to ${this.name} failed: ${text}`));
      }
    });
  }

  protected override extraStatus(): Partial<SerialLinkStatus> {
    return { path: this.settings.path };
  }

  private async tryOpen(): Promise<void> {
    this.retryTimer = undefined;
    if (!this.wanted) return;
    let port: PortLike;
    try {
      this.factory ??= await this.loadFactory();
      port = this.factory({
        path: this.settings.path,
        baudRate: this.settings.baudRate,
        dataBits: this.settings.dataBits,
        parity: this.settings.parity,
        stopBits: this.settings.stopBits,
      });
      await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
    } catch (error) {
      const text = this.noteError(error);
      // The first failure is news; the ones while retrying are the same news.
      if (this.attempt === 0) this.log.warn({ path: this.settings.path, error: text }, "serial device cannot be opened; retrying");
      else this.log.debug({ path: this.settings.path, error: text, attempt: this.attempt }, "serial reopen failed");
      this.scheduleRetry();
      return;
    }
    if (!this.wanted) {
      port.close();
      return;
    }
    this.port = port;
    port.on("data", (chunk: Buffer) => {
      if (port === this.port) this.deliver(chunk);
    });
    port.on("error", (error: Error) => {
      if (port !== this.port) return;
      const text = this.noteError(error);
      this.log.warn({ error: text }, "serial port error");
    });
    port.on("close", (error?: Error | null) => {
      if (port !== this.port) return;
      this.port = undefined;
      if (!this.wanted) return;
      const text = error ? this.noteError(error) : "closed";
      this.log.warn({ path: this.settings.path, error: text }, "serial link lost; reopening");
      this.attempt = 0;
      this.setState("down");
      this.scheduleRetry();
    });
    if (this.everUp) this.reconnects++;
    this.everUp = true;
    this.log.info({ path: this.settings.path, attempts: this.attempt + 1 }, "serial link up");
    this.attempt = 0;
    this.setState("up");
  }

  private scheduleRetry(): void {
    if (!this.wanted) return;
    // `attempt` counts the failed opens before this one; the backoff counts retries from 1.
    const delayMs = backoffDelayMs(this.attempt + 1, this.backoff, this.random);
    this.attempt++;
    this.setState("retrying", this.clock.now() + delayMs);
    this.retryTimer = this.clock.setTimeout(() => void this.tryOpen(), delayMs);
  }
}
