import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness } from "../helpers/lot-harness.js";
import type { InParkRecord } from "../../src/store/records.js";

/*
 * The booth's records over the real composition: stays driven through the lanes (a cash exit,
 * a hand release, a car still in the lot), then searched by plate (also a misread plate), time
 * range and status, paged, and one stay's whole history read back.
 */

const HOUR_MS = 3_600_000;

let lot: LotHarness;
let paid: InParkRecord;
let released: InParkRecord;
let inPark: InParkRecord;

interface Row {
  recordNo: string;
  plate: string;
  status: string;
  stayMs: number;
  paidFen: number;
  owedFen: number;
  match: string;
  leaveAtMs: number | null;
}

const search = async (query: string): Promise<{ items: Row[]; hasMore: boolean; inParkTotal: number; inPark: unknown[]; recent: unknown[] }> => {
  const answer = await lot.api("GET", `/api/records${query}`);
  assert.equal(answer.status, 200, `${query}: ${JSON.stringify(answer.body)}`);
  return answer.body;
};
const numbers = (rows: Row[]): string[] => rows.map((r) => r.recordNo).sort();

before(async () => {
  lot = await LotHarness.create();
  paid = await lot.park("粤A10001", 2.5 * HOUR_MS);
  released = await lot.park("粤B20002", 3 * HOUR_MS);
  inPark = await lot.park("粤C30003", 1 * HOUR_MS);

  await lot.arrive("out1", paid.plate);
  await lot.awaitingPayment("out1");
  assert.equal((await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王芳", reason: "现金" })).status, 200);
  await lot.pass("out1");

  await lot.arrive("out1", released.plate);
  await lot.awaitingPayment("out1");
  assert.equal((await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "王芳", reason: "设备故障" })).status, 200);
  await lot.pass("out1");
  await lot.until(() => lot.app.store.getInPark(released.recordNo) === undefined, 3000, "the released stay finished");
  await lot.drained();
});

after(() => lot?.stop());

test("without a filter: the car in the lot first with its stay so far, then the finished stays newest first", async () => {
  const all = await search("");
  assert.deepEqual(
    all.items.map((r) => [r.recordNo, r.status]),
    [
      [inPark.recordNo, "in-park"],
      [released.recordNo, "released"],
      [paid.recordNo, "paid"],
    ],
  );
  const here = all.items[0]!;
  assert.ok(here.stayMs >= HOUR_MS && here.stayMs < HOUR_MS + 60_000, `stay so far ${here.stayMs}`);
  assert.equal(here.leaveAtMs, null);
  const cash = all.items.find((r) => r.recordNo === paid.recordNo)!;
  assert.ok(cash.paidFen > 0 && cash.owedFen === 0, JSON.stringify(cash));
  const hand = all.items.find((r) => r.recordNo === released.recordNo)!;
  assert.ok(hand.paidFen === 0 && hand.owedFen > 0, JSON.stringify(hand));
  // The first release's fields stay: whole records behind the page's rows.
  assert.equal(all.inPark.length, 1);
  assert.equal(all.recent.length, 2);
  assert.equal(all.inParkTotal, 1);
});

test("by plate: part of it, another spelling, and a whole plate read a character off", async () => {
  assert.deepEqual(numbers((await search(`?plate=${encodeURIComponent("a1000")}`)).items), [paid.recordNo]);
  assert.deepEqual(numbers((await search(`?plate=${encodeURIComponent("粤Ｃ·30003")}`)).items), [inPark.recordNo]);
  // The province misread (鄂 for 粤) and O for 0: found, and marked as a fuzzy match.
  const fuzzy = await search(`?plate=${encodeURIComponent("鄂A1O001")}`);
  assert.deepEqual(
    fuzzy.items.map((r) => [r.recordNo, r.match]),
    [[paid.recordNo, "fuzzy"]],
  );
  assert.deepEqual((await search(`?plate=${encodeURIComponent("粤Z99999")}`)).items, []);
});

