/**
 * The entry decision: what the lot knows of a plate + the request + the entry policy → allow,
 * deny or ask the platform first, with its reason. Pure: the caller reads the lot (lists, stays,
 * the registered car, free spaces), writes the record and asks the platform; this says what to
 * do, in the order today's rules are checked:
 *
 * 1. no plate                                  → deny "no-plate" (the attendant is called)
 * 2. a list entry refusing entry (denyIn)      → deny "blacklisted"
 * 3. the plate is in the lot, policy "deny"    → deny "already-in-park"
 * 4. a registered car passing free whose group has a space → class "fixed"; else "temporary"
 * 5. temporary and no free space               → deny "lot-full"
 * 6. the policy asks the platform (all cars, or temporary ones) → confirm, with the
 *    preEnterNotify reason: listed (not refused outright), a lapsed monthly pass, no space
 *    (a fixed car may still enter), or simply the policy
 * 7. else                                      → allow; stays of the plate still inside are replaced
 */
import type { CarTypes } from "../stays/stay-views.js";
import type { FixedCarStanding } from "../stays/fixed-car-standing.js";

/** preEnterNotify `reason` (docs/protocol.md 3.4). */
export type PreEnterReason = "confirm-required" | "lot-full" | "monthly-expired" | "blacklist";

export type EntryDenyReason = "no-plate" | "blacklisted" | "already-in-park" | "lot-full";

/** What the entry board shows (the lanes' display catalogue keys). */
export type EntryMessage =
  | { kind: "attendantCalled"; plate?: string }
  | { kind: "denied"; plate: string }
  | { kind: "lotFull"; plate: string }
  | { kind: "welcome"; plate: string }
  | { kind: "monthly"; plate: string; daysLeft: number };

export interface EntryRequest {
  plate: string;
  /** "unlicensed": an unlicensed car's scan (its virtual plate); anything else is a camera read. */
  source: string;
  laneId: string;
  atMs: number;
}

/** What the lot knows of this plate now. */
export interface EntrySnapshot {
  /** List entries of the plate valid now. */
  listed: ReadonlyArray<{ denyIn: boolean }>;
  /** Its stays still in the lot (recordNos). */
  inPark: readonly string[];
  /** Its registered car's standing (undefined: not registered, or not asked). */
  fixedCar: FixedCarStanding | undefined;
  freeSpaces: number;
}

export interface EntryPolicy {
  duplicateEntry: "replace" | "deny";
  confirmWithPlatform: "never" | "temporary" | "all";
  /** The platform's types for a temporary car. */
  temporaryTypes: CarTypes;
}

export type EntryDecision =
  | {
      verdict: "deny";
      reason: EntryDenyReason;
      message: EntryMessage;
      /** The answer to an unlicensed car's scan (section 4). */
      unlicensedReason: "lot-full" | "denied";
    }
  | {
      verdict: "allow" | "confirm";
      carClass: "fixed" | "temporary";
      /** The lane machine's allow reason. */
      reason: "fixed-car" | "temporary";
      carType: number;
      carSubType: number;
      /** The stay's vehicleType and source as written. */
      vehicleType: "unlicensed" | "monthly" | "temporary";
      source: "unlicensed" | "camera";
      /** Set when the verdict is "confirm": why the lot asks the platform. */
      preEnterReason: PreEnterReason | undefined;
      /** Stays of this plate inside, closed as "re-entry" once the new one is written. */
      replaces: readonly string[];
      groupKey: string | undefined;
      /** A group car beyond its group's spaces: it pays as a temporary car whatever its card says. */
      groupOverflow: boolean;
      /** What the board shows once allowed. */
      message: EntryMessage;
    };

function deny(reason: EntryDenyReason, message: EntryMessage): EntryDecision {
  return { verdict: "deny", reason, message, unlicensedReason: reason === "lot-full" ? "lot-full" : "denied" };
}

export function decideEntry(request: EntryRequest, lot: EntrySnapshot, policy: EntryPolicy): EntryDecision {
  const plate = request.plate;
  if (!plate) return deny("no-plate", { kind: "attendantCalled" });
  if (lot.listed.some((entry) => entry.denyIn)) return deny("blacklisted", { kind: "denied", plate });
  if (lot.inPark.length > 0 && policy.duplicateEntry === "deny") return deny("already-in-park", { kind: "attendantCalled", plate });

  const unlicensed = request.source === "unlicensed";
  const fixed = unlicensed ? undefined : lot.fixedCar;
  const carClass = fixed?.pass === "free" && !fixed.groupFull ? "fixed" : "temporary";
  if (carClass === "temporary" && lot.freeSpaces <= 0) return deny("lot-full", { kind: "lotFull", plate });
  const { carType, carSubType } = fixed && carClass === "fixed" ? fixed : policy.temporaryTypes;

  const confirm = policy.confirmWithPlatform === "all" || (policy.confirmWithPlatform === "temporary" && carClass === "temporary");
  const preEnterReason: PreEnterReason | undefined = !confirm
    ? undefined
    : lot.listed.length > 0
      ? "blacklist"
      : fixed?.pass === "temporary"
        ? "monthly-expired"
        : lot.freeSpaces <= 0
          ? "lot-full"
          : "confirm-required";
  return {
    verdict: confirm ? "confirm" : "allow",
    carClass,
    reason: carClass === "fixed" ? "fixed-car" : "temporary",
    carType,
    carSubType,
    vehicleType: unlicensed ? "unlicensed" : carClass === "fixed" ? "monthly" : "temporary",
    source: unlicensed ? "unlicensed" : "camera",
    preEnterReason,
    replaces: [...lot.inPark],
    groupKey: fixed?.groupKey,
    groupOverflow: fixed?.pass === "free" && fixed.groupFull,
    message: carClass === "fixed" && fixed ? { kind: "monthly", plate, daysLeft: fixed.daysLeft } : { kind: "welcome", plate },
  };
}
