import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { CuttablePath, gateLanes, skewedClock } from "../helpers/cuttable-path.js";
import type { Clock } from "../../src/kernel/clock.js";

/*
 * Partitions of one lot (docs/mqtt.md "Partitions and reconciliation"): box A at the north
 * gate, box B at the south gate, an in-process broker (aedes), one emulated platform. B reaches
 * the broker through a TCP proxy the test cuts (every connection dropped, new ones refused at
 * once) and heals. Everything else is real: lanes, stores on disk, outboxes, the platform.
 */

const MINUTE_MS = 60_000;
const FLAT_FEN = 1000;

interface PartedLot {
  broker: AedesBroker;
  /** B's path to the broker. */
  path: CuttablePath;
  /** A's path to the broker. */
  pathA: CuttablePath;
  a: LotHarness;
  b: LotHarness;
  /** B stopped and started again on its store (the same config). */
  restartB(): Promise<void>;
  stop(): Promise<void>;
}

async function partedLot(options: { policy?: Record<string, unknown>; aClock?: Clock; bClock?: Clock } = {}): Promise<PartedLot> {
  const broker = await startAedes();
  const path = await CuttablePath.open(broker.port);
  const pathA = await CuttablePath.open(broker.port);
  const share = (url: string) => ({ enabled: true, mqtt: { url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100, provisionalWaitMs: 1500 });
  const a = await LotHarness.create({
    ...(options.aClock ? { clock: options.aClock } : {}),
    mutate: (raw) => {
      raw.deviceId = "north-box";
      raw.lot.share = share(pathA.url);
      if (options.policy) raw.policy = { ...raw.policy, ...options.policy };
    },
  });
  const southBox = (storeDir?: string) =>
    LotHarness.create({
      emulator: a.emulator,
      ...(options.bClock ? { clock: options.bClock } : {}),
      ...(storeDir ? { storeDir } : {}),
      mutate: (raw) => {
        raw.deviceId = "south-box";
        raw.lot.share = { ...share(path.url), startWaitMs: 300 };
        gateLanes(raw, 2);
        if (options.policy) raw.policy = { ...raw.policy, ...options.policy };
      },
    });
  const lot: PartedLot = {
    broker,
    path,
    pathA,
    a,
    b: await southBox(),
    async restartB() {
      const dir = lot.b.storeDir;
      await lot.b.stop({ keepStore: true });
      lot.b = await southBox(dir);
    },
    async stop() {
      await lot.b.stop();
      await a.stop();
      await path.close();
      await pathA.close();
      await broker.close();
    },
  };
  return lot;
}

/** A lot of two boxes for `body`, stopped whatever happens. */
async function withLot(options: Parameters<typeof partedLot>[0], body: (lot: PartedLot) => Promise<void>): Promise<void> {
  const lot = await partedLot(options);
  try {
    await body(lot);
  } finally {
    await lot.stop();
  }
}

/** B cut off, then a car in through A's entry lane: its stay at A. */
async function enteredAtAWhileApart(lot: PartedLot, plate: string) {
  await cutOff(lot);
  await lot.a.drive("in1", plate);
  return lot.a.stayOf(plate)!;
}

async function cutOff(lot: PartedLot): Promise<void> {
  lot.path.cut();
  await lot.b.until(() => lot.b.app.lotShare!.status().view === "stale", 3000, "B's view stale");
}

async function healed(lot: PartedLot): Promise<void> {
  lot.path.heal();
  await lot.b.until(() => lot.b.app.lotShare!.status().view === "live", 5000, "B's view live again");
}

/** A car that leaves at B while B is cut off: no record there, the flat amount, paid at once. */
async function provisionalExitAtB(lot: PartedLot, plate: string): Promise<string> {
  lot.a.emulator.setPlate(plate, "frictionless");
  await lot.b.arrive("out2", plate);
  const made = await lot.b.waitForEvent("lot-provisional-exit", { plate });
  await lot.b.until(() => lot.b.barrier("out2") === "open", 4000, "B's exit open");
  await lot.b.pass("out2");
  return made.recordNo as string;
}

/**
 * After the heal, one record: the lot's stay got its one leaveNotify (returned), the provisional
 * record's held reports are gone unsent, and the platform heard one enter and one leave in all.
 */
async function reportedOnce(lot: PartedLot, stayRecordNo: string, provisionalRecordNo: string) {
  const leave = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: stayRecordNo }, 8000);
  await lot.b.until(() => lot.b.app.outbox.list({ recordNo: provisionalRecordNo }).length === 0, 4000, "the provisional reports dropped");
  await lot.b.drained();
  assert.equal(lot.a.emulator.received({ service: "enterNotify" }).length, 1, "one entry report");
  assert.equal(lot.a.emulator.received({ service: "leaveNotify" }).length, 1, "one exit report");
  return leave;
}

