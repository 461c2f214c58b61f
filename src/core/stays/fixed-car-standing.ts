/**
 * A registered car's standing at a lane: the fee engine's `FixedCar` made from the platform's
 * vehicle record, whether it passes free now, its types, and whether its group's shared spaces
 * are all taken. Pure: the caller reads the vehicles of the plate, the group's spaces and how
 * many of the group's cars are inside.
 */
import { classifyFixedCar, type FixedCar } from "../fees/fixed-car.js";
import { DAY_MS } from "../time/zone.js";
import type { VehicleView } from "./stay-views.js";

/** Open-ended validity (no timeEnd): valid until the year 9999. */
const OPEN_ENDED_MS = Date.UTC(9999, 0, 1);

export interface FixedCarStanding {
  pass: "free" | "temporary";
  carType: number;
  carSubType: number;
  /** Whole days until its validity ends (0 when past). */
  daysLeft: number;
  /** The group it shares spaces with (`carGroupUuid`, else `#<carGroupID>`). */
  groupKey: string | undefined;
  /** Its group's spaces are all taken: it enters (and pays) as a temporary car. */
  groupFull: boolean;
}

/** The vehicle that counts for a plate: the first enabled, unfrozen one. */
export function activeVehicle<V extends VehicleView>(vehicles: readonly V[]): V | undefined {
  return vehicles.find((v) => v.state === 1 && !v.frozen);
}

/** The key a group's stays carry (`extra.groupKey`). */
export function groupKeyOf(vehicle: Pick<VehicleView, "carGroupUuid" | "carGroupID">): string | undefined {
  return vehicle.carGroupUuid || (vehicle.carGroupID > 0 ? `#${vehicle.carGroupID}` : undefined);
}

/** The fee engine's view of a registered vehicle. */
export function fixedCarOf(vehicle: Pick<VehicleView, "timeStartMs" | "timeEndMs">, graceDays: number): FixedCar {
  return {
    ...(vehicle.timeStartMs === null ? {} : { validFromMs: vehicle.timeStartMs }),
    validUntilMs: vehicle.timeEndMs ?? OPEN_ENDED_MS,
    graceDays,
  };
}

/**
 * How the car stands at `atMs`. `group`: its group's spaces (null: unlimited) and how many of
 * the group's monthly stays are inside; N spaces shared by M cars, so beyond N the next pays.
 */
export function fixedCarStanding(
  vehicle: VehicleView,
  group: { spaces: number | null; inside: number } | undefined,
  atMs: number,
  options: { timeZone: string; graceDays: number },
): FixedCarStanding {
  const status = classifyFixedCar(fixedCarOf(vehicle, options.graceDays), atMs, options.timeZone, { graceDays: options.graceDays });
  const groupKey = groupKeyOf(vehicle);
  const groupFull = groupKey !== undefined && group !== undefined && group.spaces !== null && group.inside >= group.spaces;
  const daysLeft = Math.max(0, Math.floor(((vehicle.timeEndMs ?? atMs) - atMs) / DAY_MS));
  return { pass: status.pass, carType: Math.floor(vehicle.carTypeCode / 10), carSubType: vehicle.carTypeCode, daysLeft, groupKey, groupFull };
}
