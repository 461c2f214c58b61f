import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";
import { LotHarness, sleep } from "../helpers/lot-harness.js";
import type { Emulator } from "../../src/platform/emulator/emulator.js";
import { lotTopics } from "../../src/lot/lot-topics.js";
import { MqttProbe } from "../helpers/mqtt-probe.js";

/*
 * One lot, two boxes (docs/mqtt.md "Sharing one lot between boxes"): box A at the north gate,
 * box B at the south gate, sharing the lot through an in-process broker (aedes, MQTT 3.1.1),
 * one emulated platform for both. Everything is real: the lanes, the stores on disk, the
 * broker, the local API.
 */

const HOUR_MS = 3_600_000;
/** 2.5 h under the demo tariff: 5 yuan the first hour, 1 yuan per started hour after. */
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700;

interface TwoBoxes {
  broker: AedesBroker;
  a: LotHarness;
  b: LotHarness;
  stop(): Promise<void>;
}

function shared(raw: Record<string, any>, broker: AedesBroker, deviceId: string, extra: Record<string, unknown> = {}): void {
  raw.deviceId = deviceId;
  raw.lot.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100, ...extra };
}

async function twoBoxes(options: { policy?: Record<string, unknown>; emulator?: Emulator } = {}): Promise<TwoBoxes> {
  const broker = await startAedes();
  const a = await LotHarness.create({
    ...(options.emulator ? { emulator: options.emulator } : {}),
    mutate: (raw) => {
      shared(raw, broker, "north-box");
      if (options.policy) raw.policy = { ...raw.policy, ...options.policy };
    },
  });
  const b = await LotHarness.create({
    emulator: a.emulator,
    mutate: (raw) => {
      shared(raw, broker, "south-box");
      // The south gate's own lanes and channels.
      raw.lanes[0].id = "in2";
      raw.lanes[0].channelId = "3";
      raw.lanes[1].id = "out2";
      raw.lanes[1].channelId = "4";
      if (options.policy) raw.policy = { ...raw.policy, ...options.policy };
    },
  });
  return {
    broker,
    a,
    b,
    async stop() {
      await b.stop();
      await a.stop();
      await broker.close();
    },
  };
}

async function inParkAt(box: LotHarness): Promise<Array<Record<string, unknown>>> {
  const answer = await box.api("GET", "/api/lot/in-park");
  assert.equal(answer.status, 200);
  return answer.body.cars as Array<Record<string, unknown>>;
}

test("a car that enters at A is in B's lot view, counts and free spaces within a second; p99 over 50 cars", async () => {
  const lot = await twoBoxes();
  try {
    const overview = await lot.b.api("GET", "/api/lot");
    assert.equal(overview.body.view, "live");
    assert.deepEqual(
      overview.body.boxes.map((box: { deviceId: string; online: boolean }) => [box.deviceId, box.online]),
      [
        ["north-box", true],
        ["south-box", true],
      ],
    );
    assert.deepEqual(overview.body.boxes[0].lanes, [
      { laneId: "in1", direction: "in", channelId: "1" },
      { laneId: "out1", direction: "out", channelId: "2" },
    ]);

    // One car through the real entry lane.
    const started = Date.now();
    await lot.a.drive("in1", "粤A60001");
    const stay = lot.a.stayOf("粤A60001")!;
    await lot.b.until(() => lot.b.app.store.getInPark(stay.recordNo) !== undefined, 1000, "A's stay at B");
    const cars = await inParkAt(lot.b);
    assert.equal(cars.length, 1);
    assert.deepEqual(
      { plate: cars[0]!.plate, recordNo: cars[0]!.recordNo, enterDeviceId: cars[0]!.enterDeviceId, enterLaneId: cars[0]!.enterLaneId, enterAtMs: cars[0]!.enterAtMs },
      { plate: "粤A60001", recordNo: stay.recordNo, enterDeviceId: "north-box", enterLaneId: "in1", enterAtMs: stay.enterAtMs },
    );
    assert.ok(Date.now() - started < 5000);
    for (const box of [lot.a, lot.b]) {
      const view = (await box.api("GET", "/api/lot")).body;
      assert.equal(view.cars, 1, `${box.config.deviceId} counts the car`);
      assert.equal(view.freeSpaces, 49, `${box.config.deviceId} has one space less`);
    }

    // 50 stays written at A (the store's durable write is the publish point): time to B's store.
    const latencies: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const record = await lot.a.park(`粤B${String(10000 + i)}`, 60_000);
      while (!lot.b.app.store.getInPark(record.recordNo)) {
        if (performance.now() - t0 > 1000) assert.fail(`car ${i} not at B within 1 s`);
        await sleep(1);
      }
      latencies.push(performance.now() - t0);
    }
    latencies.sort((x, y) => x - y);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!.toFixed(1);
    console.log(`bench lot-share: A durable write -> B store, 50 cars, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms (aedes, loopback)`);
    assert.equal((await lot.b.api("GET", "/api/lot")).body.cars, 51);
    // Nothing of A's went to the platform from B, nor back to the broker (no echo).
    assert.equal(lot.a.emulator.received({ service: "enterNotify" }).length, 1);
    assert.equal(lot.b.app.lotShare!.status().counters.published, 0, "B published none of A's stays");
    // 51 stays, and one more version of the driven car's: its entry report delivered (entryReported).
    await lot.a.until(() => lot.a.app.lotShare!.view.stay(stay.recordNo)?.entryReported === true, 2000, "the driven car's entry said reported");
    assert.equal(lot.a.app.lotShare!.status().counters.published, 52);
  } finally {
    await lot.stop();
  }
});

