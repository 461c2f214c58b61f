import { createHash } from "node:crypto";
import fc from "fast-check";
import { bill } from "../../../../src/core/fees/bill.js";
import { billCaseArb } from "./fee-arbitraries.js";

/**
 * A digest of many bills from a fixed seed: the same on every host whatever its own zone, since
 * the engine only uses Intl with the lot's zone. host-tz.test.ts compares it across TZ values.
 */
export function billDigest(count: number): string {
  const hash = createHash("sha256");
  for (const { tariff, stay, extras } of fc.sample(billCaseArb, { numRuns: count, seed: 20_240_506 })) {
    const b = bill(tariff, stay, extras);
    hash.update(JSON.stringify([b.payableFee, b.discountFee, b.paidFee, b.breakdown, b.discounts]));
  }
  return hash.digest("hex");
}

export const DIGEST_CASES = 3000;
