import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readFile, readdir, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { FakeClock } from "../../helpers/fake-clock.js";
import { LotStore, type LotStoreOptions } from "../../../src/store/lot-store.js";
import { StoreErrorCode, isStoreError } from "../../../src/store/errors.js";
import type { InParkRecordInput } from "../../../src/store/records.js";
import { freshDir, waitUntil } from "../../helpers/store-fixtures.js";

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);

async function journalText(dir: string, doc: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.startsWith(`${doc}.journal.`)).sort();
  let text = "";
  for (const name of names) text += await readFile(join(dir, name), "utf8");
  return text;
}

function stay(n: number, extra: Partial<InParkRecordInput> = {}): InParkRecordInput {
  return { recordNo: `L1_2026060108${String(n).padStart(7, "0")}`, plate: `粤B${String(10000 + n)}`, laneId: "L1", enterAtMs: T0 + n * 1000, ...extra };
}

async function withStore(
  run: (store: LotStore, ctx: { dir: string; clock: FakeClock; reopen: (o?: Partial<LotStoreOptions>) => Promise<LotStore> }) => Promise<void>,
  options: Partial<LotStoreOptions> = {},
): Promise<void> {
  const { dir, cleanup } = await freshDir();
  const clock = new FakeClock(T0);
  const open: LotStore[] = [];
  const make = async (o: Partial<LotStoreOptions> = {}): Promise<LotStore> => {
    const store = new LotStore({ dir, clock, pruneJob: false, ...options, ...o });
    await store.start();
    open.push(store);
    return store;
  };
  try {
    const store = await make();
    await run(store, {
      dir,
      clock,
      reopen: async (o) => {
        for (const s of open) await s.stop();
        return make(o);
      },
    });
  } finally {
    for (const s of open) await s.stop();
    await cleanup();
  }
}

test("addInPark is durable when it resolves; duplicates and bad input change nothing", async () => {
  await withStore(async (store, { dir }) => {
    const record = await store.addInPark(stay(1, { plateColor: 1, carType: 9, carSubType: 91 }));
    assert.equal(record.entryReport, "queued");
    assert.deepEqual(record.prepayments, []);
    const journal = await journalText(dir, "inpark.json");
    assert.ok(journal.includes(`["inPark","${record.recordNo}",{`), "journaled before the promise resolved");
    await assert.rejects(store.addInPark(stay(1)), (e: unknown) => isStoreError(e, StoreErrorCode.Duplicate));
    await assert.rejects(store.addInPark({ ...stay(2), enterAtMs: "soon" as unknown as number }), (e: unknown) => isStoreError(e, StoreErrorCode.Invalid));
    assert.equal(store.inParkCount(), 1);
    assert.deepEqual(
      store.findInParkByPlate(" 粤b10001 ").map((r) => r.recordNo),
      [record.recordNo],
      "plate lookup ignores case and spaces",
    );
  });
});

test("an event line waits for the in-park commit in flight, then is archived in order", async () => {
  await withStore(async (store) => {
    let committed = false;
    const commit = store.addInPark(stay(7)).then(() => (committed = true));
    const seen: boolean[] = [];
    const first = store.appendEvent({ type: "probe-a", recordNo: stay(7).recordNo }).then(() => seen.push(committed));
    const second = store.appendEvent({ type: "probe-b", recordNo: stay(7).recordNo }).then(() => seen.push(committed));
    await Promise.all([commit, first, second]);
    assert.deepEqual(seen, [true, true], "neither event line was written beside the fsync of the stay");
    const lines = await store.history.recent((line) => line.t === "event", { limit: 10 });
    assert.deepEqual(lines.map((line) => line.type).reverse(), ["probe-a", "probe-b"]);
    // Nothing in flight: archived at once.
    await store.appendEvent({ type: "probe-c" });
    assert.equal((await store.history.recent((line) => line.t === "event", { limit: 1 }))[0]?.type, "probe-c");
  });
});

test("event lines keep their order behind a deferred one, and a deferred one is in before stop closes the history", async () => {
  await withStore(async (store, { reopen }) => {
    const commit = store.addInPark(stay(9));
    const first = store.appendEvent({ type: "order-a" });
    await commit;
    // No commit in flight any more, but order-a is still on its way: order-b goes behind it.
    const second = store.appendEvent({ type: "order-b" });
    await Promise.all([first, second]);
    const lines = await store.history.recent((line) => line.t === "event", { limit: 2 });
    assert.deepEqual(
      lines.map((line) => line.type),
      ["order-b", "order-a"],
      "newest first",
    );

    void store.addInPark(stay(10));
    const atStop = store.appendEvent({ type: "at-stop" });
    await store.stop();
    await atStop;
    const reopened = await reopen();
    assert.equal((await reopened.history.recent((line) => line.t === "event", { limit: 1 }))[0]?.type, "at-stop");
  });
});

