import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness, sleep } from "../helpers/lot-harness.js";

/*
 * Entry lane scenarios on the real composition (docs/architecture.md "How one car travels through the box"): simulated GPIO and
 * serial camera, the HTTP camera push, the platform emulator on loopback, real store files.
 */

const HOUR_MS = 3_600_000;

test("a temporary car: the in-park record is on disk when relayOpen goes high; the entry report follows the passage", async () => {
  const lot = await LotHarness.create();
  try {
    const plate = "粤A11111";
    const atOpen: Array<{ recordNo: string | undefined; onDisk: boolean }> = [];
    lot.gpio.onWrite = (key, level) => {
      if (key !== "in1.relayOpen" || level !== 1) return;
      const recordNo = lot.stayOf(plate)?.recordNo;
      // Acknowledged by the store (after its fsync), not merely in the page cache.
      atOpen.push({ recordNo, onDisk: recordNo !== undefined && lot.durableWrites.some((write) => write.includes(recordNo)) });
    };
    const freeBefore = lot.app.lanes.freeSpaces();
    await lot.arrive("in1", plate);
    const allowed = await lot.waitForEvent("entry-allowed", { plate });
    assert.equal(allowed.reason, "temporary");
    await lot.pass("in1");
    lot.gpio.onWrite = undefined;

    assert.equal(atOpen.length, 1, "one open pulse for one car");
    assert.equal(atOpen[0]!.recordNo, allowed.recordNo, "the record existed when the relay was written");
    assert.equal(atOpen[0]!.onDisk, true, "the record was in the store files when the relay was written");
    const record = lot.stayOf(plate)!;
    assert.equal(record.vehicleType, "temporary");
    assert.equal(lot.app.lanes.freeSpaces(), freeBefore - 1);

    const report = await lot.emulator.waitFor({ service: "enterNotify", recordNo: record.recordNo });
    assert.equal(report.biz.plateNum, plate);
    assert.equal(report.biz.inChannelid, "1");
    assert.equal(report.biz.carType, 9);
    assert.equal(report.biz.enterTime, lot.wireTime(record.enterAtMs));
    // The welcome shows on the entry board.
    assert.ok(
      lot.displayHistory("in1").some((line) => line.includes(plate)),
      lot.displayHistory("in1").join(" | "),
    );
  } finally {
    await lot.stop();
  }
});

test("a camera read before the loop and one after it both lead to one decision and one stay", async () => {
  const lot = await LotHarness.create();
  try {
    // Read first, car on loopA within the plate window.
    lot.read("in1", "粤A22221");
    await sleep(200);
    assert.equal(lot.find("entry-allowed", { plate: "粤A22221" }).length, 0, "no decision without a vehicle");
    await lot.onLoopA("in1");
    await lot.waitForEvent("entry-allowed", { plate: "粤A22221" });
    await lot.pass("in1");

    // Loop first, read a moment later.
    await lot.onLoopA("in1");
    await sleep(300);
    lot.read("in1", "粤A22222");
    await lot.waitForEvent("entry-allowed", { plate: "粤A22222" });
    // A second read of the same car is a duplicate, not a second decision.
    lot.read("in1", "粤A22222");
    await lot.pass("in1");
    assert.equal(lot.find("entry-allowed", { plate: "粤A22222" }).length, 1);
    assert.ok(lot.find("duplicate-read", { plate: "粤A22222" }).length >= 1);
    assert.ok(lot.stayOf("粤A22221"));
    assert.ok(lot.stayOf("粤A22222"));
    assert.equal(lot.app.store.inParkCount(), 2);
  } finally {
    await lot.stop();
  }
});

