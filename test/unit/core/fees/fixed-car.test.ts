import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyFixedCar, fixedCarFreeIntervals, type FixedCar } from "../../../../src/core/fees/fixed-car.js";
import { NEW_YORK, SHANGHAI, at } from "./fee-helpers.js";

const until = at("2024-05-31 00:00");
const monthly: FixedCar = { validFromMs: at("2024-05-01 00:00"), validUntilMs: until };
const officeHours: FixedCar = { ...monthly, windows: [{ days: [1, 2, 3, 4, 5], from: "08:00", to: "18:00" }] };
const nights: FixedCar = { ...monthly, windows: [{ days: [5], from: "22:00", to: "06:00" }] };

test("validity: not yet valid, valid, grace days, expired", () => {
  const rows: Array<[string, FixedCar, { graceDays?: number }, string, string]> = [
    ["2024-04-30 23:59", monthly, {}, "temporary", "not-yet-valid"],
    ["2024-05-01 00:00", monthly, {}, "free", "valid"],
    ["2024-05-30 23:59", monthly, {}, "free", "valid"],
    ["2024-05-31 00:00", monthly, {}, "temporary", "expired"],
    ["2024-06-02 23:59", monthly, { graceDays: 3 }, "free", "grace"],
    ["2024-06-03 00:00", monthly, { graceDays: 3 }, "temporary", "expired"],
    // The car's own graceDays overrides the tariff's.
    ["2024-05-31 12:00", { ...monthly, graceDays: 1 }, { graceDays: 0 }, "free", "grace"],
  ];
  for (const [when, car, options, pass, reason] of rows) {
    const status = classifyFixedCar(car, at(when), SHANGHAI, options);
    assert.deepEqual([status.pass, status.reason], [pass, reason], when);
  }
  assert.equal(classifyFixedCar(monthly, at("2024-05-10 00:00"), SHANGHAI, { graceDays: 3 }).graceUntilMs, at("2024-06-03 00:00"));
});

test("weekly windows, including one that runs past midnight", () => {
  // 2024-05-06 is a Monday, 2024-05-10 a Friday, 2024-05-11 a Saturday.
  const rows: Array<[string, FixedCar, string, string]> = [
    ["2024-05-06 07:59", officeHours, "temporary", "outside-window"],
    ["2024-05-06 08:00", officeHours, "free", "valid"],
    ["2024-05-06 17:59", officeHours, "free", "valid"],
    ["2024-05-06 18:00", officeHours, "temporary", "outside-window"],
    ["2024-05-11 10:00", officeHours, "temporary", "outside-window"],
    ["2024-05-10 23:00", nights, "free", "valid"],
    ["2024-05-11 05:59", nights, "free", "valid"],
    ["2024-05-11 06:00", nights, "temporary", "outside-window"],
    ["2024-05-09 23:00", nights, "temporary", "outside-window"],
  ];
  for (const [when, car, pass, reason] of rows) {
    const status = classifyFixedCar(car, at(when), SHANGHAI);
    assert.deepEqual([status.pass, status.reason], [pass, reason], when);
  }
});

test("free intervals of a stay", () => {
  // Monday 07:00 → Tuesday 09:00 with office hours: Monday 08–18 and Tuesday 08–09.
  assert.deepEqual(fixedCarFreeIntervals(officeHours, at("2024-05-06 07:00"), at("2024-05-07 09:00"), SHANGHAI), [
    [at("2024-05-06 08:00"), at("2024-05-06 18:00")],
    [at("2024-05-07 08:00"), at("2024-05-07 09:00")],
  ]);
  // A window that opened the day before is still open at the entry.
  assert.deepEqual(fixedCarFreeIntervals(nights, at("2024-05-11 01:00"), at("2024-05-11 10:00"), SHANGHAI), [[at("2024-05-11 01:00"), at("2024-05-11 06:00")]]);
  // Expiry cuts the free time.
  assert.deepEqual(fixedCarFreeIntervals(monthly, at("2024-05-30 20:00"), at("2024-05-31 10:00"), SHANGHAI), [[at("2024-05-30 20:00"), until]]);
  // Grace days are calendar days on the lot's clock: across the DST change in New York a grace
  // day of 2024-03-10 is 23 hours long.
  const ny: FixedCar = { validUntilMs: at("2024-03-10 00:00", NEW_YORK), graceDays: 1 };
  assert.equal(classifyFixedCar(ny, at("2024-03-10 00:00", NEW_YORK), NEW_YORK).graceUntilMs, at("2024-03-11 00:00", NEW_YORK));
  assert.equal(at("2024-03-11 00:00", NEW_YORK) - at("2024-03-10 00:00", NEW_YORK), 23 * 3_600_000);
});