test("by status and time range", async () => {
  assert.deepEqual(numbers((await search("?status=in-park")).items), [inPark.recordNo]);
  assert.deepEqual(numbers((await search("?status=paid")).items), [paid.recordNo]);
  assert.deepEqual(numbers((await search("?status=released")).items), [released.recordNo]);
  assert.deepEqual(numbers((await search("?status=unpaid")).items), [released.recordNo], "a hand release left owing its bill");
  const now = lot.app.clock.now();
  // Stays that overlap the range: entered before `to`, and (for finished ones) left after `from`.
  assert.deepEqual(numbers((await search(`?to=${now - 2 * HOUR_MS}`)).items), numbers([{ recordNo: paid.recordNo }, { recordNo: released.recordNo }] as Row[]));
  assert.deepEqual(numbers((await search(`?from=${now + 60_000}`)).items), [inPark.recordNo], "only the car still in the lot overlaps the future");
  const iso = new Date(now - 2.75 * HOUR_MS).toISOString().replace("Z", "+00:00");
  assert.deepEqual(numbers((await search(`?to=${encodeURIComponent(iso)}`)).items), [released.recordNo]);
});

test("paging: pages do not overlap and say when there is more", async () => {
  const first = await search("?pageSize=2");
  const second = await search("?pageSize=2&page=2");
  assert.equal(first.items.length, 2);
  assert.equal(first.hasMore, true);
  assert.equal(second.items.length, 1);
  assert.equal(second.hasMore, false);
  assert.deepEqual(numbers([...first.items, ...second.items]), numbers((await search("")).items));
});

test("bad query parameters are refused with E_RECORDS_QUERY and change nothing", async () => {
  for (const query of [
    "?status=gone",
    "?page=0",
    "?pageSize=201",
    "?from=yesterday",
    "?from=2024-05-01T08:00:00",
    "?from=10&to=5",
    "?plate=1&plate=2",
    "?sort=plate",
    `?plate=${"A".repeat(33)}`,
  ]) {
    const answer = await lot.api("GET", `/api/records${query}`);
    assert.equal(answer.status, 400, query);
    assert.equal(answer.body.error.code, "E_RECORDS_QUERY", query);
  }
  assert.equal(lot.app.store.inParkCount(), 1);
});

test("a stay's whole history: record, settlement, payments, the audit of the hand release, and its reports", async () => {
  const detail = await lot.api("GET", `/api/records/${encodeURIComponent(released.recordNo)}`);
  assert.equal(detail.status, 200, JSON.stringify(detail.body));
  const body = detail.body;
  assert.equal(body.row.status, "released");
  assert.equal(body.settlement.reason, "manual");
  assert.equal(body.settlement.operator, "王芳");
  assert.equal(body.record.plate, released.plate);
  const types = (body.events as Array<{ type: string; reason?: string }>).map((e) => e.type);
  assert.ok(types.includes("payment"), types.join(","));
  assert.ok(
    body.events.some((e: { type: string; reason?: string }) => e.type === "payment" && e.reason === "设备故障"),
    "the hand release with its reason",
  );
  assert.deepEqual(body.reports.pending, [], "delivered: nothing left in the outbox");
  assert.equal(body.reports.leaveReport, "delivered");
  assert.ok(lot.emulator.received({ service: "leaveNotify", recordNo: released.recordNo }).length >= 1, "and the platform has the leave report");

  const cash = (await lot.api("GET", `/api/records/${encodeURIComponent(paid.recordNo)}`)).body;
  assert.equal(cash.row.status, "paid");
  assert.ok(cash.settlement.paidFen > 0);

  const here = (await lot.api("GET", `/api/records/${encodeURIComponent(inPark.recordNo)}`)).body;
  assert.equal(here.row.status, "in-park");
  assert.equal(here.settlement, null);

  const missing = await lot.api("GET", "/api/records/in1_20200101000000000");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "E_RECORD_NOT_FOUND");
  const bad = await lot.api("GET", `/api/records/${encodeURIComponent("a b")}`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "E_RECORDS_QUERY");
});

test("a report still on its way shows in the stay's history with its delivery state", async () => {
  await lot.emulator.stop().catch(() => undefined);
  const late = await lot.park("粤D40004", HOUR_MS, { entryReport: "none" });
  await lot.app.outbox.enqueue({ recordNo: late.recordNo, kind: "enter", service: "enterNotify", biz: { recordNo: late.recordNo, plateNum: late.plate } });
  await lot.until(() => (lot.app.outbox.list({ recordNo: late.recordNo })[0]?.attempts ?? 0) > 0, 5000, "a failed attempt");
  const detail = (await lot.api("GET", `/api/records/${encodeURIComponent(late.recordNo)}`)).body;
  assert.equal(detail.reports.pending.length, 1);
  assert.equal(detail.reports.pending[0].kind, "enter");
  assert.equal(detail.reports.pending[0].state, "retrying");
  assert.equal(detail.reports.entryReport, "retrying");
  assert.equal(detail.reports.leaveReport, null, "still in the lot: no leave report yet");
});