test("a car that entered at A and leaves at B is billed from A's entry: one enterNotify from A, one leaveNotify from B", async () => {
  const lot = await twoBoxes();
  try {
    // A car through A's real entry lane: its entry report goes from A.
    await lot.a.drive("in1", "粤A60002");
    const driven = lot.a.stayOf("粤A60002")!;
    const enter = await lot.a.emulator.waitFor({ service: "enterNotify", recordNo: driven.recordNo });
    assert.equal(enter.biz.inChannelid, "1");
    // A car in for 2.5 h at A (its stay as A's store holds it, its entry report long delivered).
    const parked = await lot.a.park("粤A60003", STAY_MS, { entryReport: "delivered" });
    await lot.b.until(() => lot.b.app.store.getInPark(parked.recordNo) !== undefined && lot.b.app.store.getInPark(driven.recordNo) !== undefined, 1000, "A's stays at B");

    // The long stay leaves at B: billed from A's entry time, not the no-record amount.
    lot.a.emulator.setPlate("粤A60003", "frictionless");
    await lot.b.arrive("out2", "粤A60003");
    const due = await lot.b.waitForEvent("fee-due", { plate: "粤A60003" });
    assert.equal(due.feeFen, FEE_FEN);
    assert.equal(due.recordNo, parked.recordNo);
    // B's booth card names the box the car came in by: that box keeps the entry photo.
    const status = await lot.b.api("GET", "/api/status");
    const card = status.body.lanes.find((lane: { id: string }) => lane.id === "out2").vehicle.card;
    assert.equal(card.entryDeviceId, lot.a.app.config.deviceId);
    assert.equal(card.photos.entry, null);
    assert.equal(card.enterAtMs, parked.enterAtMs);
    await lot.b.pass("out2");
    const leave = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: parked.recordNo });
    assert.equal(leave.biz.payableFee, FEE_FEN);
    assert.equal(leave.biz.outChannelid, "4");
    assert.equal(leave.biz.enterTime, lot.a.wireTime(parked.enterAtMs));

    // The driven car leaves at B too.
    await lot.b.drive("out2", "粤A60002");
    const leave2 = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: driven.recordNo });
    assert.equal(leave2.biz.enterTime, enter.biz.enterTime);
    assert.ok(enter.seq < leave2.seq);
    await lot.b.drained();
    await lot.a.drained();

    // One recordNo each: one entry report from A (none made up at B), one exit report from B.
    assert.equal(lot.a.emulator.received({ service: "enterNotify", recordNo: driven.recordNo }).length, 1);
    assert.equal(lot.a.emulator.received({ service: "enterNotify", recordNo: parked.recordNo }).length, 0, "B never made up an entry for A's stay");
    assert.equal(lot.a.emulator.received({ service: "leaveNotify", recordNo: driven.recordNo }).length, 1);
    assert.equal(lot.a.emulator.received({ service: "leaveNotify", recordNo: parked.recordNo }).length, 1);
    assert.equal(lot.a.emulator.received({ service: "enterNotify" }).length, 1);

    // Both stays left the lot at both boxes.
    await lot.a.until(() => lot.a.app.store.inParkCount() === 0, 1000, "A's stays gone at A");
    assert.equal(lot.b.app.store.inParkCount(), 0);
    assert.equal((await lot.a.api("GET", "/api/lot")).body.freeSpaces, 50);
    // B keeps the finished stay in its history; A has only the event line.
    assert.equal((await lot.b.app.store.recentStays("粤A60003"))[0]?.recordNo, parked.recordNo);
  } finally {
    await lot.stop();
  }
});

