import { z } from "zod";

/**
 * The tariff format (docs/tariffs.md has it field by field, with complete examples). A tariff
 * is data: JSON inside the config (`fees.tariffs.<name>`) or a file of its own, evaluated by the
 * pure `bill()` (bill.ts). It expresses the rule families docs/tariffs.md lists.
 *
 * Two layers of checks, so a file with several mistakes reports them all at once:
 * - the zod shape (strict: an unknown key is an error, usually a typo), ranges and enums;
 * - `checkTariffSemantics`, the rules that span fields (segments that overlap or leave a gap,
 *   a segment with both a flat fee and units, a first period whose units do not divide it…).
 *   It runs on the raw value as a refinement with `when: () => true`: zod would otherwise skip
 *   refinements as soon as the shape has one error, and the operator would fix one round of
 *   mistakes only to meet the next.
 */

export const vehicleTypes = ["small", "large", "nev"] as const;
/** small: ordinary car (blue plate); large: bus/lorry (yellow); nev: new-energy (green). */
export type VehicleType = (typeof vehicleTypes)[number];

const MAX_FEN = 100_000_000; // 1 000 000 元: far beyond any parking fee, catches unit mix-ups

const fen = () =>
  z.int("must be a whole number of fen (1 元 = 100 fen)").min(0, "must not be negative (prices are in fen, 0 or more)").max(MAX_FEN, `must be at most ${MAX_FEN} fen`);

const unitMinutes = () => z.int("must be a whole number of minutes").min(1, "must be at least 1 minute").max(1440, "must be at most a day (1440 minutes)");

const timeOfDayStart = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day "HH:mm" from 00:00 to 23:59');
const timeOfDayEnd = z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'must be a time of day "HH:mm" from 00:00 to 24:00');

const firstPeriodSchema = z.strictObject({
  /** Length of the first period, counted from where the segment's scale starts. */
  minutes: z.int("must be a whole number of minutes").min(1, "must be at least 1 minute").max(1440, "a first period cannot be longer than a day (1440 minutes)"),
  /** One price for the whole first period (charged in full once it has started). */
  priceFen: fen().optional(),
  /** Or: the first period is charged per unit at its own unit price. */
  unitMinutes: unitMinutes().optional(),
  unitPriceFen: fen().optional(),
});

export const segmentSchema = z.strictObject({
  /** Shown in the breakdown ("day", "night"). */
  name: z.string().min(1, "must not be empty").max(40, "must be at most 40 characters"),
  /** Local wall-clock start, inclusive. */
  from: timeOfDayStart,
  /** Local wall-clock end, exclusive; may be earlier than `from` (the segment spans midnight). */
  to: timeOfDayEnd,
  firstPeriod: firstPeriodSchema.optional(),
  unitMinutes: unitMinutes().optional(),
  unitPriceFen: fen().optional(),
  /** A started part unit at the end: "up" charges it as a whole unit, "down" does not charge it. */
  rounding: z.enum(["up", "down"]).default("up"),
  /** Most one occurrence of this segment costs (e.g. "night at most 10 元"). */
  capFen: fen().optional(),
  /** A flat fee per occurrence instead of units (按次 per segment; per-entry lots). */
  flatFen: fen().optional(),
});

const freeSchema = z.strictObject({
  /** Stays up to this long (inclusive) pay nothing. */
  minutes: z.int("must be a whole number of minutes").min(0, "must not be negative").max(1440, "must be at most a day (1440 minutes)").default(0),
  /** 免费分钟参与计费: once exceeded, the free minutes are billed too (on), or only the time after them (off). */
  billedOnceExceeded: z.boolean().default(true),
  /** Whether each later day of a long stay (when the scale restarts) gets the free minutes again. */
  againEachDay: z.boolean().default(false),
});

const dailyCapSchema = z.strictObject({
  capFen: fen(),
  /** Which days the cap counts: each 24 h from the entry, or natural days on the lot's clock. */
  basis: z.enum(["24h-from-entry", "natural-day"]).default("24h-from-entry"),
});

