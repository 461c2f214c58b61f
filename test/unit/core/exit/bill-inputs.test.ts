/**
 * From a stored stay to the fee engine's inputs: the clamp, the vehicle type, the registered
 * car (not for a group overflow), coupons and prepayments, and the re-entry cap's earlier stays.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { billInputs, billedVehicleType, exitBill, previousStaysFor, quote, reentryWindowMs } from "../../../../src/core/exit/bill-inputs.js";
import { exitBillOutcome, exitCarTypes, routeExit } from "../../../../src/core/exit/exit-decision.js";
import type { StayView } from "../../../../src/core/stays/stay-views.js";
import { fixture, at } from "../fees/fee-helpers.js";

const tariff = fixture("new-energy.json");
const policy = { timeZone: "Asia/Shanghai", maxStayDays: 90, defaultVehicleType: "small" as const };
const record: StayView = { recordNo: "in1_1", plate: "粤B12345", laneId: "in1", enterAtMs: at("2026-03-10 08:00"), prepayments: [], coupons: [] };
const fixedCar = { validUntilMs: at("2026-12-31 00:00"), graceDays: 0 };

test("the stay, its vehicle type and the registered car", () => {
  const leave = at("2026-03-10 10:30");
  const inputs = billInputs(tariff, record, leave, { fixedCar: undefined, previous: [] }, policy);
  assert.deepEqual(inputs.stay, { enterAtMs: record.enterAtMs, leaveAtMs: leave, vehicleType: "small", timeZone: "Asia/Shanghai", plate: "粤B12345" });
  assert.equal(inputs.clamped, undefined);
  assert.equal(billedVehicleType({ plateColor: 4 }, tariff, "small"), "nev");
  assert.equal(billedVehicleType({ extra: { vehicleClass: "nev" } }, tariff, "small"), "nev");
  // A type the tariff does not price is billed as the default.
  assert.equal(billedVehicleType({ extra: { vehicleClass: "large" } }, tariff, "small"), "small");
  assert.equal(billedVehicleType({ extra: { vehicleClass: "bus" } }, tariff, "small"), "small");
  assert.deepEqual(billInputs(tariff, record, leave, { fixedCar, previous: [] }, policy).stay.fixedCar, fixedCar);
  // Entered beyond its group's spaces: its card does not make the stay free.
  const overflow = { ...record, extra: { groupOverflow: true } };
  assert.equal(billInputs(tariff, overflow, leave, { fixedCar, previous: [] }, policy).stay.fixedCar, undefined);
  assert.equal(exitBill(tariff, record, leave, { fixedCar, previous: [] }, policy).bill.paidFee, 0);
  assert.ok(exitBill(tariff, overflow, leave, { fixedCar, previous: [] }, policy).bill.paidFee > 0);
});

test("a stay longer than the maximum is billed to it and flagged; a clock step backwards bills nothing", () => {
  const long = billInputs(tariff, record, record.enterAtMs + 100 * 86_400_000, { fixedCar: undefined, previous: [] }, policy);
  assert.equal(long.stay.leaveAtMs - long.stay.enterAtMs, 90 * 86_400_000);
  assert.equal(long.clamped, "exceeds-max");
  const back = billInputs(tariff, record, record.enterAtMs - 60_000, { fixedCar: undefined, previous: [] }, policy);
  assert.equal(back.stay.leaveAtMs, record.enterAtMs);
  assert.equal(back.clamped, "negative");
});

test("coupons and prepayments in the fee engine's terms", () => {
  const withExtras: StayView = {
    ...record,
    prepayments: [{ orderNo: "o1", amountFen: 500, payAtMs: at("2026-03-10 09:00") }],
    coupons: [
      { kind: "amount", value: 99.6 },
      { kind: "minutes", value: 30, extra: { from: "end" } },
      { kind: "minutes", value: 15 },
      { kind: "percent", value: 130 },
      { kind: "free", value: 0 },
    ],
  };
  const { extras } = billInputs(tariff, withExtras, at("2026-03-10 11:00"), { fixedCar: undefined, previous: [] }, policy);
  assert.deepEqual(extras.prepayments, [{ feeFen: 500, atMs: at("2026-03-10 09:00") }]);
  assert.deepEqual(extras.coupons, [
    { kind: "amount", fen: 100 },
    { kind: "minutes", minutes: 30, from: "end" },
    { kind: "minutes", minutes: 15, from: "start" },
    { kind: "percent", percent: 100 },
    { kind: "free" },
  ]);
});

test("the re-entry cap's earlier stays: within the window, not this stay nor the one it resumes", () => {
  const atMs = at("2026-03-10 12:00");
  const windowMs = reentryWindowMs(tariff);
  assert.ok(windowMs >= 86_400_000);
  const recent = [
    { recordNo: "old", enterAtMs: atMs - 3 * 86_400_000, leaveAtMs: atMs - 2 * 86_400_000, payableFee: 100 },
    { recordNo: "in1_1", enterAtMs: atMs - 7200_000, leaveAtMs: atMs - 3600_000, payableFee: 200 },
    { recordNo: "resumed", enterAtMs: atMs - 7200_000, leaveAtMs: atMs - 3600_000, payableFee: 300 },
    // Entered after it left (a clock step): counts from its exit.
    { recordNo: "stepped", enterAtMs: atMs - 1000, leaveAtMs: atMs - 5000, payableFee: 400 },
  ];
  assert.deepEqual(previousStaysFor(recent, { recordNo: "in1_1", extra: { resumes: "resumed" } }, atMs, windowMs), [
    { enterAtMs: atMs - 5000, leaveAtMs: atMs - 5000, payableFee: 400 },
  ]);
});

test("the exit's route, what its bill means, its types, and a quote", () => {
  const charge = { mode: "charge" as const, amountFen: 1000 };
  assert.deepEqual(routeExit("粤B12345", { hasStay: true, deniedOut: true }, charge), { kind: "held", verdict: "deny", reason: "blacklisted" });
  assert.deepEqual(routeExit("粤B12345", { hasStay: true, deniedOut: false }, charge), { kind: "bill" });
  assert.deepEqual(routeExit("粤B12345", { hasStay: false, deniedOut: false }, charge), { kind: "charge", amountFen: 1000 });
  assert.equal(routeExit("", { hasStay: false, deniedOut: true }, charge).kind, "attendant");
  assert.equal(routeExit("粤B12345", { hasStay: false, deniedOut: false }, { ...charge, mode: "attendant" }).kind, "attendant");

  const due = { paidFee: 700, prepaidFee: 0 };
  assert.deepEqual(exitBillOutcome(due, { prepayments: [] }, undefined, { pushZeroBill: false }), { kind: "fee-due", dueFen: 700 });
  assert.deepEqual(exitBillOutcome(due, { prepayments: [] }, { orderNo: "p1" }, { pushZeroBill: false }), { kind: "early-payment" });
  assert.deepEqual(exitBillOutcome({ paidFee: 0, prepaidFee: 0 }, { prepayments: [{ orderNo: "p1" }] }, { orderNo: "p1" }, { pushZeroBill: true }), {
    kind: "nothing-due",
    path: "free",
    pushZeroBill: true,
  });
  assert.deepEqual(exitBillOutcome({ paidFee: 0, prepaidFee: 500 }, { prepayments: [] }, undefined, { pushZeroBill: false }), {
    kind: "nothing-due",
    path: "prepaid",
    pushZeroBill: false,
  });

  const temporary = { carType: 1, carSubType: 11 };
  const monthly = { pass: "free" as const, carType: 8, carSubType: 81 };
  assert.deepEqual(exitCarTypes({}, monthly, 0, temporary), { carType: 8, carSubType: 81 });
  assert.deepEqual(exitCarTypes({ carType: 2, carSubType: 21 }, monthly, 300, temporary), { carType: 2, carSubType: 21 });
  assert.deepEqual(exitCarTypes({ extra: { groupOverflow: true } }, monthly, 0, temporary), temporary);

  const billed = exitBill(tariff, record, at("2026-03-10 10:30"), { fixedCar: undefined, previous: [] }, policy).bill;
  const q = quote(record, billed, at("2026-03-10 10:30"), undefined, "ch-out", temporary);
  assert.deepEqual(q, {
    recordNo: "in1_1",
    plateNum: "粤B12345",
    enterTimeMs: record.enterAtMs,
    leaveTimeMs: at("2026-03-10 10:30"),
    payableFee: billed.payableFee,
    discountFee: billed.discountFee,
    paidFee: billed.paidFee,
    carType: 1,
    carSubType: 11,
    channelId: "ch-out",
  });
  assert.equal(quote(record, billed, 0, 123, undefined, temporary).paidFee, 123);
});
