import { test } from "node:test";
import assert from "node:assert/strict";
import type { LotStore } from "../../../src/store/lot-store.js";
import type { InParkChange } from "../../../src/store/stays.js";
import type { InParkRecordInput } from "../../../src/store/records.js";
import { inParkRecordSchema } from "../../../src/store/records.js";
import { waitUntil, withLotStore } from "../../helpers/store-fixtures.js";

/*
 * The store's side of lot sharing: the in-park change notification (told after the commit,
 * with its source) and the replica writes (durable, never told as this box's own).
 */

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
const hlc = { wallMs: T0, counter: 0, deviceId: "north-box" };

function stay(n: number, extra: Partial<InParkRecordInput> = {}): InParkRecordInput {
  return { recordNo: `L1_2026060108${String(n).padStart(7, "0")}`, plate: `粤B${String(10000 + n)}`, laneId: "L1", enterAtMs: T0 + n * 1000, entryReport: "none", ...extra };
}

async function withStore(run: (store: LotStore, changes: InParkChange[], reopen: () => Promise<LotStore>) => Promise<void>): Promise<void> {
  await withLotStore(T0, async (store, reopen) => {
    const changes: InParkChange[] = [];
    store.onInParkChange((change) => changes.push(change));
    await run(store, changes, reopen);
  });
}

test("every in-park change is told once, after its commit, as local", async () => {
  await withStore(async (store, changes) => {
    await store.addInPark(stay(1));
    await waitUntil(() => changes.length === 1, 2000, "the add told");
    assert.equal(changes[0]!.kind, "upsert");
    assert.equal(changes[0]!.source, "local");
    // Two writes in one step: one notice, with the latest record.
    await Promise.all([store.updateInPark(stay(1).recordNo, { plate: "粤B99999" }), store.addCoupon(stay(1).recordNo, { couponId: "c1", kind: "amount", value: 100 })]);
    await waitUntil(() => changes.length >= 2, 2000, "the edits told");
    const last = changes.at(-1)!;
    assert.ok(last.kind === "upsert" && last.record.plate === "粤B99999" && last.record.coupons.length === 1);
    await store.recordPayment({ orderNo: "P1", recordNo: stay(1).recordNo, amountFen: 500, payAtMs: T0 });
    await waitUntil(() => changes.some((c) => c.kind === "upsert" && c.record.prepayments.length === 1), 2000, "the payment told");
    const before = changes.length;
    await store.finishStay(stay(1).recordNo, { laneId: "L2", leaveAtMs: T0 + 60_000, payableFen: 500, prepaidFen: 500 });
    await waitUntil(() => changes.length === before + 1, 2000, "the finish told");
    const finished = changes.at(-1)!;
    assert.equal(finished.kind, "finished");
    assert.ok(finished.kind === "finished" && finished.stay.exit.payableFen === 500 && finished.source === "local");
  });
});

test("replicas: written durably, told as the lot's, marked with their box, and removed without history", async () => {
  await withStore(async (store, changes, reopen) => {
    const record = inParkRecordSchema.parse({
      ...stay(2),
      entryReport: "queued",
      pendingExit: { laneId: "X", plateId: "p", atMs: 1, payableFen: 0, discountFen: 0, dueFen: 0 },
      extra: { settlement: { x: 1 }, plateRaw: "B" },
    });
    const replica = await store.upsertReplica(record, { deviceId: "north-box", hlc });
    assert.equal(replica.entryReport, "queued", "the lot has not said the entering box's report was delivered");
    assert.equal(replica.pendingExit, undefined);
    assert.deepEqual(replica.extra, { plateRaw: "B" });
    assert.deepEqual(replica.replicaOf, { deviceId: "north-box", hlc });
    await waitUntil(() => changes.length === 1, 2000, "the replica told");
    assert.equal(changes[0]!.source, "lot");
    assert.equal(store.findInParkByPlate(record.plate)[0]?.recordNo, record.recordNo, "found by plate like any stay");

    // A later local edit of the replica (a payment here) is this box's change.
    await store.recordPayment({ orderNo: "P2", recordNo: record.recordNo, amountFen: 100, payAtMs: T0 });
    await waitUntil(() => changes.length === 2, 2000, "the payment told");
    assert.equal(changes[1]!.source, "local");

    // Durable: a restart finds it.
    const again = await reopen();
    assert.deepEqual(again.getInPark(record.recordNo)?.replicaOf, { deviceId: "north-box", hlc });
    const told: InParkChange[] = [];
    again.onInParkChange((c) => told.push(c));
    assert.equal(await again.removeReplica(record.recordNo), true);
    assert.equal(again.getInPark(record.recordNo), undefined);
    await waitUntil(() => told.length === 1, 2000, "the removal told");
    assert.deepEqual(told[0], { kind: "removed", source: "lot", recordNo: record.recordNo });
    assert.deepEqual(await again.recentStays(record.plate), [], "no history line here: the finishing box keeps it");
    assert.equal(await again.removeReplica(record.recordNo), false);
  });
});

test("another box's edit of this box's own stay keeps the local fields", async () => {
  await withStore(async (store) => {
    await store.addInPark(stay(3, { entryReport: "queued", extra: { plateRaw: "own" } }));
    const edited = inParkRecordSchema.parse({ ...stay(3), plate: "粤B77777", enterAtMs: T0 - 60_000, prepayments: [{ orderNo: "P3", amountFen: 200, payAtMs: T0 }] });
    const after = await store.upsertReplica(edited, { deviceId: "north-box", hlc });
    assert.equal(after.replicaOf, undefined, "still this box's own stay");
    assert.equal(after.entryReport, "queued");
    assert.deepEqual(after.extra, { plateRaw: "own" });
    assert.equal(after.plate, "粤B77777");
    assert.equal(after.enterAtMs, T0 - 60_000, "an entry time the platform corrected at the other box");
    assert.equal(after.prepayments[0]?.amountFen, 200);
  });
});

test("a replica's entry report said delivered by the lot stays delivered when a version without the fact comes", async () => {
  await withStore(async (store) => {
    const reported = inParkRecordSchema.parse({ ...stay(4), entryReport: "delivered" });
    assert.equal((await store.upsertReplica(reported, { deviceId: "north-box", hlc })).entryReport, "delivered");
    // Another box's later edit, written before it heard the fact (or an older box that never says it).
    const later = inParkRecordSchema.parse({ ...stay(4), entryReport: "queued", prepayments: [{ orderNo: "P4", amountFen: 100, payAtMs: T0 }] });
    const after = await store.upsertReplica(later, { deviceId: "north-box", hlc: { ...hlc, counter: hlc.counter + 1 } });
    assert.equal(after.entryReport, "delivered");
    assert.equal(after.prepayments[0]?.amountFen, 100, "the edit itself is taken");
  });
});
