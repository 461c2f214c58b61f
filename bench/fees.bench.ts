import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { bill } from "../src/core/fees/bill.js";
import type { BillExtras, Stay } from "../src/core/fees/stay.js";
import type { Tariff, VehicleType } from "../src/core/fees/tariff-schema.js";
import { validateTariff } from "../src/core/fees/validate-tariff.js";
import { billCases, loadTariff, STAY_HOURS, stays, timeBills, worstCase, type BillFn } from "./fees-cases.js";
import { percentile, report, round, unitEnvironment } from "./lib.js";

/**
 * Fee engine throughput: bills per second for a 3-day stay. A lane needs one bill per car; the
 * figure is the headroom for bulk recomputation (the platform's fee queries for a whole lot).
 * Every example tariff of docs/tariffs.md is measured; the headline line is the slowest of them
 * (the most complex to evaluate), and a worst-case exit on the Beijing-style tariff (minutes
 * coupon, prepayment, earlier stays: the coupon bills the stay twice) is reported beside it.
 *
 * The worst case is measured on the sources through tsx, like every bench, and on the compiled
 * dist/ that the box runs (`npm run bench` builds first). tsx turns every import of another
 * module's binding into a getter call, which slows the bill loop several-fold; the compiled
 * figure is the one held to the budget (≥ 200,000 bills a second), once its bills are checked
 * equal to the sources'. It is timed as the box runs it: in a process of its own
 * (bench/fees-compiled.ts) started with the NODE_OPTIONS of systemd/lanekeeper.service, whose
 * 1 MB young generation makes every byte a bill allocates cost scavenges, around a live heap
 * as large as the idle service's. The same child with node's default options is timed
 * alternately with it, ROUNDS times each, as the baseline of the same run; the medians are
 * reported.
 */
const ROUNDS = Number(process.env.FEES_BENCH_ROUNDS ?? 3);

function measure(label: string, tariff: Tariff, vehicleType: VehicleType, extrasOf?: (stay: Stay) => BillExtras): number {
  const cases = billCases(vehicleType, extrasOf);
  const timing = timeBills(bill, tariff, cases);
  const sample = bill(tariff, cases[0]!.stay, cases[0]!.extras);
  report("fees-bills-per-second", {
    tariff: label,
    vehicleType,
    stayHours: STAY_HOURS,
    breakdownLines: sample.breakdown.length,
    bills: timing.bills,
    seconds: round(timing.seconds, 2),
    billsPerSecond: Math.round(timing.bills / timing.seconds),
    usPerBillP50: round(percentile(timing.batchUs, 50), 1),
    usPerBillP99: round(percentile(timing.batchUs, 99), 1),
    checksum: timing.sink % 1_000_003,
  });
  return timing.bills / timing.seconds;
}

interface ChildFigures {
  bills: number;
  billsPerSecond: number;
  billsPerCpuSecond: number;
  usPerBillP50: number;
  usPerBillP99: number;
  scavengesPer1000Bills: number;
  gcShare: number;
  breakdownLines: number;
  liveHeapMb: number;
}

/** One run of bench/fees-compiled.ts with NODE_OPTIONS set to `nodeOptions` (empty: node's defaults). */
function compiledChild(nodeOptions: string): ChildFigures {
  const child = new URL("./fees-compiled.ts", import.meta.url).pathname;
  // --expose-gc lets the child weigh its live heap; it changes nothing of how GC runs.
  const run = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", child], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`fees-compiled.ts with NODE_OPTIONS="${nodeOptions}" exited ${run.status}: ${run.stderr.slice(0, 2000)}`);
  return JSON.parse(run.stdout.trim().split("\n").at(-1)!) as ChildFigures;
}

/** Medians of each figure over the runs, and every run's rate. */
function summary(runs: readonly ChildFigures[]): Record<string, unknown> {
  const med = (pick: (r: ChildFigures) => number) => percentile(runs.map(pick), 50);
  return {
    billsPerSecond: Math.round(med((r) => r.billsPerSecond)),
    billsPerSecondRuns: runs.map((r) => r.billsPerSecond),
    billsPerCpuSecond: Math.round(med((r) => r.billsPerCpuSecond)),
    usPerBillP50: med((r) => r.usPerBillP50),
    usPerBillP99: med((r) => r.usPerBillP99),
    scavengesPer1000Bills: med((r) => r.scavengesPer1000Bills),
    gcShare: med((r) => r.gcShare),
  };
}

const examples: Array<[string, VehicleType]> = [
  ["beijing", "small"],
  ["day-night-cap", "small"],
  ["new-energy", "nev"],
  ["vendor", "small"],
  ["per-entry", "small"],
];
const rates = examples.map(([name, vehicleType]) => ({ name, rate: measure(name, loadTariff(name, validateTariff), vehicleType) }));
measure("beijing, worst-case exit: minutes coupon + prepayment + earlier stays", loadTariff("beijing", validateTariff), "small", worstCase);
const compiled = new URL("../dist/core/fees/bill.js", import.meta.url);
if (existsSync(compiled)) {
  const { bill: compiledBill } = (await import(compiled.href)) as { bill: BillFn };
  // Same bills to the fen and line, or the compiled figure means nothing.
  const tariff = loadTariff("beijing", validateTariff);
  const differing = stays("small").filter((stay) => JSON.stringify(compiledBill(tariff, stay, worstCase(stay))) !== JSON.stringify(bill(tariff, stay, worstCase(stay)))).length;
  if (differing > 0) throw new Error(`dist/ bills differ from the sources' on ${differing} of 512 stays: rebuild dist/`);

  const nodeOptions = unitEnvironment().NODE_OPTIONS ?? "";
  const asTheBox: ChildFigures[] = [];
  const defaults: ChildFigures[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    asTheBox.push(compiledChild(nodeOptions));
    defaults.push(compiledChild(""));
  }
  const box = summary(asTheBox);
  report("fees-bills-per-second", {
    tariff: "beijing, worst-case exit, compiled dist/ (as the box runs it)",
    vehicleType: "small",
    stayHours: STAY_HOURS,
    breakdownLines: asTheBox[0]!.breakdownLines,
    nodeOptions,
    nodeOptionsFrom: "systemd/lanekeeper.service Environment=NODE_OPTIONS=",
    liveHeapMb: asTheBox[0]!.liveHeapMb,
    rounds: ROUNDS,
    ...box,
    defaultNodeOptions: summary(defaults),
    budgetBillsPerSecond: 200_000,
    withinBudget: (box.billsPerSecond as number) >= 200_000,
  });
} else report("fees-bills-per-second-compiled-missing", { note: "dist/ not built: run `npm run build` (npm run bench does)" });
const slowest = rates.reduce((a, b) => (b.rate < a.rate ? b : a));
report("fees-3-day-stay-bills-per-second", { tariff: slowest.name, note: "slowest example tariff to evaluate", billsPerSecond: Math.round(slowest.rate) });
