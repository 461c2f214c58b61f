import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness, sleep } from "../helpers/lot-harness.js";
import { startEmulator } from "../../src/platform/emulator/emulator.js";

/*
 * Section-4 calls wired to the lanes (docs/protocol.md §4): the fee query in
 * its three scenes and the unlicensed-car entry request, signed by the emulated cloud and
 * answered by the box's real open-interface handler.
 */

const HOUR_MS = 3_600_000;
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700;

type Answer = { code: number; msg: string; data?: Record<string, unknown> };

test("queryParkFee scene 0 (by plate) and scene 1 (the car now at the exit lane)", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A91001", STAY_MS);
    const byPlate = (await lot.callBox("queryParkFee", { payScene: 0, plateNum: "粤A91001" })).body as Answer;
    assert.equal(byPlate.code, 200, byPlate.msg);
    assert.equal(byPlate.data!.recordNo, stay.recordNo);
    assert.equal(byPlate.data!.enterTime, lot.wireTime(stay.enterAtMs));
    assert.equal(byPlate.data!.payableFee, FEE_FEN);
    const unknown = (await lot.callBox("queryParkFee", { payScene: 0, plateNum: "粤Z00000" })).body as Answer;
    assert.notEqual(unknown.code, 200);

    // Nobody at the exit yet: scene 1 has no vehicle to bill.
    const empty = (await lot.callBox("queryParkFee", { payScene: 1, outChannelid: "2" })).body as Answer;
    assert.notEqual(empty.code, 200);

    await lot.arrive("out1", "粤A91001");
    await lot.awaitingPayment("out1");
    const due = await lot.waitForEvent("fee-due", { plate: "粤A91001" });
    const atLane = (await lot.callBox("queryParkFee", { payScene: 1, outChannelid: "2" })).body as Answer;
    assert.equal(atLane.code, 200, atLane.msg);
    assert.equal(atLane.data!.plateNum, "粤A91001");
    assert.equal(atLane.data!.recordNo, stay.recordNo);
    assert.equal(atLane.data!.paidFee, due.feeFen);
    assert.equal(atLane.data!.outChannelid, "2");
    // The entry lane is not an exit.
    const wrongLane = (await lot.callBox("queryParkFee", { payScene: 1, outChannelid: "1" })).body as Answer;
    assert.notEqual(wrongLane.code, 200);
    // Then as in flow 4: the payment notice quoting the bill's plateId opens.
    const notice = (
      await lot.callBox("payNotify", {
        recordNo: stay.recordNo,
        plateNum: "粤A91001",
        orderNo: "QR-91001",
        payType: 1,
        payFee: FEE_FEN,
        payTime: lot.wireTime(Date.now()),
        payScene: 1,
        outChannelid: "2",
        plateId: due.plateId,
      })
    ).body as Answer;
    assert.equal(notice.code, 200, notice.msg);
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.orderNo, "QR-91001");
  } finally {
    await lot.stop();
  }
});

test("unlicensedReq: a stay and an open only with a vehicle on loopA; a repeat within 10 s gets the same answer and no second stay", async () => {
  const lot = await LotHarness.create();
  try {
    const request = (plateNum: string) => lot.callBox("unlicensedReq", { plateNum, channelid: "1", requestTime: lot.wireTime(Date.now()) });

    // No vehicle on the entry lane: refused, nothing created, nothing opened.
    const none = (await request("K7Q2M91")).body as Answer;
    assert.notEqual(none.code, 200);
    assert.equal(lot.app.store.inParkCount(), 0);
    assert.equal(lot.gpio.writes.filter((w) => w.key === "in1.relayOpen" && w.level === 1).length, 0);

    await lot.onLoopA("in1");
    const first = (await request("K7Q2M92")).body as Answer;
    assert.equal(first.code, 200, first.msg);
    const stay = lot.stayOf("K7Q2M92");
    assert.ok(stay, "the stay exists when the cloud hears 200");
    assert.equal(stay.source, "unlicensed");
    const repeat = (await request("K7Q2M92")).body as Answer;
    assert.deepEqual(repeat, first, "the same answer");
    assert.equal(lot.app.store.findInParkByPlate("K7Q2M92").length, 1, "no second stay");
    await lot.pass("in1");
    const report = await lot.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });
    assert.equal(report.biz.plateNum, "K7Q2M92");
    assert.equal(lot.gpio.writes.filter((w) => w.key === "in1.relayOpen" && w.level === 1).length, 1);
    // A virtual plate that is not 7 characters is bad input.
    const bad = (await request("K7")).body as Answer;
    assert.notEqual(bad.code, 200);
  } finally {
    await lot.stop();
  }
});

test("queryParkFee scene 2 bills the unlicensed car at the exit lane; its payment opens", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("K7Q2M93", STAY_MS, { source: "unlicensed", vehicleType: "unlicensed" });
    // The car reaches the exit; the camera sees no plate.
    await lot.onLoopA("out1");
    lot.read("out1", "");
    await sleep(100);
    assert.equal(lot.barrier("out1"), "closed");

    const quote = (await lot.callBox("queryParkFee", { payScene: 2, plateNum: "无K7Q2M93", recordNo: stay.recordNo, outChannelid: "2" })).body as Answer;
    assert.equal(quote.code, 200, quote.msg);
    assert.equal(quote.data!.recordNo, stay.recordNo);
    assert.equal(quote.data!.paidFee, FEE_FEN);
    // The lot now bills that car at the lane (flow 6: "then as in 4").
    await lot.awaitingPayment("out1");
    const notice = (
      await lot.callBox("payNotify", {
        recordNo: stay.recordNo,
        plateNum: "无K7Q2M93",
        orderNo: "UL-93",
        payType: 1,
        payFee: FEE_FEN,
        payTime: lot.wireTime(Date.now()),
        payScene: 2,
        outChannelid: "2",
      })
    ).body as Answer;
    assert.equal(notice.code, 200, notice.msg);
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.paidFee, FEE_FEN);
    assert.equal(leave.biz.orderNo, "UL-93");
    assert.equal(lot.app.store.inParkCount(), 0);
  } finally {
    await lot.stop();
  }
});

test("a stay the platform added (4.13.4) is not reported back as an entry, across a restart; its exit is reported", async () => {
  const emulator = await startEmulator();
  let lot = await LotHarness.create({ emulator });
  try {
    const enterTime = lot.wireTime(Date.now() - STAY_MS);
    const added = (await lot.callBox("addParkRecord", { plateNum: "粤A92001", enterTime, inChannelid: "1", operator: "cloud" })).body as Answer;
    assert.equal(added.code, 200, added.msg);
    const stay = lot.stayOf("粤A92001")!;
    assert.ok(stay);
    await lot.stop({ keepStore: true });
    lot = await LotHarness.create({ emulator, storeDir: lot.storeDir });
    await sleep(200);
    await lot.drained();
    assert.equal(emulator.received({ service: "enterNotify" }).length, 0, "the platform told us; nothing to report");

    emulator.setPlate("粤A92001", "frictionless");
    await lot.drive("out1", "粤A92001");
    const leave = await emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.enterTime, enterTime);
    assert.equal(leave.biz.paidFee, FEE_FEN);
    await lot.drained();
    assert.equal(emulator.received({ service: "enterNotify" }).length, 0);
  } finally {
    await lot.stop();
    await emulator.stop();
  }
});
