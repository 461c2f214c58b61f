import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { findMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { demoRaw, tempDir } from "../helpers/demo-config.js";
import { sleep } from "../helpers/lot-harness.js";
import { FIRST_HOUR_FEN, LotBox, platesOf, until, ZONE } from "../helpers/lot-boxes.js";
import { startEmulator, type Emulator } from "../../src/platform/emulator/emulator.js";
import { formatWireTime } from "../../src/platform/wire.js";
import { listTopics } from "../../src/lot/lot-list-payloads.js";
import { lotTopics } from "../../src/lot/lot-topics.js";
import { MqttProbe } from "../helpers/mqtt-probe.js";

/*
 * One lot, three boxes, each a real `lanekeeper run` process with its own store on disk and
 * its own local API, against a real mosquitto with persistence over MQTT 5 (docs/mqtt.md §12),
 * one platform emulator as the lot's cloud. Cars are driven only from outside: the simulated
 * loops and cameras through each box's local API, the cloud's questions through section 4.
 */

const binary = findMosquitto();
const skip = binary ? false : "mosquitto not installed; .ci/run installs it";

if (!binary && process.env.CI) {
  test("mosquitto is installed on CI", () => {
    assert.fail("mosquitto not installed; .ci/run installs it, so CI without it is a broken image");
  });
}

test(
  "three boxes as processes on a persistent mosquitto (MQTT 5): entry at A billed and reported at B, section 4 at C, a box killed, the broker killed, a list change and lot-wide counts",
  { skip },
  async (t) => {
    const dir = tempDir("lk-lot-three-");
    const broker = await startMosquitto(binary!, { extraConfig: ["persistence true", `persistence_location ${dir}/`, "autosave_interval 1"] });
    const emulator: Emulator = await startEmulator({ timeZone: ZONE });
    const boxes: LotBox[] = [];
    for (const [index, deviceId] of ["a-box", "b-box", "c-box"].entries()) {
      boxes.push(await LotBox.create({ deviceId, index: index + 1, dir, brokerUrl: broker.url, platformUrl: emulator.url }));
    }
    const [a, b, c] = boxes as [LotBox, LotBox, LotBox];
    const parkCode = (demoRaw() as { lot: { parkCode: string } }).lot.parkCode;
    const allLive = () =>
      until(
        async () => {
          for (const box of boxes) {
            const lot = await box.lot();
            if (lot.view !== "live" || lot.boxes.filter((x) => x.online).length !== 3) return false;
          }
          return true;
        },
        15_000,
        "every box live with all three online",
      );
    try {
      await Promise.all(boxes.map((box) => box.start()));
      await allLive();

      // 1. In at A, out at B: billed from A's entry; one entry report from A, one exit report from B.
      const first = "粤A90001";
      emulator.setPlate(first, "frictionless");
      await a.drive("in1", first);
      const entered = (await a.cars()).find((car) => car.plate === first)!;
      const enter = await emulator.waitFor({ service: "enterNotify", recordNo: entered.recordNo }, 5000);
      assert.equal(enter.biz.inChannelid, "1");
      await until(async () => (await b.cars()).some((car) => car.recordNo === entered.recordNo), 3000, "A's stay at B");
      await b.drive("out2", first);
      const leave = await emulator.waitFor({ service: "leaveNotify", recordNo: entered.recordNo }, 5000);
      assert.equal(leave.biz.outChannelid, "4", "reported by B's exit lane");
      assert.equal(leave.biz.enterTime, enter.biz.enterTime, "billed from A's entry");
      assert.equal(leave.biz.payableFee, FIRST_HOUR_FEN);
      await until(async () => (await c.cars()).every((car) => car.plate !== first), 3000, "the stay gone at C");
      assert.equal(emulator.received({ service: "enterNotify", recordNo: entered.recordNo }).length, 1);
      assert.equal(emulator.received({ service: "leaveNotify", recordNo: entered.recordNo }).length, 1);
      assert.equal(emulator.received({ service: "enterNotify" }).length, 1, "B made up no entry of its own");

      // 2. Section 4 at C about a car that came in at A.
      const second = "粤A90002";
      await a.drive("in1", second);
      const atA = (await a.cars()).find((car) => car.plate === second)!;
      await until(async () => (await c.cars()).some((car) => car.recordNo === atA.recordNo), 3000, "A's stay at C");
      const cSection4 = `${c.url}${c.section4Path}`;
      const inPark = (await emulator.callBox(cSection4, "queryInPark", { parkCode, plateNum: second })).body as { code: number; data: Record<string, unknown> };
      assert.equal(inPark.code, 200);
      assert.equal(inPark.data.inPark, 1);
      assert.equal(inPark.data.enterTime, formatWireTime(atA.enterAtMs, ZONE));
      const fee = (await emulator.callBox(cSection4, "queryParkFee", { parkCode, payScene: 0, plateNum: second })).body as {
        code: number;
        msg: string;
        data: Record<string, unknown>;
      };
      assert.equal(fee.code, 200, fee.msg);
      assert.equal(fee.data.recordNo, atA.recordNo);
      assert.equal(fee.data.payableFee, FIRST_HOUR_FEN);

      // 3. C dies without a word; a car comes in at A meanwhile. C back: the whole lot before it serves.
      await c.stop("SIGKILL");
      const third = "粤A90003";
      await a.drive("in1", third);
      await c.start();
      const firstAnswer = await c.lot();
      t.diagnostic(`C restarted after SIGKILL: its first answer says the view is ${firstAnswer.view}`);
      if (firstAnswer.view === "live") {
        assert.deepEqual(platesOf(await c.cars()), [second, third], "live at its first answer: the whole lot");
      } else {
        assert.equal(firstAnswer.view, "stale", "not live yet: it says so");
        await until(async () => (await c.lot()).view === "live", 10_000, "C live");
      }
      assert.deepEqual(platesOf(await c.cars()), [second, third]);

      // 4. The broker killed (no shutdown save) and restarted while cars come in at A and B.
      const fromA = ["粤A91001", "粤A91002", "粤A91003"];
      const fromB = ["粤B92001", "粤B92002", "粤B92003"];
      const traffic = Promise.all([
        (async () => {
          for (const plate of fromA) await a.drive("in1", plate);
        })(),
        (async () => {
          for (const plate of fromB) await b.drive("in2", plate);
        })(),
      ]);
      await until(async () => (await a.cars()).some((car) => car.plate === fromA[0]), 5000, "the first car of the traffic in");
      await broker.kill();
      await sleep(300);
      await broker.start();
      await traffic;
      const everyCar = [second, third, ...fromA, ...fromB].sort();
      await until(
        async () => {
          for (const box of boxes) if (JSON.stringify(platesOf(await box.cars())) !== JSON.stringify(everyCar)) return false;
          return true;
        },
        15_000,
        "every stay at every box",
      );
      await allLive();
      // Each stay is one record lot-wide: the same recordNo at every box, its own at the box it entered by.
      const byBox = await Promise.all(boxes.map((box) => box.cars()));
      for (const car of byBox[0]!) {
        for (const [i, cars] of byBox.entries()) {
          const same = cars.find((x) => x.plate === car.plate)!;
          assert.equal(same.recordNo, car.recordNo);
          assert.equal(same.replica, same.enterDeviceId !== boxes[i]!.deviceId);
        }
      }

      // 5. Lot-wide counts after the traffic: the same free spaces on the three boxes.
      const counts = await Promise.all(boxes.map((box) => box.get<{ cars: number; freeSpaces: number }>("/api/lot")));
      assert.deepEqual(new Set(counts.map((x) => `${x.cars}/${x.freeSpaces}`)).size, 1, `every box counts the same: ${JSON.stringify(counts)}`);
      assert.equal(counts[0]!.cars, everyCar.length);

      // 6. A list change at one box applies at the others: blacklisted through B's section 4, the
      //    car is refused at A's entry lane; removed through C's, it is gone at A and B.
      const listed = "粤A93001";
      const added = (await emulator.callBox(`${b.url}${b.section4Path}`, "addBlacklist", { parkCode, carNum: listed })).body as { code: number; data: { uuid: string } };
      assert.equal(added.code, 200);
      const blacklistAt = async (box: LotBox) =>
        ((await emulator.callBox(`${box.url}${box.section4Path}`, "queryBlacklist", { parkCode, carNum: listed })).body as { data: { items: Array<{ uuid: string }> } }).data.items;
      await until(async () => (await blacklistAt(a)).some((x) => x.uuid === added.data.uuid) && (await blacklistAt(c)).length === 1, 3000, "B's entry at A and C");
      await a.refused("in1", listed);
      const removed = (await emulator.callBox(`${c.url}${c.section4Path}`, "deleteBlacklist", { parkCode, uuid: added.data.uuid })).body as { code: number };
      assert.equal(removed.code, 200);
      await until(async () => (await blacklistAt(a)).length === 0 && (await blacklistAt(b)).length === 0, 3000, "C's removal at A and B");
      // The removal is a retained tombstone with its MQTT 5 expiry (lot.share.leftExpiryS, 24 h).
      const probe = await MqttProbe.connect(broker.url, { protocolVersion: 5 });
      try {
        const topic = listTopics(lotTopics("lanekeeper/v1", parkCode).base).entry("blacklist", added.data.uuid);
        await probe.subscribe(topic);
        const tombstone = await probe.waitFor((m) => m.topic === topic, 2000, "the retained tombstone");
        assert.ok(tombstone.retain);
        assert.equal(tombstone.json().deleted, true);
        const expiry = tombstone.properties?.messageExpiryInterval;
        assert.ok(expiry !== undefined && expiry > 86_000 && expiry <= 86_400, `message expiry ${String(expiry)}`);
      } finally {
        await probe.close();
      }
    } finally {
      for (const box of boxes) await box.stop().catch(() => undefined);
      await emulator.stop();
      await broker.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
