import { test } from "node:test";
import assert from "node:assert/strict";
import { bill } from "../../../../src/core/fees/bill.js";
import { BillError } from "../../../../src/core/fees/errors.js";
import type { BillExtras } from "../../../../src/core/fees/stay.js";
import type { Tariff } from "../../../../src/core/fees/tariff-schema.js";
import { NEW_YORK, SHANGHAI, at, billOf, fixture, fixtureRaw, flatRate, stay, tariff } from "./fee-helpers.js";

/**
 * Worked examples: each number below was worked out by hand from the tariff's wording
 * (docs/tariffs.md), then checked against the engine.
 */

const vendor = fixture("vendor.json");
const dayNight = fixture("day-night-cap.json");
const beijing = fixture("beijing.json");

const fees = (t: Tariff, enter: string, leave: string): number => billOf(t, enter, leave).payableFee;

test("the vendor example: 08:00 → 11:00 is 5 + 1 + 1 = 7 元", () => {
  const result = billOf(vendor, "2024-05-06 08:00", "2024-05-06 11:00");
  assert.equal(result.payableFee, 700);
  assert.equal(result.paidFee, 700);
  assert.equal(result.discountFee, 0);
  assert.deepEqual(
    result.breakdown.map((p) => [p.kind, p.units, p.unitPriceFen, p.feeFen]),
    [
      ["first-period", 1, 500, 500],
      ["units", 2, 100, 200],
    ],
  );
  // Around the free time: ≤ 30 min free, then the first hour (which includes the free time).
  assert.equal(fees(vendor, "2024-05-06 08:00", "2024-05-06 08:30"), 0);
  assert.equal(fees(vendor, "2024-05-06 08:00", "2024-05-06 08:30:01"), 500);
  assert.equal(fees(vendor, "2024-05-06 08:00", "2024-05-06 09:00"), 500);
  assert.equal(fees(vendor, "2024-05-06 08:00", "2024-05-06 09:00:01"), 600);
});

test("free 30 minutes, 35 parked: switch on bills 35 minutes, off bills 5", () => {
  const perMinute = (billedOnceExceeded: boolean): Tariff => flatRate(1, 10, { free: { minutes: 30, billedOnceExceeded } });
  const on = billOf(perMinute(true), "2024-05-06 08:00", "2024-05-06 08:35");
  const off = billOf(perMinute(false), "2024-05-06 08:00", "2024-05-06 08:35");
  assert.equal(on.payableFee, 350);
  assert.equal(off.payableFee, 50);
  const billedUnits = (b: typeof on): number => b.breakdown.filter((p) => p.kind === "units").reduce((n, p) => n + (p.units ?? 0), 0);
  assert.equal(billedUnits(on), 35);
  assert.equal(billedUnits(off), 5);
  // Off: the free half hour shows as a free piece before the billed time.
  assert.deepEqual(off.breakdown[0], { kind: "free", fromMs: at("2024-05-06 08:00"), toMs: at("2024-05-06 08:30"), grossFen: 0, feeFen: 0, reason: "free-minutes" });
  // Both switches: within the free time nothing is due.
  assert.equal(billOf(perMinute(true), "2024-05-06 08:00", "2024-05-06 08:30").payableFee, 0);
  assert.equal(billOf(perMinute(false), "2024-05-06 08:00", "2024-05-06 08:30").payableFee, 0);
});

