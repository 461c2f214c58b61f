import { z } from "zod";

/**
 * Options of a payment-code scanner gun on a serial port. WeChat Pay and Alipay auth codes are
 * 10-30 digits (18 for the common ones); the gun ends each code with CR or CR LF.
 */
export const scannerOptionsSchema = z
  .strictObject({
    minDigits: z.int().min(1).max(64).default(10),
    maxDigits: z.int().min(1).max(64).default(30),
    /** Longer lines are noise: dropped up to the next terminator and counted. */
    maxLineBytes: z.int().min(16).max(1024).default(64),
  })
  .refine((o) => o.minDigits <= o.maxDigits, { message: "minDigits must not exceed maxDigits", path: ["minDigits"] });
export type ScannerOptions = z.infer<typeof scannerOptionsSchema>;
