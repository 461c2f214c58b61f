import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { findMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { createBoxNamespaces, netnsUnavailable, type Namespaces } from "../helpers/netns.js";
import { FIRST_HOUR_FEN, libfaketime, LotBox, platesOf, until, ZONE } from "../helpers/lot-boxes.js";
import { tempDir } from "../helpers/demo-config.js";
import { sleep } from "../helpers/lot-harness.js";
import { startEmulator } from "../../src/platform/emulator/emulator.js";

/*
 * A real network partition: three `lanekeeper run` processes, each in a network namespace of
 * its own, share one lot through a persistent mosquitto (MQTT 5) in the test's namespace. Box B's
 * link to the lot is taken down — no close, no reset, packets just stop — while its lanes go on
 * serving — a car that entered at A leaves at B as a provisional no-record exit — then the
 * link comes back and the lot heals into one record per stay (docs/mqtt.md §12.6 and §12.8).
 * With faketime installed, A's clock runs 4 minutes ahead and B's 3 minutes behind.
 */

const binary = findMosquitto();
const netnsReason = await netnsUnavailable();
const skip = !binary ? "mosquitto not installed; .ci/run installs it" : (netnsReason ?? false);
if (netnsReason) console.log(`# lot-partition: skipped — ${netnsReason}`);
/** Box A's clock runs 4 minutes ahead and B's 3 minutes behind (within the platform's 5-minute signature window). */
const skewed = libfaketime() !== undefined;
const CLOCK_OFFSETS = skewed ? ["+4m", "-3m", undefined] : [undefined, undefined, undefined];

if (!skewed && process.env.CI) {
  test("faketime is installed on CI", () => {
    assert.fail("libfaketime not installed (Debian package faketime); .ci/run installs it, so CI without it is a broken image");
  });
}

test("a box cut off by a network partition keeps serving its lanes, and the lot heals when the link is back", { skip }, async (t) => {
  const dir = tempDir("lk-lot-partition-");
  const broker = await startMosquitto(binary!, { extraListeners: 1, extraConfig: ["persistence true", `persistence_location ${dir}/`, "autosave_interval 1"] });
  const lotPort = broker.extraPorts[0]!;
  const emulator = await startEmulator({ timeZone: ZONE, host: "0.0.0.0" });
  const emulatorPort = new URL(emulator.url).port;
  let spaces: Namespaces | undefined;
  const boxes: LotBox[] = [];
  try {
    spaces = await createBoxNamespaces(3);
    for (const [i, deviceId] of ["a-box", "b-box", "c-box"].entries()) {
      const ns = spaces.boxes[i]!;
      boxes.push(
        await LotBox.create({
          deviceId,
          index: i + 1,
          dir,
          brokerUrl: `mqtt://${ns.lotGateway}:${lotPort}`,
          platformUrl: `http://${ns.siteGateway}:${emulatorPort}/`,
          apiHost: ns.siteAddress,
          exec: ns.exec,
          ...(CLOCK_OFFSETS[i] ? { clockOffset: CLOCK_OFFSETS[i] } : {}),
        }),
      );
    }
    const [a, b, c] = boxes as [LotBox, LotBox, LotBox];
    const cutB = spaces.boxes[1]!;
    const onlineAt = async (box: LotBox, deviceId: string): Promise<boolean | undefined> => (await box.lot()).boxes.find((x) => x.deviceId === deviceId)?.online;
    const sameLot = async (plates: string[]): Promise<boolean> => {
      for (const box of boxes) {
        const lot = await box.lot();
        if (lot.view !== "live" || JSON.stringify(platesOf(await box.cars())) !== JSON.stringify(plates)) return false;
      }
      return true;
    };

    if (!skewed) t.diagnostic("libfaketime not installed: the boxes run on one clock, the skew part is not exercised");
    await Promise.all(boxes.map((box) => box.start()));
    await until(() => sameLot([]), 20_000, "every box live on an empty lot");

    const before = "粤A70001";
    await a.drive("in1", before);
    await until(() => sameLot([before]), 5000, "the first car known at every box");

    // The cut: B's lot link goes down. B finds out from its keepalive, A and C from B's will.
    const cutAt = Date.now();
    await cutB.cutLot();
    await until(async () => (await b.lot()).view === "stale", 20_000, "B says its view is stale");
    await until(async () => (await onlineAt(a, "b-box")) === false && (await onlineAt(c, "b-box")) === false, 20_000, "A and C see B offline");
    t.diagnostic(`partition noticed by B and by the lot within ${Date.now() - cutAt} ms`);

    // Apart: each side serves its lanes on what it knows.
    const atA = "粤A70002";
    const atB = "粤B70003";
    const crossing = "粤A70004";
    await a.drive("in1", atA);
    await b.drive("in2", atB);
    await a.drive("in1", crossing);
    await emulator.waitFor({ service: "enterNotify", plateNum: atB }, 5000);
    await sleep(300);
    assert.deepEqual(platesOf(await b.cars()), [before, atB], "B does not know A's new cars");
    assert.deepEqual(platesOf(await a.cars()), [before, atA, crossing], "A does not know B's new car");
    assert.deepEqual(platesOf(await c.cars()), [before, atA, crossing]);
    // A car that came in at A leaves at B, which has no record of it: the no-record amount,
    // paid through the platform, the exit provisional and its reports held.
    const crossingStay = (await a.cars()).find((car) => car.plate === crossing)!;
    emulator.setPlate(crossing, "frictionless");
    await b.drive("out2", crossing);
    await sleep(300);
    assert.equal(emulator.received({ service: "leaveNotify", plateNum: crossing }).length, 0, "nothing of the provisional exit reported while apart");
    assert.equal(emulator.received({ service: "enterNotify", plateNum: crossing }).length, 1, "only A's entry, no made-up one");

    // Healed: one lot again, every box the same, each stay reported once by the box it entered by.
    const healAt = Date.now();
    await cutB.healLot();
    await until(() => sameLot([before, atA, atB].sort()), 30_000, "every box holds the same lot after the heal");
    t.diagnostic(`lot whole at every box ${Date.now() - healAt} ms after the link came back`);
    await until(async () => (await onlineAt(a, "b-box")) === true, 5000, "B online again at A");
    // The crossing car is one record: A's entry, B's exit under A's recordNo, billed from A's
    // entry; the no-record amount paid it and what it exceeded the true fee by is owed back.
    const leave = await emulator.waitFor({ service: "leaveNotify", recordNo: crossingStay.recordNo }, 10_000);
    assert.equal(leave.biz.outChannelid, "4", "reported by B's exit lane");
    const enter = emulator.received({ service: "enterNotify", recordNo: crossingStay.recordNo })[0]!;
    assert.equal(leave.biz.enterTime, enter.biz.enterTime, "billed from A's entry");
    assert.ok(String(leave.biz.leaveTime) >= String(leave.biz.enterTime), `never a leave before its entry, whatever the clocks: ${String(leave.biz.leaveTime)}`);
    assert.ok(enter.seq < leave.seq, "A's entry report reached the platform before B's exit report");
    if (skewed) {
      // B's clock reads the exit 7 minutes before A's clock read the entry: a zero-minute stay.
      assert.equal(leave.biz.leaveTime, leave.biz.enterTime);
      t.diagnostic(`A 4 min ahead, B 3 min behind: the crossing car left at its entry time ${String(leave.biz.enterTime)}, payable ${String(leave.biz.payableFee)} fen`);
    } else {
      assert.equal(leave.biz.payableFee, FIRST_HOUR_FEN);
    }
    assert.equal(leave.biz.paidFee, 1000, "the no-record amount counts as paid");
    const status = await b.get<{ lotProvisional: { reconciled: number; refundsOwed: number } }>("/api/status");
    assert.equal(status.lotProvisional.reconciled, 1);
    assert.equal(status.lotProvisional.refundsOwed, 1);
    await sleep(300);
    assert.equal(emulator.received({ service: "leaveNotify", plateNum: crossing }).length, 1, "one exit report for the crossing car");
    for (const plate of [before, atA, atB, crossing]) assert.equal(emulator.received({ service: "enterNotify", plateNum: plate }).length, 1, `one entry report for ${plate}`);
    const byBox = await Promise.all(boxes.map((box) => box.cars()));
    for (const car of byBox[0]!) {
      for (const cars of byBox) assert.equal(cars.find((x) => x.plate === car.plate)?.recordNo, car.recordNo, `${car.plate}: one record lot-wide`);
    }
  } finally {
    for (const box of boxes) await box.stop().catch(() => undefined);
    await spaces?.destroy();
    await emulator.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  }
});
