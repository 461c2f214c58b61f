import fc from "fast-check";
import { tariffSchema, type Tariff, type TariffInput } from "../../../../src/core/fees/tariff-schema.js";
import type { BillExtras, Coupon, Stay } from "../../../../src/core/fees/stay.js";
import type { FixedCar } from "../../../../src/core/fees/fixed-car.js";
import { seededRandom } from "../../../helpers/seeded-random.js";

/**
 * Generators for the fee properties: tariffs covering every rule family of the format (both
 * free-minute switches, all restarts, both boundary rules, flat and unit first periods, caps of
 * every kind, percent bands, vehicle overrides), stays in zones with and without DST, and
 * extras (prepayments, coupons, earlier stays, fixed-car records).
 */

export const zones = ["Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe"] as const;

const MINUTE = 60_000;
const DAY = 86_400_000;
/** 2024-01-01T00:00:00Z … 2025-06-01: spans two DST changes in every DST zone above. */
const FROM_MS = Date.UTC(2024, 0, 1);
const TO_MS = Date.UTC(2025, 5, 1);

const hhmm = (minute: number): string => `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;

// Tariffs come from a seeded pool built once per process: parsing a tariff costs far more than
// billing a stay, so each property draws its 10 000 cases as (pooled tariff, fresh stay, fresh
// extras). The pool is built from a fixed seed, the same on every run and in every host zone.
const POOL_SIZE = 1500;

type Rng = () => number;
const int = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
const chance = (rng: Rng, p: number): boolean => rng() < p;

interface SegmentOptions {
  capAlways?: boolean;
}

/** A first period (a segment's or the stay's): one price, or units of its own. */
function firstPeriod(rng: Rng): Record<string, number> {
  if (chance(rng, 0.5)) return { minutes: int(rng, 1, 1440), priceFen: int(rng, 0, 2000) };
  const unitMinutes = pick(rng, [5, 15, 30, 60]);
  return { minutes: unitMinutes * int(rng, 1, 8), unitMinutes, unitPriceFen: int(rng, 0, 1000) };
}

function segmentPricing(rng: Rng, options: SegmentOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (chance(rng, 1 / 7)) out.flatFen = int(rng, 0, 3000);
  else {
    out.unitMinutes = pick(rng, [1, 5, 15, 30, 60, 120, 1440]);
    out.unitPriceFen = int(rng, 0, 1000);
    out.rounding = pick(rng, ["up", "down"]);
    if (chance(rng, 0.6)) out.firstPeriod = firstPeriod(rng);
  }
  if (options.capAlways || chance(rng, 0.4)) out.capFen = int(rng, 0, 5000);
  return out;
}

/** 1–3 segments that tile the day (boundaries on whole minutes, often on the quarter hour). */
function segments(rng: Rng, options: SegmentOptions = {}, maxSegments = 3): Array<Record<string, unknown>> {
  const count = int(rng, 1, maxSegments);
  let bounds: number[];
  if (count === 1) bounds = [pick(rng, [0, 420, 1439])];
  else {
    const set = new Set<number>();
    while (set.size < count) set.add(chance(rng, 0.5) ? int(rng, 0, 95) * 15 : int(rng, 0, 1439));
    bounds = [...set].sort((x, y) => x - y);
  }
  return bounds.map((start, i) => {
    const end = bounds.length === 1 ? start : bounds[(i + 1) % bounds.length]!;
    return { name: `s${i}`, from: hhmm(start), to: end === 0 && bounds.length > 1 ? "24:00" : hhmm(end), ...segmentPricing(rng, options) };
  });
}

function bands(rng: Rng): Array<Record<string, number>> {
  const edges = new Set<number>();
  const wanted = int(rng, 0, 4);
  while (edges.size < wanted) edges.add(int(rng, 0, 2000));
  const sorted = [...edges].sort((a, b) => a - b);
  const out: Array<Record<string, number>> = [];
  for (let i = 0; i + 1 < sorted.length; i += 2) out.push({ fromMinutes: sorted[i]!, toMinutes: sorted[i + 1]!, percent: int(rng, 0, 100) });
  if (sorted.length % 2 === 1) out.push({ fromMinutes: sorted[sorted.length - 1]!, percent: int(rng, 0, 100) });
  return out;
}

function pricing(rng: Rng, options: SegmentOptions = {}, maxSegments = 3): Record<string, unknown> {
  const out: Record<string, unknown> = {
    free: { minutes: pick(rng, [0, 0, 10, 15, 30, 120]), billedOnceExceeded: chance(rng, 0.5), againEachDay: chance(rng, 0.5) },
    restart: pick(rng, ["never", "every-24h", "natural-day"]),
    segments: segments(rng, options, maxSegments),
    boundary: pick(rng, ["split", "finish-unit"]),
    percentBands: bands(rng),
  };
  // A third of the tariffs price the stay's first period instead of the segments' own.
  if (chance(rng, 1 / 3)) withStayFirstPeriod(out, firstPeriod(rng));
  if (chance(rng, 0.5)) out.dailyCap = { capFen: int(rng, 0, 10_000), basis: pick(rng, ["24h-from-entry", "natural-day"]) };
  if (chance(rng, 0.5)) out.reentryCap = { capFen: int(rng, 0, 10_000), windowHours: int(rng, 1, 48) };
  return out;
}

/** Sets the stay's first period; the segments then may not have their own (the schema's rule). */
function withStayFirstPeriod(pricingFields: Record<string, unknown>, fp: Record<string, number>): void {
  pricingFields.firstPeriod = fp;
  pricingFields.segments = withoutSegmentFirstPeriods(pricingFields.segments as Array<Record<string, unknown>>);
}

function withoutSegmentFirstPeriods(segmentList: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return segmentList.map(({ firstPeriod: _dropped, ...rest }) => rest);
}

/** A tariff using any mix of the rule families (the seed decides). */
export function randomTariffInput(seed: number): TariffInput {
  const rng = seededRandom(seed);
  const base = pricing(rng);
  const vehicles: Record<string, unknown> = {};
  if (chance(rng, 0.4)) {
    const nev = pricing(rng);
    // Without a first period of its own, the new-energy pricing inherits the base's.
    if (nev.firstPeriod === undefined && base.firstPeriod !== undefined) nev.segments = withoutSegmentFirstPeriods(nev.segments as Array<Record<string, unknown>>);
    vehicles.nev = nev;
  }
  if (chance(rng, 0.3)) {
    // Large vehicles replace the segments, sometimes the stay's first period too.
    const large: Record<string, unknown> = { segments: segments(rng) };
    if (chance(rng, 0.3)) withStayFirstPeriod(large, firstPeriod(rng));
    else if (base.firstPeriod !== undefined) large.segments = withoutSegmentFirstPeriods(large.segments as Array<Record<string, unknown>>);
    vehicles.large = large;
  }
  return {
    ...base,
    vehicles,
    postPayment: { graceMinutes: int(rng, 0, 60), restartFrom: pick(rng, ["payment", "grace-end"]) },
    coupons: { maxPerStay: int(rng, 1, 3) },
    fixedCars: { graceDays: int(rng, 0, 3) },
  } as TariffInput;
}

export function parseTariff(input: TariffInput): Tariff {
  const result = tariffSchema.safeParse(input);
  if (!result.success) throw new Error(`generated tariff is invalid: ${JSON.stringify(result.error.issues)}\n${JSON.stringify(input)}`);
  return result.data;
}

let tariffPool: Tariff[] | undefined;
let cappedPool: Tariff[] | undefined;

/** Every tariff of the pool (for tests that want to walk them all). */
export function pooledTariffs(): Tariff[] {
  tariffPool ??= Array.from({ length: POOL_SIZE }, (_, i) => parseTariff(randomTariffInput(0x5eed + i)));
  return tariffPool;
}

export const tariffArb: fc.Arbitrary<Tariff> = fc.integer({ min: 0, max: POOL_SIZE - 1 }).map((i) => pooledTariffs()[i]!);

/** Tariffs with exactly one segment, which has a cap (for an independent segment-cap bound). */
export const cappedSingleSegmentTariffArb: fc.Arbitrary<Tariff> = fc.integer({ min: 0, max: 299 }).map((i) => {
  cappedPool ??= Array.from({ length: 300 }, (_, k) => parseTariff(pricing(seededRandom(0xcab + k), { capAlways: true }, 1) as TariffInput));
  return cappedPool[i]!;
});

/** Stay durations: mostly short (the minutes where the rules bite), some up to four days. */
export const durationArb = fc.oneof(
  fc.integer({ min: 0, max: 3 * 3_600_000 }),
  fc.integer({ min: 0, max: 4 * DAY }),
  fc.integer({ min: 0, max: 4 * 24 * 60 }).map((m) => m * MINUTE),
);

export const enterArb = fc.oneof(
  fc.integer({ min: FROM_MS, max: TO_MS }),
  fc.integer({ min: FROM_MS / MINUTE, max: TO_MS / MINUTE }).map((m) => m * MINUTE),
);

export const stayArb: fc.Arbitrary<Stay> = fc
  .record({ enterAtMs: enterArb, durationMs: durationArb, vehicleType: fc.constantFrom("small", "large", "nev"), timeZone: fc.constantFrom(...zones) })
  .map(({ enterAtMs, durationMs, vehicleType, timeZone }) => ({ enterAtMs, leaveAtMs: enterAtMs + durationMs, vehicleType, timeZone }));

export const couponArb: fc.Arbitrary<Coupon> = fc.oneof(
  fc.record({ kind: fc.constant("amount" as const), fen: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ kind: fc.constant("minutes" as const), minutes: fc.integer({ min: 0, max: 600 }), from: fc.constantFrom("start" as const, "end" as const) }),
  fc.record({ kind: fc.constant("free" as const) }),
  fc.record({ kind: fc.constant("percent" as const), percent: fc.integer({ min: 0, max: 100 }) }),
);

export const fixedCarArb = (stay: Stay): fc.Arbitrary<FixedCar> =>
  fc
    .record(
      {
        fromOffset: fc.integer({ min: -3 * DAY, max: 2 * DAY }),
        untilOffset: fc.integer({ min: -2 * DAY, max: 4 * DAY }),
        windows: fc.array(
          fc.record({
            days: fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }),
            from: fc.integer({ min: 0, max: 1439 }).map(hhmm),
            to: fc.integer({ min: 0, max: 1440 }).map((m) => (m === 1440 ? "24:00" : hhmm(m))),
          }),
          { minLength: 1, maxLength: 2 },
        ),
        graceDays: fc.integer({ min: 0, max: 2 }),
      },
      { requiredKeys: ["untilOffset"] },
    )
    .map(({ fromOffset, untilOffset, windows, graceDays }) => {
      const car: FixedCar = { validUntilMs: stay.enterAtMs + untilOffset };
      if (fromOffset !== undefined) car.validFromMs = stay.enterAtMs + fromOffset;
      if (windows !== undefined) car.windows = windows;
      if (graceDays !== undefined) car.graceDays = graceDays;
      return car;
    });

/** Extras that stay valid when the exit moves later (prepayments lie inside the stay). */
export const extrasArb = (stay: Stay): fc.Arbitrary<BillExtras> => {
  const span = stay.leaveAtMs - stay.enterAtMs;
  return fc.record({
    prepayments: fc.array(fc.record({ feeFen: fc.integer({ min: 0, max: 5000 }), atMs: fc.integer({ min: 0, max: span }).map((o) => stay.enterAtMs + o) }), { maxLength: 2 }),
    coupons: fc.array(couponArb, { maxLength: 3 }),
    previousStays: fc.array(
      fc
        .record({ ago: fc.integer({ min: 1, max: 2 * DAY }), length: fc.integer({ min: 0, max: 6 * 3_600_000 }), payableFee: fc.integer({ min: 0, max: 4000 }) })
        .map(({ ago, length, payableFee }) => ({ enterAtMs: stay.enterAtMs - ago - length, leaveAtMs: stay.enterAtMs - ago, payableFee })),
      { maxLength: 2 },
    ),
  });
};

/** A stay, maybe with a fixed-car record, and extras for it. */
export const billCaseArb = fc
  .record({ tariff: tariffArb, stay: stayArb, withFixedCar: fc.boolean() })
  .chain(({ tariff, stay, withFixedCar }) =>
    fc
      .record({ fixedCar: withFixedCar ? fixedCarArb(stay).map((c) => c as FixedCar | undefined) : fc.constant(undefined), extras: extrasArb(stay) })
      .map(({ fixedCar, extras }) => ({ tariff, stay: fixedCar ? { ...stay, fixedCar } : stay, extras })),
  );