test("recentStays counts stays, not the plate's newer event lines", async () => {
  await withStore(async (store) => {
    await store.addInPark(stay(8));
    await store.finishStay(stay(8).recordNo, { laneId: "L2", leaveAtMs: T0 + 3_600_000, payableFen: 500, paidFen: 500 });
    for (const type of ["vehicle-left", "plate-read", "no-entry-record"]) await store.appendEvent({ type, plate: stay(8).plate });
    const [newest] = await store.recentStays(stay(8).plate, { limit: 1 });
    assert.equal(newest?.recordNo, stay(8).recordNo);
  });
});

test("finishStay moves the stay to history and out of the in-park records, across a restart", async () => {
  await withStore(async (store, { reopen, clock }) => {
    await store.addInPark(stay(1));
    await store.addInPark(stay(2));
    const finished = await store.finishStay(stay(1).recordNo, { laneId: "L2", leaveAtMs: T0 + 3_600_000, payableFen: 500, paidFen: 500, payType: "cash", reason: "cash-fallback" });
    assert.equal(finished.exit.payableFen, 500);
    assert.equal(finished.exit.discountFen, 0, "defaults filled in");
    assert.equal(store.getInPark(stay(1).recordNo), undefined);
    assert.deepEqual(store.findInParkByPlate("粤B10001"), [], "the plate index follows the change");
    assert.equal(store.findInParkByPlate("粤B10002").length, 1);
    assert.equal(store.status().finishing, 0);
    await assert.rejects(store.finishStay("nope", { laneId: "L2", leaveAtMs: T0 }), (e: unknown) => isStoreError(e, StoreErrorCode.NotFound));

    clock.jump(1000);
    const again = await reopen();
    assert.equal(again.inParkCount(), 1);
    assert.ok(again.getInPark(stay(2).recordNo));
    const recent = await again.recentStays("粤B10001");
    assert.equal(recent.length, 1);
    assert.equal(recent[0]!.recordNo, stay(1).recordNo);
    assert.equal(recent[0]!.exit.reason, "cash-fallback");
    assert.equal(recent[0]!.enterAtMs, stay(1).enterAtMs, "the stay keeps its entry time exactly");
  });
});

test("a stay left in `finishing` by a crash is moved to history at the next start", async () => {
  await withStore(async (store, { dir, reopen }) => {
    const record = await store.addInPark(stay(7));
    await store.stop();
    // What a crash right after step 1 of finishStay leaves behind: the journal line that
    // moved the stay from inPark to finishing, and nothing in history.
    const journals = (await readdir(dir)).filter((n) => n.startsWith("inpark.json.journal.")).sort();
    const finishing = {
      ...record,
      exit: { laneId: "L2", leaveAtMs: T0 + 60_000, payableFen: 0, discountFen: 0, prepaidFen: 0, paidFen: 0, reason: "normal" },
      finishedAtMs: T0 + 60_000,
    };
    await appendFile(
      join(dir, journals.at(-1)!),
      JSON.stringify({
        s: 1000,
        o: [
          ["inPark", record.recordNo],
          ["finishing", record.recordNo, finishing],
        ],
      }) + "\n",
    );
    const again = await reopen();
    assert.equal(again.status().finishing, 0);
    assert.equal(again.inParkCount(), 0);
    const recent = await again.recentStays(record.plate);
    assert.deepEqual(
      recent.map((s) => s.recordNo),
      [record.recordNo],
    );
  });
});

test("payments are idempotent on orderNo and applied to the stay as prepayments", async () => {
  await withStore(async (store, { reopen }) => {
    await store.addInPark(stay(3));
    const first = await store.recordPayment({ orderNo: "TC2026060108100000001", plate: "粤B10003", amountFen: 300, payAtMs: T0 + 600_000, payType: "wechat" });
    assert.equal(first.duplicate, false);
    assert.equal(first.appliedTo, stay(3).recordNo);
    const second = await store.recordPayment({ orderNo: "TC2026060108100000001", plate: "粤B10003", amountFen: 999, payAtMs: T0 });
    assert.equal(second.duplicate, true);
    assert.equal(second.payment.amountFen, 300, "the first notice wins");
    const again = await reopen();
    assert.deepEqual(
      again.getInPark(stay(3).recordNo)!.prepayments.map((p) => [p.orderNo, p.amountFen]),
      [["TC2026060108100000001", 300]],
    );
    assert.equal((await again.recordPayment({ orderNo: "TC2026060108100000001", amountFen: 1, payAtMs: T0 })).duplicate, true, "remembered across a restart");
  });
});

