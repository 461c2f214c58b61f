import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { bill } from "../../../../src/core/fees/bill.js";
import type { Stay } from "../../../../src/core/fees/stay.js";
import { billCaseArb, cappedSingleSegmentTariffArb, durationArb, enterArb, pooledTariffs, stayArb, tariffArb, zones } from "./fee-arbitraries.js";

/**
 * The fee engine's algebra (docs/tariffs.md "Properties"), each over 10 000 generated cases:
 * tariffs using every rule family together, stays in zones with and without DST, coupons,
 * prepayments, earlier stays and fixed-car records. host-tz.test.ts runs this file again
 * under two other host zones.
 */
const RUNS = 10_000;
const DAY = 86_400_000;

const laterArb = fc.oneof(fc.integer({ min: 0, max: 2 * 3_600_000 }), fc.integer({ min: 0, max: 2 * DAY }));

test("the bill never decreases when the exit is later (every tariff feature, both free-minute switches)", () => {
  fc.assert(
    fc.property(billCaseArb, laterArb, ({ tariff, stay, extras }, laterMs) => {
      const early = bill(tariff, stay, extras);
      const late = bill(tariff, { ...stay, leaveAtMs: stay.leaveAtMs + laterMs }, extras);
      assert.ok(late.payableFee >= early.payableFee, `payableFee fell from ${early.payableFee} to ${late.payableFee}`);
      assert.ok(late.paidFee >= early.paidFee, `paidFee fell from ${early.paidFee} to ${late.paidFee}`);
    }),
    { numRuns: RUNS },
  );
});

test("every cap holds: daily, re-entry and segment caps bound the bill", () => {
  // Daily cap: at most capFen per cap day the stay touches.
  fc.assert(
    fc.property(tariffArb, stayArb, (tariff, stay) => {
      const result = bill(tariff, { ...stay, vehicleType: "small" });
      for (const piece of result.breakdown) {
        assert.ok(piece.feeFen >= 0 && piece.feeFen <= piece.grossFen, `piece ${JSON.stringify(piece)} is outside 0..gross`);
      }
      if (!tariff.dailyCap) return;
      const days = tariff.dailyCap.basis === "natural-day" ? naturalDaysTouched(stay) : Math.max(1, Math.ceil((stay.leaveAtMs - stay.enterAtMs) / DAY));
      assert.ok(result.payableFee <= tariff.dailyCap.capFen * days, `${result.payableFee} > ${tariff.dailyCap.capFen} × ${days} days`);
    }),
    { numRuns: RUNS },
  );
  // Re-entry cap: within the window opened by the earliest counted entry, this stay pays at most
  // what the cap leaves after the earlier stays.
  fc.assert(
    fc.property(billCaseArb, ({ tariff, stay, extras }) => {
      const small = { ...stay, vehicleType: "small" as const };
      const cap = tariff.reentryCap;
      const result = bill(tariff, small, extras);
      if (!cap) return;
      const windowMs = cap.windowHours * 3_600_000;
      const counted = (extras.previousStays ?? []).filter((p) => p.enterAtMs < stay.enterAtMs && p.enterAtMs >= stay.enterAtMs - windowMs);
      const windowStart = Math.min(stay.enterAtMs, ...counted.map((p) => p.enterAtMs));
      if (stay.leaveAtMs > windowStart + windowMs) return;
      const paidBefore = counted.reduce((sum, p) => sum + p.payableFee, 0);
      assert.ok(result.payableFee <= Math.max(0, cap.capFen - paidBefore), `${result.payableFee} breaks the re-entry cap ${cap.capFen} after ${paidBefore}`);
    }),
    { numRuns: RUNS },
  );
  // Segment cap: one capped segment, so one occurrence per scale run.
  fc.assert(
    fc.property(cappedSingleSegmentTariffArb, enterArb, durationArb, fc.constantFrom(...zones), (tariff, enterAtMs, durationMs, timeZone) => {
      const stay: Stay = { enterAtMs, leaveAtMs: enterAtMs + durationMs, vehicleType: "small", timeZone };
      const result = bill(tariff, stay);
      const capFen = tariff.segments[0]!.capFen!;
      const runs = tariff.restart === "never" ? 1 : tariff.restart === "every-24h" ? Math.max(1, Math.ceil(durationMs / DAY)) : naturalDaysTouched(stay);
      // The stay's first period belongs to no segment: the segment's cap bounds the rest.
      const segmentFen = result.breakdown.filter((p) => p.segment !== undefined).reduce((sum, p) => sum + p.feeFen, 0);
      assert.ok(segmentFen <= capFen * runs, `${segmentFen} > segment cap ${capFen} × ${runs} runs`);
    }),
    { numRuns: RUNS },
  );
});

