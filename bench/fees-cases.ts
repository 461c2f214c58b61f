import { readFileSync } from "node:fs";
import type { bill } from "../src/core/fees/bill.js";
import type { BillExtras, Stay } from "../src/core/fees/stay.js";
import type { Tariff, VehicleType } from "../src/core/fees/tariff-schema.js";
import type { validateTariff } from "../src/core/fees/validate-tariff.js";

/**
 * What the fee benches bill and how they time it, shared by bench/fees.bench.ts and the child
 * process it measures the compiled worst case in (bench/fees-compiled.ts). Types only from
 * src: the child imports nothing but dist/.
 */
export type BillFn = typeof bill;
export type ValidateFn = typeof validateTariff;

export const STAY_HOURS = 72;
const STAY_MS = STAY_HOURS * 3_600_000;
const ZONE = "Asia/Shanghai";
export const MEASURE_MS = Number(process.env.FEES_BENCH_MS ?? 1500);

export function loadTariff(name: string, validate: ValidateFn): Tariff {
  const raw: unknown = JSON.parse(readFileSync(new URL(`../test/fixtures/tariffs/${name}.json`, import.meta.url), "utf8"));
  const result = validate(raw);
  if (!result.ok) throw new Error(`${name}: ${JSON.stringify(result.problems)}`);
  return result.tariff;
}

/** 512 three-day stays with entries spread over 2024 at odd minutes, so boundaries fall everywhere. */
export function stays(vehicleType: VehicleType): Stay[] {
  const out: Stay[] = [];
  for (let i = 0; i < 512; i++) {
    const enterAtMs = Date.UTC(2024, 0, 1) + i * 61_727_000;
    out.push({ enterAtMs, leaveAtMs: enterAtMs + STAY_MS, vehicleType, timeZone: ZONE });
  }
  return out;
}

/** The worst-case exit: minutes coupon, prepayment, earlier stays (the coupon bills the stay twice). */
export const worstCase = (stay: Stay): BillExtras => ({
  coupons: [{ kind: "minutes", minutes: 30, from: "end" }],
  prepayments: [{ feeFen: 5000, atMs: stay.enterAtMs + 24 * 3_600_000 }],
  previousStays: [{ enterAtMs: stay.enterAtMs - 6 * 3_600_000, leaveAtMs: stay.enterAtMs - 4 * 3_600_000, payableFee: 800 }],
});

export interface BillCase {
  stay: Stay;
  extras: BillExtras;
}

export function billCases(vehicleType: VehicleType, extrasOf?: (stay: Stay) => BillExtras): BillCase[] {
  return stays(vehicleType).map((stay) => ({ stay, extras: extrasOf?.(stay) ?? {} }));
}

export interface Timing {
  bills: number;
  seconds: number;
  /** Microseconds a bill, per batch of 256. */
  batchUs: number[];
  /** Sum of the payable fees: keeps the bills from being optimised away. */
  sink: number;
}

/** 3,000 bills of warm-up, then batches of 256 bills for MEASURE_MS, timed one by one (a spread as well as a rate). */
export function timeBills(billOf: BillFn, tariff: Tariff, cases: readonly BillCase[]): Timing {
  let sink = 0;
  for (let i = 0; i < 3000; i++) {
    const c = cases[i % cases.length]!;
    sink += billOf(tariff, c.stay, c.extras).payableFee;
  }
  const batchUs: number[] = [];
  let bills = 0;
  const start = performance.now();
  while (performance.now() - start < MEASURE_MS) {
    const t0 = performance.now();
    for (let i = 0; i < 256; i++) {
      const c = cases[(bills + i) % cases.length]!;
      sink += billOf(tariff, c.stay, c.extras).payableFee;
    }
    batchUs.push(((performance.now() - t0) * 1000) / 256);
    bills += 256;
  }
  return { bills, seconds: (performance.now() - start) / 1000, batchUs, sink };
}
