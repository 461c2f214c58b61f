import { readFileSync } from "node:fs";
import { bill, type Bill } from "../../../../src/core/fees/bill.js";
import type { BillExtras, Stay } from "../../../../src/core/fees/stay.js";
import type { Tariff, TariffInput, VehicleType } from "../../../../src/core/fees/tariff-schema.js";
import { validateTariff } from "../../../../src/core/fees/validate-tariff.js";
import { parseWireTime } from "../../../../src/core/time/wire-time.js";

export const SHANGHAI = "Asia/Shanghai";
export const NEW_YORK = "America/New_York";

export const fixturesDir = new URL("../../../fixtures/tariffs/", import.meta.url);

export function fixtureRaw(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(name, fixturesDir), "utf8")) as Record<string, unknown>;
}

/** A valid tariff from raw input; throws with every problem otherwise. */
export function tariff(raw: TariffInput | Record<string, unknown>): Tariff {
  const result = validateTariff(raw);
  if (!result.ok) throw new Error(`invalid tariff: ${JSON.stringify(result.problems)}`);
  return result.tariff;
}

export function fixture(name: string, patch: Record<string, unknown> = {}): Tariff {
  return tariff({ ...fixtureRaw(name), ...patch });
}

/** `YYYY-MM-DD HH:mm[:ss]` on the wall clock of `timeZone`. */
export function at(text: string, timeZone = SHANGHAI): number {
  const full = text.length === 16 ? `${text}:00` : text;
  const ms = parseWireTime(full, timeZone);
  if (ms === undefined) throw new Error(`not a time in ${timeZone}: ${text}`);
  return ms;
}

export function stay(enter: string, leave: string, vehicleType: VehicleType = "small", timeZone = SHANGHAI): Stay {
  return { enterAtMs: at(enter, timeZone), leaveAtMs: at(leave, timeZone), vehicleType, timeZone };
}

export function billOf(t: Tariff, enter: string, leave: string, options: { vehicleType?: VehicleType; timeZone?: string; extras?: BillExtras } = {}): Bill {
  return bill(t, stay(enter, leave, options.vehicleType ?? "small", options.timeZone ?? SHANGHAI), options.extras ?? {});
}

/** A one-segment, all-day tariff with the given unit and extra fields. */
export function flatRate(unitMinutes: number, unitPriceFen: number, extra: Record<string, unknown> = {}, segmentExtra: Record<string, unknown> = {}): Tariff {
  return tariff({ segments: [{ name: "all day", from: "00:00", to: "24:00", unitMinutes, unitPriceFen, ...segmentExtra }], ...extra });
}
