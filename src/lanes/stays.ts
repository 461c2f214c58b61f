/**
 * What the exit flows read of the lot for the core's stay and bill rules: the stays a plate
 * read can belong to (core/exit/stay-match.ts), the stay's bill with its registered car and the
 * plate's recent stays (core/exit/bill-inputs.ts), a registered car's standing
 * (core/stays/fixed-car-standing.ts); and the re-entry memory those bills count.
 */
import type { InParkRecord } from "../store/records.js";
import { normalisePlate } from "../core/plates/index.js";
import type { Bill } from "../core/fees/index.js";
import { exitBill, previousStaysFor, type BillPolicy } from "../core/exit/bill-inputs.js";
import { findStay as matchStay, type StayMatch } from "../core/exit/stay-match.js";
import { activeVehicle, fixedCarOf, fixedCarStanding, groupKeyOf, type FixedCarStanding } from "../core/stays/fixed-car-standing.js";
import type { RecentExit } from "../core/stays/stay-views.js";
import { emit } from "./effects.js";
import type { LanesState } from "./lane-state.js";

/** The stay of an exit read: the store's stays of the plate, then (lazily) every stay for the fuzzy rule. */
export function findStay(lanes: LanesState, plate: string, laneId: string): StayMatch<InParkRecord> {
  const { store, config } = lanes.deps;
  const found = matchStay(
    plate,
    { exact: plate ? store.findInParkByPlate(plate).concat(store.findInParkByPlate(`无${plate}`)) : [], all: () => store.listInPark().items },
    config.policy.exit.fuzzy,
  );
  if (found.by === "none" && found.ambiguous) lanes.log.warn({ laneId, plate, candidates: found.ambiguous }, "ambiguous fuzzy plate match; treated as no record");
  return found;
}

function billPolicy(lanes: LanesState): BillPolicy {
  const { config } = lanes.deps;
  return { timeZone: config.lot.timeZone, maxStayDays: config.policy.exit.maxStayDays, defaultVehicleType: config.policy.defaultVehicleType };
}

/** The bill of a stay read at an exit at `atMs`: the tariff's, with what the stay carries. */
export async function billFor(lanes: LanesState, record: InParkRecord, atMs: number, laneId: string): Promise<Bill> {
  const vehicle = activeVehicle(lanes.deps.store.vehiclesByPlate(record.plate));
  const { bill, clamped } = exitBill(
    lanes.tariff,
    record,
    atMs,
    {
      fixedCar: vehicle ? fixedCarOf(vehicle, lanes.deps.config.policy.fixedCarGraceDays) : undefined,
      previous: previousStaysFor(recentExitsOf(lanes, record.plate, atMs), record, atMs, lanes.reentryWindowMs),
    },
    billPolicy(lanes),
  );
  if (clamped) emit(lanes, { type: "stay-clamped", laneId, plate: record.plate, recordNo: record.recordNo, reason: clamped });
  return bill;
}

/** A registered car's standing now: free or temporary, with its types and group. */
export function fixedCarFor(lanes: LanesState, plate: string, atMs: number): FixedCarStanding | undefined {
  const { store, config } = lanes.deps;
  const vehicle = activeVehicle(store.vehiclesByPlate(plate));
  if (!vehicle) return undefined;
  const groupKey = groupKeyOf(vehicle);
  const spaces = groupKey ? store.getCarGroup(vehicle.carGroupUuid ? { carGroupUuid: vehicle.carGroupUuid } : { carGroupID: vehicle.carGroupID })?.spaces : undefined;
  // Counted only for a group with a space limit: the listing is not free.
  const group =
    spaces === null || spaces === undefined ? undefined : { spaces, inside: store.listInPark((r) => r.extra?.groupKey === groupKey && r.vehicleType === "monthly").items.length };
  return fixedCarStanding(vehicle, group, atMs, { timeZone: config.lot.timeZone, graceDays: config.policy.fixedCarGraceDays });
}

/** Stays of this plate that left within the re-entry cap's window (older ones are forgotten here). */
function recentExitsOf(lanes: LanesState, plate: string, atMs: number): RecentExit[] {
  const key = normalisePlate(plate);
  const kept = (lanes.recentExits.get(key) ?? []).filter((stay) => stay.leaveAtMs > atMs - lanes.reentryWindowMs);
  if (kept.length > 0) lanes.recentExits.set(key, kept);
  else lanes.recentExits.delete(key);
  return kept;
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
