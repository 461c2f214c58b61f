/**
 * The stay a plate read belongs to and its bill: the in-park record by exact plate, then by
 * the fuzzy rule; the bill from the tariff with the stay's prepayments, coupons and the
 * plate's recent stays (the re-entry cap); a registered car's standing (fixed car, group).
 */
import type { InParkRecord } from "../store/records.js";
import { matchPlate, normalisePlate } from "../core/plates/index.js";
import { bill as computeBill, classifyFixedCar, type Bill, type FixedCar, type Tariff, type VehicleType } from "../core/fees/index.js";
import { clampStay } from "../core/time/stay-clamp.js";
import { DAY_MS } from "../core/time/zone.js";
import { emit } from "./effects.js";
import type { ExitCtx, LanesState, RecentExit } from "./lane-state.js";

/** The longest re-entry window of the tariff and its vehicle overrides; a day at least. */
export function reentryWindowMs(tariff: Tariff): number {
  const overrides = Object.values((tariff as { vehicles?: Record<string, { reentryCap?: { windowHours: number } } | undefined> }).vehicles ?? {});
  const hours = [tariff.reentryCap?.windowHours, ...overrides.map((pricing) => pricing?.reentryCap?.windowHours)].filter((h): h is number => typeof h === "number");
  return Math.max(DAY_MS, ...hours.map((h) => h * 3_600_000));
}

/** Exact match first, then the fuzzy rule (misreads, one character, province). */
export function findStay(lanes: LanesState, plate: string, laneId: string): { record: InParkRecord | undefined; by: ExitCtx["matchedBy"]; ambiguous?: string[] } {
  const { store, config } = lanes.deps;
  if (!plate) return { record: undefined, by: "none" };
  const exact = store.findInParkByPlate(plate).concat(store.findInParkByPlate(`无${plate}`));
  if (exact.length > 0) return { record: exact.sort((a, b) => b.enterAtMs - a.enterAtMs)[0], by: "exact" };
  const fuzzy = config.policy.exit.fuzzy;
  if (fuzzy.maxDifferences === 0 && !fuzzy.ignoreProvince && !fuzzy.misreads) return { record: undefined, by: "none" };
  const candidates = store
    .listInPark()
    .items.map((r) => normalisePlate(r.plate))
    .filter((p) => p.length > 0);
  const match = matchPlate(plate, candidates, {
    maxDifferences: fuzzy.maxDifferences,
    ignoreProvince: fuzzy.ignoreProvince,
    ...(fuzzy.misreads ? {} : { misreadPairs: [] }),
  });
  if (match.kind === "exact" || match.kind === "fuzzy") {
    const record = store.listInPark((r) => normalisePlate(r.plate) === match.plate).items[0];
    return { record, by: "fuzzy" };
  }
  if (match.kind === "ambiguous") {
    const plates = match.candidates.map((c) => c.plate);
    lanes.log.warn({ laneId, plate, candidates: plates }, "ambiguous fuzzy plate match; treated as no record");
    return { record: undefined, by: "none", ambiguous: plates };
  }
  return { record: undefined, by: "none" };
}

/** The bill of a stay read at an exit at `atMs`: the tariff's, with what the stay carries. */
export async function billFor(lanes: LanesState, record: InParkRecord, atMs: number, laneId: string): Promise<Bill> {
  const { config } = lanes.deps;
  const clamped = clampStay(record.enterAtMs, atMs, { maxStayMs: config.policy.exit.maxStayDays * DAY_MS });
  if (clamped.flagged) emit(lanes, { type: "stay-clamped", laneId, plate: record.plate, recordNo: record.recordNo, reason: clamped.flagged });
  const leaveAtMs = record.enterAtMs + clamped.durationMs;
  // A group car that entered beyond its group's spaces pays as a temporary car: its card must
  // not make the stay free at the exit.
  const fixed = record.extra?.groupOverflow === true ? undefined : fixedCarRecord(lanes, record.plate);
  // Not the stay this one resumes (resumeSettledLeftover): its time is this bill's time too.
  const previous = recentExitsOf(lanes, record.plate, atMs)
    .filter((stay) => stay.recordNo !== record.recordNo && stay.recordNo !== record.extra?.resumes)
    // The fee core takes only what prices a stay (its schema is strict).
    .map(({ enterAtMs, leaveAtMs, payableFee }) => ({ enterAtMs, leaveAtMs, payableFee }));
  const vehicleType = (["small", "large", "nev"] as const).includes(record.extra?.vehicleClass as VehicleType)
    ? (record.extra!.vehicleClass as VehicleType)
    : record.plateColor === 4
      ? "nev"
      : config.policy.defaultVehicleType;
  return computeBill(
    lanes.tariff,
    {
      enterAtMs: record.enterAtMs,
      leaveAtMs,
      vehicleType: tariffHas(lanes, vehicleType) ? vehicleType : config.policy.defaultVehicleType,
      timeZone: config.lot.timeZone,
      plate: record.plate,
      ...(fixed ? { fixedCar: fixed } : {}),
    },
    {
      prepayments: record.prepayments.map((p) => ({ feeFen: p.amountFen, atMs: p.payAtMs })),
      coupons: record.coupons.map((c) =>
        c.kind === "amount"
          ? { kind: "amount" as const, fen: Math.round(c.value) }
          : c.kind === "minutes"
            ? { kind: "minutes" as const, minutes: Math.round(c.value), from: c.extra?.from === "end" ? "end" : "start" }
            : c.kind === "percent"
              ? { kind: "percent" as const, percent: Math.min(100, Math.round(c.value)) }
              : { kind: "free" as const },
      ),
      previousStays: previous,
    },
  );
}

