/**
 * Fuzzy plate matching against a set of known plates (docs/architecture.md "How one car
 * travels through the box", step 3).
 * Pure and deterministic: the answer does not depend on the order of the candidates, and when
 * more than one candidate fits the tolerance the answer is `ambiguous` with all of them, never
 * a guess. An exit that bills the wrong stay is worse than one that calls the attendant.
 *
 * Tolerances (all optional):
 *   maxDifferences  characters that may differ outright (default 1). The first and the last
 *                   character are fixed: vendors' "allow N wrong characters, first and last
 *                   fixed" rule, since those are the ones recognisers get right most often.
 *   ignoreProvince  the first (province) character may differ without counting (鄂↔粤, 琼→京).
 *   misreadPairs    pairs read for each other (default D/0, B/8, O/0, I/1). A misread counts
 *                   apart from `maxDifferences` and may sit in any position after the first,
 *                   including the last; at most `maxMisreads` (default 2) per plate.
 *
 * Plates of different lengths never match fuzzily (an 8-character new-energy plate read as 7
 * is left to the attendant).
 */
import { normalisePlate } from "./normalise.js";

export interface MatchOptions {
  maxDifferences?: number;
  ignoreProvince?: boolean;
  misreadPairs?: ReadonlyArray<readonly [string, string]>;
  maxMisreads?: number;
}

export const defaultMisreadPairs: ReadonlyArray<readonly [string, string]> = [
  ["D", "0"],
  ["B", "8"],
  ["O", "0"],
  ["I", "1"],
];

export interface FuzzyCandidate {
  /** The candidate as given. */
  plate: string;
  differences: number;
  misreads: number;
  provinceDiffers: boolean;
}

export type PlateMatch = { kind: "exact"; plate: string } | ({ kind: "fuzzy" } & FuzzyCandidate) | { kind: "ambiguous"; candidates: FuzzyCandidate[] } | { kind: "none" };

export function matchPlate(read: string, candidates: Iterable<string>, options: MatchOptions = {}): PlateMatch {
  const maxDifferences = Math.max(0, options.maxDifferences ?? 1);
  const maxMisreads = Math.max(0, options.maxMisreads ?? 2);
  const ignoreProvince = options.ignoreProvince ?? false;
  const misread = misreadTable(options.misreadPairs ?? defaultMisreadPairs);
  const wanted = [...normalisePlate(read)];
  if (wanted.length === 0) return { kind: "none" };

  // Sorted so ties and duplicates resolve the same whatever order the store listed them in.
  const sorted = [...new Set(candidates)].sort(compareText);
  const exact = sorted.find((plate) => normalisePlate(plate) === wanted.join(""));
  if (exact !== undefined) return { kind: "exact", plate: exact };

  const fits: FuzzyCandidate[] = [];
  const seen = new Set<string>();
  for (const plate of sorted) {
    const norm = normalisePlate(plate);
    if (seen.has(norm)) continue; // two spellings of one plate are one candidate
    seen.add(norm);
    const fit = compare(wanted, [...norm], maxDifferences, maxMisreads, ignoreProvince, misread);
    if (fit) fits.push({ plate, ...fit });
  }
  if (fits.length === 0) return { kind: "none" };
  if (fits.length === 1) return { kind: "fuzzy", ...fits[0]! };
  fits.sort((a, b) => a.differences + a.misreads + Number(a.provinceDiffers) - (b.differences + b.misreads + Number(b.provinceDiffers)) || compareText(a.plate, b.plate));
  return { kind: "ambiguous", candidates: fits };
}

function compare(
  read: readonly string[],
  candidate: readonly string[],
  maxDifferences: number,
  maxMisreads: number,
  ignoreProvince: boolean,
  misread: ReadonlyMap<string, ReadonlySet<string>>,
): Omit<FuzzyCandidate, "plate"> | undefined {
  if (read.length !== candidate.length || read.length < 2) return undefined;
  let differences = 0;
  let misreads = 0;
  let provinceDiffers = false;
  const last = read.length - 1;
  for (let i = 0; i < read.length; i++) {
    const a = read[i]!;
    const b = candidate[i]!;
    if (a === b) continue;
    if (i === 0) {
      if (!ignoreProvince) return undefined;
      provinceDiffers = true;
      continue;
    }
    if (misread.get(a)?.has(b)) {
      if (++misreads > maxMisreads) return undefined;
      continue;
    }
    if (i === last) return undefined;
    if (++differences > maxDifferences) return undefined;
  }
  return { differences, misreads, provinceDiffers };
}

function misreadTable(pairs: ReadonlyArray<readonly [string, string]>): Map<string, Set<string>> {
  const table = new Map<string, Set<string>>();
  const add = (a: string, b: string): void => {
    const set = table.get(a) ?? new Set<string>();
    set.add(b);
    table.set(a, set);
  };
  for (const [rawA, rawB] of pairs) {
    const a = normalisePlate(rawA);
    const b = normalisePlate(rawB);
    if (a.length !== 1 || b.length !== 1 || a === b) continue;
    add(a, b);
    add(b, a);
  }
  return table;
}

/** Code-point order: locale-independent, so every box sorts the same way. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