test("rounding up vs down at exact unit boundaries: 14:59, 15:00, 15:01 with 15-minute units", () => {
  const up = flatRate(15, 100, {}, { rounding: "up" });
  const down = flatRate(15, 100, {}, { rounding: "down" });
  const table: Array<[string, number, number]> = [
    ["2024-05-06 08:14:59", 100, 0],
    ["2024-05-06 08:15:00", 100, 100],
    ["2024-05-06 08:15:01", 200, 100],
    ["2024-05-06 08:29:59", 200, 100],
    ["2024-05-06 08:30:00", 200, 200],
  ];
  for (const [leave, upFen, downFen] of table) {
    assert.equal(fees(up, "2024-05-06 08:00:00", leave), upFen, `up, leave ${leave}`);
    assert.equal(fees(down, "2024-05-06 08:00:00", leave), downFen, `down, leave ${leave}`);
  }
  // Rounding down shows the part unit that was not charged.
  const partUnit = billOf(down, "2024-05-06 08:00:00", "2024-05-06 08:14:59").breakdown;
  assert.deepEqual(
    partUnit.map((p) => [p.kind, p.reason]),
    [["free", "part-unit"]],
  );
});

test("a stay across midnight: night segment spanning midnight, and natural-day restarts", () => {
  // 19:00–07:00 is one night occurrence: 22:00 → 02:00 is two 2-hour units.
  const night = billOf(dayNight, "2024-05-06 22:00", "2024-05-07 02:00");
  assert.equal(night.payableFee, 200);
  assert.deepEqual(
    night.breakdown.map((p) => [p.segment, p.units]),
    [["night", 2]],
  );
  // Night cap: a whole night costs at most 5 元.
  assert.equal(fees(dayNight, "2024-05-06 19:00", "2024-05-07 07:00"), 500);
  // Vendor tariff, 23:00 → 01:00: one scale (5 + 1), or restarted at midnight (5 + 5).
  assert.equal(fees(vendor, "2024-05-06 23:00", "2024-05-07 01:00"), 600);
  const natural = fixture("vendor.json", { restart: "natural-day" });
  const split = billOf(natural, "2024-05-06 23:00", "2024-05-07 01:00");
  assert.equal(split.payableFee, 1000);
  assert.deepEqual(
    split.breakdown.map((p) => [p.kind, p.fromMs]),
    [
      ["first-period", at("2024-05-06 23:00")],
      ["first-period", at("2024-05-07 00:00")],
    ],
  );
});

test("a stay of 3 days", () => {
  // Vendor: the scale restarts every 24 h: 3 × (5 + 23 × 1) = 84 元.
  const v = billOf(vendor, "2024-05-06 08:00", "2024-05-09 08:00");
  assert.equal(v.payableFee, 8400);
  assert.equal(v.breakdown.filter((p) => p.kind === "first-period").length, 3);
  // Day/night with a 30 元 daily cap: 3 capped days.
  const d = billOf(dayNight, "2024-05-06 08:00", "2024-05-09 08:00");
  assert.equal(d.payableFee, 9000);
  assert.ok(d.breakdown.some((p) => p.caps?.some((c) => c.kind === "day")));
  // Beijing-style, no cap, no restart: first hour 10 元, then 15-min units by day and
  // 2-hour units by night: 10 + 150 + 3 × 5 + 2 × 210 + 45 = 640 元.
  assert.equal(fees(beijing, "2024-05-06 10:00", "2024-05-09 10:00"), 64_000);
  // Three days and a bit: the fourth 24 h starts again from the first period.
  assert.equal(fees(vendor, "2024-05-06 08:00", "2024-05-09 09:30"), 8400 + 600);
});

