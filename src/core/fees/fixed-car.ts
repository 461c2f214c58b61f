import { z } from "zod";
import { addLocalDays, firstInstantAtLocal, instantsAtLocalMinute, isoWeekdayOfDay, localDateTime, localDayNumber } from "../time/zone.js";
import { minuteOfDay } from "./tariff-schema.js";

/**
 * Monthly/fixed cars (docs/tariffs.md "`fixedCars` and the fixed-car record"): free within their validity, optionally only inside weekly
 * time windows; once expired they are temporary cars, after N grace days. Pure: the lane's
 * decision code asks `classifyFixedCar` at the lane, and `bill()` asks `fixedCarFreeIntervals`
 * which parts of a stay were free.
 */

const timeOfDayStart = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day "HH:mm" from 00:00 to 23:59');
const timeOfDayEnd = z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'must be a time of day "HH:mm" from 00:00 to 24:00');

export const fixedCarWindowSchema = z.strictObject({
  /** ISO weekdays on which the window starts: 1 = Monday … 7 = Sunday. */
  days: z.array(z.int().min(1, "weekdays are 1 (Monday) to 7 (Sunday)").max(7, "weekdays are 1 (Monday) to 7 (Sunday)")).min(1, "at least one weekday"),
  /** Local start, inclusive. */
  from: timeOfDayStart,
  /** Local end, exclusive; earlier than `from` = the window runs past midnight; equal = 24 h. */
  to: timeOfDayEnd,
});

export const fixedCarSchema = z.strictObject({
  /** Start of validity (inclusive); absent = valid since always. */
  validFromMs: z.int().optional(),
  /** End of validity (exclusive). */
  validUntilMs: z.int(),
  /** When given, the car is free only inside these weekly windows (e.g. office hours). */
  windows: z.array(fixedCarWindowSchema).optional(),
  /** Grace days after expiry for this car; absent = the tariff's `fixedCars.graceDays`. */
  graceDays: z.int().min(0, "must not be negative").max(366, "must be at most 366").optional(),
});
export type FixedCar = z.infer<typeof fixedCarSchema>;
export type FixedCarWindow = z.infer<typeof fixedCarWindowSchema>;

export type FixedCarReason =
  | "valid"
  /** Past `validUntilMs` but within the grace days. */
  | "grace"
  | "outside-window"
  | "expired"
  | "not-yet-valid";

export interface FixedCarStatus {
  /** free: let it pass without a fee; temporary: bill it like any other car. */
  pass: "free" | "temporary";
  reason: FixedCarReason;
  /** End of the grace period: validUntilMs plus the grace days on the lot's calendar. */
  graceUntilMs: number;
}

/**
 * How a fixed car passes at instant `atMs`. Grace days are calendar days on the lot's clock
 * (the same wall time N days later), so they stay right across a DST change.
 */
export function classifyFixedCar(vehicle: FixedCar, atMs: number, timeZone: string, options: { graceDays?: number } = {}): FixedCarStatus {
  const graceUntilMs = graceEnd(vehicle, timeZone, options.graceDays);
  const status = (pass: FixedCarStatus["pass"], reason: FixedCarReason): FixedCarStatus => ({ pass, reason, graceUntilMs });
  if (vehicle.validFromMs !== undefined && atMs < vehicle.validFromMs) return status("temporary", "not-yet-valid");
  if (atMs >= graceUntilMs) return status("temporary", "expired");
  if (vehicle.windows && !inAnyWindow(vehicle.windows, atMs, timeZone)) return status("temporary", "outside-window");
  return status("free", atMs >= vehicle.validUntilMs ? "grace" : "valid");
}

/**
 * The parts of [fromMs, toMs) during which the car is free, sorted and merged. `bill()` charges
 * the rest as temporary parking.
 */
export function fixedCarFreeIntervals(vehicle: FixedCar, fromMs: number, toMs: number, timeZone: string, options: { graceDays?: number } = {}): Array<[number, number]> {
  const validFrom = Math.max(fromMs, vehicle.validFromMs ?? Number.NEGATIVE_INFINITY);
  const validTo = Math.min(toMs, graceEnd(vehicle, timeZone, options.graceDays));
  if (validTo <= validFrom) return [];
  if (!vehicle.windows) return [[validFrom, validTo]];
  const spans: Array<[number, number]> = [];
  const last = localDayNumber(validTo, timeZone);
  // A window that started the day before may still be open at validFrom.
  for (let day = localDayNumber(validFrom, timeZone) - 1; day <= last; day++) {
    const weekday = isoWeekdayOfDay(day);
    for (const window of vehicle.windows) {
      if (!window.days.includes(weekday)) continue;
      const [start, end] = windowInstants(window, day, timeZone);
      const a = Math.max(start, validFrom);
      const b = Math.min(end, validTo);
      if (b > a) spans.push([a, b]);
    }
  }
  spans.sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const span of spans) {
    const top = merged[merged.length - 1];
    if (top && span[0] <= top[1]) top[1] = Math.max(top[1], span[1]);
    else merged.push([span[0], span[1]]);
  }
  return merged;
}

function graceEnd(vehicle: FixedCar, timeZone: string, defaultGraceDays = 0): number {
  const days = vehicle.graceDays ?? defaultGraceDays;
  if (days <= 0) return vehicle.validUntilMs;
  const l = localDateTime(vehicle.validUntilMs, timeZone);
  const date = addLocalDays(l, days);
  return firstInstantAtLocal({ ...date, hour: l.hour, minute: l.minute, second: l.second }, timeZone) + (((vehicle.validUntilMs % 1000) + 1000) % 1000);
}

function inAnyWindow(windows: readonly FixedCarWindow[], atMs: number, timeZone: string): boolean {
  const today = localDayNumber(atMs, timeZone);
  for (const day of [today - 1, today]) {
    const weekday = isoWeekdayOfDay(day);
    for (const window of windows) {
      if (!window.days.includes(weekday)) continue;
      const [start, end] = windowInstants(window, day, timeZone);
      if (atMs >= start && atMs < end) return true;
    }
  }
  return false;
}

/** A window opening on local day `day`: from its first instant to the first instant of its end. */
function windowInstants(window: FixedCarWindow, day: number, timeZone: string): [number, number] {
  const fromMinute = minuteOfDay(window.from, false) ?? 0;
  const toMinute = minuteOfDay(window.to, true) ?? 1440;
  const length = (((toMinute - fromMinute) % 1440) + 1440) % 1440 || 1440;
  return [instantsAtLocalMinute(day, fromMinute, timeZone)[0]!, instantsAtLocalMinute(day, fromMinute + length, timeZone)[0]!];
}