test("coupons attach to a stay once per couponId", async () => {
  await withStore(async (store) => {
    await store.addInPark(stay(4));
    await store.addCoupon(stay(4).recordNo, { couponId: "C1", kind: "amount", value: 200 });
    const record = await store.addCoupon(stay(4).recordNo, { couponId: "C1", kind: "amount", value: 200 });
    assert.equal(record.coupons.length, 1);
    await assert.rejects(store.addCoupon(stay(4).recordNo, { couponId: "C2", kind: "bogus" as "free", value: 1 }), (e: unknown) => isStoreError(e, StoreErrorCode.Invalid));
  });
});

test("fixed vehicles: add assigns id and uuId, edit replaces whole, plate stays unique, filter and pages", async () => {
  await withStore(async (store, { reopen }) => {
    const added = await store.upsertVehicle({
      carNum: "粤B54321",
      owner: "张三",
      carTypeCode: 81,
      carMMoneyFen: 20050,
      timeStartMs: T0,
      timeEndMs: T0 + 365 * 86_400_000,
      tel: "13800000000",
      remark: "north gate",
    });
    assert.equal(added.id, 1);
    assert.match(added.uuId, /^[0-9A-F]{32}$/);
    const edited = await store.upsertVehicle({ uuId: added.uuId, carNum: "粤B54321", owner: "张三", carTypeCode: 82 });
    assert.equal(edited.id, 1);
    assert.equal(edited.carTypeCode, 82);
    assert.equal(edited.remark, "", "editCar is a full replacement: an absent field is cleared");
    assert.equal(edited.createdAtMs, added.createdAtMs);
    const byId = await store.upsertVehicle({ id: 1, carNum: "粤B54321", owner: "李四", carTypeCode: 82 });
    assert.equal(byId.uuId, added.uuId, "found by id when no uuId is given");
    await assert.rejects(store.upsertVehicle({ carNum: "粤b 54321", owner: "x", carTypeCode: 81 }), (e: unknown) => isStoreError(e, StoreErrorCode.Duplicate));
    const platformUuid = "C6B410C4FF634D13AAC544F4B4397418";
    await store.upsertVehicle({ uuId: platformUuid, carNum: "粤B12345", owner: "王五", carTypeCode: 81, carGroupID: 3 });
    for (let i = 0; i < 23; i++) await store.upsertVehicle({ carNum: `沪A${String(i).padStart(5, "0")}`, owner: `o${i}`, carTypeCode: 91 });
    assert.equal(store.vehiclesByPlate("粤B12345")[0]?.uuId, platformUuid);
    // The plate index is kept up to date change by change once built.
    await store.upsertVehicle({ uuId: platformUuid, carNum: "粤B12346", owner: "王五", carTypeCode: 81, carGroupID: 3 });
    assert.deepEqual(store.vehiclesByPlate("粤B12345"), []);
    assert.equal(store.vehiclesByPlate("粤b12346")[0]?.uuId, platformUuid);
    await store.upsertVehicle({ uuId: platformUuid, carNum: "粤B12345", owner: "王五", carTypeCode: 81, carGroupID: 3 });
    const page2 = store.listVehicles({ carTypeCode: 91 }, { page: 2, pageSize: 10 });
    assert.deepEqual([page2.currentPage, page2.totalPages, page2.totalItems, page2.itemsPerPage, page2.items.length], [2, 3, 23, 10, 10]);
    assert.equal(store.listVehicles({ carGroupID: 3 }).items[0]?.carNum, "粤B12345");
    assert.equal(store.listVehicles({ carNum: "粤B" }).totalItems, 2, "plate filter matches a substring");
    assert.equal(await store.deleteVehicle({ uuId: platformUuid }), true);
    assert.equal(await store.deleteVehicle({ uuId: platformUuid }), false);
    const again = await reopen();
    assert.equal(again.vehicles.count(), 24);
    assert.equal(again.getVehicle({ id: 1 })?.owner, "李四");
    const next = await again.upsertVehicle({ carNum: "京A00001", owner: "n", carTypeCode: 81 });
    assert.equal(next.id, 26, "ids keep increasing across restarts and deletions");
    assert.equal(await again.clearVehicles(), 25);
  });
});