test("the re-entry cap counts what earlier stays of the plate paid within 24 h", () => {
  const capped = fixture("vendor.json", { reentryCap: { capFen: 1500 } });
  const earlier = { enterAtMs: at("2024-05-06 08:00"), leaveAtMs: at("2024-05-06 10:00"), payableFee: 600 };
  // Alone 12:00 → 18:00 costs 5 + 5 × 1 = 10 元; 6 元 already paid leaves room for 9 元.
  assert.equal(billOf(capped, "2024-05-06 12:00", "2024-05-06 18:00").payableFee, 1000);
  const second = billOf(capped, "2024-05-06 12:00", "2024-05-06 18:00", { extras: { previousStays: [earlier] } });
  assert.equal(second.payableFee, 900);
  assert.ok(second.breakdown.some((p) => p.caps?.some((c) => c.kind === "reentry" && c.capFen === 1500)));
  // An earlier stay that entered more than 24 h before does not count.
  const old = { enterAtMs: at("2024-05-05 08:00"), leaveAtMs: at("2024-05-05 10:00"), payableFee: 600 };
  assert.equal(billOf(capped, "2024-05-06 12:00", "2024-05-06 18:00", { extras: { previousStays: [old] } }).payableFee, 1000);
  // The window closes 24 h after the first entry (08:00 next day): later units are not capped.
  const long = billOf(capped, "2024-05-06 20:00", "2024-05-07 12:00", { extras: { previousStays: [earlier] } });
  assert.equal(long.payableFee, 900 + 400);
  // Once the cap is used up, a re-entry inside the window is free.
  const full = { ...earlier, payableFee: 1500 };
  assert.equal(billOf(capped, "2024-05-06 12:00", "2024-05-06 18:00", { extras: { previousStays: [full] } }).payableFee, 0);
});

test("daily cap by natural day differs from the cap per 24 h from the entry", () => {
  const byEntry = flatRate(60, 300, { dailyCap: { capFen: 2000, basis: "24h-from-entry" }, restart: "never" });
  const byDate = flatRate(60, 300, { dailyCap: { capFen: 2000, basis: "natural-day" }, restart: "never" });
  // 20:00 → 08:00 next day: 12 hours (3600 uncapped). One 24 h window, two natural days
  // (4 h = 1200 on the first date, 8 h = 2400 → 2000 on the second).
  assert.equal(fees(byEntry, "2024-05-06 20:00", "2024-05-07 08:00"), 2000);
  assert.equal(fees(byDate, "2024-05-06 20:00", "2024-05-07 08:00"), 1200 + 2000);
});

test("the Beijing boundary rule: a part unit before the boundary is finished at the day rate", () => {
  // 20:50 → 23:00: the 10 minutes before 21:00 are less than one 15-min day unit. finish-unit
  // charges 20:50–21:05 as a day unit (2.50, first-hour price); night starts at 21:05.
  const finished = billOf(beijing, "2024-05-06 20:50", "2024-05-06 23:00");
  assert.equal(finished.payableFee, 250 + 100);
  assert.deepEqual(
    finished.breakdown.map((p) => [p.segment, p.kind, p.fromMs, p.toMs, p.feeFen]),
    [
      ["day", "first-period", at("2024-05-06 20:50"), at("2024-05-06 21:05"), 250],
      ["night", "units", at("2024-05-06 21:05"), at("2024-05-06 23:00"), 100],
    ],
  );
  // The same lot with "split": the day part unit rounds down to nothing; night 21:00–23:00.
  const split = fixture("beijing.json", { boundary: "split" });
  assert.equal(fees(split, "2024-05-06 20:50", "2024-05-06 23:00"), 100);
  // Night into day: 06:00 → 08:00 is one 2-hour night unit, not a night part and a day hour.
  assert.equal(fees(beijing, "2024-05-06 06:00", "2024-05-06 08:00"), 100);
  assert.equal(fees(split, "2024-05-06 06:00", "2024-05-06 08:00"), 100 + 1000);
});

