import { test } from "node:test";
import assert from "node:assert/strict";
import type { BillPiece } from "../../../../src/core/fees/bill.js";
import type { Tariff } from "../../../../src/core/fees/tariff-schema.js";
import { validateTariff } from "../../../../src/core/fees/validate-tariff.js";
import { at, billOf, fixture, fixtureRaw, tariff } from "./fee-helpers.js";

/**
 * The first period of the stay (top-level `firstPeriod`, docs/tariffs.md): it starts with the
 * run's billed time whatever the segment, and the segments charge after it. Each number was
 * worked out by hand from the rule's wording, then checked against the engine.
 */

const municipal = fixture("first-period.json");
const fees = (t: Tariff, enter: string, leave: string): number => billOf(t, enter, leave).payableFee;
const lines = (pieces: BillPiece[]): Array<[string, string | undefined, number]> => pieces.map((p) => [p.kind, p.segment, p.feeFen]);

const day = { name: "day", from: "07:00", to: "19:00", unitMinutes: 60, unitPriceFen: 100 };
const night = { name: "night", from: "19:00", to: "07:00", unitMinutes: 60, unitPriceFen: 50 };

test("18:00 → 21:00 pays one first period of the stay (3 元), not the day's and the night's (6 元)", () => {
  const result = billOf(municipal, "2024-05-06 18:00", "2024-05-06 21:00");
  assert.equal(result.payableFee, 300);
  // The first period runs across 19:00 and carries no segment; the night after it is free.
  assert.deepEqual(result.breakdown[0], {
    kind: "first-period",
    fromMs: at("2024-05-06 18:00"),
    toMs: at("2024-05-06 20:00"),
    units: 1,
    unitMinutes: 120,
    unitPriceFen: 300,
    grossFen: 300,
    feeFen: 300,
  });
  assert.deepEqual(lines(result.breakdown), [
    ["first-period", undefined, 300],
    ["flat", "night", 0],
  ]);
  // The same rule written per segment pays both first periods: what the top-level field fixes.
  const perSegment = tariff({
    ...fixtureRaw("first-period.json"),
    firstPeriod: undefined,
    vehicles: {},
    segments: [
      { ...day, firstPeriod: { minutes: 120, priceFen: 300 } },
      { name: "night", from: "19:00", to: "07:00", unitMinutes: 60, unitPriceFen: 0, firstPeriod: { minutes: 120, priceFen: 300 } },
    ],
  });
  assert.equal(fees(perSegment, "2024-05-06 18:00", "2024-05-06 21:00"), 600);
});

test("free minutes: inside the first period when billed once exceeded, before it otherwise", () => {
  const base = { firstPeriod: { minutes: 60, priceFen: 500 }, segments: [day, night], restart: "never" as const };
  const inside = tariff({ ...base, free: { minutes: 30, billedOnceExceeded: true } });
  const before = tariff({ ...base, free: { minutes: 30, billedOnceExceeded: false } });
  // 10:00 → 11:00: inside = the first hour (5); before = from 10:30, the first period to 11:00 (5).
  assert.equal(fees(inside, "2024-05-06 10:00", "2024-05-06 11:00"), 500);
  assert.equal(fees(before, "2024-05-06 10:00", "2024-05-06 11:00"), 500);
  // 10:00 → 11:20: inside = 5 + a day hour from 11:00; before = the first period 10:30–11:30 only.
  assert.equal(fees(inside, "2024-05-06 10:00", "2024-05-06 11:20"), 600);
  const late = billOf(before, "2024-05-06 10:00", "2024-05-06 11:20");
  assert.equal(late.payableFee, 500);
  assert.deepEqual(
    late.breakdown.map((p) => [p.kind, p.reason, p.fromMs, p.toMs]),
    [
      ["free", "free-minutes", at("2024-05-06 10:00"), at("2024-05-06 10:30")],
      ["first-period", undefined, at("2024-05-06 10:30"), at("2024-05-06 11:20")],
    ],
  );
  // Within the free time, nothing either way.
  assert.equal(fees(inside, "2024-05-06 10:00", "2024-05-06 10:30"), 0);
  assert.equal(fees(before, "2024-05-06 10:00", "2024-05-06 10:30"), 0);
});

test("segments charge from where the first period ends, whatever segment that is", () => {
  const t = tariff({ restart: "never", firstPeriod: { minutes: 90, priceFen: 400 }, segments: [day, night] });
  // 18:00 → 22:00: first period to 19:30 (4), night units 19:30–22:00: 3 started hours × 0.50.
  assert.equal(fees(t, "2024-05-06 18:00", "2024-05-06 22:00"), 550);
  // 17:00 → 20:00: first period to 18:30, day 18:30–19:00 (a started hour, split at 19:00), night 19:00–20:00.
  assert.deepEqual(lines(billOf(t, "2024-05-06 17:00", "2024-05-06 20:00").breakdown), [
    ["first-period", undefined, 400],
    ["units", "day", 100],
    ["units", "night", 50],
  ]);
  // finish-unit: the day hour started at 18:30 is finished to 19:30; night from there.
  const finish = tariff({ restart: "never", boundary: "finish-unit", firstPeriod: { minutes: 90, priceFen: 400 }, segments: [day, night] });
  const b = billOf(finish, "2024-05-06 17:00", "2024-05-06 20:00");
  assert.deepEqual(lines(b.breakdown), [
    ["first-period", undefined, 400],
    ["units", "day", 100],
    ["units", "night", 50],
  ]);
  assert.equal(b.breakdown[2]!.fromMs, at("2024-05-06 19:30"));
});

