import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { clampStay, DEFAULT_MIN_PLAUSIBLE_EPOCH_MS, type StayClampReason } from "../../../../src/core/time/stay-clamp.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2024, 5, 1, 8, 0, 0);
const maxStayMs = 90 * DAY;

test("clampStay table: ordinary stays pass through, every oddity is clamped and flagged", () => {
  const rows: Array<[string, number, number, Parameters<typeof clampStay>[2], number, StayClampReason | undefined]> = [
    ["ordinary 2 h", T0, T0 + 2 * HOUR, { maxStayMs }, 2 * HOUR, undefined],
    ["zero-length", T0, T0, { maxStayMs }, 0, undefined],
    ["exactly the cap", T0, T0 + maxStayMs, { maxStayMs }, maxStayMs, undefined],
    ["clock stepped back: leave before enter", T0, T0 - 5 * 60_000, { maxStayMs }, 0, "negative"],
    ["longer than the cap", T0, T0 + 400 * DAY, { maxStayMs }, maxStayMs, "exceeds-max"],
    ["entered on an unset clock (1970)", 12_000, T0, { maxStayMs }, 0, "implausible-time"],
    ["left on an unset clock", T0, 60_000, { maxStayMs }, 0, "implausible-time"],
    ["NaN", Number.NaN, T0, { maxStayMs }, 0, "invalid"],
    ["Infinity", T0, Number.POSITIVE_INFINITY, { maxStayMs }, 0, "invalid"],
    ["fractional ms rounded", T0, T0 + 1000.6, { maxStayMs }, 1001, undefined],
    // Same boot, both ends on the monotonic clock: NTP stepped the wall clock +3 h in between.
    ["monotonic wins over a wall step", T0, T0 + 3 * HOUR + 20 * 60_000, { maxStayMs, monotonic: { enterMs: 1000, leaveMs: 1000 + 20 * 60_000 } }, 20 * 60_000, "clock-jump"],
    ["monotonic agrees within tolerance", T0, T0 + 20 * 60_000 + 500, { maxStayMs, monotonic: { enterMs: 0, leaveMs: 20 * 60_000 } }, 20 * 60_000, undefined],
    ["monotonic rescues an unset clock at entry", 12_000, T0, { maxStayMs, monotonic: { enterMs: 5000, leaveMs: 5000 + HOUR } }, HOUR, "clock-jump"],
    ["monotonic still capped", T0, T0 + 100 * DAY, { maxStayMs, monotonic: { enterMs: 0, leaveMs: 100 * DAY } }, maxStayMs, "exceeds-max"],
    ["backwards monotonic readings are ignored", T0, T0 + HOUR, { maxStayMs, monotonic: { enterMs: 9000, leaveMs: 1000 } }, HOUR, undefined],
    ["a custom plausibility floor", Date.UTC(2023, 0, 1), Date.UTC(2023, 0, 1) + HOUR, { maxStayMs, minPlausibleEpochMs: Date.UTC(2024, 0, 1) }, 0, "implausible-time"],
    ["a nonsense cap clamps to zero", T0, T0 + HOUR, { maxStayMs: -1 }, 0, "exceeds-max"],
  ];
  for (const [name, enter, leave, options, durationMs, flagged] of rows) {
    assert.deepEqual(clampStay(enter, leave, options), { durationMs, flagged }, name);
  }
});

test("property: never negative, never above the cap, an integer, and unflagged only when it is leave − enter", () => {
  const time = fc.oneof(
    fc.integer({ min: DEFAULT_MIN_PLAUSIBLE_EPOCH_MS - 10 * DAY, max: DEFAULT_MIN_PLAUSIBLE_EPOCH_MS + 2000 * DAY }),
    fc.integer({ min: 0, max: 100 * DAY }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  );
  const mono = fc.option(fc.record({ enterMs: fc.integer({ min: 0, max: 200 * DAY }), leaveMs: fc.integer({ min: 0, max: 200 * DAY }) }), { nil: undefined });
  fc.assert(
    fc.property(time, time, fc.integer({ min: 1, max: 400 * DAY }), mono, (enter, leave, cap, monotonic) => {
      const result = clampStay(enter, leave, monotonic ? { maxStayMs: cap, monotonic } : { maxStayMs: cap });
      assert.ok(Number.isInteger(result.durationMs));
      assert.ok(result.durationMs >= 0);
      assert.ok(result.durationMs <= cap);
      if (result.flagged === undefined && !monotonic) assert.equal(result.durationMs, Math.round(leave - enter));
    }),
    { numRuns: 2000 },
  );
});