test("a car in at A and out at B while apart: one record after the heal, one enterNotify (A) and one leaveNotify (B), the overcharge owed back", () =>
  withLot({}, async (lot) => {
    const stay = await enteredAtAWhileApart(lot, "粤A70001");
    const enter = await lot.a.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });

    const provisional = await provisionalExitAtB(lot, "粤A70001");
    assert.notEqual(provisional, stay.recordNo);
    // Durable before the barrier moved, marked provisional, its reports held in B's outbox.
    const finished = (await lot.b.app.store.recentStays("粤A70001")).find((s) => s.recordNo === provisional);
    assert.equal(finished?.provisional, true);
    assert.equal(finished?.exit.paidFen, FLAT_FEN);
    assert.deepEqual(
      lot.b.app.outbox
        .list({ recordNo: provisional })
        .map((e) => e.kind)
        .sort(),
      ["enter", "leave"],
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(
      lot.a.emulator.received({ recordNo: provisional }).filter((p) => p.service !== "preLeaveNotify").length,
      0,
      "nothing of the provisional record reported while apart",
    );

    await healed(lot);
    const leave = await reportedOnce(lot, stay.recordNo, provisional);
    assert.equal(leave.biz.enterTime, enter.biz.enterTime);
    assert.equal(leave.biz.outChannelid, "4");
    assert.equal(leave.biz.paidFee, FLAT_FEN);
    const payable = leave.biz.payableFee as number;
    assert.ok(payable < FLAT_FEN, `the true fee ${payable} is below the flat amount`);
    assert.ok(enter.seq < leave.seq, "enter before leave");
    // The stay left the lot at both boxes; the provisional record was never reported.
    await lot.a.until(() => lot.a.app.store.getInPark(stay.recordNo) === undefined, 3000, "A's stay gone at A");
    assert.equal(lot.b.app.store.getInPark(stay.recordNo), undefined);
    assert.equal(
      lot.a.emulator.received({ service: "enterNotify", recordNo: provisional }).length + lot.a.emulator.received({ service: "leaveNotify", recordNo: provisional }).length,
      0,
    );
    // The count moves once the last held report is discarded durably (the list empties before).
    for (let tries = 0; (await lot.b.api("GET", "/api/status")).body.lotProvisional.reconciled !== 1; tries++) {
      if (tries > 50) assert.fail("the reconciliation was not counted within 2 s");
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    assert.deepEqual((await lot.b.api("GET", "/api/status")).body.lotProvisional, { reconciled: 1, released: 0, duplicatesEnded: 0, refundsOwed: 1 });
    // Every fen explained: the flat amount paid the stay, the rest is owed back.
    const refunds = lot.b.app.lanes.refunds.list();
    assert.equal(refunds.length, 1);
    assert.equal(refunds[0]!.kind, "provisional-overcharge");
    assert.equal(refunds[0]!.recordNo, stay.recordNo);
    assert.equal(refunds[0]!.amountFen, FLAT_FEN - payable);
    const settled = (await lot.b.app.store.recentStays("粤A70001")).find((s) => s.recordNo === stay.recordNo)!;
    assert.equal(settled.exit.reason, "lot-reconciled");
    assert.deepEqual(settled.exit.extra?.provisional, { recordNo: provisional, takenFen: FLAT_FEN, dueFen: payable, refundOwedFen: FLAT_FEN - payable, writtenOffFen: 0 });
  }));

