import { existsSync, readFileSync } from "node:fs";
import { bill } from "../src/core/fees/bill.js";
import type { BillExtras, Stay } from "../src/core/fees/stay.js";
import type { Tariff, VehicleType } from "../src/core/fees/tariff-schema.js";
import { validateTariff } from "../src/core/fees/validate-tariff.js";
import { percentile, report, round } from "./lib.js";

/**
 * Fee engine throughput: bills per second for a 3-day stay. A lane needs one bill per car; the
 * figure is the headroom for bulk recomputation (the platform's fee queries for a whole lot).
 * Every example tariff of docs/tariffs.md is measured; the headline line is the slowest of them
 * (the most complex to evaluate), and a worst-case exit on the Beijing-style tariff (minutes
 * coupon, prepayment, earlier stays: the coupon bills the stay twice) is reported beside it.
 * The worst case is measured twice: on the sources through tsx, like every bench, and on the
 * compiled dist/ that the box runs (`npm run bench` builds first). tsx turns every import of
 * another module's binding into a getter call, which slows the bill loop several-fold; the
 * compiled figure is the one held to the budget (≥ 200,000 bills a second), once its bills
 * are checked equal to the sources'.
 */
type BillFn = typeof bill;

const ZONE = "Asia/Shanghai";
const STAY_MS = 72 * 3_600_000;
const MEASURE_MS = Number(process.env.FEES_BENCH_MS ?? 1500);

function load(name: string): Tariff {
  const raw = JSON.parse(readFileSync(new URL(`../test/fixtures/tariffs/${name}.json`, import.meta.url), "utf8"));
  const result = validateTariff(raw);
  if (!result.ok) throw new Error(`${name}: ${JSON.stringify(result.problems)}`);
  return result.tariff;
}

/** 512 three-day stays with entries spread over 2024 at odd minutes, so boundaries fall everywhere. */
function stays(vehicleType: VehicleType): Stay[] {
  const out: Stay[] = [];
  for (let i = 0; i < 512; i++) {
    const enterAtMs = Date.UTC(2024, 0, 1) + i * 61_727_000;
    out.push({ enterAtMs, leaveAtMs: enterAtMs + STAY_MS, vehicleType, timeZone: ZONE });
  }
  return out;
}

function measure(label: string, tariff: Tariff, vehicleType: VehicleType, extrasOf?: (stay: Stay) => BillExtras, billOf: BillFn = bill, budgetPerS?: number): number {
  const cases = stays(vehicleType).map((stay) => ({ stay, extras: extrasOf?.(stay) ?? {} }));
  let sink = 0;
  for (let i = 0; i < 3000; i++) {
    const c = cases[i % cases.length]!;
    sink += billOf(tariff, c.stay, c.extras).payableFee;
  }
  // Batches of 256 bills, timed one by one, for a spread as well as a rate.
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
  const seconds = (performance.now() - start) / 1000;
  const sample = billOf(tariff, cases[0]!.stay, cases[0]!.extras);
  report("fees-bills-per-second", {
    tariff: label,
    vehicleType,
    stayHours: 72,
    breakdownLines: sample.breakdown.length,
    bills,
    seconds: round(seconds, 2),
    billsPerSecond: Math.round(bills / seconds),
    usPerBillP50: round(percentile(batchUs, 50), 1),
    usPerBillP99: round(percentile(batchUs, 99), 1),
    checksum: sink % 1_000_003,
    ...(budgetPerS === undefined ? {} : { budgetBillsPerSecond: budgetPerS, withinBudget: bills / seconds >= budgetPerS }),
  });
  return bills / seconds;
}

const examples: Array<[string, VehicleType]> = [
  ["beijing", "small"],
  ["day-night-cap", "small"],
  ["new-energy", "nev"],
  ["vendor", "small"],
  ["per-entry", "small"],
];
const rates = examples.map(([name, vehicleType]) => ({ name, rate: measure(name, load(name), vehicleType) }));
const worstCase = (stay: Stay): BillExtras => ({
  coupons: [{ kind: "minutes", minutes: 30, from: "end" }],
  prepayments: [{ feeFen: 5000, atMs: stay.enterAtMs + 24 * 3_600_000 }],
  previousStays: [{ enterAtMs: stay.enterAtMs - 6 * 3_600_000, leaveAtMs: stay.enterAtMs - 4 * 3_600_000, payableFee: 800 }],
});
measure("beijing, worst-case exit: minutes coupon + prepayment + earlier stays", load("beijing"), "small", worstCase);
const compiled = new URL("../dist/core/fees/bill.js", import.meta.url);
if (existsSync(compiled)) {
  const { bill: compiledBill } = (await import(compiled.href)) as { bill: BillFn };
  // Same bills to the fen and line, or the compiled figure means nothing.
  const tariff = load("beijing");
  const differing = stays("small").filter((stay) => JSON.stringify(compiledBill(tariff, stay, worstCase(stay))) !== JSON.stringify(bill(tariff, stay, worstCase(stay)))).length;
  if (differing > 0) throw new Error(`dist/ bills differ from the sources' on ${differing} of 512 stays: rebuild dist/`);
  measure("beijing, worst-case exit, compiled dist/ (as the box runs it)", load("beijing"), "small", worstCase, compiledBill, 200_000);
} else report("fees-bills-per-second-compiled-missing", { note: "dist/ not built: run `npm run build` (npm run bench does)" });
const slowest = rates.reduce((a, b) => (b.rate < a.rate ? b : a));
report("fees-3-day-stay-bills-per-second", { tariff: slowest.name, note: "slowest example tariff to evaluate", billsPerSecond: Math.round(slowest.rate) });
