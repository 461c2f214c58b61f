/**
 * From a stored stay to the fee engine's inputs: the stay's billed length (clamped against a
 * wrong clock), its vehicle type, the registered car's validity, its coupons and prepayments,
 * and the plate's stays that left within the re-entry cap's window. Pure: the caller reads the
 * stay, the registered vehicle and the recent exits; `exitBill` bills them.
 */
import { bill as computeBill, type Bill, type BillExtras, type FixedCar, type Stay, type Tariff, type VehicleType } from "../fees/index.js";
import { clampStay, type StayClampReason } from "../time/stay-clamp.js";
import { DAY_MS } from "../time/zone.js";
import type { CarTypes, CouponView, RecentExit, StayView } from "../stays/stay-views.js";

export interface BillPolicy {
  timeZone: string;
  /** A stay longer than this is flagged and billed to this length. */
  maxStayDays: number;
  /** Billed when nothing says otherwise (or the tariff does not price the stay's own type). */
  defaultVehicleType: VehicleType;
}

export interface BillInputs {
  stay: Stay;
  extras: BillExtras;
  /** Why the billed length is not leave − enter (the lane flags the stay); undefined when it is. */
  clamped: StayClampReason | undefined;
}

const billedVehicleTypes: readonly string[] = ["small", "large", "nev"];
/** Platform plate colour 4: a new-energy (green) plate. */
const NEV_PLATE_COLOR = 4;

/** The longest re-entry window of the tariff and its vehicle overrides; a day at least. */
export function reentryWindowMs(tariff: Tariff): number {
  const overrides = Object.values((tariff as { vehicles?: Record<string, { reentryCap?: { windowHours: number } } | undefined> }).vehicles ?? {});
  const hours = [tariff.reentryCap?.windowHours, ...overrides.map((pricing) => pricing?.reentryCap?.windowHours)].filter((h): h is number => typeof h === "number");
  return Math.max(DAY_MS, ...hours.map((h) => h * 3_600_000));
}

/**
 * The plate's earlier stays that count for this bill: left within `windowMs` of `atMs`, not this
 * stay, and not the stay it resumes (that one's time is this bill's time too).
 */
export function previousStaysFor(
  recent: readonly RecentExit[],
  record: Pick<StayView, "recordNo" | "extra">,
  atMs: number,
  windowMs: number,
): Array<{ enterAtMs: number; leaveAtMs: number; payableFee: number }> {
  return (
    recent
      .filter((stay) => stay.leaveAtMs > atMs - windowMs)
      .filter((stay) => stay.recordNo !== record.recordNo && stay.recordNo !== record.extra?.resumes)
      // The fee core takes only what prices a stay (its schema is strict); an entry after its
      // exit (a clock step) counts from its exit.
      .map((stay) => ({ enterAtMs: Math.min(stay.enterAtMs, stay.leaveAtMs), leaveAtMs: stay.leaveAtMs, payableFee: stay.payableFee }))
  );
}

/** The vehicle type the stay is billed as: its own class, a green plate's nev, else the default. */
export function billedVehicleType(record: Pick<StayView, "plateColor" | "extra">, tariff: Tariff, defaultVehicleType: VehicleType): VehicleType {
  const own = record.extra?.vehicleClass;
  const type: VehicleType = typeof own === "string" && billedVehicleTypes.includes(own) ? (own as VehicleType) : record.plateColor === NEV_PLATE_COLOR ? "nev" : defaultVehicleType;
  const pricing = (tariff as { vehicles?: Record<string, unknown> }).vehicles;
  return !pricing || type in pricing || type === defaultVehicleType ? type : defaultVehicleType;
}

function couponOf(c: CouponView): NonNullable<BillExtras["coupons"]>[number] {
  if (c.kind === "amount") return { kind: "amount", fen: Math.round(c.value) };
  if (c.kind === "minutes") return { kind: "minutes", minutes: Math.round(c.value), from: c.extra?.from === "end" ? "end" : "start" };
  if (c.kind === "percent") return { kind: "percent", percent: Math.min(100, Math.round(c.value)) };
  return { kind: "free" };
}

