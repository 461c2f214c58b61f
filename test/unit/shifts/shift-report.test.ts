import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildShiftReport, totalsOf, type CashItem, type OpenItem, type ReleaseItem, type RefundSource, type ShiftReport } from "../../../src/shifts/shift-report.js";
import { renderPrintPage } from "../../../src/shifts/print-page.js";

/*
 * The shift report's arithmetic: every total is the sum of the items listed with it, per lane
 * and overall, and an item belongs to exactly one of a row of back-to-back shifts by its time.
 * LK_FUZZ_RUNS=N runs N cases instead of the default.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 60);
const lanes = ["in1", "out1", "out2"] as const;
const context = { deviceId: "box-1", lot: { name: "Test lot", parkCode: "P1", timeZone: "Asia/Shanghai" }, laneIds: ["in1", "out1"] };
const T0 = 1_714_521_600_000;

const time = fc.integer({ min: T0 - 50_000, max: T0 + 150_000 });
const lane = fc.constantFrom(...lanes);
const cashItem = fc.record({
  recordNo: fc.string({ maxLength: 6 }),
  plate: fc.string({ maxLength: 8 }),
  laneId: lane,
  amountFen: fc.integer({ min: 1, max: 100_000 }),
  atMs: time,
  operator: fc.string({ maxLength: 6 }),
  orderNo: fc.string({ maxLength: 6 }),
  path: fc.constantFrom("cash", "cash-fallback"),
}) as fc.Arbitrary<CashItem>;
const releaseItem = fc.record({
  recordNo: fc.string({ maxLength: 6 }),
  plate: fc.string({ maxLength: 8 }),
  laneId: lane,
  atMs: time,
  operator: fc.string({ maxLength: 6 }),
  reason: fc.string({ maxLength: 12 }),
  dueFen: fc.nat(50_000),
}) as fc.Arbitrary<ReleaseItem>;
const openItem = fc.record({
  laneId: lane,
  atMs: time,
  operator: fc.string({ maxLength: 6 }),
  reason: fc.string({ maxLength: 12 }),
  plate: fc.string({ maxLength: 8 }),
}) as fc.Arbitrary<OpenItem>;
const refund = fc
  .record({
    n: fc.nat(1_000_000),
    laneId: lane,
    amountFen: fc.integer({ min: 1, max: 100_000 }),
    viaCash: fc.boolean(),
    foundAtMs: time,
    refundedAfterMs: fc.option(fc.nat(120_000), { nil: undefined }),
  })
  .map((r): RefundSource => ({
    id: `R${r.n}`,
    laneId: r.laneId,
    plate: "粤A1",
    recordNo: `rec-${r.n}`,
    amountFen: r.amountFen,
    refundVia: r.viaCash ? "cash" : "platform",
    foundAtMs: r.foundAtMs,
    ...(r.refundedAfterMs === undefined ? {} : { refundedAtMs: r.foundAtMs + r.refundedAfterMs, refundedBy: "booth" }),
  }));
const uniqueRefunds = fc.uniqueArray(refund, { selector: (r) => r.id, maxLength: 12 });
/** Back-to-back shifts: cut points between T0 and T0 + 100 s. */
const cuts = fc.uniqueArray(fc.integer({ min: T0, max: T0 + 100_000 }), { minLength: 2, maxLength: 6 }).map((xs) => [...xs].sort((a, b) => a - b));

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

function checkSums(report: ShiftReport): void {
  assert.ok(
    report.cash.items.every((i) => Number.isSafeInteger(i.amountFen)),
    "fen are integers",
  );
  assert.equal(report.cash.totalFen, sum(report.cash.items.map((i) => i.amountFen)), "cash total = sum of the cash items");
  assert.equal(report.cash.count, report.cash.items.length);
  assert.equal(sum(report.cash.lanes.map((l) => l.totalFen)), report.cash.totalFen, "per-lane cash adds up to the total");
  assert.equal(sum(report.cash.lanes.map((l) => l.count)), report.cash.count);
  for (const l of report.cash.lanes) assert.equal(l.totalFen, sum(report.cash.items.filter((i) => i.laneId === l.laneId).map((i) => i.amountFen)), `lane ${l.laneId}`);
  assert.equal(report.releases.dueFen, sum(report.releases.items.map((i) => i.dueFen)));
  assert.equal(sum(report.releases.lanes.map((l) => l.dueFen)), report.releases.dueFen);
  assert.equal(sum(report.opens.lanes.map((l) => l.count)), report.opens.count);
  const { found, carried, owedAtEnd, refundedInShift } = report.refunds;
  assert.equal(found.totalFen, sum(found.items.map((r) => r.amountFen)));
  assert.equal(carried.totalFen, sum(carried.items.map((r) => r.amountFen)));
  const both = [...found.items, ...carried.items];
  assert.equal(owedAtEnd.totalFen, sum(both.filter((r) => r.owedAtEnd).map((r) => r.amountFen)));
  assert.equal(owedAtEnd.cashFen, sum(both.filter((r) => r.owedAtEnd && r.refundVia === "cash").map((r) => r.amountFen)));
  assert.equal(refundedInShift.totalFen, sum(both.filter((r) => r.refundedInShift).map((r) => r.amountFen)));
  assert.equal(report.drawerFen, report.cash.totalFen - refundedInShift.cashFen, "drawer = cash taken − cash handed back");
  for (const l of context.laneIds)
    assert.ok(
      report.cash.lanes.some((x) => x.laneId === l),
      `configured lane ${l} listed even when idle`,
    );
  const totals = totalsOf(report);
  assert.equal(totals.cashFen, report.cash.totalFen);
  assert.equal(totals.refundsOwedFen, owedAtEnd.totalFen);
}