test("a plate misread at B's exit is matched with A's stay (fuzzy matching across the lot); queryFreeSpace at B counts the lot", async () => {
  const lot = await twoBoxes();
  try {
    const parked = await lot.a.park("粤A60004", STAY_MS, { entryReport: "delivered" });
    await lot.b.until(() => lot.b.app.store.getInPark(parked.recordNo) !== undefined, 1000, "A's stay at B");
    // Section 4 at B: the lot's spaces, A's car counted.
    const free = (await lot.b.callBox("queryFreeSpace", {})).body as { code: number; data: { totalSpaces: number; freeSpaces: number } };
    assert.equal(free.code, 200);
    assert.deepEqual(free.data, { totalSpaces: 50, freeSpaces: 49 });

    // B's camera reads one character wrong in the middle of the plate.
    for (const plate of ["粤A60004", "粤A60094"]) lot.a.emulator.setPlate(plate, "frictionless");
    await lot.b.arrive("out2", "粤A60094");
    const matched = await lot.b.waitForEvent("plate-fuzzy-matched", { plate: "粤A60094" });
    assert.equal(matched.recordNo, parked.recordNo);
    assert.equal(matched.matched, "粤A60004");
    const due = await lot.b.waitForEvent("fee-due", { plate: "粤A60094" });
    assert.equal(due.recordNo, parked.recordNo);
    assert.equal(due.feeFen, FEE_FEN, "billed from A's entry");
    await lot.b.pass("out2");
    const leave = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: parked.recordNo });
    assert.equal(leave.biz.enterTime, lot.a.wireTime(parked.enterAtMs));
    assert.equal(lot.a.emulator.received({ service: "enterNotify" }).length, 0, "no entry made up for the misread plate");
    await lot.a.until(() => lot.a.app.store.getInPark(parked.recordNo) === undefined, 1000, "the stay gone at A");
    const after = (await lot.a.callBox("queryFreeSpace", {})).body as { data: { freeSpaces: number } };
    assert.equal(after.data.freeSpaces, 50, "the space free again at A");
  } finally {
    await lot.stop();
  }
});

test("duplicate entry at B of a plate in through A: denied lot-wide under the deny rule, one stay under replace", async () => {
  const deny = await twoBoxes({ policy: { entry: { confirmWaitMs: 1200, duplicateEntry: "deny" } } });
  try {
    await deny.a.drive("in1", "粤A60004");
    const stay = deny.a.stayOf("粤A60004")!;
    await deny.b.until(() => deny.b.app.store.getInPark(stay.recordNo) !== undefined, 1000, "A's stay at B");
    await deny.b.arrive("in2", "粤A60004");
    const denied = await deny.b.waitForEvent("entry-denied", { plate: "粤A60004" });
    assert.equal(denied.reason, "already-in-park");
    assert.equal(deny.b.barrier("in2"), "closed");
    assert.equal(deny.b.app.store.findInParkByPlate("粤A60004").length, 1);
  } finally {
    await deny.stop();
  }

  const replace = await twoBoxes();
  try {
    await replace.a.drive("in1", "粤A60005");
    const old = replace.a.stayOf("粤A60005")!;
    await replace.b.until(() => replace.b.app.store.getInPark(old.recordNo) !== undefined, 1000, "A's stay at B");
    await replace.b.drive("in2", "粤A60005");
    await replace.b.waitForEvent("stay-replaced", { plate: "粤A60005", recordNo: old.recordNo });
    const fresh = replace.b.stayOf("粤A60005")!;
    assert.notEqual(fresh.recordNo, old.recordNo);
    // A hears that its stay ended and holds B's new one: one stay of the plate in the lot.
    await replace.a.until(
      () => replace.a.app.store.getInPark(old.recordNo) === undefined && replace.a.app.store.getInPark(fresh.recordNo) !== undefined,
      1000,
      "A holds B's stay instead of its own",
    );
    assert.deepEqual(
      replace.a.app.store.findInParkByPlate("粤A60005").map((r) => r.recordNo),
      [fresh.recordNo],
    );
  } finally {
    await replace.stop();
  }
});

