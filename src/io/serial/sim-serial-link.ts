import type { Clock } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import { BaseSerialLink } from "./link-base.js";
import { SerialLinkError } from "./serial-link.js";

export interface SimWrite {
  bytes: Buffer;
  atMs: number;
}

export type SimWriteListener = (bytes: Buffer, atMs: number) => void;

/**
 * The simulated twin of `SerialPortLink`: same contract, plus test controls. `emit` plays
 * the device sending bytes; `written`/`onWrite` show what the box sent; `disconnect` and
 * `reconnect` play the device vanishing and coming back.
 */
export class SimSerialLink extends BaseSerialLink {
  readonly kind = "sim" as const;
  private opened = false;
  private connected = true;
  private writes: SimWrite[] = [];
  private readonly writeListeners = new Set<SimWriteListener>();
  private readonly writeHistoryLimit: number;

  constructor(name: string, clock: Clock, log: Logger, options: { silenceTimeoutS?: number; writeHistoryLimit?: number } = {}) {
    super(name, clock, log, (options.silenceTimeoutS ?? 600) * 1000);
    this.writeHistoryLimit = options.writeHistoryLimit ?? 1000;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    // Like the real link: an absent device does not fail the open, the link retries.
    this.setState(this.connected ? "up" : "retrying");
  }

  async close(): Promise<void> {
    this.opened = false;
    this.stopWatchdog();
    this.setState("down");
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.linkState !== "up") throw new SerialLinkError("E_SERIAL_DOWN", `serial link ${this.name} is ${this.linkState}`);
    const copy = Buffer.from(bytes);
    const atMs = this.clock.now();
    this.txBytes += copy.length;
    this.writes.push({ bytes: copy, atMs });
    if (this.writes.length > this.writeHistoryLimit) this.writes.splice(0, this.writes.length - this.writeHistoryLimit);
    for (const listener of this.writeListeners) {
      try {
        listener(copy, atMs);
      } catch (error) {
        this.log.error({ err: error }, "simulated peer failed on a write");
      }
    }
  }

  // ---- test controls ----

  /**
   * The device sends bytes (a string is sent as UTF-8). Returns false when the link is not
   * up: like a real port, nothing is read while the device is gone.
   */
  emit(bytes: Uint8Array | string): boolean {
    if (this.linkState !== "up") return false;
    this.deliver(typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes));
    return true;
  }

  /** Every write the box made, oldest first (bounded). */
  written(): Buffer[] {
    return this.writes.map((w) => w.bytes);
  }

  /** Every write with its time, oldest first (bounded). */
  writeLog(): readonly SimWrite[] {
    return this.writes;
  }

  clearWritten(): void {
    this.writes = [];
  }

  /** The simulated peer device: sees each write as it happens. */
  onWrite(listener: SimWriteListener): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  /** The device vanishes (USB pulled): the link goes to retrying until `reconnect`. */
  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    if (this.opened) {
      this.errors++;
      this.lastError = "ENODEV: simulated device disconnected";
      this.setState("retrying");
    }
  }

  /** The device is back: the link comes up again. */
  reconnect(): void {
    if (this.connected) return;
    this.connected = true;
    if (this.opened) {
      this.reconnects++;
      this.setState("up");
    }
  }
}