test("every fen explained: totals are the sums of the listed items, and each item lands in exactly one of back-to-back shifts (property)", () => {
  fc.assert(
    fc.property(
      fc.array(cashItem, { maxLength: 25 }),
      fc.array(releaseItem, { maxLength: 10 }),
      fc.array(openItem, { maxLength: 10 }),
      uniqueRefunds,
      cuts,
      (cash, releases, opens, refunds, bounds) => {
        const sources = { cash, releases, opens, refunds };
        const reports: ShiftReport[] = [];
        for (let i = 0; i + 1 < bounds.length; i++) {
          const [startedAtMs, endedAtMs] = [bounds[i]!, bounds[i + 1]!];
          reports.push(buildShiftReport({ shiftId: `s${i}`, operator: "王芳", startedAtMs, endedAtMs, asOfMs: endedAtMs }, sources, context));
        }
        for (const report of reports) checkSums(report);
        const first = bounds[0]!;
        const last = bounds.at(-1)!;
        // Each item inside [first, last) is in exactly one shift; items outside are in none.
        for (const item of cash) {
          const holders = reports.filter((r) => r.cash.items.includes(item)).length;
          assert.equal(holders, item.atMs >= first && item.atMs < last ? 1 : 0, `cash at ${item.atMs} with cuts ${bounds.join(",")}`);
        }
        for (const item of releases) assert.equal(reports.filter((r) => r.releases.items.includes(item)).length, item.atMs >= first && item.atMs < last ? 1 : 0);
        for (const item of opens) assert.equal(reports.filter((r) => r.opens.items.includes(item)).length, item.atMs >= first && item.atMs < last ? 1 : 0);
        for (const r of refunds) {
          const foundIn = reports.filter((rep) => rep.refunds.found.items.some((x) => x.id === r.id)).length;
          assert.equal(foundIn, r.foundAtMs >= first && r.foundAtMs < last ? 1 : 0, "a refund is found in exactly one shift");
          const refundedIn = reports.filter((rep) => [...rep.refunds.found.items, ...rep.refunds.carried.items].some((x) => x.id === r.id && x.refundedInShift)).length;
          const refundedInRange = r.refundedAtMs !== undefined && r.refundedAtMs >= Math.max(first, r.foundAtMs) && r.refundedAtMs < last;
          assert.equal(refundedIn, refundedInRange ? 1 : 0, "paid back in exactly one shift");
          // Owed at a shift's start: listed as carried by that shift (unless found in it).
          for (const rep of reports) {
            const owedAtStart = r.foundAtMs < rep.startedAtMs && (r.refundedAtMs === undefined || r.refundedAtMs >= rep.startedAtMs);
            assert.equal(
              rep.refunds.carried.items.some((x) => x.id === r.id),
              owedAtStart,
            );
          }
        }
      },
    ),
    { numRuns: runs },
  );
});

test("a refund found while the platform was down and paid back later: found in one shift, carried by the next, refunded there", () => {
  const refund: RefundSource = {
    id: "R1",
    laneId: "out1",
    plate: "粤A1",
    recordNo: "r1",
    amountFen: 500,
    refundVia: "cash",
    foundAtMs: T0 + 10,
    refundedAtMs: T0 + 150,
    refundedBy: "李",
  };
  const cash: CashItem[] = [{ recordNo: "r1", plate: "粤A1", laneId: "out1", amountFen: 500, atMs: T0 + 5, operator: "王", orderNo: "o1", path: "cash" }];
  const first = buildShiftReport(
    { shiftId: "a", operator: "王", startedAtMs: T0, endedAtMs: T0 + 100, asOfMs: T0 + 100 },
    { cash, releases: [], opens: [], refunds: [refund] },
    context,
  );
  assert.deepEqual([first.refunds.found.count, first.refunds.owedAtEnd.totalFen, first.refunds.owedAtEnd.cashFen, first.drawerFen], [1, 500, 500, 500]);
  const second = buildShiftReport(
    { shiftId: "b", operator: "李", startedAtMs: T0 + 100, endedAtMs: T0 + 200, asOfMs: T0 + 200 },
    { cash, releases: [], opens: [], refunds: [refund] },
    context,
  );
  assert.deepEqual(
    [second.refunds.found.count, second.refunds.carried.count, second.refunds.owedAtEnd.count, second.refunds.refundedInShift.cashFen, second.drawerFen],
    [0, 1, 0, 500, -500],
  );
});

test("the printable page escapes what people typed and shows times in the lot's zone", () => {
  const report = buildShiftReport(
    { shiftId: "s1", operator: "<b>王</b>", startedAtMs: Date.UTC(2024, 4, 1, 0, 0, 0), endedAtMs: Date.UTC(2024, 4, 1, 8, 0, 0), asOfMs: Date.UTC(2024, 4, 1, 8, 0, 0) },
    {
      cash: [],
      releases: [{ recordNo: "r", plate: "粤A1", laneId: "out1", atMs: Date.UTC(2024, 4, 1, 1, 0, 0), operator: "x", reason: `"><script>alert(1)</script>`, dueFen: 1234 }],
      opens: [],
      refunds: [],
    },
    context,
  );
  const html = renderPrintPage(report);
  assert.ok(!html.includes("<script>"), "no markup from input");
  assert.ok(html.includes("&lt;b&gt;王&lt;/b&gt;"));
  assert.ok(html.includes("2024-05-01 08:00:00"), "start in Asia/Shanghai (UTC+8)");
  assert.ok(html.includes("2024-05-01 16:00:00"), "end in Asia/Shanghai");
  assert.ok(html.includes("12.34"), "fen shown as exact yuan");
});
