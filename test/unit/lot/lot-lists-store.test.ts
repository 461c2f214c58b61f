import { test } from "node:test";
import assert from "node:assert/strict";
import type { ListChange, LotStore } from "../../../src/store/lot-store.js";
import { blacklistEntrySchema } from "../../../src/store/records.js";
import { inParkPayload, recordOfPayload } from "../../../src/lot/lot-payloads.js";
import fc from "fast-check";
import { waitUntil, withLotStore } from "../../helpers/store-fixtures.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { HlcClock } from "../../../src/lot/hlc.js";
import { LotLists } from "../../../src/lot/lot-lists.js";
import { LotPayloadError } from "../../../src/lot/lot-payloads.js";
import { silentLogger } from "../../../src/kernel/log.js";

/*
 * The store's side of the shared lists: every write path of the lists tells its change once,
 * after the commit, as "local"; an entry from the lot is written durably and told as "lot"
 * (never published again). And the stay versions carry what a platform edit and a car group
 * put on a stay, so another box holds them too.
 */

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);

async function withStore(run: (store: LotStore, changes: ListChange[], reopen: () => Promise<LotStore>) => Promise<void>): Promise<void> {
  await withLotStore(T0, async (store, reopen) => {
    const changes: ListChange[] = [];
    store.onListChange((change) => changes.push(change));
    await run(store, changes, reopen);
  });
}

const told = (changes: ListChange[]) => changes.map((c) => `${c.source} ${c.list} ${c.entry === undefined ? "-" : "+"}`);

/** The lists side of a box called "here" on park P1 at T0, with the broker parts a test gives. */
function listsOn(store: LotStore, parts: Pick<ConstructorParameters<typeof LotLists>[0], "tombstoneExpiryS" | "protocolVersion" | "connected" | "publish" | "reject">): LotLists {
  return new LotLists({ deviceId: "here", store, hlc: new HlcClock("here", () => T0), clock: new FakeClock(T0), log: silentLogger(), base: "lanekeeper/v1/lot/P1", ...parts });
}

test("every write path of the lists tells its change once, after its commit, as local", async () => {
  await withStore(async (store, changes) => {
    const vehicle = await store.upsertVehicle({ carNum: "粤B10001", carTypeCode: 81 });
    const group = await store.upsertCarGroup({ name: "G", spaces: 1 });
    const listed = await store.addBlacklist({ carNum: "粤B66666" });
    await waitUntil(() => changes.length === 3, 2000, "three adds told");
    assert.deepEqual(told(changes), ["local vehicles +", "local carGroups +", "local blacklist +"]);
    assert.equal(changes[0]!.key, vehicle.uuId);
    assert.equal(changes[1]!.key, group.carGroupUuid);
    assert.equal(changes[2]!.key, listed.uuid);

    // The collection ports the platform handlers use directly go through the same hook.
    await store.vehicles.patch(vehicle.uuId, { owner: "王五" });
    await store.deleteBlacklist({ carNum: "粤B66666" });
    await store.deleteCarGroup({ carGroupUuid: group.carGroupUuid });
    await store.upsertVehicle({ carNum: "粤B10002", carTypeCode: 81 });
    await store.clearVehicles();
    await waitUntil(() => changes.length === 9, 2000, "every change told");
    assert.deepEqual(told(changes).slice(3), ["local vehicles +", "local blacklist -", "local carGroups -", "local vehicles +", "local vehicles -", "local vehicles -"]);
    assert.equal(store.vehicles.count(), 0);
  });
});

test("an entry from the lot is written durably, told as the lot's, and moves the next id past its own", async () => {
  await withStore(async (store, changes, reopen) => {
    const entry = blacklistEntrySchema.parse({ id: 40, uuid: "LOT-B1", carNum: "粤B77777", operator: "north", createdAtMs: T0, updatedAtMs: T0 });
    assert.equal(await store.applyListsFromLot([{ list: "blacklist", key: "LOT-B1", entry }]), 1);
    assert.equal(await store.applyListsFromLot([{ list: "blacklist", key: "LOT-B1", entry }]), 0, "the same again writes nothing");
    await waitUntil(() => changes.length === 1, 2000, "the entry told");
    assert.deepEqual(told(changes), ["lot blacklist +"]);
    assert.equal(store.blacklistFor("粤B77777").length, 1, "found by plate like any entry");
    const local = await store.addBlacklist({ carNum: "粤B88888" });
    assert.equal(local.id, 41, "the next local id is past the lot's");

    // A plate this box registered under another uuId is kept beside the lot's (both boxes hold both).
    await store.upsertVehicle({ uuId: "HERE", carNum: "粤B10003", carTypeCode: 81 });
    const theirs = { ...store.getVehicle({ uuId: "HERE" })!, uuId: "THERE", id: 7 };
    assert.equal(await store.applyListsFromLot([{ list: "vehicles", key: "THERE", entry: theirs }]), 1);
    assert.equal(store.vehiclesByPlate("粤B10003").length, 2);

    // A burst in one commit, in order; what the store cannot take is skipped, the rest goes in.
    const burst = [1, 2, 3].map((n) => blacklistEntrySchema.parse({ id: 50 + n, uuid: `BURST-${n}`, carNum: `粤C1000${n}`, createdAtMs: T0, updatedAtMs: T0 }));
    const applied = await store.applyListsFromLot([
      ...burst.map((entry) => ({ list: "blacklist" as const, key: entry.uuid, entry })),
      { list: "blacklist", key: "BAD", entry: { ...burst[0]!, uuid: "BAD", carNum: "" } },
      { list: "blacklist", key: "BURST-2", entry: undefined },
    ]);
    assert.equal(applied, 4, "three entries and one removal");
    assert.deepEqual(
      store.listBlacklist({ carNum: "粤C" }).items.map((b) => b.uuid),
      ["BURST-1", "BURST-3"],
    );

    const again = await reopen();
    assert.equal(again.blacklistFor("粤B77777")[0]?.operator, "north", "durable");
    const toldAgain: ListChange[] = [];
    again.onListChange((c) => toldAgain.push(c));
    assert.equal(await again.applyListsFromLot([{ list: "blacklist", key: "LOT-B1", entry: undefined }]), 1);
    assert.equal(await again.applyListsFromLot([{ list: "blacklist", key: "LOT-B1", entry: undefined }]), 0);
    assert.equal(again.blacklistFor("粤B77777").length, 0);
    await waitUntil(() => toldAgain.length === 1, 2000, "the removal told");
    assert.deepEqual(told(toldAgain), ["lot blacklist -"]);
  });
});

