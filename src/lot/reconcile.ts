import { findStay, type FuzzyPolicy } from "../core/exit/stay-match.js";
import { plateKey } from "../core/plates/index.js";

/*
 * The rules that put the lot back together after a partition (docs/mqtt.md "Partitions and
 * reconciliation"). Pure: every box that holds the same lot computes the same answers, so no
 * box has to ask another which of them acts.
 */

/** What a reconciler needs of a stay of the lot (an in-park replica or stay payload). */
export interface LotStayRef {
  recordNo: string;
  plate: string;
  enterAtMs: number;
  /** The box that entered it: the one that ends it when it loses a duplicate. */
  enterDeviceId: string;
}

/**
 * The lot stay a provisional exit (a no-record exit taken while this box's lot view was stale)
 * belongs to: a stay of the same plate — exact, else the lanes' fuzzy rule — entered before the
 * exit. "Before" allows `skewMs`: the entering box's clock may run minutes ahead of this one.
 * Among several, the newest entry (then the greater recordNo) wins, as at a live exit.
 */
export function matchProvisionalExit<S extends LotStayRef>(exit: { plate: string; leaveAtMs: number }, stays: readonly S[], fuzzy: FuzzyPolicy, skewMs: number): S | undefined {
  const before = stays.filter((s) => s.enterAtMs <= exit.leaveAtMs + skewMs);
  const key = plateKey(exit.plate);
  if (!key) return undefined;
  const exact = before.filter((s) => plateKey(s.plate) === key);
  const ordered = (list: readonly S[]) => [...list].sort((a, b) => b.enterAtMs - a.enterAtMs || (a.recordNo < b.recordNo ? 1 : a.recordNo > b.recordNo ? -1 : 0));
  const found = findStay(exit.plate, { exact: ordered(exact), all: () => ordered(before) }, fuzzy);
  return found.record;
}

/** How the flat no-record amount taken at a provisional exit settles the stay it turned out to be. */
export interface ProvisionalMoney {
  /** Collected at the exit (the flat amount): what the reconciled leave report says was paid. */
  takenFen: number;
  /** The stay's true amount due at that exit (its bill less prepayments and discounts). */
  dueFen: number;
  /** Of the taken amount, what paid the stay. */
  appliedFen: number;
  /** Taken beyond the true fee: owed back to the driver (the refunds ledger). */
  refundOwedFen: number;
  /** Due beyond what was taken: written off (the driver is gone; never charged twice). */
  writtenOffFen: number;
}

/** taken = applied + refundOwed, due = applied + writtenOff: every fen accounted for. */
export function settleProvisional(takenFen: number, dueFen: number): ProvisionalMoney {
  if (!Number.isSafeInteger(takenFen) || !Number.isSafeInteger(dueFen) || takenFen < 0 || dueFen < 0) {
    throw new RangeError(`amounts must be whole non-negative fen (taken ${takenFen}, due ${dueFen})`);
  }
  const appliedFen = Math.min(takenFen, dueFen);
  return { takenFen, dueFen, appliedFen, refundOwedFen: takenFen - appliedFen, writtenOffFen: dueFen - appliedFen };
}

/**
 * The leave time a report may carry: never before the stay's entry. Box clocks differ (the
 * entry was stamped by another box), so a leave read before the entry is reported at the
 * entry instant (a zero-minute stay) and flagged `skewed`.
 */
export function leaveNotBeforeEnter(enterAtMs: number, leaveAtMs: number): { leaveAtMs: number; skewed: boolean } {
  return leaveAtMs < enterAtMs ? { leaveAtMs: enterAtMs, skewed: true } : { leaveAtMs, skewed: false };
}

/**
 * The same plate in the park twice with different record numbers (it entered at two gates
 * while they were apart, or a plate was misread into another's): one stay stays, the others
 * are ended, each by the box that entered it, so each record is reported once. Which one
 * stays follows `policy.entry.duplicateEntry` as if the boxes had been together: under
 * "replace" the latest entry (the later one would have replaced the earlier), under "deny"
 * the earliest (the later would have been refused). Ties on the entry time go by recordNo.
 * Returns the stays to end, in recordNo order.
 */
export function duplicateLosers<S extends LotStayRef>(inPark: readonly S[], mode: "replace" | "deny"): S[] {
  const byPlate = new Map<string, S[]>();
  for (const stay of inPark) {
    const key = plateKey(stay.plate);
    // An unread plate is no identity: two cars without plates are two cars.
    if (!key) continue;
    byPlate.set(key, [...(byPlate.get(key) ?? []), stay]);
  }
  const losers: S[] = [];
  for (const group of byPlate.values()) {
    if (group.length < 2) continue;
    const sorted = [...group].sort((a, b) => a.enterAtMs - b.enterAtMs || (a.recordNo < b.recordNo ? -1 : a.recordNo > b.recordNo ? 1 : 0));
    const keeper = mode === "replace" ? sorted[sorted.length - 1]! : sorted[0]!;
    losers.push(...sorted.filter((s) => s !== keeper));
  }
  return losers.sort((a, b) => (a.recordNo < b.recordNo ? -1 : a.recordNo > b.recordNo ? 1 : 0));
}

/**
 * Whether this box hears the whole lot: every box that said it was online says so still. A
 * box offline longer than `forgetAfterMs` (the provisional hold) no longer counts: what it
 * may bring back would find the held reports gone anyway, and a box taken out of the lot
 * must not hold every no-record exit forever. `lastSeenMs` is that box's clock (minutes off
 * at worst, nothing against a hold of hours).
 */
export function lotWhole(boxes: ReadonlyArray<{ online: boolean; lastSeenMs: number }>, nowMs: number, forgetAfterMs: number): boolean {
  return boxes.every((box) => box.online || nowMs - box.lastSeenMs > forgetAfterMs);
}