test("post-payment grace: leave within it for free; after it, billing restarts without free time", () => {
  const paid = { prepayments: [{ feeFen: 700, atMs: at("2024-05-06 11:00") }] };
  const inGrace = billOf(vendor, "2024-05-06 08:00", "2024-05-06 11:15", { extras: paid });
  assert.deepEqual([inGrace.payableFee, inGrace.prepaidFee, inGrace.paidFee], [700, 700, 0]);
  assert.ok(inGrace.breakdown.some((p) => p.reason === "post-payment-grace"));
  // 11:16: the grace is over; from 11:00 the scale starts again with the first period (5 元),
  // and the free 30 minutes do not apply again.
  const late = billOf(vendor, "2024-05-06 08:00", "2024-05-06 11:16", { extras: paid });
  assert.deepEqual([late.payableFee, late.paidFee], [1200, 500]);
  assert.ok(late.breakdown.some((p) => p.afterPayment === true && p.kind === "first-period"));
  // 12:10: restart from the payment = 70 min (5 + 1); from the end of the grace = 55 min (5).
  assert.equal(billOf(vendor, "2024-05-06 08:00", "2024-05-06 12:10", { extras: paid }).paidFee, 600);
  const fromGraceEnd = fixture("vendor.json", { postPayment: { graceMinutes: 15, restartFrom: "grace-end" } });
  assert.equal(billOf(fromGraceEnd, "2024-05-06 08:00", "2024-05-06 12:10", { extras: paid }).paidFee, 500);
  // Underpaid: what was missing at the payment is still due.
  const short = billOf(vendor, "2024-05-06 08:00", "2024-05-06 11:05", { extras: { prepayments: [{ feeFen: 500, atMs: at("2024-05-06 11:00") }] } });
  assert.equal(short.paidFee, 200);
});

test("coupons: amount, minutes from the start or the end, full free, percent; one per stay unless configured", () => {
  const s = ["2024-05-06 08:00", "2024-05-06 11:00"] as const; // 700
  const due = (extras: BillExtras, t: Tariff = vendor): number[] => {
    const b = billOf(t, s[0], s[1], { extras });
    return [b.payableFee, b.discountFee, b.paidFee];
  };
  assert.deepEqual(due({ coupons: [{ kind: "amount", fen: 300 }] }), [700, 300, 400]);
  assert.deepEqual(due({ coupons: [{ kind: "amount", fen: 5000 }] }), [700, 700, 0]);
  // One hour off the end: billed as 08:00 → 10:00 = 6 元.
  assert.deepEqual(due({ coupons: [{ kind: "minutes", minutes: 60, from: "end" }] }), [700, 100, 600]);
  // 150 minutes off the start: 10:30 → 11:00 is inside the free half hour.
  assert.deepEqual(due({ coupons: [{ kind: "minutes", minutes: 150, from: "start" }] }), [700, 700, 0]);
  assert.deepEqual(due({ coupons: [{ kind: "free" }] }), [700, 700, 0]);
  // 15 % of 7 元 = 1.05 元.
  assert.deepEqual(due({ coupons: [{ kind: "percent", percent: 15 }] }), [700, 105, 595]);
  // Percent discounts are rounded down to whole fen: 33 % of 7 元 = 2.31 元.
  assert.deepEqual(due({ coupons: [{ kind: "percent", percent: 33 }] }), [700, 231, 469]);
  // One coupon per stay by default: the second is listed, not applied.
  const two = billOf(vendor, s[0], s[1], {
    extras: {
      coupons: [
        { kind: "amount", fen: 100 },
        { kind: "amount", fen: 200 },
      ],
    },
  });
  assert.equal(two.discountFee, 100);
  assert.deepEqual(
    two.discounts.map((d) => [d.index, d.applied, d.discountFen]),
    [
      [0, true, 100],
      [1, false, 0],
    ],
  );
  // With two allowed, they apply in a fixed order (minutes, free, percent, amount), whatever
  // order they come in: 20 % of 7 元 = 1.40, then 1 元 off.
  const twoAllowed = fixture("vendor.json", { coupons: { maxPerStay: 2 } });
  const a = due(
    {
      coupons: [
        { kind: "amount", fen: 100 },
        { kind: "percent", percent: 20 },
      ],
    },
    twoAllowed,
  );
  const b = due(
    {
      coupons: [
        { kind: "percent", percent: 20 },
        { kind: "amount", fen: 100 },
      ],
    },
    twoAllowed,
  );
  assert.deepEqual(a, [700, 240, 460]);
  assert.deepEqual(b, a);
  // Coupon and prepayment together never go below zero.
  const both = billOf(vendor, s[0], s[1], { extras: { coupons: [{ kind: "amount", fen: 500 }], prepayments: [{ feeFen: 500, atMs: at("2024-05-06 10:59") }] } });
  assert.deepEqual([both.payableFee, both.discountFee, both.prepaidFee, both.paidFee], [700, 500, 500, 0]);
});