test("discounts and prepayments never make paidFee negative, and the three fees agree", () => {
  fc.assert(
    fc.property(billCaseArb, ({ tariff, stay, extras }) => {
      const result = bill(tariff, stay, extras);
      const prepaid = (extras.prepayments ?? []).reduce((sum, p) => sum + p.feeFen, 0);
      assert.ok(result.paidFee >= 0, `paidFee ${result.paidFee}`);
      assert.ok(result.discountFee >= 0 && result.discountFee <= result.payableFee, `discount ${result.discountFee} of ${result.payableFee}`);
      assert.equal(result.prepaidFee, prepaid);
      assert.equal(result.paidFee, Math.max(0, result.payableFee - result.discountFee - prepaid));
      assert.equal(
        result.discountFee,
        result.discounts.reduce((sum, d) => sum + d.discountFen, 0),
      );
    }),
    { numRuns: RUNS },
  );
});

test("payableFee is the sum of the breakdown, in whole fen, and every line explains its fen", () => {
  fc.assert(
    fc.property(billCaseArb, ({ tariff, stay, extras }) => {
      const result = bill(tariff, stay, extras);
      let sum = 0;
      for (const piece of result.breakdown) {
        assert.ok(Number.isSafeInteger(piece.feeFen), `fee ${piece.feeFen}`);
        assert.ok(piece.fromMs <= piece.toMs, `piece runs backwards: ${JSON.stringify(piece)}`);
        assert.ok(piece.fromMs >= stay.enterAtMs && piece.toMs <= stay.leaveAtMs, `piece outside the stay: ${JSON.stringify(piece)}`);
        if (piece.kind === "free") assert.equal(piece.feeFen, 0);
        else {
          // units × unit price is the gross; caps and percent only ever take from it.
          assert.equal(piece.grossFen, (piece.units ?? 0) * (piece.unitPriceFen ?? 0), `gross of ${JSON.stringify(piece)}`);
          assert.ok(piece.feeFen >= 0 && piece.feeFen <= piece.grossFen, `fee of ${JSON.stringify(piece)}`);
          if (piece.feeFen < piece.grossFen) {
            assert.ok((piece.caps?.length ?? 0) > 0 || (piece.percent ?? 100) < 100, `fen taken off without a cap or percent: ${JSON.stringify(piece)}`);
          }
          // Only the stay's first period is a charge without a segment.
          if (piece.segment === undefined) assert.equal(piece.kind, "first-period");
        }
        sum += piece.feeFen;
      }
      assert.ok(Number.isSafeInteger(result.payableFee));
      assert.equal(result.payableFee, sum);
    }),
    { numRuns: RUNS },
  );
});

test("the stay's first period is charged whole, once, whatever segments the stay crosses inside it", () => {
  const withFlatStayFirstPeriod = pooledTariffs().filter((t) => t.firstPeriod?.priceFen !== undefined && t.restart !== "natural-day");
  assert.ok(withFlatStayFirstPeriod.length > 50, `only ${withFlatStayFirstPeriod.length} pooled tariffs have one`);
  fc.assert(
    fc.property(
      fc.constantFrom(...withFlatStayFirstPeriod),
      enterArb,
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.constantFrom(...zones),
      (tariff, enterAtMs, share, timeZone) => {
        const fp = tariff.firstPeriod!;
        const freeMs = tariff.free.minutes * 60_000;
        // A stay past the free minutes whose billed time ends inside the first period.
        const billedFromMs = tariff.free.billedOnceExceeded ? 0 : freeMs;
        const minMs = freeMs + 1;
        const maxMs = billedFromMs + fp.minutes * 60_000;
        if (maxMs < minMs) return;
        const durationMs = minMs + Math.floor(share * (maxMs - minMs));
        const result = bill(tariff, { enterAtMs, leaveAtMs: enterAtMs + durationMs, vehicleType: "small", timeZone });
        const charged = result.breakdown.filter((p) => p.kind !== "free");
        assert.equal(charged.length, 1, JSON.stringify(result.breakdown));
        assert.equal(charged[0]!.kind, "first-period");
        assert.equal(charged[0]!.segment, undefined);
        assert.equal(charged[0]!.grossFen, fp.priceFen);
        assert.equal(charged[0]!.fromMs, enterAtMs + billedFromMs);
      },
    ),
    { numRuns: RUNS / 5 },
  );
});

/** Local calendar dates the stay touches, counted with Intl directly (not the engine's helpers). */
function naturalDaysTouched(stay: Stay): number {
  const format = new Intl.DateTimeFormat("en-CA", { timeZone: stay.timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const first = format.format(stay.enterAtMs);
  const last = format.format(Math.max(stay.enterAtMs, stay.leaveAtMs - 1));
  const days = Math.round((Date.parse(`${last}T00:00:00Z`) - Date.parse(`${first}T00:00:00Z`)) / DAY);
  return days + 1;
}