const reentryCapSchema = z.strictObject({
  /** Most the stays of one plate cost together within the window (the first entry opens it). */
  capFen: fen(),
  windowHours: z.int("must be a whole number of hours").min(1, "must be at least 1 hour").max(168, "must be at most 168 hours").default(24),
});

const percentBandSchema = z.strictObject({
  /** Minutes after the entry where the band starts (inclusive). */
  fromMinutes: z.int("must be a whole number of minutes").min(0, "must not be negative"),
  /** Minutes after the entry where it ends (exclusive); absent: to the end of the stay. */
  toMinutes: z.int("must be a whole number of minutes").min(1, "must be at least 1").optional(),
  /** Share of the normal charge paid for units that start in the band: 50 = half price, 0 = free. */
  percent: z.int("must be a whole percent").min(0, "must not be negative").max(100, "must be at most 100"),
});

const segmentsSchema = z.array(segmentSchema).min(1, "at least one segment is needed (one from 00:00 to 24:00 for a lot without day/night)");

/** The pricing fields; `vehicles.large` / `vehicles.nev` may replace any of them. */
const pricingShape = {
  free: freeSchema.prefault({}),
  /** When the scale starts again from the first period: never, every 24 h from the entry, or at each local midnight. */
  restart: z.enum(["never", "every-24h", "natural-day"]).default("every-24h"),
  /**
   * The first period of the stay itself ("3 元 for the first 2 hours whatever the time of day"):
   * it starts where each scale run's billing starts, ignores segment boundaries, and the
   * segments charge their units after it. Excludes segments' own first periods.
   */
  firstPeriod: firstPeriodSchema.optional(),
  segments: segmentsSchema,
  /** At a segment boundary: "split" ends the unit at the boundary; "finish-unit" finishes the unit under way at the earlier segment's rate and length (Beijing). */
  boundary: z.enum(["split", "finish-unit"]).default("split"),
  dailyCap: dailyCapSchema.optional(),
  reentryCap: reentryCapSchema.optional(),
  percentBands: z.array(percentBandSchema).default([]),
};

const pricingOverrideSchema = z.strictObject({
  free: freeSchema.optional(),
  restart: pricingShape.restart.optional(),
  firstPeriod: firstPeriodSchema.optional(),
  segments: segmentsSchema.optional(),
  boundary: pricingShape.boundary.optional(),
  dailyCap: dailyCapSchema.optional(),
  reentryCap: reentryCapSchema.optional(),
  percentBands: z.array(percentBandSchema).optional(),
});

const tariffBaseSchema = z.strictObject({
  name: z.string().max(200, "must be at most 200 characters").optional(),
  description: z.string().max(2000, "must be at most 2000 characters").optional(),
  ...pricingShape,
  /** Per vehicle type: the fields given replace the base (small-car) fields whole. */
  vehicles: z
    .strictObject({
      large: pricingOverrideSchema.optional(),
      nev: pricingOverrideSchema.optional(),
    })
    .prefault({}),
  postPayment: z
    .strictObject({
      /** 场内支付滞留时间: after an in-lot payment the car may leave free within this many minutes. */
      graceMinutes: z.int("must be a whole number of minutes").min(0, "must not be negative").max(1440, "must be at most a day (1440 minutes)").default(15),
      /** Past the grace, billing starts again (first period, no free minutes) from the payment, or from the end of the grace. */
      restartFrom: z.enum(["payment", "grace-end"]).default("payment"),
    })
    .prefault({}),
  coupons: z
    .strictObject({
      /** Coupons honoured on one stay; the rest are listed as not applied. */
      maxPerStay: z.int("must be a whole number").min(1, "must be at least 1").max(20, "must be at most 20").default(1),
    })
    .prefault({}),
  fixedCars: z
    .strictObject({
      /** Days after a monthly/fixed car's validity ends during which it still passes free. */
      graceDays: z.int("must be a whole number of days").min(0, "must not be negative").max(366, "must be at most 366").default(0),
    })
    .prefault({}),
  /** Longer stays are refused as absurd (a clock that was wrong at entry). */
  maxStayDays: z.int("must be a whole number of days").min(1, "must be at least 1").max(3660, "must be at most 3660").default(366),
});