test("a monthly car enters as monthly; a blacklisted car (added by the platform) is denied with no record and no report", async () => {
  const lot = await LotHarness.create();
  try {
    const now = Date.now();
    await lot.app.store.upsertVehicle({ carNum: "粤B80001", owner: "李四", carTypeCode: 81, timeStartMs: now - 10 * 24 * HOUR_MS, timeEndMs: now + 30 * 24 * HOUR_MS });
    await lot.drive("in1", "粤B80001");
    const allowed = await lot.waitForEvent("entry-allowed", { plate: "粤B80001" });
    assert.equal(allowed.reason, "fixed");
    const monthly = lot.stayOf("粤B80001")!;
    assert.equal(monthly.vehicleType, "monthly");
    assert.equal(monthly.carType, 8);
    assert.equal(monthly.carSubType, 81);
    const report = await lot.emulator.waitFor({ service: "enterNotify", recordNo: monthly.recordNo });
    assert.equal(report.biz.carType, 8);

    // The platform blacklists a car (4.9.2); it takes effect on the next decision.
    const added = await lot.callBox("addBlacklist", { carNum: "粤C66661", remark: "unpaid", operator: "ops" });
    assert.equal((added.body as { code: number }).code, 200, added.bodyText);
    const opensBefore = lot.gpio.writes.filter((w) => w.key === "in1.relayOpen" && w.level === 1).length;
    await lot.arrive("in1", "粤C66661");
    const denied = await lot.waitForEvent("entry-denied", { plate: "粤C66661" });
    assert.equal(denied.reason, "blacklisted");
    await sleep(150);
    assert.equal(lot.barrier("in1"), "closed");
    assert.equal(lot.gpio.writes.filter((w) => w.key === "in1.relayOpen" && w.level === 1).length, opensBefore, "no open for a blacklisted car");
    assert.equal(lot.stayOf("粤C66661"), undefined);
    await lot.backOut("in1");
    await lot.drained();
    assert.equal(lot.emulator.received({ service: "enterNotify", plateNum: "粤C66661" }).length, 0);
  } finally {
    await lot.stop();
  }
});

test("a full lot admits only monthly cars; free spaces are an absolute number in /api/status and queryFreeSpace", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.lot.totalSpaces = 3) });
  try {
    const now = Date.now();
    await lot.app.store.upsertVehicle({ carNum: "粤B80002", carTypeCode: 81, timeStartMs: now - HOUR_MS, timeEndMs: now + 30 * 24 * HOUR_MS });
    const status0 = await lot.api("GET", "/api/status");
    assert.equal(status0.body.lot.freeSpaces, 3);
    await lot.park("粤A30001", HOUR_MS);
    await lot.drive("in1", "粤A30002");
    await lot.drive("in1", "粤A30003");
    const status1 = await lot.api("GET", "/api/status");
    assert.equal(status1.body.lot.freeSpaces, 0);
    assert.equal(status1.body.lot.totalSpaces, 3);
    const free = await lot.callBox("queryFreeSpace", {});
    assert.deepEqual((free.body as { data: unknown }).data, { totalSpaces: 3, freeSpaces: 0 });

    await lot.arrive("in1", "粤A30004");
    const denied = await lot.waitForEvent("entry-denied", { plate: "粤A30004" });
    assert.equal(denied.reason, "lot-full");
    await lot.until(() => lot.displayHistory("in1").some((line) => line.includes("车位已满")), 2000, "车位已满 on the board");
    await lot.backOut("in1");

    await lot.drive("in1", "粤B80002");
    assert.equal((await lot.waitForEvent("entry-allowed", { plate: "粤B80002" })).reason, "fixed");
    // Never negative: four cars in a three-space lot.
    const status2 = await lot.api("GET", "/api/status");
    assert.equal(status2.body.lot.freeSpaces, 0);
    assert.equal(status2.body.lot.inPark, 4);
  } finally {
    await lot.stop();
  }
});

test("a car group of one space shared by two cars: the second car in pays as a temporary car", async () => {
  const lot = await LotHarness.create();
  try {
    const now = Date.now();
    const group = await lot.app.store.upsertCarGroup({ name: "family", spaces: 1 });
    for (const plate of ["粤B70001", "粤B70002"]) {
      await lot.app.store.upsertVehicle({
        carNum: plate,
        carTypeCode: 81,
        carGroupUuid: group.carGroupUuid,
        carGroupID: group.carGroupID,
        timeStartMs: now - HOUR_MS,
        timeEndMs: now + 30 * 24 * HOUR_MS,
      });
    }
    await lot.drive("in1", "粤B70001");
    await lot.drive("in1", "粤B70002");
    assert.equal((await lot.waitForEvent("entry-allowed", { plate: "粤B70001" })).reason, "fixed");
    assert.equal((await lot.waitForEvent("entry-allowed", { plate: "粤B70002" })).reason, "temporary");
    const second = lot.stayOf("粤B70002")!;
    assert.equal(second.vehicleType, "temporary");
    assert.equal(second.carType, 9);

    // An hour and a half later (the stays are moved back): the first is free, the second pays.
    for (const plate of ["粤B70001", "粤B70002"]) {
      const stay = lot.stayOf(plate)!;
      await lot.app.store.updateInPark(stay.recordNo, { enterAtMs: stay.enterAtMs - 1.5 * HOUR_MS });
    }
    const feeOf = async (plate: string) => {
      const answer = await lot.callBox("queryParkFee", { payScene: 0, plateNum: plate });
      const body = answer.body as { code: number; data: { payableFee: number; paidFee: number } };
      assert.equal(body.code, 200, answer.bodyText);
      return body.data;
    };
    assert.equal((await feeOf("粤B70001")).paidFee, 0);
    assert.equal((await feeOf("粤B70002")).paidFee, 600);

    await lot.arrive("out1", "粤B70002");
    const due = await lot.waitForEvent("fee-due", { plate: "粤B70002" });
    assert.equal(due.feeFen, 600);
  } finally {
    await lot.stop();
  }
});