test("vehicle types: large and new-energy pricing replace the base fields they name", () => {
  assert.equal(fees(beijing, "2024-05-06 10:00", "2024-05-06 11:00"), 1000);
  assert.equal(billOf(beijing, "2024-05-06 10:00", "2024-05-06 11:00", { vehicleType: "large" }).payableFee, 2000);
  // No nev override: new-energy cars pay the base.
  assert.equal(billOf(beijing, "2024-05-06 10:00", "2024-05-06 11:00", { vehicleType: "nev" }).payableFee, 1000);
  const nev = fixture("new-energy.json");
  const result = billOf(nev, "2024-05-06 10:00", "2024-05-06 13:00", { vehicleType: "nev" });
  // First 2 h free (free minutes, switch off), then the first period at half price.
  assert.equal(result.payableFee, 300);
  assert.deepEqual(
    result.breakdown.map((p) => [p.kind, p.percent, p.feeFen]),
    [
      ["free", undefined, 0],
      ["first-period", 50, 300],
    ],
  );
});

test("monthly/fixed cars: free within validity and windows, charged as temporary outside them", () => {
  const base = stay("2024-05-06 08:00", "2024-05-06 11:00");
  const valid = bill(vendor, { ...base, fixedCar: { validUntilMs: at("2024-06-01 00:00") } });
  assert.equal(valid.payableFee, 0);
  assert.deepEqual(
    valid.breakdown.map((p) => p.reason),
    ["fixed-car"],
  );
  // Validity ends at 09:00: the rest is priced as its own temporary stay (5 + 1), no free minutes.
  const expiring = bill(vendor, { ...base, fixedCar: { validUntilMs: at("2024-05-06 09:00") } });
  assert.equal(expiring.payableFee, 600);
  // With a grace day (tariff default or the car's own), still free.
  const graceTariff = fixture("vendor.json", { fixedCars: { graceDays: 1 } });
  assert.equal(bill(graceTariff, { ...base, fixedCar: { validUntilMs: at("2024-05-06 09:00") } }).payableFee, 0);
  assert.equal(bill(vendor, { ...base, fixedCar: { validUntilMs: at("2024-05-06 09:00"), graceDays: 1 } }).payableFee, 0);
  // Office-hours card (Mon–Fri 09:00–18:00) on a Monday: 08:00–09:00 is temporary parking that
  // starts at the entry, so the free minutes apply; 60 minutes → the first period, 5 元.
  const office = bill(vendor, { ...base, fixedCar: { validUntilMs: at("2024-06-01 00:00"), windows: [{ days: [1, 2, 3, 4, 5], from: "09:00", to: "18:00" }] } });
  assert.equal(office.payableFee, 500);
  // The same hours on a Sunday are all temporary.
  const sunday = bill(vendor, {
    ...stay("2024-05-05 08:00", "2024-05-05 11:00"),
    fixedCar: { validUntilMs: at("2024-06-01 00:00"), windows: [{ days: [1, 2, 3, 4, 5], from: "09:00", to: "18:00" }] },
  });
  assert.equal(sunday.payableFee, 700);
});

