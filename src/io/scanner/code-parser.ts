import { LineSplitter } from "../serial/line-splitter.js";
import type { ScannerOptions } from "./config.js";

/** A payment code read by the lane's scanner gun (for the pending exit's `sweepAuthCode`). */
export interface PaymentCode {
  laneId?: string;
  /** The full auth code. Never log it: use `maskCode`. */
  code: string;
  atMs: number;
}

export const scannerRejectReasons = ["tooLong", "notDigits", "length"] as const;
export type ScannerRejectReason = (typeof scannerRejectReasons)[number];

export type ScannerLineResult = { ok: true; code: PaymentCode } | { ok: false; reason: ScannerRejectReason; detail: string };

/** All but the last 4 characters hidden: enough to match a complaint, useless to a thief. */
export function maskCode(code: string): string {
  return code.length <= 4 ? "*".repeat(code.length) : "*".repeat(code.length - 4) + code.slice(-4);
}

/**
 * Incremental parser for a scanner gun's byte stream: one code per line (CR, LF or CR LF).
 * A line that is not 10-30 digits (configurable) is rejected and counted; it never blocks
 * the next scan.
 */
export class ScannerCodeParser {
  private readonly splitter: LineSplitter;
  private readonly counts = { lines: 0, codes: 0, rejected: 0, byReason: { tooLong: 0, notDigits: 0, length: 0 } as Record<ScannerRejectReason, number> };

  constructor(private readonly options: Pick<ScannerOptions, "minDigits" | "maxDigits" | "maxLineBytes">) {
    this.splitter = new LineSplitter(options.maxLineBytes);
  }

  push(chunk: Uint8Array, atMs: number): ScannerLineResult[] {
    const results: ScannerLineResult[] = [];
    this.splitter.push(chunk, {
      line: (bytes) => results.push(this.count(this.parseLine(bytes, atMs))),
      overflow: (dropped) => results.push(this.count({ ok: false, reason: "tooLong", detail: `line of ${dropped} bytes` })),
    });
    return results;
  }

  parseLine(bytes: Buffer, atMs: number): ScannerLineResult {
    // latin1 keeps one character per byte, so non-ASCII noise can never look like digits.
    const text = bytes.toString("latin1").trim();
    if (!/^\d+$/.test(text)) return { ok: false, reason: "notDigits", detail: `${text.length} characters, not all digits` };
    if (text.length < this.options.minDigits || text.length > this.options.maxDigits) {
      return { ok: false, reason: "length", detail: `${text.length} digits; a payment code has ${this.options.minDigits}-${this.options.maxDigits}` };
    }
    return { ok: true, code: { code: text, atMs } };
  }

  stats(): { lines: number; codes: number; rejected: number; byReason: Record<ScannerRejectReason, number> } {
    return { ...this.counts, byReason: { ...this.counts.byReason } };
  }

  private count(result: ScannerLineResult): ScannerLineResult {
    this.counts.lines++;
    if (result.ok) this.counts.codes++;
    else {
      this.counts.rejected++;
      this.counts.byReason[result.reason]++;
    }
    return result;
  }
}