test("blacklist ([SIBLING] model): in force until its limit; delete by plate; list without paging returns all", async () => {
  await withStore(async (store) => {
    await store.addBlacklist({ carNum: "粤B66666", untilMs: T0 + 3_600_000, remark: "unpaid" });
    await store.addBlacklist({ carNum: "粤B77777", denyOut: false });
    assert.equal(store.blacklistFor("粤B66666", T0).length, 1);
    assert.equal(store.blacklistFor("粤B66666", T0 + 3_600_000).length, 0, "expired at its limit");
    assert.equal(store.blacklistFor("粤B77777")[0]?.denyIn, true, "denyIn defaults to 1");
    assert.equal(store.listBlacklist({}, { page: 0, pageSize: 0 }).items.length, 2);
    assert.equal(await store.deleteBlacklist({ carNum: "粤B66666" }), 1);
    assert.equal(store.blacklistFor("粤B66666", T0).length, 0);
  });
});

test("counters are batched, flushed on interval and at stop, and skip ahead after a restart", async () => {
  await withStore(
    async (store, { dir, clock, reopen }) => {
      assert.equal(store.nextCounter("orderNo"), 1);
      assert.equal(store.nextCounter("orderNo"), 2);
      const names = await readdir(dir);
      assert.ok(!names.includes("settings.json"), "a counter alone does not write the card");
      await clock.advance(10_000);
      await waitUntil(() => store.status().documents[2]!.writes === 1, 5000, "the batched write");
      const written = JSON.parse(await readFile(join(dir, "settings.json"), "utf8"));
      assert.equal(written.counters?.orderNo, 2, "written by the batch interval");
      store.nextCounter("orderNo");
      store.setLastSeen("camera:L1", T0 + 5);
      const again = await reopen({ counterCrashGap: 100 });
      assert.equal(again.lastSeen("camera:L1"), T0 + 5, "stop flushed the batch");
      assert.equal(again.nextCounter("orderNo"), 104, "3 + gap 100 + 1: never reissued after a crash");
    },
    { batchFlushMs: 10_000 },
  );
});

test("a corrupt newest snapshot: previous generation plus journal, nothing lost, warning in status", async () => {
  await withStore(async (store, { dir, reopen }) => {
    await store.addInPark(stay(1));
    await store.compact();
    await store.addInPark(stay(2));
    await store.compact();
    await store.addInPark(stay(3));
    await store.stop();
    await writeFile(join(dir, "inpark.json"), '{"version":1,"inPark":{"L1_');
    const again = await reopen();
    assert.deepEqual(
      again.listInPark().items.map((r) => r.recordNo),
      [stay(1), stay(2), stay(3)].map((s) => s.recordNo),
      "the previous generation had stay 1; the journals since then brought 2 and 3",
    );
    const warnings = again.status().warnings;
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, "corrupt-newest");
    assert.match(warnings[0]!.quarantinedAs ?? "", /inpark\.json\.corrupt-/);
  });
});

test("start errors: a missing parent is E_STORE_DIR_MISSING, a missing dir is created, a file is not a directory", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const clock = new FakeClock(T0);
    const missingParent = new LotStore({ dir: join(dir, "no", "such", "store"), clock, pruneJob: false });
    await assert.rejects(missingParent.start(), (e: unknown) => isStoreError(e, StoreErrorCode.DirMissing) && /data partition mounted/.test((e as Error).message));
    const created = new LotStore({ dir: join(dir, "store"), clock, pruneJob: false });
    await created.start();
    await created.addInPark(stay(1));
    await created.stop();
    assert.ok((await journalText(join(dir, "store"), "inpark.json")).includes(stay(1).recordNo), "the stay reached the new directory");
    await writeFile(join(dir, "plain-file"), "x");
    const notDir = new LotStore({ dir: join(dir, "plain-file"), clock, pruneJob: false });
    await assert.rejects(notDir.start(), (e: unknown) => isStoreError(e, StoreErrorCode.NotDirectory));
    await mkdir(join(dir, "tight"));
    const full = new LotStore({ dir: join(dir, "tight"), clock, pruneJob: false, minFreeBytes: Number.MAX_SAFE_INTEGER });
    await assert.rejects(full.start(), (e: unknown) => isStoreError(e, StoreErrorCode.Full));
  } finally {
    await cleanup();
  }
});

test("calls before start or after stop are E_STORE_CLOSED", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const store = new LotStore({ dir, clock: new FakeClock(T0), pruneJob: false });
    await assert.rejects(store.addInPark(stay(1)), (e: unknown) => isStoreError(e, StoreErrorCode.Closed));
    assert.throws(
      () => store.nextCounter("x"),
      (e: unknown) => isStoreError(e, StoreErrorCode.Closed),
    );
  } finally {
    await cleanup();
  }
});