test("the entering box cut off instead: B, live, sees A offline, so its no-record exit is provisional and matched when A is back", () =>
  withLot({}, async (lot) => {
    lot.pathA.cut();
    await lot.a.until(() => lot.a.app.lotShare!.status().view === "stale", 3000, "A's view stale");
    await lot.b.until(() => lot.b.app.lotShare!.view.allBoxes().some((box) => box.deviceId === "north-box" && !box.online), 3000, "A offline at B");
    assert.equal(lot.b.app.lotShare!.status().view, "live");
    await lot.a.drive("in1", "粤A70006");
    const stay = lot.a.stayOf("粤A70006")!;
    const provisional = await provisionalExitAtB(lot, "粤A70006");
    lot.pathA.heal();
    const leave = await reportedOnce(lot, stay.recordNo, provisional);
    assert.equal(leave.biz.outChannelid, "4");
  }));

test("the entering box comes back while the car still waits to pay at B: its stay is not taken for a duplicate, and the car is one record", () =>
  withLot({}, async (lot) => {
    lot.pathA.cut();
    await lot.b.until(() => lot.b.app.lotShare!.view.allBoxes().some((box) => box.deviceId === "north-box" && !box.online), 3000, "A offline at B");
    await lot.a.drive("in1", "粤A70009");
    const stay = lot.a.stayOf("粤A70009")!;
    await lot.b.arrive("out2", "粤A70009");
    const made = await lot.b.waitForEvent("lot-provisional-exit", { plate: "粤A70009" });
    await lot.b.awaitingPayment("out2");
    lot.pathA.heal();
    await lot.b.until(() => lot.b.app.store.getInPark(stay.recordNo) !== undefined, 4000, "A's stay at B");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(lot.a.app.store.getInPark(stay.recordNo), "A kept the car's real stay");
    const paid = await lot.b.api("POST", "/api/lanes/out2/commands", { command: "cash-paid", operator: "王芳", reason: "cash" });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    await lot.b.pass("out2");
    const leave = await reportedOnce(lot, stay.recordNo, made.recordNo as string);
    assert.equal(leave.biz.paidFee, FLAT_FEN);
  }));

test("B restarted while apart keeps its held reports: reconciled after the heal, one record at the platform", () =>
  withLot({}, async (lot) => {
    const stay = await enteredAtAWhileApart(lot, "粤A70007");
    const provisional = await provisionalExitAtB(lot, "粤A70007");
    await lot.restartB();
    assert.equal(lot.b.app.lotShare!.status().view, "stale");
    assert.equal(lot.b.app.outbox.list({ recordNo: provisional }).length, 2, "the held reports survived the restart");
    await healed(lot);
    const leave = await reportedOnce(lot, stay.recordNo, provisional);
    assert.equal(leave.biz.paidFee, FLAT_FEN);
    assert.equal(lot.b.app.lanes.refunds.list().length, 1);
  }));

test("a car no box saw enter, out at B while apart: after the heal and the bound it is reported as an ordinary no-record exit", () =>
  withLot({}, async (lot) => {
    await cutOff(lot);
    const provisional = await provisionalExitAtB(lot, "粤A70002");
    await healed(lot);
    const enter = await lot.a.emulator.waitFor({ service: "enterNotify", recordNo: provisional }, 6000);
    const leave = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: provisional }, 6000);
    assert.ok(enter.seq < leave.seq);
    assert.equal(leave.biz.paidFee, FLAT_FEN);
    assert.equal(lot.b.app.lanes.refunds.list().length, 0);
  }));

