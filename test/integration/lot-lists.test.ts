import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { MqttProbe } from "../helpers/mqtt-probe.js";
import { listTopics } from "../../src/lot/lot-list-payloads.js";
import { lotTopics } from "../../src/lot/lot-topics.js";
import { LotStore } from "../../src/store/lot-store.js";

/*
 * The lists shared by the lot (docs/mqtt.md "Lists shared by the lot"): three boxes — north
 * (in1/out1), south (in2/out2), east (in3/out3) — on one in-process broker (aedes, MQTT 3.1.1)
 * and one emulated platform. A blacklist entry, a monthly car, a car group given to one box
 * through section 4 apply at the others; a removal at one box removes it everywhere; a box
 * that was away gets what changed meanwhile; the car-group spaces and free spaces are lot-wide.
 */

interface ThreeBoxes {
  broker: AedesBroker;
  a: LotHarness;
  b: LotHarness;
  c: LotHarness;
  boxes: LotHarness[];
  restartC(): Promise<LotHarness>;
  stop(): Promise<void>;
}

const gates = [
  { deviceId: "north-box", lanes: ["in1", "out1"], channels: ["1", "2"] },
  { deviceId: "south-box", lanes: ["in2", "out2"], channels: ["3", "4"] },
  { deviceId: "east-box", lanes: ["in3", "out3"], channels: ["5", "6"] },
];

async function threeBoxes(): Promise<ThreeBoxes> {
  const broker = await startAedes();
  const boxes: LotHarness[] = [];
  const make = (gate: (typeof gates)[number], storeDir?: string) =>
    LotHarness.create({
      ...(boxes[0] ? { emulator: boxes[0].emulator } : {}),
      ...(storeDir ? { storeDir } : {}),
      mutate: (raw) => {
        raw.deviceId = gate.deviceId;
        raw.lot.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100 };
        raw.policy = { ...raw.policy, entry: { ...raw.policy.entry, duplicateEntry: "deny" } };
        // Each gate's remaining-spaces sign (simulated: no path).
        raw.serial.sign = { kind: "sign" };
        gate.lanes.forEach((id, i) => {
          raw.lanes[i].id = id;
          raw.lanes[i].channelId = gate.channels[i];
        });
      },
    });
  for (const gate of gates) boxes.push(await make(gate));
  const lot: ThreeBoxes = {
    broker,
    a: boxes[0]!,
    b: boxes[1]!,
    c: boxes[2]!,
    boxes,
    async restartC() {
      const dir = lot.c.storeDir;
      await lot.c.stop({ keepStore: true });
      lot.c = await make(gates[2]!, dir);
      boxes[2] = lot.c;
      return lot.c;
    },
    async stop() {
      for (const box of [...boxes].reverse()) await box.stop();
      await broker.close();
    },
  };
  return lot;
}

function assertOk(answer: { body: unknown }, what: string): Record<string, any> {
  const body = answer.body as { code: number; msg?: string; data?: Record<string, any> };
  assert.equal(body.code, 200, `${what}: ${JSON.stringify(body)}`);
  return body.data ?? {};
}

const monthly = (carNum: string, extra: Record<string, unknown> = {}) => ({
  carNum,
  owner: "张三",
  carTypeCode: 81,
  state: 1,
  timeStart: "2020-01-01 00:00:00",
  timeEnd: "2099-01-01 00:00:00",
  ...extra,
});