function tariffHas(lanes: LanesState, vehicleType: VehicleType): boolean {
  const pricing = (lanes.tariff as { vehicles?: Record<string, unknown> }).vehicles;
  return !pricing || vehicleType in pricing || vehicleType === lanes.deps.config.policy.defaultVehicleType;
}

function fixedCarRecord(lanes: LanesState, plate: string): FixedCar | undefined {
  const vehicle = lanes.deps.store.vehiclesByPlate(plate).find((v) => v.state === 1 && !v.frozen);
  if (!vehicle) return undefined;
  return {
    ...(vehicle.timeStartMs === null ? {} : { validFromMs: vehicle.timeStartMs }),
    validUntilMs: vehicle.timeEndMs ?? Date.UTC(9999, 0, 1),
    graceDays: lanes.deps.config.policy.fixedCarGraceDays,
  };
}

/** A registered car's standing now: free or temporary, with its types and group. */
export function fixedCarFor(
  lanes: LanesState,
  plate: string,
  atMs: number,
): { pass: "free" | "temporary"; carType: number; carSubType: number; daysLeft: number; groupKey: string | undefined; groupFull: boolean } | undefined {
  const { store, config } = lanes.deps;
  const vehicle = store.vehiclesByPlate(plate).find((v) => v.state === 1 && !v.frozen);
  const fixedCar = fixedCarRecord(lanes, plate);
  if (!vehicle || !fixedCar) return undefined;
  const status = classifyFixedCar(fixedCar, atMs, config.lot.timeZone, { graceDays: config.policy.fixedCarGraceDays });
  const groupKey = vehicle.carGroupUuid || (vehicle.carGroupID > 0 ? `#${vehicle.carGroupID}` : undefined);
  let groupFull = false;
  if (groupKey) {
    const group = store.getCarGroup(vehicle.carGroupUuid ? { carGroupUuid: vehicle.carGroupUuid } : { carGroupID: vehicle.carGroupID });
    if (group?.spaces !== null && group?.spaces !== undefined) {
      // N spaces shared by M cars: beyond N of the group's cars in the lot, the next pays.
      const inside = store.listInPark((r) => r.extra?.groupKey === groupKey && r.vehicleType === "monthly").items.length;
      groupFull = inside >= group.spaces;
    }
  }
  const daysLeft = Math.max(0, Math.floor(((vehicle.timeEndMs ?? atMs) - atMs) / DAY_MS));
  return { pass: status.pass, carType: Math.floor(vehicle.carTypeCode / 10), carSubType: vehicle.carTypeCode, daysLeft, groupKey, groupFull };
}

/** Stays of this plate that left within the re-entry cap's window. */
function recentExitsOf(lanes: LanesState, plate: string, atMs: number): RecentExit[] {
  const key = normalisePlate(plate);
  const kept = (lanes.recentExits.get(key) ?? []).filter((stay) => stay.leaveAtMs > atMs - lanes.reentryWindowMs);
  if (kept.length > 0) lanes.recentExits.set(key, kept);
  else lanes.recentExits.delete(key);
  return kept.map((stay) => ({ ...stay, enterAtMs: Math.min(stay.enterAtMs, stay.leaveAtMs) }));
}

/**
 * A stay that left, kept in memory for the re-entry cap: a bill never scans history (whose
 * cost grows with it).
 */
export function rememberExit(lanes: LanesState, plate: string, recordNo: string, enterAtMs: number, leaveAtMs: number, payableFee: number): void {
  if (!plate) return;
  const key = normalisePlate(plate);
  const list = (lanes.recentExits.get(key) ?? []).filter((stay) => stay.recordNo !== recordNo && stay.leaveAtMs > leaveAtMs - lanes.reentryWindowMs);
  list.push({ recordNo, enterAtMs, leaveAtMs, payableFee });
  lanes.recentExits.set(key, list);
  // Bounded: a day of a busy lot is a few thousand plates; prune the oldest beyond that.
  if (lanes.recentExits.size > 20_000) {
    const oldest = lanes.recentExits.keys().next().value;
    if (oldest !== undefined) lanes.recentExits.delete(oldest);
  }
}