test("a per-unit first period: its own unit price, a last part unit rounded like the segment where it starts", () => {
  const t = tariff({
    restart: "never",
    firstPeriod: { minutes: 60, unitMinutes: 15, unitPriceFen: 250 },
    segments: [
      { ...day, unitMinutes: 15, unitPriceFen: 375, rounding: "down" },
      { ...night, unitMinutes: 120, unitPriceFen: 100, rounding: "up" },
    ],
  });
  // Day: 10:00 → 10:40 = 2 units, the part unit 10:30–10:40 rounds down (free part-unit line).
  const dayStay = billOf(t, "2024-05-06 10:00", "2024-05-06 10:40");
  assert.equal(dayStay.payableFee, 500);
  assert.deepEqual(
    dayStay.breakdown.map((p) => [p.kind, p.reason, p.units]),
    [
      ["first-period", undefined, 2],
      ["free", "part-unit", undefined],
    ],
  );
  // Night: 22:00 → 22:40 = 3 units, the part unit rounds up (the night rounds up).
  assert.equal(fees(t, "2024-05-06 22:00", "2024-05-06 22:40"), 750);
  // Across 19:00 inside the first period: 18:50 → 19:25, the part unit starts 19:20 at night: up.
  assert.equal(fees(t, "2024-05-06 18:50", "2024-05-06 19:25"), 750);
  // 18:30 → 18:55: the part unit starts 18:45 in the day: down.
  assert.equal(fees(t, "2024-05-06 18:30", "2024-05-06 18:55"), 250);
  // After the first hour the day's own units: 10:00 → 11:30 = 4 × 2.50 + 2 × 3.75.
  assert.equal(fees(t, "2024-05-06 10:00", "2024-05-06 11:30"), 1750);
});

test("restarts charge the first period again; free minutes only where they apply", () => {
  const natural = tariff({ ...fixtureRaw("first-period.json"), restart: "natural-day" });
  // 22:00 → 09:00: 3 to midnight, 3 again from midnight, night free, 2 day hours.
  const b = billOf(natural, "2024-05-06 22:00", "2024-05-07 09:00");
  assert.equal(b.payableFee, 800);
  assert.deepEqual(
    b.breakdown.filter((p) => p.kind === "first-period").map((p) => [p.fromMs, p.toMs]),
    [
      [at("2024-05-06 22:00"), at("2024-05-07 00:00")],
      [at("2024-05-07 00:00"), at("2024-05-07 02:00")],
    ],
  );
  // every-24h: 08:00 → next day 08:30 pays a second first period at 08:00; with againEachDay the
  // second run's first 45 minutes are free, so leaving at 08:30 pays no second one.
  const daily = tariff({ restart: "every-24h", firstPeriod: { minutes: 120, priceFen: 300 }, segments: [day, { ...night, unitPriceFen: 0 }], free: { minutes: 45 } });
  // First run: 3 + day hours 10:00–19:00 and 07:00–08:00; the second run starts at 08:00.
  assert.equal(fees(daily, "2024-05-06 08:00", "2024-05-07 08:30"), 300 + 10 * 100 + 300);
  const again = tariff({
    restart: "every-24h",
    firstPeriod: { minutes: 120, priceFen: 300 },
    segments: [day, { ...night, unitPriceFen: 0 }],
    free: { minutes: 45, againEachDay: true },
  });
  assert.equal(fees(again, "2024-05-06 08:00", "2024-05-07 08:30"), 300 + 10 * 100);
});

test("after an in-lot payment's grace the part starts again from the stay's first period, without free minutes", () => {
  // Paid 3 元 at 11:00 (grace 15 min); leaves 12:00: the new part from 11:00 pays the first period again.
  const b = billOf(municipal, "2024-05-06 10:00", "2024-05-06 12:00", { extras: { prepayments: [{ feeFen: 300, atMs: at("2024-05-06 11:00") }] } });
  assert.deepEqual(lines(b.breakdown), [
    ["first-period", undefined, 300],
    ["first-period", undefined, 300],
  ]);
  assert.equal(b.breakdown[1]!.afterPayment, true);
  assert.equal(b.payableFee, 600);
  assert.equal(b.paidFee, 300);
  // Within the grace: nothing more.
  assert.equal(billOf(municipal, "2024-05-06 10:00", "2024-05-06 11:10", { extras: { prepayments: [{ feeFen: 300, atMs: at("2024-05-06 11:00") }] } }).paidFee, 0);
});

