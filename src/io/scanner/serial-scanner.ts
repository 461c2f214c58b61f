import type { Logger } from "../../app/log.js";
import type { SerialLink, SerialLinkStatus } from "../serial/serial-link.js";
import { ScannerCodeParser, maskCode, type PaymentCode, type ScannerRejectReason } from "./code-parser.js";
import type { ScannerOptions } from "./config.js";

export type PaymentCodeListener = (code: PaymentCode) => void;

export interface SerialScannerStatus {
  device: string;
  laneId: string;
  kind: "scanner";
  link: SerialLinkStatus;
  codes: number;
  rejected: number;
  rejectedByReason: Record<ScannerRejectReason, number>;
  /** Masked: all but the last 4 digits hidden. */
  lastCode?: { masked: string; atMs: number };
  lastRejection?: { reason: ScannerRejectReason; atMs: number };
}

/**
 * The lane's payment-code scanner gun on a serial port (architecture.md §3.3 step 5). Emits
 * `PaymentCode`s for the lane's pending exit; codes are never logged in full.
 */
export class SerialScanner {
  readonly name: string;
  private readonly parser: ScannerCodeParser;
  private readonly listeners = new Set<PaymentCodeListener>();
  private readonly log: Logger;
  private unsubscribe: (() => void) | undefined;
  private lastCode: { masked: string; atMs: number } | undefined;
  private lastRejection: { reason: ScannerRejectReason; atMs: number } | undefined;
  private lastRejectLogMs = -Infinity;
  private rejectsSinceLog = 0;

  constructor(
    readonly laneId: string,
    readonly link: SerialLink,
    options: ScannerOptions,
    log: Logger,
  ) {
    this.name = link.name;
    this.parser = new ScannerCodeParser(options);
    this.log = log.child({ device: link.name, laneId });
  }

  onCode(listener: PaymentCodeListener): () => void {
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

  status(): SerialScannerStatus {
    const stats = this.parser.stats();
    const status: SerialScannerStatus = {
      device: this.name,
      laneId: this.laneId,
      kind: "scanner",
      link: this.link.status(),
      codes: stats.codes,
      rejected: stats.rejected,
      rejectedByReason: stats.byReason,
    };
    if (this.lastCode) status.lastCode = { ...this.lastCode };
    if (this.lastRejection) status.lastRejection = { ...this.lastRejection };
    return status;
  }

  private receive(chunk: Buffer, atMs: number): void {
    for (const result of this.parser.push(chunk, atMs)) {
      if (!result.ok) {
        this.lastRejection = { reason: result.reason, atMs };
        this.rejectsSinceLog++;
        // Rate-limited: a scanner on a noisy line can produce garbage lines by the hundred.
        if (atMs - this.lastRejectLogMs >= 10_000) {
          this.log.warn({ reason: result.reason, detail: result.detail, rejectedSinceLastLog: this.rejectsSinceLog }, "scanner line rejected");
          this.lastRejectLogMs = atMs;
          this.rejectsSinceLog = 0;
        }
        continue;
      }
      const code: PaymentCode = { ...result.code, laneId: this.laneId };
      const masked = maskCode(code.code);
      this.lastCode = { masked, atMs };
      this.log.info({ code: masked }, "payment code scanned");
      for (const listener of this.listeners) {
        try {
          listener(code);
        } catch (error) {
          this.log.error({ err: error, code: masked }, "payment code listener failed");
        }
      }
    }
  }
}
