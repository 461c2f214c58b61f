import type { Logger } from "../../kernel/log.js";
import { SerialLineDevice } from "../serial/line-device.js";
import type { SerialLink, SerialLinkStatus } from "../serial/serial-link.js";
import { ScannerCodeParser, maskCode, type PaymentCode, type ScannerLineResult, type ScannerRejectReason } from "./code-parser.js";
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
 * The lane's payment-code scanner gun on a serial port (docs/architecture.md "How one car travels through the box", step 4). Emits
 * `PaymentCode`s for the lane's pending exit; codes are never logged in full.
 */
export class SerialScanner extends SerialLineDevice<PaymentCode, ScannerRejectReason, { code: PaymentCode }> {
  private readonly parser: ScannerCodeParser;
  private lastCode: { masked: string; atMs: number } | undefined;

  constructor(laneId: string, link: SerialLink, options: ScannerOptions, log: Logger) {
    super(laneId, link, log, "scanner line");
    this.parser = new ScannerCodeParser(options);
  }

  onCode(listener: PaymentCodeListener): () => void {
    return this.listen(listener);
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

  protected parse(chunk: Buffer, atMs: number): ScannerLineResult[] {
    return this.parser.push(chunk, atMs);
  }

  protected accept(parsed: { code: PaymentCode }, atMs: number): void {
    const code: PaymentCode = { ...parsed.code, laneId: this.laneId };
    const masked = maskCode(code.code);
    this.lastCode = { masked, atMs };
    this.log.info({ code: masked }, "payment code scanned");
    this.deliver(code, { code: masked });
  }
}
