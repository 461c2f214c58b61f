import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { bill } from "../../../../src/core/fees/bill.js";
import type { Prepayment } from "../../../../src/core/fees/stay.js";
import { billCaseArb } from "./fee-arbitraries.js";

/**
 * The engine keeps its working records (charges, parts, the walk's position) from bill to bill
 * instead of allocating them each time, and bills a minutes coupon's shorter stay with the
 * prepayments moved inside it rather than copied. These properties hold it to what a fresh
 * start would give: no bill sees anything of the one before, and no bill returned earlier is
 * changed by a later one.
 */
const RUNS = 3000;

test("a bill is the same whatever was billed before it, and stays the same after later bills", () => {
  fc.assert(
    fc.property(billCaseArb, billCaseArb, (first, other) => {
      const before = bill(first.tariff, first.stay, first.extras);
      const frozen = JSON.stringify(before);
      // Another stay (often another tariff, zone, vehicle type) in between.
      bill(other.tariff, other.stay, other.extras);
      const again = bill(first.tariff, first.stay, first.extras);
      assert.equal(JSON.stringify(again), frozen);
      assert.equal(JSON.stringify(before), frozen, "a later bill changed a bill returned earlier");
    }),
    { numRuns: RUNS },
  );
});

test("a lone minutes coupon takes off the fee of the stay minus the fee of the shortened stay, its payments moved inside it", () => {
  const coupon = fc.record({ minutes: fc.integer({ min: 1, max: 600 }), from: fc.constantFrom("start" as const, "end" as const) });
  fc.assert(
    fc.property(billCaseArb, coupon, ({ tariff, stay, extras }, { minutes, from }) => {
      const result = bill(tariff, stay, { ...extras, coupons: [{ kind: "minutes", minutes, from }] });
      const enter = from === "start" ? stay.enterAtMs + minutes * 60_000 : stay.enterAtMs;
      const leave = from === "end" ? stay.leaveAtMs - minutes * 60_000 : stay.leaveAtMs;
      let shorterFee = 0;
      if (leave > enter) {
        const prepayments: Prepayment[] = (extras.prepayments ?? []).map((p) => ({ feeFen: p.feeFen, atMs: Math.min(leave, Math.max(enter, p.atMs)) }));
        shorterFee = bill(tariff, { ...stay, enterAtMs: enter, leaveAtMs: leave }, { prepayments, previousStays: extras.previousStays ?? [] }).payableFee;
      }
      assert.equal(result.discounts[0]!.discountFen, result.payableFee - Math.min(result.payableFee, shorterFee));
    }),
    { numRuns: RUNS },
  );
});