test("lists given to one box apply at every box: blacklist, monthly car, removal, a box that was away", async () => {
  const lot = await threeBoxes();
  try {
    // A blacklist entry added at A through section 4 refuses the car at B.
    const listed = assertOk(await lot.a.callBox("addBlacklist", { carNum: "粤A66601", remark: "unpaid" }), "addBlacklist at A");
    await lot.b.until(() => lot.b.app.store.blacklistFor("粤A66601").length === 1, 1000, "A's blacklist entry at B");
    await lot.b.arrive("in2", "粤A66601");
    assert.equal((await lot.b.waitForEvent("entry-denied", { plate: "粤A66601" })).reason, "blacklisted");
    await lot.b.backOut("in2");
    for (const box of lot.boxes) assert.equal(box.app.store.blacklistFor("粤A66601")[0]?.uuid, listed.uuid, `${box.config.deviceId} holds A's entry by its uuid`);

    // A monthly car added at B lets it in free at A.
    const car = assertOk(await lot.b.callBox("addCar", monthly("粤A66602")), "addCar at B");
    await lot.a.until(() => lot.a.app.store.vehiclesByPlate("粤A66602").length === 1, 1000, "B's vehicle at A");
    await lot.a.drive("in1", "粤A66602");
    const stay = lot.a.stayOf("粤A66602")!;
    assert.equal(stay.vehicleType, "monthly");
    assert.equal((await lot.a.waitForEvent("entry-allowed", { plate: "粤A66602" })).reason, "fixed");
    // The monthly car already in through A is a duplicate at C (policy deny), lot-wide.
    await lot.c.until(() => lot.c.app.store.getInPark(stay.recordNo) !== undefined, 1000, "A's stay at C");
    await lot.c.arrive("in3", "粤A66602");
    assert.equal((await lot.c.waitForEvent("entry-denied", { plate: "粤A66602" })).reason, "already-in-park");
    await lot.c.backOut("in3");

    // An in-park edit at C (4.13.2) of A's stay: every box holds it, the operator and time of the edit too.
    assertOk(await lot.c.callBox("editParkRecord", { recordNo: stay.recordNo, plateColor: 2, operator: "ops-c" }), "editParkRecord at C");
    for (const box of [lot.a, lot.b]) {
      await box.until(() => box.app.store.getInPark(stay.recordNo)?.operator === "ops-c", 1000, `C's edit at ${box.config.deviceId}`);
      const edited = box.app.store.getInPark(stay.recordNo)!;
      assert.equal(edited.plateColor, 2);
      assert.equal(edited.updatedAtMs, lot.c.app.store.getInPark(stay.recordNo)!.updatedAtMs);
    }

    // The section-4 queries of any box answer for the lot.
    const page = assertOk(await lot.c.callBox("queryCarPage", { page: 1, pageSize: 10, carNum: "粤A66602" }), "queryCarPage at C");
    assert.equal(JSON.stringify(page).includes(car.uuId), true, "C lists B's car");

    // A removal at C removes the entry at A and B: the car once refused gets in at B.
    assertOk(await lot.c.callBox("deleteBlacklist", { uuid: listed.uuid }), "deleteBlacklist at C");
    for (const box of [lot.a, lot.b]) await box.until(() => box.app.store.blacklistFor("粤A66601").length === 0, 1000, `the removal at ${box.config.deviceId}`);
    await lot.b.drive("in2", "粤A66601");
    assert.ok(lot.b.stayOf("粤A66601"), "admitted at B after the removal at C");

    // C away: a vehicle added at A and one removed at B meanwhile are at C when it is back.
    const away = assertOk(await lot.a.callBox("addCar", monthly("粤A66603")), "addCar at A");
    await lot.b.until(() => lot.b.app.store.vehiclesByPlate("粤A66603").length === 1, 1000, "A's vehicle at B");
    await lot.c.stop({ keepStore: true });
    const later = assertOk(await lot.a.callBox("addCar", monthly("粤A66604")), "addCar at A while C is away");
    assertOk(await lot.b.callBox("deleteCar", { uuId: away.uuId }), "deleteCar at B while C is away");
    // Written into C's store while it was off the lot (a box that kept lists before the lot shared them).
    const offline = new LotStore({ dir: lot.c.storeDir, pruneJob: false });
    await offline.start();
    const kept = await offline.upsertVehicle({ carNum: "粤A66605", carTypeCode: 81 });
    await offline.stop();
    const c = await lot.restartC();
    assert.equal(c.app.store.getVehicle({ uuId: later.uuId })?.carNum, "粤A66604", "added while away");
    assert.equal(c.app.store.getVehicle({ uuId: away.uuId }), undefined, "removed while away");
    assert.equal(c.app.store.getVehicle({ uuId: car.uuId })?.carNum, "粤A66602", "kept");
    // What C held and the lot lacked went to the lot once C was live.
    for (const box of [lot.a, lot.b]) await box.until(() => box.app.store.getVehicle({ uuId: kept.uuId }) !== undefined, 1000, `C's own vehicle at ${box.config.deviceId}`);

    // Nothing echoed: each change was published once, by the box that made it.
    const published = lot.boxes.map((box) => box.app.lotShare!.status().counters.listsPublished);
    assert.deepEqual(published.slice(0, 2), [3, 2], "A: blacklist add + two cars; B: a car and a removal");
    for (const box of lot.boxes) assert.equal(box.app.lotShare!.status().counters.rejected, 0);
  } finally {
    await lot.stop();
  }
});