export const tariffSchema = tariffBaseSchema.superRefine(
  (value, ctx) => {
    for (const problem of checkTariffSemantics(value)) {
      ctx.addIssue({ code: "custom", message: problem.message, path: problem.path, input: value });
    }
  },
  // Run even when the shape already failed: every mistake in one report (see above).
  { when: () => true },
);

export type Tariff = z.infer<typeof tariffSchema>;
export type TariffInput = z.input<typeof tariffSchema>;
export type Segment = z.infer<typeof segmentSchema>;
export type FirstPeriod = z.infer<typeof firstPeriodSchema>;
export type PercentBand = z.infer<typeof percentBandSchema>;

/** The pricing that applies to one vehicle type: the base fields with its overrides merged. */
export interface Pricing {
  free: Tariff["free"];
  restart: Tariff["restart"];
  firstPeriod: FirstPeriod | undefined;
  segments: Segment[];
  boundary: Tariff["boundary"];
  dailyCap: Tariff["dailyCap"];
  reentryCap: Tariff["reentryCap"];
  percentBands: PercentBand[];
}

const pricingKeys = ["free", "restart", "firstPeriod", "segments", "boundary", "dailyCap", "reentryCap", "percentBands"] as const;

/** The pricing for `vehicleType`: small cars use the base fields; large and nev may replace some. */
export function pricingFor(tariff: Tariff, vehicleType: VehicleType): Pricing {
  const base: Pricing = {
    free: tariff.free,
    restart: tariff.restart,
    firstPeriod: tariff.firstPeriod,
    segments: tariff.segments,
    boundary: tariff.boundary,
    dailyCap: tariff.dailyCap,
    reentryCap: tariff.reentryCap,
    percentBands: tariff.percentBands,
  };
  if (vehicleType === "small") return base;
  const override = tariff.vehicles[vehicleType];
  if (!override) return base;
  const merged: Record<string, unknown> = { ...base };
  for (const key of pricingKeys) if (override[key] !== undefined) merged[key] = override[key];
  return merged as unknown as Pricing;
}

// ---------------------------------------------------------------------------------------------
// Semantic checks

export interface TariffProblem {
  path: PropertyKey[];
  message: string;
}

/**
 * Cross-field rules of a tariff. Defensive: it runs on whatever the shape check let through
 * (possibly wrong types), checks only the fields that have the right type, and never repeats a
 * mistake the shape check reports.
 */
export function checkTariffSemantics(raw: unknown): TariffProblem[] {
  const problems: TariffProblem[] = [];
  const tariff = asRecord(raw);
  if (!tariff) return problems;
  checkPricing(tariff, [], problems);
  checkFirstPeriodConflicts(tariff, problems);
  const vehicles = asRecord(tariff.vehicles);
  if (vehicles) {
    for (const type of ["large", "nev"] as const) {
      const override = asRecord(vehicles[type]);
      if (override) checkPricing(override, ["vehicles", type], problems);
    }
  }
  return problems;
}

function checkPricing(pricing: Record<string, unknown>, at: PropertyKey[], problems: TariffProblem[]): void {
  const fp = asRecord(pricing.firstPeriod);
  if (fp) checkFirstPeriod(fp, [...at, "firstPeriod"], problems);
  if (Array.isArray(pricing.segments)) checkSegments(pricing.segments, [...at, "segments"], problems);
  if (Array.isArray(pricing.percentBands)) checkBands(pricing.percentBands, [...at, "percentBands"], problems);
}

/** A first period (the stay's, or a segment's): a price, or units that divide it. */
function checkFirstPeriod(fp: Record<string, unknown>, fpAt: PropertyKey[], problems: TariffProblem[]): void {
  const hasPrice = fp.priceFen !== undefined;
  const hasUnits = fp.unitMinutes !== undefined || fp.unitPriceFen !== undefined;
  if (hasPrice && hasUnits) {
    problems.push({ path: fpAt, message: "give either priceFen (one price for the whole first period) or unitMinutes with unitPriceFen, not both" });
  } else if (!hasPrice && !hasUnits) {
    problems.push({ path: fpAt, message: "needs priceFen, or unitMinutes with unitPriceFen" });
  } else if (hasUnits) {
    if (fp.unitMinutes === undefined) problems.push({ path: [...fpAt, "unitMinutes"], message: "is required with unitPriceFen" });
    if (fp.unitPriceFen === undefined) problems.push({ path: [...fpAt, "unitPriceFen"], message: "is required with unitMinutes" });
    if (isInt(fp.unitMinutes) && isInt(fp.minutes) && fp.unitMinutes > 0 && fp.minutes % fp.unitMinutes !== 0) {
      problems.push({ path: [...fpAt, "unitMinutes"], message: `must divide firstPeriod.minutes (${fp.minutes}) so the first period ends on a unit boundary` });
    }
  }
}