test("caps: no segment cap counts the first period; daily and re-entry caps and percent bands do", () => {
  const capped = tariff({ restart: "never", firstPeriod: { minutes: 120, priceFen: 800 }, segments: [{ ...day, capFen: 200 }, night] });
  // 08:00 → 14:00: the first period (8, over the day's cap of 2 but not counted by it), 4 day hours capped at 2.
  const b = billOf(capped, "2024-05-06 08:00", "2024-05-06 14:00");
  assert.equal(b.payableFee, 1000);
  assert.equal(b.breakdown[0]!.caps, undefined);
  assert.deepEqual(b.breakdown[1]!.caps, [{ kind: "segment", capFen: 200 }]);
  // The daily cap counts it (dated by its start).
  const daily = tariff({ restart: "never", firstPeriod: { minutes: 120, priceFen: 800 }, segments: [day, night], dailyCap: { capFen: 500 } });
  const d = billOf(daily, "2024-05-06 08:00", "2024-05-06 14:00");
  assert.equal(d.payableFee, 500);
  assert.deepEqual(d.breakdown[0]!.caps, [{ kind: "day", capFen: 500 }]);
  // The re-entry cap: a second stay within the window pays its own first period, up to what is left.
  const reentry = tariff({ restart: "never", firstPeriod: { minutes: 120, priceFen: 300 }, segments: [day, night], reentryCap: { capFen: 500 } });
  const previousStays = [{ enterAtMs: at("2024-05-06 08:00"), leaveAtMs: at("2024-05-06 09:00"), payableFee: 300 }];
  assert.equal(billOf(reentry, "2024-05-06 10:00", "2024-05-06 11:00", { extras: { previousStays } }).payableFee, 200);
  // Percent bands: half price for the first period of a new-energy car.
  const relief = tariff({
    restart: "never",
    firstPeriod: { minutes: 120, priceFen: 301 },
    segments: [day, night],
    vehicles: { nev: { percentBands: [{ fromMinutes: 0, toMinutes: 120, percent: 50 }] } },
  });
  const nev = billOf(relief, "2024-05-06 10:00", "2024-05-06 11:00", { vehicleType: "nev" });
  assert.equal(nev.payableFee, 150);
  assert.equal(nev.breakdown[0]!.percent, 50);
});

test("a vehicle type may replace the stay's first period; the check refuses two kinds of first period", () => {
  assert.equal(fees(municipal, "2024-05-06 18:00", "2024-05-06 21:00"), 300);
  assert.equal(billOf(municipal, "2024-05-06 18:00", "2024-05-06 21:00", { vehicleType: "large" }).payableFee, 600);

  const problemsOf = (raw: unknown): Map<string, string> => {
    const result = validateTariff(raw);
    assert.equal(result.ok, false, "expected the tariff to be refused");
    return result.ok ? new Map() : new Map(result.problems.map((p) => [p.path, p.message]));
  };
  const withSegmentFp = { ...day, firstPeriod: { minutes: 60, priceFen: 500 } };
  const both = problemsOf({ firstPeriod: { minutes: 60, priceFen: 500 }, segments: [withSegmentFp, night] });
  assert.match(both.get("segments[0].firstPeriod")!, /first period of the stay/);
  // The override's segments meet the base's first period.
  const override = problemsOf({ firstPeriod: { minutes: 60, priceFen: 500 }, segments: [day, night], vehicles: { large: { segments: [withSegmentFp, night] } } });
  assert.match(override.get("vehicles.large.segments[0].firstPeriod")!, /first period of the stay/);
  // The override's first period meets the base's segment first periods.
  const overrideFp = problemsOf({ segments: [withSegmentFp, night], vehicles: { nev: { firstPeriod: { minutes: 60, priceFen: 500 } } } });
  assert.match(overrideFp.get("vehicles.nev.firstPeriod")!, /base segments have first periods/);
  // The same shape rules as a segment's first period.
  const shape = problemsOf({ firstPeriod: { minutes: 60, priceFen: 500, unitMinutes: 15, unitPriceFen: 100 }, segments: [day, night] });
  assert.match(shape.get("firstPeriod")!, /either priceFen .* not both/);
  const divide = problemsOf({ firstPeriod: { minutes: 50, unitMinutes: 15, unitPriceFen: 100 }, segments: [day, night] });
  assert.match(divide.get("firstPeriod.unitMinutes")!, /must divide firstPeriod.minutes \(50\)/);
  const tooLong = problemsOf({ firstPeriod: { minutes: 1441, priceFen: 1 }, freeMinutes: 3, segments: [day, night] });
  assert.match(tooLong.get("firstPeriod.minutes")!, /longer than a day/);
  assert.match(tooLong.get("freeMinutes")!, /unknown key/, "every mistake in one report");
  // An override with its own segments without first periods is fine.
  assert.ok(validateTariff({ segments: [withSegmentFp, night], vehicles: { nev: { firstPeriod: { minutes: 60, priceFen: 500 }, segments: [day, night] } } }).ok);
});