test("platform confirmation at the entry: remoteDev type 0 opens, type 1 refuses, no answer → the configured default", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.policy.entry = { confirmWithPlatform: "all", confirmWaitMs: 700, confirmDefault: "deny" }) });
  try {
    const confirm = async (plate: string, type: number) => {
      await lot.arrive("in1", plate);
      const pre = await lot.emulator.waitFor({ service: "preEnterNotify", plateNum: plate });
      await sleep(100);
      assert.equal(lot.barrier("in1"), "closed", "nothing opens before the platform answers");
      const answer = await lot.callBox("remoteDev", { channelid: "1", type, plateId: pre.biz.recordNo, operator: "cloud-ops" });
      assert.equal((answer.body as { code: number }).code, 200, answer.bodyText);
      return String(pre.biz.recordNo);
    };

    const recordNo = await confirm("粤A40001", 0);
    await lot.pass("in1");
    assert.equal(lot.stayOf("粤A40001")?.recordNo, recordNo, "the stay keeps the pre-entry recordNo");
    const entered = await lot.emulator.waitFor({ service: "enterNotify", recordNo });
    assert.equal(entered.biz.plateNum, "粤A40001");

    await confirm("粤A40002", 1);
    const refused = await lot.waitForEvent("entry-denied", { plate: "粤A40002" });
    assert.equal(refused.reason, "platform-refused");
    assert.equal(lot.stayOf("粤A40002"), undefined);
    await lot.backOut("in1");

    // Nobody answers: after preEnterMs + confirmWaitMs the default (deny here) decides.
    const began = Date.now();
    await lot.arrive("in1", "粤A40003");
    await lot.emulator.waitFor({ service: "preEnterNotify", plateNum: "粤A40003" });
    const timedOut = await lot.waitForEvent("entry-denied", { plate: "粤A40003" }, 4000);
    const tookMs = Date.now() - began;
    assert.equal(timedOut.reason, "platform-refused");
    assert.ok(tookMs >= 1300 && tookMs < 3500, `decided after ${tookMs} ms`);
    await lot.backOut("in1");
    await lot.drained();
    assert.equal(lot.emulator.received({ service: "enterNotify" }).length, 1);
  } finally {
    await lot.stop();
  }
});

test("platform confirmation with default allow: a platform that never answers lets the car in at the deadline", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.policy.entry = { confirmWithPlatform: "all", confirmWaitMs: 500, confirmDefault: "allow" }) });
  try {
    await lot.emulator.setFaults({ rules: [{ service: "preEnterNotify", action: { kind: "hang" } }] });
    const began = Date.now();
    await lot.arrive("in1", "粤A41001");
    await lot.waitForEvent("entry-allowed", { plate: "粤A41001" }, 4000);
    const tookMs = Date.now() - began;
    assert.ok(tookMs >= 700, `allowed after ${tookMs} ms, before the deadline`);
    await lot.pass("in1");
    const stay = lot.stayOf("粤A41001")!;
    await lot.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });
  } finally {
    await lot.stop();
  }
});

