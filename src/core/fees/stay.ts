import { z } from "zod";
import { vehicleTypes, type VehicleType } from "./tariff-schema.js";
import { fixedCarSchema, type FixedCar } from "./fixed-car.js";

/** One stay to bill: instants are epoch ms, `timeZone` is the lot's (natural days, day/night). */
export interface Stay {
  enterAtMs: number;
  leaveAtMs: number;
  vehicleType: VehicleType;
  timeZone: string;
  plate?: string;
  /** The monthly/fixed-car record when the plate has one (free within validity and windows). */
  fixedCar?: FixedCar;
}

export const couponSchema = z.discriminatedUnion("kind", [
  /** Takes `fen` off what is due. */
  z.strictObject({ kind: z.literal("amount"), fen: z.int().min(0, "must not be negative") }),
  /** Takes minutes off the stay, from its start or its end, before it is priced. */
  z.strictObject({
    kind: z.literal("minutes"),
    minutes: z.int().min(0, "must not be negative").max(527_040, "must be at most a year"),
    from: z.enum(["start", "end"]),
  }),
  /** The whole stay is free. */
  z.strictObject({ kind: z.literal("free") }),
  /** Takes `percent` % off (20 → pay 80 %); the discount is rounded down to whole fen. */
  z.strictObject({ kind: z.literal("percent"), percent: z.int().min(0, "must not be negative").max(100, "must be at most 100") }),
]);
export type Coupon = z.infer<typeof couponSchema>;

export const prepaymentSchema = z.strictObject({
  /** Amount paid inside the lot (pay station, QR code) before driving to the exit. */
  feeFen: z.int().min(0, "must not be negative"),
  atMs: z.int(),
});
export type Prepayment = z.infer<typeof prepaymentSchema>;

export const previousStaySchema = z.strictObject({
  enterAtMs: z.int(),
  leaveAtMs: z.int(),
  /** What that stay was charged (its payableFee), for the re-entry cap. */
  payableFee: z.int().min(0, "must not be negative"),
});
export type PreviousStay = z.infer<typeof previousStaySchema>;

export const billExtrasSchema = z.strictObject({
  prepayments: z.array(prepaymentSchema).default([]),
  coupons: z.array(couponSchema).default([]),
  /** Earlier stays of the same plate (the re-entry cap counts those within its window). */
  previousStays: z.array(previousStaySchema).default([]),
});
export type BillExtras = z.input<typeof billExtrasSchema>;

export const staySchema = z.strictObject({
  enterAtMs: z.int(),
  leaveAtMs: z.int(),
  vehicleType: z.enum(vehicleTypes),
  timeZone: z.string().min(1),
  plate: z.string().optional(),
  fixedCar: fixedCarSchema.optional(),
});

/** Parsed extras, every list present (what billExtrasSchema gives). */
export interface ParsedBillExtras {
  prepayments: Prepayment[];
  coupons: Coupon[];
  previousStays: PreviousStay[];
}

// ---- A plain reader for well-formed extras (the fee engine's hot path) ----------------------
// billExtrasSchema stays the definition and the source of every error message: this reader
// accepts only input the schema accepts and returns the same data (fresh objects, keys in the
// schema's order), and answers undefined for anything else, which then goes through the schema.
// A property test holds the two to the same result.

const extrasKeys = new Set(["prepayments", "coupons", "previousStays"]);
const isRecord = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};
const isInt = (value: unknown): value is number => Number.isSafeInteger(value);
const isFen = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** Own enumerable key count, or -1 when a key outside `allowed` is present. */
function keyCount(value: Record<string, unknown>, allowed: ReadonlySet<string>): number {
  let count = 0;
  for (const key in value) {
    if (!allowed.has(key)) return -1;
    count++;
  }
  return count;
}

const prepaymentKeys = new Set(["feeFen", "atMs"]);
const previousStayKeys = new Set(["enterAtMs", "leaveAtMs", "payableFee"]);
const amountKeys = new Set(["kind", "fen"]);
const minutesKeys = new Set(["kind", "minutes", "from"]);
const freeKeys = new Set(["kind"]);
const percentKeys = new Set(["kind", "percent"]);

function readPrepayment(value: unknown): Prepayment | undefined {
  if (!isRecord(value) || keyCount(value, prepaymentKeys) !== 2) return undefined;
  const { feeFen, atMs } = value;
  return isFen(feeFen) && isInt(atMs) ? { feeFen, atMs } : undefined;
}

function readPreviousStay(value: unknown): PreviousStay | undefined {
  if (!isRecord(value) || keyCount(value, previousStayKeys) !== 3) return undefined;
  const { enterAtMs, leaveAtMs, payableFee } = value;
  return isInt(enterAtMs) && isInt(leaveAtMs) && isFen(payableFee) ? { enterAtMs, leaveAtMs, payableFee } : undefined;
}

function readCoupon(value: unknown): Coupon | undefined {
  if (!isRecord(value)) return undefined;
  switch (value.kind) {
    case "amount":
      return keyCount(value, amountKeys) === 2 && isFen(value.fen) ? { kind: "amount", fen: value.fen } : undefined;
    case "minutes": {
      const { minutes, from } = value;
      if (keyCount(value, minutesKeys) !== 3 || !isFen(minutes) || minutes > 527_040 || (from !== "start" && from !== "end")) return undefined;
      return { kind: "minutes", minutes, from };
    }
    case "free":
      return keyCount(value, freeKeys) === 1 ? { kind: "free" } : undefined;
    case "percent":
      return keyCount(value, percentKeys) === 2 && isFen(value.percent) && value.percent <= 100 ? { kind: "percent", percent: value.percent } : undefined;
    default:
      return undefined;
  }
}

function readList<T>(value: unknown, read: (item: unknown) => T | undefined): T[] | undefined {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return undefined;
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    const item = read(value[i]);
    if (item === undefined) return undefined;
    out.push(item);
  }
  return out;
}

/**
 * The extras as billExtrasSchema would parse them, without the schema's cost, or undefined
 * when they are not plainly well formed (the caller then parses with the schema for its
 * errors).
 */
export function readBillExtrasFast(extras: unknown): ParsedBillExtras | undefined {
  if (!isRecord(extras) || keyCount(extras, extrasKeys) < 0) return undefined;
  const prepayments = readList(extras.prepayments, readPrepayment);
  if (!prepayments) return undefined;
  const coupons = readList(extras.coupons, readCoupon);
  if (!coupons) return undefined;
  const previousStays = readList(extras.previousStays, readPreviousStay);
  if (!previousStays) return undefined;
  return { prepayments, coupons, previousStays };
}