/**
 * The stay's first period and a segment's first period exclude each other: with both, a stay
 * would pay two first periods. Checked on what each vehicle type really uses (an override's
 * segments with the base's first period, and the other way round), reported where the
 * conflicting field was written.
 */
function checkFirstPeriodConflicts(tariff: Record<string, unknown>, problems: TariffProblem[]): void {
  const check = (firstPeriod: unknown, segments: unknown, segmentsAt: PropertyKey[]): void => {
    if (firstPeriod === undefined || !Array.isArray(segments)) return;
    segments.forEach((segRaw, index) => {
      const seg = asRecord(segRaw);
      if (seg?.firstPeriod === undefined) return;
      problems.push({
        path: [...segmentsAt, index, "firstPeriod"],
        message: "the tariff has a first period of the stay (top-level firstPeriod); a segment cannot have its own as well: remove one of them",
      });
    });
  };
  check(tariff.firstPeriod, tariff.segments, ["segments"]);
  const vehicles = asRecord(tariff.vehicles);
  if (!vehicles) return;
  for (const type of ["large", "nev"] as const) {
    const override = asRecord(vehicles[type]);
    if (!override || (override.firstPeriod === undefined && override.segments === undefined)) continue;
    const firstPeriod = override.firstPeriod ?? tariff.firstPeriod;
    if (override.segments !== undefined) check(firstPeriod, override.segments, ["vehicles", type, "segments"]);
    else if (firstPeriod !== undefined && Array.isArray(tariff.segments) && tariff.segments.some((seg) => asRecord(seg)?.firstPeriod !== undefined)) {
      problems.push({
        path: ["vehicles", type, "firstPeriod"],
        message: "the base segments have first periods of their own; give this vehicle type segments without them, or remove this firstPeriod",
      });
    }
  }
}

function checkSegments(segments: unknown[], at: PropertyKey[], problems: TariffProblem[]): void {
  const names = new Map<string, number>();
  const spans: Array<{ index: number; start: number; length: number }> = [];
  segments.forEach((segRaw, index) => {
    const seg = asRecord(segRaw);
    if (!seg) return;
    const here = [...at, index];
    if (typeof seg.name === "string") {
      const first = names.get(seg.name);
      if (first !== undefined) problems.push({ path: [...here, "name"], message: `duplicate segment name "${seg.name}" (also segments[${first}])` });
      else names.set(seg.name, index);
    }
    if (seg.flatFen !== undefined) {
      for (const key of ["unitMinutes", "unitPriceFen", "firstPeriod"] as const) {
        if (seg[key] !== undefined) {
          problems.push({ path: [...here, key], message: "a segment with flatFen charges one flat fee per occurrence: remove this field or remove flatFen" });
        }
      }
    } else {
      if (!("unitMinutes" in seg) || seg.unitMinutes === undefined) {
        problems.push({ path: [...here, "unitMinutes"], message: "is required (or give flatFen for a flat fee per occurrence)" });
      }
      if (!("unitPriceFen" in seg) || seg.unitPriceFen === undefined) {
        problems.push({ path: [...here, "unitPriceFen"], message: "is required (or give flatFen for a flat fee per occurrence)" });
      }
    }
    const fp = asRecord(seg.firstPeriod);
    if (fp && seg.flatFen === undefined) checkFirstPeriod(fp, [...here, "firstPeriod"], problems);
    const start = typeof seg.from === "string" ? minuteOfDay(seg.from, false) : undefined;
    const end = typeof seg.to === "string" ? minuteOfDay(seg.to, true) : undefined;
    if (start !== undefined && end !== undefined) spans.push({ index, start, length: mod(end - start, 1440) || 1440 });
  });
  checkCoverage(segments, spans, at, problems);
}

