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