test("time zones and DST: natural days of 23 hours, a segment boundary inside the skipped hour", () => {
  // New York, spring forward on 2024-03-10: that natural day has 23 hours.
  const natural = fixture("vendor.json", { restart: "natural-day" });
  const opts = { timeZone: NEW_YORK };
  // 23:00 → 00:00 (1 h: 5 元) then the 23-hour day (5 + 22 × 1): 32 元.
  assert.equal(billOf(natural, "2024-03-09 23:00", "2024-03-11 00:00", opts).payableFee, 3200);
  // Every 24 h from the entry: that is exactly 24 real hours: 5 + 23 × 1.
  assert.equal(billOf(vendor, "2024-03-09 23:00", "2024-03-11 00:00", opts).payableFee, 2800);
  // A day segment that starts at 02:30, a time that does not exist that night: it starts
  // when the clock jumps to 03:00. 01:00 EST → 04:00 EDT is 2 real hours: 1 h night, 1 h day.
  const dayNight = tariff({
    segments: [
      { name: "day", from: "02:30", to: "14:00", unitMinutes: 30, unitPriceFen: 300 },
      { name: "night", from: "14:00", to: "02:30", unitMinutes: 30, unitPriceFen: 100 },
    ],
  });
  const dst = billOf(dayNight, "2024-03-10 01:00", "2024-03-10 04:00", opts);
  assert.equal(dst.payableFee, 2 * 100 + 2 * 300);
  assert.deepEqual(
    dst.breakdown.map((p) => [p.segment, p.fromMs]),
    [
      ["night", Date.UTC(2024, 2, 10, 6)],
      ["day", Date.UTC(2024, 2, 10, 7)],
    ],
  );
  // Fall back on 2024-11-03: the natural day has 25 hours.
  assert.equal(billOf(natural, "2024-11-03 00:00", "2024-11-04 00:00", opts).payableFee, 500 + 24 * 100);
  // The same instants bill the same in Shanghai whatever zone wrote the strings.
  const instants = stay("2024-05-06 08:00", "2024-05-06 11:00");
  assert.equal(bill(vendor, { ...instants, timeZone: SHANGHAI }).payableFee, 700);
});

test("bad input gets a precise error, never a silent zero", () => {
  const expectCode = (fn: () => unknown, code: string, path?: string): void => {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof BillError, String(error));
      assert.equal(error.code, code);
      if (path) assert.equal(error.path, path);
      return true;
    });
  };
  const s = stay("2024-05-06 08:00", "2024-05-06 11:00");
  expectCode(() => bill(vendor, { ...s, leaveAtMs: s.enterAtMs - 1 }), "exit-before-entry", "stay.leaveAtMs");
  expectCode(() => bill(vendor, { ...s, vehicleType: "bus" as never }), "unknown-vehicle-type", "stay.vehicleType");
  expectCode(() => bill(vendor, { ...s, timeZone: "Mars/Olympus" }), "invalid-time-zone", "stay.timeZone");
  expectCode(() => bill(vendor, { ...s, enterAtMs: Number.NaN }), "invalid-instant", "stay.enterAtMs");
  expectCode(() => bill(vendor, { ...s, leaveAtMs: s.enterAtMs + 400 * 86_400_000 }), "stay-too-long");
  expectCode(() => bill(vendor, s, { prepayments: [{ feeFen: 100, atMs: s.leaveAtMs + 1 }] }), "prepayment-outside-stay", "extras.prepayments[0].atMs");
  expectCode(() => bill(vendor, s, { coupons: [{ kind: "percent", percent: 150 }] }), "invalid-extras", "extras.coupons[0].percent");
  expectCode(() => bill(vendor, s, { coupons: [{ kind: "cashback" } as never] }), "invalid-extras");
  expectCode(() => bill(vendor, { ...s, fixedCar: { validUntilMs: "soon" } as never }), "invalid-extras", "stay.fixedCar.validUntilMs");
  // A raw object that never went through the schema is refused, not billed as zero.
  expectCode(() => bill({ name: "placeholder" } as never, s), "invalid-tariff");
  const raw = fixtureRaw("vendor.json") as unknown as Tariff;
  expectCode(() => bill(raw, s), "invalid-tariff");
  // A zero-length stay is a real stay: nothing is due.
  assert.equal(bill(vendor, { ...s, leaveAtMs: s.enterAtMs }).payableFee, 0);
});