test("a car group of 1 space for 2 cars full through A: the second car pays as temporary at B; free spaces and signs equal everywhere", async () => {
  const lot = await threeBoxes();
  try {
    const group = assertOk(await lot.a.callBox("addCarGroup", { name: "Family", spaceCount: 1 }), "addCarGroup at A");
    for (const plate of ["粤A77701", "粤A77702"]) assertOk(await lot.a.callBox("addCar", monthly(plate, { carGroupUuid: group.carGroupUuid })), `addCar ${plate}`);
    await lot.b.until(
      () => lot.b.app.store.vehiclesByPlate("粤A77702").length === 1 && lot.b.app.store.getCarGroup({ carGroupUuid: group.carGroupUuid }) !== undefined,
      1000,
      "the group at B",
    );

    await lot.a.drive("in1", "粤A77701");
    const first = lot.a.stayOf("粤A77701")!;
    assert.equal(first.vehicleType, "monthly");
    await lot.b.until(() => lot.b.app.store.getInPark(first.recordNo) !== undefined, 1000, "the group's car at B");
    assert.equal(lot.b.app.store.getInPark(first.recordNo)?.extra?.groupKey, group.carGroupUuid, "the replica says which group's space it takes");

    await lot.b.drive("in2", "粤A77702");
    const second = lot.b.stayOf("粤A77702")!;
    assert.equal(second.vehicleType, "temporary", "the group's one space is taken at A");
    assert.equal(second.extra?.groupOverflow, true);

    // Free spaces: the same on every box within a second, from the same stays.
    const total = lot.a.config.lot.totalSpaces;
    for (const box of lot.boxes) {
      await box.until(() => box.app.lanes.freeSpaces() === total - 2, 1000, `${box.config.deviceId} counts both cars`);
      const view = (await box.api("GET", "/api/lot")).body;
      assert.equal(view.freeSpaces, total - 2);
      assert.equal((await box.api("GET", "/api/status")).body.lot.freeSpaces, total - 2);
      const sign = box.app.devices.spacesSigns.get("sign")!;
      await box.until(() => sign.status().last?.freeSpaces === total - 2, 1000, `${box.config.deviceId}'s sign shows the lot's count`);
    }
  } finally {
    await lot.stop();
  }
});

test("malformed list messages are rejected with their codes, counted, and change nothing", async () => {
  const lot = await threeBoxes();
  const probe = await MqttProbe.connect(lot.broker.url);
  try {
    assertOk(await lot.a.callBox("addBlacklist", { carNum: "粤A88801" }), "addBlacklist at A");
    await lot.b.until(() => lot.b.app.store.blacklistFor("粤A88801").length === 1, 1000, "the entry at B");
    const lists = listTopics(lotTopics("lanekeeper/v1", lot.b.config.lot.parkCode).base);
    const before = lot.b.app.lotShare!.status().counters;
    await probe.publish(lists.entry("blacklist", "X1"), "{not json", { retain: true });
    await probe.publish(lists.entry("blacklist", "X2"), { v: 1, kind: "blacklist", key: "X2", deleted: false }, { retain: true });
    await probe.publish(lists.entry("vehicles", "X3"), { v: 1, kind: "blacklist", key: "X3", deleted: true, hlc: { wallMs: 1, counter: 0, deviceId: "x" } });
    await probe.publish(`${lists.filter.slice(0, -4)}/coupons/X4`, { v: 1 });
    await lot.b.until(() => lot.b.app.lotShare!.status().counters.rejected === (before.rejected ?? 0) + 4, 2000, "four rejected");
    const after = lot.b.app.lotShare!.status().counters;
    assert.equal(after.E_LOT_NOT_JSON, (before.E_LOT_NOT_JSON ?? 0) + 1);
    assert.equal(after.E_LOT_INVALID, (before.E_LOT_INVALID ?? 0) + 1);
    assert.equal(after.E_LOT_TOPIC_MISMATCH, (before.E_LOT_TOPIC_MISMATCH ?? 0) + 2);
    assert.equal(lot.b.app.store.blacklist.count(), 1, "nothing changed");
    // And the box keeps sharing.
    assertOk(await lot.c.callBox("addBlacklist", { carNum: "粤A88802" }), "addBlacklist at C");
    await lot.b.until(() => lot.b.app.store.blacklistFor("粤A88802").length === 1, 1000, "C's entry at B");
  } finally {
    await probe.close();
    await lot.stop();
  }
});