test("malformed lot messages are rejected, counted and logged; the box keeps its state and keeps sharing", async () => {
  const lot = await twoBoxes();
  const probe = await MqttProbe.connect(lot.broker.url);
  try {
    await lot.a.drive("in1", "粤A60006");
    const stay = lot.a.stayOf("粤A60006")!;
    await lot.b.until(() => lot.b.app.store.getInPark(stay.recordNo) !== undefined, 1000, "A's stay at B");
    const topics = lotTopics("lanekeeper/v1", lot.b.config.lot.parkCode);
    await probe.publish(topics.stay("bad-1"), "{not json", { retain: true });
    await probe.publish(topics.stay("bad-2"), { v: 1, recordNo: "bad-2", plate: "x" }, { retain: true });
    // A valid stay (A's, as retained) on another stay's topic.
    await probe.subscribe(topics.stay(stay.recordNo));
    const valid = (await probe.waitFor((m) => m.topic === topics.stay(stay.recordNo), 2000, "A's retained stay")).json();
    await probe.publish(topics.stay("bad-3"), valid, { retain: true });
    await probe.publish(topics.box("north-box"), { v: 1, deviceId: "north-box", lanes: "x" });
    await lot.b.until(() => (lot.b.app.lotShare?.status().counters.rejected ?? 0) >= 4, 1000, "4 rejections counted at B");
    const counters = lot.b.app.lotShare!.status().counters;
    assert.equal(counters.E_LOT_NOT_JSON, 1);
    assert.equal(counters.E_LOT_INVALID, 2);
    assert.equal(counters.E_LOT_TOPIC_MISMATCH, 1);
    assert.equal(lot.b.app.store.inParkCount(), 1, "the store holds what it held");
    // And sharing goes on.
    const next = await lot.a.park("粤A60007", 60_000);
    await lot.b.until(() => lot.b.app.store.getInPark(next.recordNo) !== undefined, 1000, "the next stay at B");
  } finally {
    await probe.close();
    await lot.stop();
  }
});

test("broker down: the view is stale since then and the lanes go on; back (retained set lost): own stays published again, live", async () => {
  const lot = await twoBoxes();
  try {
    const first = await lot.a.park("粤A60008", 60_000);
    await lot.b.until(() => lot.b.app.store.getInPark(first.recordNo) !== undefined, 1000, "A's stay at B");
    const downAtMs = Date.now();
    await lot.broker.down();
    await lot.b.until(() => lot.b.app.lotShare!.status().view === "stale", 2000, "B's view stale");
    const stale = (await lot.b.api("GET", "/api/lot")).body;
    assert.equal(stale.view, "stale");
    assert.ok(stale.staleSinceMs >= downAtMs - 50, "stale since the broker went");
    // The lanes keep serving on what the box knows: a car in at A while apart.
    await lot.a.drive("in1", "粤A60009");
    const apart = lot.a.stayOf("粤A60009")!;

    // The broker comes back empty (no persistence): the boxes publish their own stays again.
    await lot.broker.up();
    await lot.b.until(() => lot.b.app.lotShare!.status().view === "live", 5000, "B's view live again");
    await lot.b.until(() => lot.b.app.store.getInPark(apart.recordNo) !== undefined, 2000, "the stay made while apart at B");
    assert.ok(lot.b.app.store.getInPark(first.recordNo), "B kept the replica it had");
    const live = (await lot.b.api("GET", "/api/lot")).body;
    assert.equal(live.view, "live");
    assert.equal(live.staleSinceMs, undefined);
    assert.equal(live.cars, 2);
  } finally {
    await lot.stop();
  }
});

test("without lot.share the lot routes answer for this box alone, view local", async () => {
  const box = await LotHarness.create();
  try {
    await box.park("粤A60010", 60_000);
    const view = (await box.api("GET", "/api/lot")).body;
    assert.equal(view.view, "local");
    assert.equal(view.cars, 1);
    assert.equal(view.freeSpaces, 49);
    assert.deepEqual(
      view.boxes.map((b: { deviceId: string; online: boolean }) => [b.deviceId, b.online]),
      [["demo-box-01", true]],
    );
    const cars = await inParkAt(box);
    assert.equal(cars[0]!.enterDeviceId, "demo-box-01");
    assert.equal(cars[0]!.replica, false);
  } finally {
    await box.stop();
  }
});
