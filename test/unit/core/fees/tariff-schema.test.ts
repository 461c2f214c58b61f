import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../../../src/config/load.js";
import { validateTariff } from "../../../../src/core/fees/validate-tariff.js";
import { pricingFor } from "../../../../src/core/fees/tariff-schema.js";
import { demoRaw } from "../../../helpers/demo-config.js";
import { fixture, fixtureRaw } from "./fee-helpers.js";

const day = { name: "day", from: "07:00", to: "19:00", unitMinutes: 60, unitPriceFen: 300 };
const night = { name: "night", from: "19:00", to: "07:00", unitMinutes: 120, unitPriceFen: 100 };

function problems(raw: unknown): Map<string, string> {
  const result = validateTariff(raw);
  assert.equal(result.ok, false, "expected the tariff to be refused");
  if (result.ok) return new Map();
  return new Map(result.problems.map((p) => [p.path, p.message]));
}

test("a minimal tariff gets its defaults", () => {
  const result = validateTariff({ segments: [{ name: "all day", from: "00:00", to: "24:00", unitMinutes: 60, unitPriceFen: 100 }] });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const t = result.tariff;
  assert.deepEqual(t.free, { minutes: 0, billedOnceExceeded: true, againEachDay: false });
  assert.equal(t.restart, "every-24h");
  assert.equal(t.boundary, "split");
  assert.equal(t.segments[0]!.rounding, "up");
  assert.deepEqual(t.postPayment, { graceMinutes: 15, restartFrom: "payment" });
  assert.deepEqual(t.coupons, { maxPerStay: 1 });
  assert.deepEqual(t.fixedCars, { graceDays: 0 });
  assert.equal(t.maxStayDays, 366);
});

test("overlapping and gapped segments are reported at the segment, with the times", () => {
  const overlap = problems({ segments: [day, { ...night, from: "18:00" }] });
  assert.match(overlap.get("segments[1].from")!, /overlaps segments\[0\] \("day" 07:00-19:00\) from 18:00 to 19:00/);
  const gap = problems({ segments: [day, { ...night, to: "06:00" }] });
  assert.match(gap.get("segments[1].to")!, /no segment covers 06:00 to 07:00/);
  // A gap at the end of the day (the last segment stops at 23:00).
  const late = problems({ segments: [{ ...day, from: "00:00", to: "23:00" }] });
  assert.match(late.get("segments[0].to")!, /no segment covers 23:00 to 24:00/);
  // Two whole-day segments overlap everywhere.
  const twice = problems({
    segments: [
      { ...day, from: "00:00", to: "24:00" },
      { ...night, from: "00:00", to: "00:00" },
    ],
  });
  assert.match(twice.get("segments[1].from")!, /overlaps segments\[0\]/);
  // Midnight-spanning segments that tile the day are fine, in any order.
  assert.ok(validateTariff({ segments: [night, day] }).ok);
});

test("a first period longer than a day, negative prices and bad units are precise errors", () => {
  const bad = problems({
    segments: [
      { ...day, unitPriceFen: -100, firstPeriod: { minutes: 1441, priceFen: 500 } },
      { ...night, unitMinutes: 0, capFen: -1 },
    ],
    dailyCap: { capFen: -5 },
  });
  assert.match(bad.get("segments[0].firstPeriod.minutes")!, /longer than a day/);
  assert.match(bad.get("segments[0].unitPriceFen")!, /must not be negative/);
  assert.match(bad.get("segments[1].unitMinutes")!, /at least 1 minute/);
  assert.match(bad.get("segments[1].capFen")!, /must not be negative/);
  assert.match(bad.get("dailyCap.capFen")!, /must not be negative/);
  assert.equal(bad.size, 5, JSON.stringify([...bad]));
});

test("cross-field rules of segments and first periods", () => {
  const bad = problems({
    segments: [
      { ...day, flatFen: 500 },
      { name: "night", from: "19:00", to: "07:00" },
    ],
  });
  assert.match(bad.get("segments[0].unitMinutes")!, /flatFen/);
  assert.match(bad.get("segments[1].unitMinutes")!, /is required/);
  assert.match(bad.get("segments[1].unitPriceFen")!, /is required/);

  const fp = problems({
    segments: [
      { ...day, firstPeriod: { minutes: 60, priceFen: 500, unitMinutes: 15, unitPriceFen: 250 } },
      { ...night, name: "day", firstPeriod: { minutes: 50, unitMinutes: 15, unitPriceFen: 250 } },
    ],
  });
  assert.match(fp.get("segments[0].firstPeriod")!, /either priceFen .* not both/);
  assert.match(fp.get("segments[1].firstPeriod.unitMinutes")!, /must divide firstPeriod.minutes \(50\)/);
  assert.match(fp.get("segments[1].name")!, /duplicate segment name "day"/);
  const none = problems({ segments: [{ ...day, from: "00:00", to: "24:00", firstPeriod: { minutes: 60 } }] });
  assert.match(none.get("segments[0].firstPeriod")!, /needs priceFen/);
});