test("platform confirmation for temporary cars only: a valid monthly car enters without asking, a temporary car waits for remoteDev", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.policy.entry = { confirmWithPlatform: "temporary", confirmWaitMs: 700, confirmDefault: "deny" }) });
  try {
    const now = Date.now();
    await lot.app.store.upsertVehicle({ carNum: "粤B42001", carTypeCode: 81, timeStartMs: now - HOUR_MS, timeEndMs: now + 30 * 24 * HOUR_MS });
    await lot.arrive("in1", "粤B42001");
    const monthly = await lot.waitForEvent("entry-allowed", { plate: "粤B42001" });
    assert.equal(monthly.reason, "fixed");
    await lot.pass("in1");
    assert.equal(lot.emulator.received({ service: "preEnterNotify", plateNum: "粤B42001" }).length, 0, "a monthly car is not asked about");

    await lot.arrive("in1", "粤A42002");
    const pre = await lot.emulator.waitFor({ service: "preEnterNotify", plateNum: "粤A42002" });
    await sleep(100);
    assert.equal(lot.barrier("in1"), "closed", "the temporary car waits for the platform");
    assert.equal(lot.find("entry-allowed", { plate: "粤A42002" }).length, 0);
    const answer = await lot.callBox("remoteDev", { channelid: "1", type: 0, plateId: pre.biz.recordNo, operator: "cloud-ops" });
    assert.equal((answer.body as { code: number }).code, 200, answer.bodyText);
    await lot.pass("in1");
    assert.equal(lot.stayOf("粤A42002")?.recordNo, pre.biz.recordNo);
    await lot.emulator.waitFor({ service: "enterNotify", recordNo: String(pre.biz.recordNo) });
  } finally {
    await lot.stop();
  }
});

test("a tailgating car gets no open of its own: one stay, one open pulse, one entry report", async () => {
  const lot = await LotHarness.create();
  try {
    await lot.arrive("in1", "粤A50001");
    await lot.waitForEvent("entry-allowed", { plate: "粤A50001" });
    await lot.until(() => lot.barrier("in1") === "open", 3000, "open");
    // The first car moves onto the safety loop and off the arming loop...
    lot.set("in1", "loopB", 1);
    await lot.until(() => lot.snapshot("in1").loopB, 1000, "loopB");
    lot.set("in1", "loopA", 0);
    await lot.until(() => !lot.snapshot("in1").loopA, 1000, "loopA clear");
    // ...and a second car follows it bumper to bumper under the open arm (no read).
    await lot.onLoopA("in1");
    lot.set("in1", "loopA", 0);
    const tailgated = await lot.waitForEvent("tailgated");
    assert.ok(tailgated.txId);
    lot.set("in1", "loopB", 0);
    await lot.until(() => lot.barrier("in1") === "closed", 3000, "closed");
    await lot.drained();
    assert.equal(lot.gpio.writes.filter((w) => w.key === "in1.relayOpen" && w.level === 1).length, 1, "one open for one paying car");
    assert.equal(lot.app.store.inParkCount(), 1);
    assert.equal(lot.emulator.received({ service: "enterNotify" }).length, 1);
  } finally {
    await lot.stop();
  }
});

test("a car that backs out after the open: the record is cancelled and no entry report is sent", async () => {
  const lot = await LotHarness.create();
  try {
    await lot.arrive("in1", "粤A60001");
    const allowed = await lot.waitForEvent("entry-allowed", { plate: "粤A60001" });
    await lot.until(() => lot.barrier("in1") === "open", 3000, "open");
    await lot.backOut("in1");
    await lot.waitForEvent("backed-out", { plate: "粤A60001" }, 3000);
    await lot.until(() => lot.stayOf("粤A60001") === undefined, 2000, "stay cancelled");
    await lot.until(() => lot.barrier("in1") === "closed", 3000, "closed again");
    const history = await lot.app.store.recentStays("粤A60001");
    assert.equal(history.length, 1);
    assert.equal(history[0]!.recordNo, allowed.recordNo);
    assert.equal(history[0]!.exit.reason, "backed-out");
    await sleep(300);
    await lot.drained();
    assert.equal(lot.emulator.received({ service: "enterNotify" }).length, 0);
    assert.equal(lot.emulator.received({ service: "leaveNotify" }).length, 0);
    // It may come back at once and is read again.
    await lot.drive("in1", "粤A60001");
    const second = await lot.emulator.waitFor({ service: "enterNotify", plateNum: "粤A60001" });
    assert.notEqual(second.biz.recordNo, allowed.recordNo);
  } finally {
    await lot.stop();
  }
});
