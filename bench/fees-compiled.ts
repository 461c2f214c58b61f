/**
 * Child of bench/fees.bench.ts: the compiled worst-case bill (dist/) timed in a process of its
 * own, started with the node options under test (the unit's NODE_OPTIONS, or none for the
 * baseline), so the young generation is the one the box bills with. Loads nothing of src/ but
 * types.
 *
 * The service bills with its own live heap around it (about 16 MB after a full GC at idle,
 * docs/architecture.md "Start-up and memory budgets"), so the child first fills its heap with
 * live data up to that size (FEES_BENCH_LIVE_HEAP_MB, default 16; what it loaded itself
 * counts) and times the bill in a heap like the box's rather than an empty one.
 *
 * Prints one JSON line: the timing and, from a further 50,000 bills with GC observed, the
 * scavenges (minor GCs) per 1,000 bills and GC's share of the time.
 */
import { PerformanceObserver, constants, type PerformanceEntry } from "node:perf_hooks";
import { billCases, loadTariff, timeBills, worstCase, type BillFn, type ValidateFn } from "./fees-cases.js";
import { percentile, round } from "./lib.js";

const dist = new URL("../dist/core/fees/", import.meta.url);
const { bill } = (await import(new URL("bill.js", dist).href)) as { bill: BillFn };
const { validateTariff } = (await import(new URL("validate-tariff.js", dist).href)) as { validateTariff: ValidateFn };

const tariff = loadTariff("beijing", validateTariff);
const cases = billCases("small", worstCase);

/** Records of a few fields and a short string each, until `mb` MB of the heap are in use (after a full GC). */
function liveHeap(mb: number): unknown[] {
  const records: unknown[] = [];
  const used = (): number => {
    globalThis.gc?.();
    return process.memoryUsage().heapUsed;
  };
  while (used() < mb * 1_048_576) {
    for (let i = 0; i < 10_000; i++) {
      const n = records.length;
      records.push({ id: n, plate: `京A${n.toString(36)}`, atMs: 1_704_067_200_000 + n * 1000, tags: [n & 7, n & 3] });
    }
  }
  return records;
}
const LIVE_HEAP_MB = Number(process.env.FEES_BENCH_LIVE_HEAP_MB ?? 16);
const live = liveHeap(LIVE_HEAP_MB);
const heapBefore = process.memoryUsage().heapUsed;

const cpuBefore = process.cpuUsage();
const timing = timeBills(bill, tariff, cases);
const cpu = process.cpuUsage(cpuBefore);

// Then a fixed number of bills with GC observed (apart, so the observer costs the timing
// nothing): scavenges per 1,000 bills is what a bill allocates, in young generations.
const COUNTED_BILLS = 50_000;
const gcs: PerformanceEntry[] = [];
const observer = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
observer.observe({ entryTypes: ["gc"] });
const countedStart = performance.now();
let sink = 0;
for (let i = 0; i < COUNTED_BILLS; i++) {
  const c = cases[i % cases.length]!;
  sink += bill(tariff, c.stay, c.extras).payableFee;
}
const countedMs = performance.now() - countedStart;
// GC entries arrive asynchronously, after a timer's turn (setImmediate is too early).
await new Promise((resolve) => setTimeout(resolve, 10));
observer.disconnect();
const minor = gcs.filter((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
const gcMs = gcs.reduce((sum, e) => sum + e.duration, 0);

console.log(
  JSON.stringify({
    bills: timing.bills,
    seconds: round(timing.seconds, 3),
    billsPerSecond: Math.round(timing.bills / timing.seconds),
    // On the process's CPU time, GC helper threads included: steadier than the rate on the
    // wall clock when other work shares the machine.
    billsPerCpuSecond: Math.round(timing.bills / ((cpu.user + cpu.system) / 1e6)),
    usPerBillP50: round(percentile(timing.batchUs, 50), 2),
    usPerBillP99: round(percentile(timing.batchUs, 99), 2),
    scavengesPer1000Bills: round((minor * 1000) / COUNTED_BILLS, 1),
    gcShare: round(gcMs / countedMs, 3),
    breakdownLines: bill(tariff, cases[0]!.stay, cases[0]!.extras).breakdown.length,
    liveHeapMb: LIVE_HEAP_MB,
    heapUsedMbBefore: round(heapBefore / 1_048_576, 1),
    checksum: (timing.sink + sink + live.length) % 1_000_003,
  }),
);