test("percent bands may not overlap or run backwards", () => {
  const bad = problems({
    segments: [{ ...day, from: "00:00", to: "24:00" }],
    percentBands: [
      { fromMinutes: 0, toMinutes: 120, percent: 50 },
      { fromMinutes: 60, toMinutes: 90, percent: 80 },
      { fromMinutes: 300, toMinutes: 200, percent: 10 },
      { fromMinutes: 500, toMinutes: 600, percent: 101 },
      { fromMinutes: 1000, toMinutes: 5000, percent: 50 },
      { fromMinutes: 1100, toMinutes: 1200, percent: 50 },
      { fromMinutes: 1300, toMinutes: 1400, percent: 50 },
    ],
  });
  assert.match(bad.get("percentBands[1].fromMinutes")!, /overlaps percentBands\[0\]/);
  assert.match(bad.get("percentBands[2].toMinutes")!, /must be after fromMinutes/);
  assert.match(bad.get("percentBands[3].percent")!, /at most 100/);
  // A long band overlaps every band inside it, not only its neighbour.
  assert.match(bad.get("percentBands[5].fromMinutes")!, /overlaps percentBands\[4\]/);
  assert.match(bad.get("percentBands[6].fromMinutes")!, /overlaps percentBands\[4\]/);
});

test("unknown keys are errors everywhere, including an unknown vehicle type", () => {
  const bad = problems({
    freeMinutes: 30,
    segments: [{ ...day, from: "00:00", to: "24:00", colour: "red" }],
    vehicles: { bus: { segments: [] }, nev: { freee: {} } },
  });
  for (const path of ["freeMinutes", "segments[0].colour", "vehicles.bus", "vehicles.nev.freee"]) {
    assert.match(bad.get(path) ?? "", /unknown key/, `no unknown-key problem at ${path}: ${JSON.stringify([...bad])}`);
  }
});

test("semantic problems are reported together with shape problems, in one report", () => {
  const bad = problems({
    restart: "sometimes",
    segments: [
      { ...day, unitPriceFen: "3 yuan" },
      { ...night, from: "18:00" },
    ],
    vehicles: { nev: { segments: [{ ...day, from: "00:00", to: "12:00" }] } },
  });
  assert.ok(bad.has("restart"), JSON.stringify([...bad]));
  assert.ok(bad.has("segments[0].unitPriceFen"));
  assert.match(bad.get("segments[1].from")!, /overlaps/);
  assert.match(bad.get("vehicles.nev.segments[0].to")!, /no segment covers 12:00 to 24:00/);
});

test("inside a config the tariff's problems carry the full path", () => {
  const raw = demoRaw() as Record<string, any>;
  raw.fees.tariffs.standard.segments[0].to = "20:00";
  raw.fees.tariffs.standard.segments[0].firstPeriod.minutes = 2000;
  raw.fees.tariffs.night = { segments: [day, { ...night, unitPriceFen: -1 }] };
  const result = validateConfig(raw);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const byPath = new Map(result.problems.map((p) => [p.path, p.message]));
  assert.match(byPath.get("fees.tariffs.standard.segments[0].to")!, /gap/);
  assert.match(byPath.get("fees.tariffs.standard.segments[0].firstPeriod.minutes")!, /longer than a day/);
  assert.match(byPath.get("fees.tariffs.night.segments[1].unitPriceFen")!, /negative/);
  // validateTariff can prefix the same paths for a tariff read on its own.
  const alone = validateTariff(raw.fees.tariffs.night, ["fees", "tariffs", "night"]);
  assert.equal(alone.ok, false);
  if (!alone.ok)
    assert.deepEqual(
      alone.problems.map((p) => p.path),
      ["fees.tariffs.night.segments[1].unitPriceFen"],
    );
});

test("the demo config's standard tariff is the vendor example", () => {
  const result = validateConfig(demoRaw());
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const { standard } = result.config.fees.tariffs;
  assert.deepEqual(standard, fixture("vendor.json", { name: standard!.name }));
});

test("vehicle overrides replace whole fields of the base", () => {
  const t = fixture("new-energy.json");
  const nev = pricingFor(t, "nev");
  const small = pricingFor(t, "small");
  assert.equal(nev.free.minutes, 120);
  assert.equal(nev.free.billedOnceExceeded, false);
  assert.equal(nev.dailyCap?.capFen, 2000);
  assert.equal(nev.segments, small.segments);
  assert.deepEqual(pricingFor(t, "large"), small);
  assert.ok(fixtureRaw("new-energy.json"));
});
