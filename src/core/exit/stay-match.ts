/**
 * Which stay an exit read belongs to. An exact plate (or the unlicensed car's virtual plate)
 * wins, the newest entry first; else the fuzzy rule (misread pairs, a character, the province)
 * over every stay in the lot, and more than one candidate is no match (`ambiguous`: the car is
 * treated as having no record rather than billed for another car's stay).
 */
import { matchPlate, normalisePlate } from "../plates/index.js";

export interface FuzzyPolicy {
  /** Characters that may differ (first and last fixed); 0 with the others off: exact only. */
  maxDifferences: number;
  ignoreProvince: boolean;
  misreads: boolean;
}

export type StayMatch<R> = { by: "exact" | "fuzzy"; record: R | undefined } | { by: "none"; record: undefined; ambiguous?: string[] };

/**
 * `lot.exact`: the stays stored under the plate and under `无<plate>`; `lot.all`: every stay in
 * the lot, in the store's order (read only when the fuzzy rule runs: a listing is not free).
 */
export function findStay<R extends { plate: string; enterAtMs: number }>(plate: string, lot: { exact: readonly R[]; all: () => readonly R[] }, fuzzy: FuzzyPolicy): StayMatch<R> {
  if (!plate) return { by: "none", record: undefined };
  if (lot.exact.length > 0) return { by: "exact", record: [...lot.exact].sort((a, b) => b.enterAtMs - a.enterAtMs)[0] };
  if (fuzzy.maxDifferences === 0 && !fuzzy.ignoreProvince && !fuzzy.misreads) return { by: "none", record: undefined };
  const all = lot.all();
  const candidates = all.map((r) => normalisePlate(r.plate)).filter((p) => p.length > 0);
  const match = matchPlate(plate, candidates, {
    maxDifferences: fuzzy.maxDifferences,
    ignoreProvince: fuzzy.ignoreProvince,
    ...(fuzzy.misreads ? {} : { misreadPairs: [] }),
  });
  if (match.kind === "exact" || match.kind === "fuzzy") return { by: "fuzzy", record: all.find((r) => normalisePlate(r.plate) === match.plate) };
  if (match.kind === "ambiguous") return { by: "none", record: undefined, ambiguous: match.candidates.map((c) => c.plate) };
  return { by: "none", record: undefined };
}
