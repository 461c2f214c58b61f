import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { billExtrasSchema, readBillExtrasFast } from "../../../../src/core/fees/stay.js";

/**
 * The fee engine reads well-formed extras without the schema (its hot path) and leaves
 * anything else to billExtrasSchema for the errors. The reader must never accept what the
 * schema refuses, and what it accepts must be the schema's own result, keys in the same order
 * (bills are compared byte for byte). LK_FUZZ_RUNS raises the number of runs.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 2000);

const intish = fc.oneof(fc.integer({ min: -3, max: 600_000 }), fc.constantFrom(-0, 0.5, Number.NaN, Infinity, 2 ** 53, "1", null, undefined));
const couponLike = fc.oneof(
  fc.record(
    {
      kind: fc.constantFrom("amount", "minutes", "free", "percent", "other"),
      fen: intish,
      minutes: fc.oneof(intish, fc.constant(527_040), fc.constant(527_041)),
      from: fc.constantFrom("start", "end", "middle"),
      percent: fc.oneof(intish, fc.constant(100), fc.constant(101)),
      extra: fc.anything(),
    },
    { requiredKeys: ["kind"] },
  ),
  fc.anything(),
);
// Mostly well formed, now and then one field off: the inputs the reader must get exactly right.
const goodInt = fc.integer({ min: 0, max: 2_000_000_000_000 });
const nearInt = fc.oneof({ weight: 9, arbitrary: goodInt }, { weight: 1, arbitrary: intish });
const nearCoupon = fc.oneof(
  fc.record({ kind: fc.constant("amount"), fen: nearInt }),
  fc.record({ kind: fc.constant("minutes"), minutes: fc.oneof(fc.integer({ min: 0, max: 527_041 }), intish), from: fc.constantFrom("start", "end", "end", "middle") }),
  fc.record({ kind: fc.constant("free") }),
  fc.record({ kind: fc.constant("percent"), percent: fc.oneof(fc.integer({ min: 0, max: 101 }), intish) }),
);
const nearExtras = fc.record(
  {
    prepayments: fc.array(fc.record({ feeFen: nearInt, atMs: nearInt }), { maxLength: 3 }),
    coupons: fc.array(nearCoupon, { maxLength: 3 }),
    previousStays: fc.oneof(fc.constant(undefined), fc.array(fc.record({ enterAtMs: nearInt, leaveAtMs: nearInt, payableFee: nearInt }), { maxLength: 3 })),
  },
  { requiredKeys: [] },
);
const extrasLike = fc.oneof(
  { weight: 3, arbitrary: nearExtras },
  fc.anything(),
  fc.record(
    {
      prepayments: fc.oneof(
        fc.array(fc.oneof(fc.record({ feeFen: intish, atMs: intish, note: fc.string() }, { requiredKeys: [] }), fc.anything()), { maxLength: 3 }),
        fc.anything(),
      ),
      coupons: fc.oneof(fc.array(couponLike, { maxLength: 3 }), fc.anything()),
      previousStays: fc.oneof(fc.array(fc.record({ enterAtMs: intish, leaveAtMs: intish, payableFee: intish }, { requiredKeys: [] }), { maxLength: 3 }), fc.anything()),
      other: fc.anything(),
    },
    { requiredKeys: [] },
  ),
);

/** JSON with key order kept, and -0 told apart from 0. */
const exact = (value: unknown): string => JSON.stringify(value, (_key, v: unknown) => (Object.is(v, -0) ? "-0" : v));

test("the extras reader agrees with billExtrasSchema on any input", () => {
  let read = 0;
  fc.assert(
    fc.property(extrasLike, (extras) => {
      const fast = readBillExtrasFast(extras);
      if (fast === undefined) return;
      read++;
      const parsed = billExtrasSchema.safeParse(extras);
      assert.ok(parsed.success, `the reader accepted what the schema refuses: ${exact(extras)}`);
      assert.equal(exact(fast), exact(parsed.data));
    }),
    { numRuns: runs, seed: 20_241_205 },
  );
  // The generator must reach the accepting path, or the test proves nothing.
  assert.ok(read > runs / 50, `only ${read} of ${runs} inputs were read`);
});

test("well-formed extras are read, as fresh objects in the schema's key order", () => {
  const extras = {
    coupons: [{ from: "end", minutes: 30, kind: "minutes" }, { kind: "free" }],
    previousStays: [{ payableFee: 800, leaveAtMs: 2, enterAtMs: 1 }],
    prepayments: [{ atMs: 5, feeFen: 0 }],
  };
  const fast = readBillExtrasFast(extras);
  assert.ok(fast);
  assert.equal(exact(fast), exact(billExtrasSchema.parse(extras)));
  assert.notEqual(fast.coupons[0], extras.coupons[0]);
  assert.deepEqual(readBillExtrasFast({}), { prepayments: [], coupons: [], previousStays: [] });
});

test("anything the schema would refuse is left to the schema", () => {
  for (const bad of [
    null,
    [],
    { prepayments: [{ feeFen: -1, atMs: 0 }] },
    { prepayments: [{ feeFen: 1, atMs: 0.5 }] },
    { coupons: [{ kind: "minutes", minutes: 527_041, from: "end" }] },
    { coupons: [{ kind: "percent", percent: 101 }] },
    { coupons: [{ kind: "free", note: "x" }] },
    { previousStays: [{ enterAtMs: 1, leaveAtMs: 2 }] },
    { surprise: [] },
  ]) {
    assert.equal(readBillExtrasFast(bad), undefined, exact(bad));
    assert.equal(billExtrasSchema.safeParse(bad).success, false, exact(bad));
  }
});
