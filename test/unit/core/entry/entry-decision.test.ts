/**
 * The entry decision, one row per rule (and the rows that must not fire), then a property:
 * whatever the lot, an allowed car has a reason, a class and types, and a refused one never
 * gets a record.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decideEntry, type EntryPolicy, type EntrySnapshot } from "../../../../src/core/entry/entry-decision.js";
import { fixedCarStanding, activeVehicle, groupKeyOf, type FixedCarStanding } from "../../../../src/core/stays/fixed-car-standing.js";

const numRuns = Number(process.env.LK_FUZZ_RUNS ?? 500);
const T0 = Date.UTC(2026, 2, 10, 4, 0, 0);
const request = { plate: "粤B12345", source: "camera", laneId: "in1", atMs: T0 };
const policy: EntryPolicy = { duplicateEntry: "replace", confirmWithPlatform: "never", temporaryTypes: { carType: 1, carSubType: 11 } };
const empty: EntrySnapshot = { listed: [], inPark: [], fixedCar: undefined, freeSpaces: 10 };
const monthly: FixedCarStanding = { pass: "free", carType: 8, carSubType: 81, daysLeft: 20, groupKey: undefined, groupFull: false };

test("each rule, in order, with its reason and board message", () => {
  const rows: Array<[string, Parameters<typeof decideEntry>, Record<string, unknown>]> = [
    ["no plate", [{ ...request, plate: "" }, empty, policy], { verdict: "deny", reason: "no-plate", message: { kind: "attendantCalled" } }],
    [
      "listed, refusing entry",
      [request, { ...empty, listed: [{ denyIn: false }, { denyIn: true }] }, policy],
      { verdict: "deny", reason: "blacklisted", unlicensedReason: "denied" },
    ],
    ["listed without denyIn: not refused", [request, { ...empty, listed: [{ denyIn: false }] }, policy], { verdict: "allow", reason: "temporary" }],
    ["already inside, policy deny", [request, { ...empty, inPark: ["r1"] }, { ...policy, duplicateEntry: "deny" }], { verdict: "deny", reason: "already-in-park" }],
    ["already inside, policy replace", [request, { ...empty, inPark: ["r1", "r2"] }, policy], { verdict: "allow", replaces: ["r1", "r2"] }],
    [
      "lot full, temporary",
      [request, { ...empty, freeSpaces: 0 }, policy],
      { verdict: "deny", reason: "lot-full", message: { kind: "lotFull", plate: request.plate }, unlicensedReason: "lot-full" },
    ],
    [
      "lot full, monthly enters",
      [request, { ...empty, freeSpaces: 0, fixedCar: monthly }, policy],
      {
        verdict: "allow",
        carClass: "fixed",
        reason: "fixed-car",
        carType: 8,
        carSubType: 81,
        vehicleType: "monthly",
        message: { kind: "monthly", plate: request.plate, daysLeft: 20 },
      },
    ],
    [
      "group full: temporary, flagged",
      [request, { ...empty, fixedCar: { ...monthly, groupKey: "g", groupFull: true } }, policy],
      { verdict: "allow", carClass: "temporary", carType: 1, groupKey: "g", groupOverflow: true },
    ],
    [
      "unlicensed ignores a card",
      [{ ...request, source: "unlicensed" }, { ...empty, fixedCar: monthly }, policy],
      { verdict: "allow", carClass: "temporary", vehicleType: "unlicensed", source: "unlicensed" },
    ],
    ["confirm: temporary", [request, empty, { ...policy, confirmWithPlatform: "temporary" }], { verdict: "confirm", preEnterReason: "confirm-required" }],
    [
      "confirm temporary: a monthly car is not asked",
      [request, { ...empty, fixedCar: monthly }, { ...policy, confirmWithPlatform: "temporary" }],
      { verdict: "allow", preEnterReason: undefined },
    ],
    [
      "confirm all: listed first",
      [request, { ...empty, listed: [{ denyIn: false }], fixedCar: { ...monthly, pass: "temporary" } }, { ...policy, confirmWithPlatform: "all" }],
      { verdict: "confirm", preEnterReason: "blacklist" },
    ],
    [
      "confirm all: lapsed pass",
      [request, { ...empty, fixedCar: { ...monthly, pass: "temporary" } }, { ...policy, confirmWithPlatform: "all" }],
      { verdict: "confirm", preEnterReason: "monthly-expired" },
    ],
    [
      "confirm all: monthly, lot full",
      [request, { ...empty, freeSpaces: 0, fixedCar: monthly }, { ...policy, confirmWithPlatform: "all" }],
      { verdict: "confirm", preEnterReason: "lot-full" },
    ],
  ];
  for (const [name, args, want] of rows) {
    const got = decideEntry(...args) as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(want)) assert.deepEqual(got[key], value, `${name}: ${key}`);
  }
});

test("a registered car's standing: validity, group spaces, types", () => {
  const vehicle = { carTypeCode: 81, carGroupID: 3, carGroupUuid: "", timeStartMs: null, timeEndMs: T0 + 5 * 86_400_000 + 1000, state: 1, frozen: false };
  assert.equal(groupKeyOf(vehicle), "#3");
  assert.equal(
    activeVehicle([
      { ...vehicle, frozen: true },
      { ...vehicle, state: 0 },
    ]),
    undefined,
  );
  const free = fixedCarStanding(vehicle, { spaces: 2, inside: 1 }, T0, { timeZone: "Asia/Shanghai", graceDays: 0 });
  assert.deepEqual(free, { pass: "free", carType: 8, carSubType: 81, daysLeft: 5, groupKey: "#3", groupFull: false });
  assert.equal(fixedCarStanding(vehicle, { spaces: 2, inside: 2 }, T0, { timeZone: "Asia/Shanghai", graceDays: 0 }).groupFull, true);
  assert.equal(fixedCarStanding(vehicle, { spaces: null, inside: 99 }, T0, { timeZone: "Asia/Shanghai", graceDays: 0 }).groupFull, false);
  const expired = fixedCarStanding({ ...vehicle, timeEndMs: T0 - 1 }, undefined, T0, { timeZone: "Asia/Shanghai", graceDays: 0 });
  assert.equal(expired.pass, "temporary");
  assert.equal(fixedCarStanding({ ...vehicle, timeEndMs: T0 - 1 }, undefined, T0, { timeZone: "Asia/Shanghai", graceDays: 1 }).pass, "free");
});

test("property: every verdict carries a reason; a refused car gets no types, an allowed one gets a class", () => {
  const standing = fc.option(
    fc.record({
      pass: fc.constantFrom("free" as const, "temporary" as const),
      carType: fc.nat(9),
      carSubType: fc.nat(99),
      daysLeft: fc.nat(400),
      groupKey: fc.option(fc.constantFrom("g1", "#2"), { nil: undefined }),
      groupFull: fc.boolean(),
    }),
    { nil: undefined },
  );
  fc.assert(
    fc.property(
      fc.record({ plate: fc.constantFrom("", "粤B12345", "无AB12C3D"), source: fc.constantFrom("camera", "unlicensed"), laneId: fc.constant("in1"), atMs: fc.constant(T0) }),
      fc.record({
        listed: fc.array(fc.record({ denyIn: fc.boolean() }), { maxLength: 2 }),
        inPark: fc.array(fc.constantFrom("r1", "r2"), { maxLength: 2 }),
        fixedCar: standing,
        freeSpaces: fc.integer({ min: -1, max: 3 }),
      }),
      fc.record({
        duplicateEntry: fc.constantFrom("replace" as const, "deny" as const),
        confirmWithPlatform: fc.constantFrom("never" as const, "temporary" as const, "all" as const),
        temporaryTypes: fc.constant({ carType: 1, carSubType: 11 }),
      }),
      (req, lot, pol) => {
        const d = decideEntry(req, lot, pol);
        assert.ok(d.reason.length > 0);
        if (d.verdict === "deny") {
          assert.ok(!req.plate || lot.listed.some((l) => l.denyIn) || lot.inPark.length > 0 || lot.freeSpaces <= 0);
          return;
        }
        assert.ok(req.plate.length > 0 && !lot.listed.some((l) => l.denyIn));
        // A temporary car is never let into a full lot; a fixed one only with a free pass and a group space.
        if (d.carClass === "temporary") assert.ok(lot.freeSpaces > 0);
        else assert.ok(req.source !== "unlicensed" && lot.fixedCar?.pass === "free" && !lot.fixedCar.groupFull);
        assert.equal(d.verdict === "confirm", d.preEnterReason !== undefined);
        assert.deepEqual(d.replaces, lot.inPark);
      },
    ),
    { numRuns, seed: 20_260_310 },
  );
});