test("a stay version carries the platform edit's fields and the car group, and the replica holds them", async () => {
  await withStore(async (store) => {
    const record = await store.addInPark({
      recordNo: "in1_1",
      plate: "粤B10001",
      laneId: "in1",
      enterAtMs: T0,
      vehicleType: "monthly",
      inChannelId: "9",
      operator: "ops",
      updatedAtMs: T0 + 5,
      extra: { groupKey: "G-1", plateRaw: "x" },
    });
    const payload = inParkPayload(record, "north-box", { wallMs: T0, counter: 0, deviceId: "north-box" });
    assert.deepEqual([payload.inChannelId, payload.operator, payload.updatedAtMs, payload.groupKey], ["9", "ops", T0 + 5, "G-1"]);
    const replica = recordOfPayload(payload);
    assert.deepEqual([replica.inChannelId, replica.operator, replica.updatedAtMs, replica.extra], ["9", "ops", T0 + 5, { groupKey: "G-1" }]);
  });
});

test("fuzz: whatever arrives on a lists topic, a malformed message is rejected and counted, and the store keeps its lists", async () => {
  await withLotStore(T0, async (store) => {
    await store.addBlacklist({ uuid: "B1", carNum: "粤B66666" });
    await store.upsertVehicle({ uuId: "V1", carNum: "粤B10001", carTypeCode: 81 });
    const before = JSON.stringify([store.listBlacklist().items, store.listVehicles().items, store.listCarGroups().items]);
    const rejected: string[] = [];
    const base = "lanekeeper/v1/lot/P1";
    const lists = listsOn(store, {
      tombstoneExpiryS: 86_400,
      protocolVersion: 5,
      connected: () => false,
      publish: () => Promise.reject(new Error("no broker in this test")),
      reject: (_topic, code) => rejected.push(code),
    });
    const codes = new Set<string>(Object.values(LotPayloadError));
    const good = { v: 1, kind: "blacklist", key: "B9", deleted: true, hlc: { wallMs: T0 + 1, counter: 0, deviceId: "there" } };
    const broken = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
      // A valid tombstone of an entry the store does not hold, with one field made wrong.
      fc
        .record({ field: fc.constantFrom("v", "kind", "key", "deleted", "hlc", "entry", "extra"), value: fc.jsonValue() })
        .map(({ field, value }) => Buffer.from(JSON.stringify({ ...good, [field]: value }))),
    );
    const topic = fc.constantFrom(
      `${base}/lists/blacklist/B9`,
      `${base}/lists/blacklist/B1`,
      `${base}/lists/vehicles/V1`,
      `${base}/lists/coupons/C1`,
      `${base}/lists/blacklist`,
      `${base}/lists/blacklist/%E0`,
    );
    let taken = 0;
    fc.assert(
      fc.property(topic, broken, (where, payload) => {
        const count = rejected.length;
        lists.onMessage(where, payload, true);
        if (rejected.length === count) taken++;
        else assert.ok(codes.has(rejected.at(-1)!), rejected.at(-1));
      }),
      { numRuns: 300 },
    );
    await lists.drained();
    // What was taken at all could only be the tombstone of B9, which the store never held.
    assert.ok(taken < 300, "most were rejected");
    assert.equal(JSON.stringify([store.listBlacklist().items, store.listVehicles().items, store.listCarGroups().items]), before);
    assert.equal(lists.counters.listsStoreErrors, 0);
  });
});

test("MQTT 3.1.1: an expired retained tombstone is cleared by the first box that sees it; a fresh one is kept", async () => {
  await withLotStore(T0, async (store) => {
    const cleared: string[] = [];
    const base = "lanekeeper/v1/lot/P1";
    const lists = listsOn(store, {
      tombstoneExpiryS: 3600,
      protocolVersion: 4,
      connected: () => true,
      publish: async (topic, text) => {
        if (text === "") cleared.push(topic);
      },
      reject: (topic, code) => assert.fail(`${topic} rejected: ${code}`),
    });
    const tombstone = (key: string, wallMs: number) => Buffer.from(JSON.stringify({ v: 1, kind: "vehicles", key, deleted: true, hlc: { wallMs, counter: 0, deviceId: "there" } }));
    lists.onMessage(`${base}/lists/vehicles/OLD`, tombstone("OLD", T0 - 2 * 3_600_000), true);
    lists.onMessage(`${base}/lists/vehicles/NEW`, tombstone("NEW", T0 - 60_000), true);
    lists.onMessage(`${base}/lists/vehicles/LIVE`, tombstone("LIVE", T0 - 2 * 3_600_000), false);
    await lists.drained();
    assert.deepEqual(cleared, [`${base}/lists/vehicles/OLD`]);
  });
});