/**
 * The fee engine's inputs for `record` leaving at `atMs`. `fixedCar`: the plate's registered
 * car (fixed-car-standing.ts `fixedCarOf`); ignored for a stay that entered beyond its group's
 * spaces, whose card must not make it free at the exit. `previous`: previousStaysFor.
 */
export function billInputs(
  tariff: Tariff,
  record: StayView,
  atMs: number,
  lot: { fixedCar: FixedCar | undefined; previous: ReadonlyArray<{ enterAtMs: number; leaveAtMs: number; payableFee: number }> },
  policy: BillPolicy,
): BillInputs {
  const clamped = clampStay(record.enterAtMs, atMs, { maxStayMs: policy.maxStayDays * DAY_MS });
  const fixed = record.extra?.groupOverflow === true ? undefined : lot.fixedCar;
  return {
    stay: {
      enterAtMs: record.enterAtMs,
      leaveAtMs: record.enterAtMs + clamped.durationMs,
      vehicleType: billedVehicleType(record, tariff, policy.defaultVehicleType),
      timeZone: policy.timeZone,
      plate: record.plate,
      ...(fixed ? { fixedCar: fixed } : {}),
    },
    extras: {
      prepayments: record.prepayments.map((p) => ({ feeFen: p.amountFen, atMs: p.payAtMs })),
      coupons: record.coupons.map(couponOf),
      previousStays: [...lot.previous],
    },
    clamped: clamped.flagged,
  };
}

/** The bill of `record` leaving at `atMs` (billInputs, then the fee engine). Throws BillError. */
export function exitBill(
  tariff: Tariff,
  record: StayView,
  atMs: number,
  lot: Parameters<typeof billInputs>[3],
  policy: BillPolicy,
): { bill: Bill; clamped: StayClampReason | undefined } {
  const inputs = billInputs(tariff, record, atMs, lot, policy);
  return { bill: computeBill(tariff, inputs.stay, inputs.extras), clamped: inputs.clamped };
}

/** A flat bill (the "no entry record" charge, a settlement kept on the stay): no breakdown. */
export function flatBill(amounts: { payableFen: number; discountFen: number; paidFen: number; prepaidFen: number }): Bill {
  return { payableFee: amounts.payableFen, discountFee: amounts.discountFen, paidFee: amounts.paidFen, prepaidFee: amounts.prepaidFen, breakdown: [], discounts: [] };
}

/** A fee query's answer (section 4 feeQuery): the stay, its bill, and what is due now. */
export interface Quote {
  recordNo: string;
  plateNum: string;
  enterTimeMs: number;
  leaveTimeMs: number;
  payableFee: number;
  discountFee: number;
  /** Amount still due now (the document's name for it). */
  paidFee: number;
  carType: number;
  carSubType: number;
  channelId?: string;
}

/** `dueFen`: what the exit waiting for this stay asks (its bill may predate a payment); else the bill's. */
export function quote(
  record: Pick<StayView, "recordNo" | "plate" | "enterAtMs" | "carType" | "carSubType">,
  bill: Bill,
  atMs: number,
  dueFen: number | undefined,
  channelId: string | undefined,
  temporary: CarTypes,
): Quote {
  return {
    recordNo: record.recordNo,
    plateNum: record.plate,
    enterTimeMs: record.enterAtMs,
    leaveTimeMs: atMs,
    payableFee: bill.payableFee,
    discountFee: bill.discountFee,
    paidFee: dueFen ?? bill.paidFee,
    carType: record.carType ?? temporary.carType,
    carSubType: record.carSubType ?? temporary.carSubType,
    ...(channelId ? { channelId } : {}),
  };
}