test("a misread at a provisional exit, corrected by the attendant: the misread's made-up stay is never reported, the car is one record", () =>
  withLot({}, async (lot) => {
    const stay = await enteredAtAWhileApart(lot, "粤A70008");
    await lot.b.arrive("out2", "粤E99998");
    const misread = await lot.b.waitForEvent("lot-provisional-exit", { plate: "粤E99998" });
    await lot.b.awaitingPayment("out2");
    lot.a.emulator.setPlate("粤A70008", "frictionless");
    const corrected = await lot.b.api("POST", "/api/lanes/out2/correct-plate", { plate: "粤A70008", operator: "王芳", reason: "misread" });
    assert.equal(corrected.status, 200, JSON.stringify(corrected.body));
    await lot.b.waitForEvent("lot-provisional-exit", { plate: "粤A70008" });
    await lot.b.pass("out2");
    assert.equal(lot.b.app.store.getInPark(misread.recordNo as string), undefined, "the misread's stay cancelled");
    await healed(lot);
    const leave = await reportedOnce(lot, stay.recordNo, misread.recordNo as string);
    assert.equal(leave.biz.plateNum, "粤A70008");
  }));

test("the same plate entered at two gates while apart: one stay in the lot after the heal, the same at both boxes", () =>
  withLot({ policy: { entry: { confirmWaitMs: 1200, duplicateEntry: "replace" } } }, async (lot) => {
    await cutOff(lot);
    await lot.a.drive("in1", "粤A70003");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await lot.b.drive("in2", "粤A70003");
    const atA = lot.a.stayOf("粤A70003")!;
    const atB = lot.b.app.store.findInParkByPlate("粤A70003").find((r) => !r.replicaOf)!;
    assert.notEqual(atA.recordNo, atB.recordNo);
    await healed(lot);
    // Under "replace" the later entry stays (B's): A ends its own.
    for (const box of [lot.a, lot.b]) {
      await box.until(
        () => {
          const held = box.app.store.findInParkByPlate("粤A70003");
          return held.length === 1 && held[0]!.recordNo === atB.recordNo;
        },
        5000,
        `${box.config.deviceId} holds only B's stay`,
      );
    }
  }));

test("clocks skewed by minutes (A +5 min, B -3 min): the boxes converge and every leave is reported at or after its enter", () =>
  withLot({ aClock: skewedClock(5 * MINUTE_MS), bClock: skewedClock(-3 * MINUTE_MS) }, async (lot) => {
    // Together: in at A, out at B a moment later, B's clock eight minutes behind A's.
    await lot.a.drive("in1", "粤A70004");
    const together = lot.a.stayOf("粤A70004")!;
    await lot.b.until(() => lot.b.app.store.getInPark(together.recordNo) !== undefined, 2000, "A's stay at B");
    lot.a.emulator.setPlate("粤A70004", "frictionless");
    await lot.b.drive("out2", "粤A70004");
    const leave1 = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: together.recordNo });
    const enter1 = await lot.a.emulator.waitFor({ service: "enterNotify", recordNo: together.recordNo });
    assert.equal(leave1.biz.leaveTime, enter1.biz.enterTime, "a zero-minute stay, never a leave before the enter");
    assert.ok(enter1.seq < leave1.seq);
    await lot.b.waitForEvent("lot-clock-skew", { recordNo: together.recordNo });

    // Apart: in at A, out at B while B is cut off; matched within the skew tolerance at the heal.
    const apart = await enteredAtAWhileApart(lot, "粤A70005");
    const provisional = await provisionalExitAtB(lot, "粤A70005");
    await healed(lot);
    const leave2 = await lot.a.emulator.waitFor({ service: "leaveNotify", recordNo: apart.recordNo });
    const enter2 = await lot.a.emulator.waitFor({ service: "enterNotify", recordNo: apart.recordNo });
    assert.equal(leave2.biz.leaveTime, enter2.biz.enterTime);
    assert.ok(enter2.seq < leave2.seq);
    assert.equal(lot.a.emulator.received({ recordNo: provisional }).filter((p) => p.service === "enterNotify" || p.service === "leaveNotify").length, 0);
    // Both boxes hold the same lot: nothing in the park.
    await lot.a.until(() => lot.a.app.store.inParkCount() === 0, 3000, "A's lot empty");
    await lot.b.until(() => lot.b.app.store.inParkCount() === 0, 3000, "B's lot empty");
    assert.deepEqual(
      lot.a.app.lotShare!.view.allStays().map((s) => [s.recordNo, s.state]),
      lot.b.app.lotShare!.view.allStays().map((s) => [s.recordNo, s.state]),
    );
  }));