/** Segments must tile the 24-hour clock: no minute covered twice, none left out. */
function checkCoverage(segments: unknown[], spans: Array<{ index: number; start: number; length: number }>, at: PropertyKey[], problems: TariffProblem[]): void {
  if (spans.length === 0) return;
  const owner = new Array<number>(1440).fill(-1);
  for (const span of spans) {
    // The first stretch shared with each earlier segment, reported once per pair.
    const shared = new Map<number, { start: number; length: number }>();
    for (let k = 0; k < span.length; k++) {
      const minute = (span.start + k) % 1440;
      const other = owner[minute]!;
      if (other === -1) {
        owner[minute] = span.index;
        continue;
      }
      const run = shared.get(other);
      if (!run) shared.set(other, { start: k, length: 1 });
      else if (run.start + run.length === k) run.length++;
    }
    for (const [other, run] of shared) {
      const from = formatMinute((span.start + run.start) % 1440);
      const to = formatMinute((span.start + run.start + run.length) % 1440 || 1440);
      problems.push({
        path: [...at, span.index, "from"],
        message: `overlaps segments[${other}]${describeSegment(segments[other])} from ${from} to ${to}; each minute of the day belongs to exactly one segment`,
      });
    }
  }
  // Gaps: runs of minutes nobody owns, reported at the segment that ends where the gap starts.
  const firstOwned = owner.findIndex((o) => o !== -1);
  if (firstOwned === -1) return;
  for (let k = 0; k < 1440; k++) {
    const minute = (firstOwned + k) % 1440;
    const previous = (minute + 1439) % 1440;
    if (owner[minute] !== -1 || owner[previous] === -1) continue;
    let length = 0;
    while (length < 1440 && owner[(minute + length) % 1440] === -1) length++;
    const before = owner[previous]!;
    const from = formatMinute(minute);
    const to = formatMinute((minute + length) % 1440 || 1440);
    problems.push({
      path: [...at, before, "to"],
      message: `leaves a gap: no segment covers ${from} to ${to}; segments must cover the whole day`,
    });
  }
}

function checkBands(bands: unknown[], at: PropertyKey[], problems: TariffProblem[]): void {
  const valid: Array<{ index: number; from: number; to: number }> = [];
  bands.forEach((bandRaw, index) => {
    const band = asRecord(bandRaw);
    if (!band || !isInt(band.fromMinutes)) return;
    const to = band.toMinutes === undefined ? Number.POSITIVE_INFINITY : band.toMinutes;
    if (!isInt(to) && to !== Number.POSITIVE_INFINITY) return;
    if (to <= band.fromMinutes) {
      problems.push({ path: [...at, index, "toMinutes"], message: `must be after fromMinutes (${band.fromMinutes})` });
      return;
    }
    valid.push({ index, from: band.fromMinutes, to });
  });
  const sorted = [...valid].sort((a, b) => a.from - b.from || a.index - b.index);
  // Compare each band with the one reaching furthest so far (a long band can cover several).
  let reach: { index: number; to: number } | undefined;
  for (const current of sorted) {
    if (reach && current.from < reach.to) {
      problems.push({ path: [...at, current.index, "fromMinutes"], message: `overlaps percentBands[${reach.index}]; a unit takes the percent of one band only` });
    }
    if (!reach || current.to > reach.to) reach = { index: current.index, to: current.to };
  }
}

function describeSegment(raw: unknown): string {
  const seg = asRecord(raw);
  if (!seg) return "";
  const name = typeof seg.name === "string" ? `"${seg.name}" ` : "";
  return ` (${name}${String(seg.from)}-${String(seg.to)})`;
}

/** "HH:mm" → minutes after midnight; "24:00" only as an end. */
export function minuteOfDay(text: string, isEnd: boolean): number | undefined {
  const m = /^(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  if (minutes > 59) return undefined;
  if (hours === 24 && minutes === 0 && isEnd) return 1440;
  if (hours > 23) return undefined;
  return hours * 60 + minutes;
}

function formatMinute(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
}

function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value);
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
