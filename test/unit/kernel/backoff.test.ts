import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { backoffCeilingMs, backoffDelayMs, type BackoffJitter, type BackoffPolicy } from "../../../src/kernel/backoff.js";

const numRuns = Number(process.env.LK_FUZZ_RUNS ?? 2000);

const jitterArb: fc.Arbitrary<BackoffJitter> = fc.oneof(
  fc.constant<BackoffJitter>("full"),
  fc.constant<BackoffJitter>("equal"),
  fc.constant<BackoffJitter>("none"),
  fc.double({ min: 0, max: 1, noNaN: true }).map((spread): BackoffJitter => ({ spread })),
);

const policyArb: fc.Arbitrary<BackoffPolicy> = fc
  .record({
    baseMs: fc.integer({ min: 1, max: 60_000 }),
    capMs: fc.integer({ min: 1, max: 3_600_000 }),
    factor: fc.double({ min: 1, max: 10, noNaN: true }),
    minMs: fc.integer({ min: 0, max: 1000 }),
    jitter: jitterArb,
  })
  .filter((p) => p.minMs <= p.capMs);

/** What random() may return in the field, and what a broken source might. */
const drawArb = fc.oneof(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.constantFrom(Number.NaN, -1, 2, Infinity, -Infinity));

test("every delay is a whole number of ms within [minMs, capMs], whatever the attempt, policy and draw", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100_000 }), policyArb, drawArb, (attempt, policy, r) => {
      const delay = backoffDelayMs(attempt, policy, () => r);
      assert.ok(Number.isInteger(delay), `delay ${delay} is not an integer`);
      assert.ok(delay >= (policy.minMs ?? 0), `delay ${delay} below minMs`);
      assert.ok(delay <= policy.capMs, `delay ${delay} above capMs`);
    }),
    { numRuns },
  );
});

test("full, equal and none stay under the ceiling; equal never below half of it; the ceiling never shrinks", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 500 }), policyArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, policy, r) => {
      const ceiling = backoffCeilingMs(attempt, policy);
      assert.ok(ceiling <= backoffCeilingMs(attempt + 1, policy), "the ceiling grows (or stays) with the attempt");
      const delay = backoffDelayMs(attempt, policy, () => r);
      if (typeof policy.jitter === "object") return;
      assert.ok(delay <= ceiling, `delay ${delay} above ceiling ${ceiling}`);
      if (policy.jitter === "equal") assert.ok(delay >= Math.floor(ceiling / 2), `equal jitter ${delay} below half of ${ceiling}`);
      if (policy.jitter === "none") assert.equal(delay, ceiling);
    }),
    { numRuns },
  );
});

test("the ceiling is base · factor^(attempt − 1) up to the cap, finite at huge attempt counts, 0 before any failure", () => {
  const policy: BackoffPolicy = { baseMs: 1000, capMs: 60_000 };
  assert.deepEqual(
    Array.from({ length: 8 }, (_, i) => backoffCeilingMs(i + 1, policy)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000],
  );
  assert.equal(backoffCeilingMs(1e9, policy), 60_000);
  assert.equal(backoffCeilingMs(5, { baseMs: 100, capMs: 10_000, factor: 3 }), 8100);
  assert.equal(backoffCeilingMs(0, policy), 0);
  assert.equal(
    backoffDelayMs(0, policy, () => 0.5),
    0,
  );
  assert.equal(
    backoffDelayMs(Number.NaN, policy, () => 0.5),
    0,
  );
});

test("each jitter draws where it says, from the injected source", () => {
  const base: BackoffPolicy = { baseMs: 1000, capMs: 60_000 };
  // Attempt 4: ceiling 8000.
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: "full" }, () => 0),
    0,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: "full" }, () => 0.5),
    4000,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: "equal" }, () => 0),
    4000,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: "equal" }, () => 0.5),
    6000,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: "none" }, () => 0.1),
    8000,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: { spread: 0.25 } }, () => 0),
    6000,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, jitter: { spread: 0.25 } }, () => 0.5),
    8000,
  );
  assert.equal(
    backoffDelayMs(4, { ...base, minMs: 300 }, () => 0),
    300,
    "a draw of 0 is lifted to the floor",
  );
  // Spread above the cap is cut at the cap.
  assert.equal(
    backoffDelayMs(30, { ...base, jitter: { spread: 0.2 } }, () => 0.999),
    60_000,
  );
});
