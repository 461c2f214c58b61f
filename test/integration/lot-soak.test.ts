import { test } from "node:test";
import assert from "node:assert/strict";
import { bill, validateTariff } from "../../src/core/fees/index.js";
import { formatWireTime } from "../../src/platform/wire.js";
import { emulatorCodes, startEmulator } from "../../src/platform/emulator/emulator.js";
import type { FinishedStay } from "../../src/store/records.js";
import { startAedes } from "../helpers/aedes-broker.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { CuttablePath, gateLanes } from "../helpers/cuttable-path.js";
import { ClockWarp } from "../helpers/warp-clock.js";

/*
 * A soak of one lot through partitions (docs/mqtt.md "Partitions and reconciliation"): three
 * in-process boxes on one broker (aedes), each behind a TCP path the test cuts and heals at
 * random, their clocks minutes apart, random cars in at one gate and out at another. Between
 * rounds of traffic every clock of the lot (the boxes' and the platform's) jumps forward
 * together by minutes or hours (test/helpers/warp-clock.ts), so the run spans days of the lot:
 * stays of minutes to days, across midnight and the day/night boundaries of a tariff with a
 * night cap, a daily cap and a scale that restarts at midnight. At the end, with every box back:
 * every car is one record at the platform (one enterNotify, and one leaveNotify under the same
 * recordNo when it left, never before the enter), every exit report's fee is the tariff's for
 * its stay, every fen taken is reported and kept or owed back, and every box holds the same lot.
 * LK_SOAK_SEED replays a run; LK_SOAK_STEPS sets its length.
 */

const SEED = Number(process.env.LK_SOAK_SEED ?? Date.now() % 100_000);
const STEPS = Number(process.env.LK_SOAK_STEPS ?? 36);

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** The lot's time the run spans at least (a short LK_SOAK_STEPS run is topped up at the end). */
const SPAN_MS = 2 * DAY_MS;
/**
 * A partition lasts at most this much of the lot's time (hours, not days): a box cut off
 * longer than `provisionalHoldS` (a day here) no longer counts, and reports held for it go as
 * they are (docs/mqtt.md 12.8), which this soak does not aim at.
 */
const CUT_SPAN_MS = 12 * HOUR_MS;

/** Day and night, a night cap, a daily cap per calendar day, the scale again from each midnight. */
const tariffJson = {
  name: "soak: day 07:00-19:00, night 19:00-07:00 capped, at most 40 yuan a calendar day",
  free: { minutes: 15, billedOnceExceeded: true },
  restart: "natural-day",
  boundary: "split",
  segments: [
    { name: "day", from: "07:00", to: "19:00", firstPeriod: { minutes: 60, priceFen: 600 }, unitMinutes: 30, unitPriceFen: 150, rounding: "up" },
    { name: "night", from: "19:00", to: "07:00", unitMinutes: 120, unitPriceFen: 100, rounding: "up", capFen: 500 },
  ],
  dailyCap: { capFen: 4000, basis: "natural-day" },
};

interface Box {
  h: LotHarness;
  path: CuttablePath;
  deviceId: string;
  laneIn: string;
  laneOut: string;
}

test(`soak: random cars across three boxes through random partitions end as one record each, the same lot everywhere (seed ${SEED})`, async (t) => {
  t.diagnostic(`LK_SOAK_SEED=${SEED} LK_SOAK_STEPS=${STEPS}`);
  const random = seededRandom(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  // The lot's days start at a time of day the seed picks (Asia/Shanghai has no DST: the date does not matter).
  const warp = new ClockWarp(Math.floor(Date.now() / DAY_MS + 1) * DAY_MS + Math.floor(random() * DAY_MS));
  const tariff = validateTariff(tariffJson);
  if (!tariff.ok) throw new Error(`the soak's tariff is invalid: ${JSON.stringify(tariff.problems)}`);
  const broker = await startAedes();
  // The platform's clock is the lot's: it checks the boxes' timestamps against it.
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai", clock: warp.clock() });
  const boxes: Box[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const path = await CuttablePath.open(broker.port);
      const deviceId = `box-${i}`;
      const h = await LotHarness.create({
        emulator,
        // Clocks that disagree by minutes: box-1 four ahead, box-3 two behind.
        clock: warp.clock([4, 0, -2][i - 1]! * MINUTE_MS),
        mutate: (raw) => {
          raw.deviceId = deviceId;
          raw.fees = { tariff: "soak", tariffs: { soak: tariffJson } };
          raw.lot.share = { enabled: true, mqtt: { url: path.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 80, provisionalWaitMs: 400, provisionalHoldS: 86_400 };
          gateLanes(raw, i);
          // The plates here differ by one digit: exact matching only (the fuzzy rule has tests of its own).
          raw.policy = { ...raw.policy, exit: { fuzzy: { maxDifferences: 0, ignoreProvince: false, misreads: false } } };
        },
      });
      boxes.push({ h, path, deviceId, laneIn: `in${i}`, laneOut: `out${i}` });
    }
    const seesAll = async (box: Box): Promise<void> => {
      await box.h.until(
        () => box.h.app.lotShare!.status().view === "live" && box.h.app.lotShare!.view.allBoxes().filter((b) => b.online).length === 3,
        5000,
        `${box.deviceId} sees the whole lot`,
      );
    };
    for (const box of boxes) await seesAll(box);
    // No report held for a provisional exit: each is reconciled or released (after a heal, and at the end).
    const holdsNone = async (box: Box, timeoutMs: number): Promise<void> => {
      await box.h.until(
        () => box.h.app.outbox.list().every((e) => e.notBeforeMs === undefined || e.notBeforeMs < box.h.app.clock.now()),
        timeoutMs,
        `${box.deviceId} holds no report`,
      );
    };
    // The lot's time as box-2 (no skew) reads it.
    const lotStartMs = boxes[1]!.h.app.clock.now();

    const inside = new Map<string, Box>();
    const left = new Set<string>();
    let provisionalExits = 0;
    let nextPlate = 1;
    let cutSpanMs = 0;
    for (let step = 0; step < STEPS; step++) {
      // Time passes between rounds: while the lot is together minutes (a quick visit, a read
      // before the entering box's clock) or hours; while apart, minutes, up to CUT_SPAN_MS.
      const together = boxes.every((b) => !b.path.isCut);
      const lapseMs = together ? (random() < 0.3 ? random() * 30 * MINUTE_MS : HOUR_MS + random() * 11 * HOUR_MS) : Math.min(random() * 90 * MINUTE_MS, CUT_SPAN_MS - cutSpanMs);
      warp.advance(Math.round(lapseMs));
      if (!together) cutSpanMs += Math.round(lapseMs);
      const roll = random();
      const cut = boxes.filter((b) => b.path.isCut);
      if (roll < 0.15 && cut.length === 0) {
        cutSpanMs = 0;
        const box = pick(boxes);
        box.path.cut();
        await box.h.until(() => box.h.app.lotShare!.status().view === "stale", 3000, `${box.deviceId} stale`);
        for (const other of boxes.filter((b) => b !== box)) {
          await other.h.until(
            () => other.h.app.lotShare!.view.allBoxes().some((b) => b.deviceId === box.deviceId && !b.online),
            3000,
            `${box.deviceId} offline at ${other.deviceId}`,
          );
        }
      } else if (roll < 0.22 && cut.length > 0) {
        for (const box of cut) box.path.heal();
        for (const box of boxes) await seesAll(box);
        // Settled before the lot's time moves on: a jump must not outrun a heal in flight.
        for (const box of boxes) await holdsNone(box, 8000);
      } else if (roll < 0.62 || inside.size === 0) {
        const box = pick(boxes);
        const plate = `粤S${String(10_000 + nextPlate++)}`;
        await box.h.drive(box.laneIn, plate);
        inside.set(plate, box);
        // Known wherever the lot is together with the entering box (a cut box hears it at the heal).
        for (const other of boxes.filter((b) => b !== box && !b.path.isCut && !box.path.isCut)) {
          await other.h.until(() => other.h.app.store.findInParkByPlate(plate).length === 1, 2000, `${plate} at ${other.deviceId}`);
        }
      } else {
        const plate = pick([...inside.keys()].sort());
        // While apart, most cars leave on the other side of the cut from where they came in.
        const enteredAt = inside.get(plate)!;
        const across = boxes.filter((b) => b.path.isCut !== enteredAt.path.isCut);
        const box = across.length > 0 && random() < 0.7 ? pick(across) : pick(boxes);
        emulator.setPlate(plate, "frictionless");
        const before = box.h.find("lot-provisional-exit").length;
        await box.h.drive(box.laneOut, plate);
        if (box.h.find("lot-provisional-exit").length > before) provisionalExits++;
        inside.delete(plate);
        left.add(plate);
      }
    }
    for (const box of boxes) box.path.heal();
    for (const box of boxes) await seesAll(box);

    // Every held report reconciled or released, every box drained.
    for (const box of boxes) {
      await holdsNone(box, 8000);
      await box.h.drained(8000);
    }
    // Days of the lot, whatever the run's length (only a short LK_SOAK_STEPS needs it): the cars still inside stay on.
    const shortMs = SPAN_MS - (boxes[1]!.h.app.clock.now() - lotStartMs);
    if (shortMs > 0) warp.advance(shortMs);
    const spanMs = boxes[1]!.h.app.clock.now() - lotStartMs;
    const plates = [...left, ...inside.keys()];
    for (const plate of plates) {
      await emulator.waitFor({ service: "enterNotify", plateNum: plate }, 5000);
      if (left.has(plate)) await emulator.waitFor({ service: "leaveNotify", plateNum: plate }, 5000);
      const enters = emulator.received({ service: "enterNotify", plateNum: plate });
      const leaves = emulator.received({ service: "leaveNotify", plateNum: plate });
      assert.equal(enters.length, 1, `${plate}: one entry report`);
      assert.equal(leaves.length, left.has(plate) ? 1 : 0, `${plate}: ${left.has(plate) ? "one exit report" : "no exit report"}`);
      if (leaves[0]) {
        assert.equal(leaves[0].biz.recordNo, enters[0]!.biz.recordNo, `${plate}: one record`);
        assert.ok(String(leaves[0].biz.leaveTime) >= String(enters[0]!.biz.enterTime), `${plate}: leave not before enter`);
      }
    }
    assert.equal(emulator.received({ service: "enterNotify" }).length, plates.length, "no made-up entry reported");

    // Every exit report bills its stay as the tariff does: the stay as the box that finished it
    // keeps it (its times in ms; the report's are whole seconds), billed again here by the fee core.
    const timeZone = boxes[0]!.h.config.lot.timeZone;
    const vehicleType = boxes[0]!.h.config.policy.defaultVehicleType;
    let dueFen = 0;
    let appliedFen = 0;
    let writtenOffFen = 0;
    let longestMs = 0;
    let highestFen = 0;
    let acrossMidnight = 0;
    for (const plate of left) {
      const leave = emulator.received({ service: "leaveNotify", plateNum: plate })[0]!.biz;
      const finished: FinishedStay[] = [];
      for (const box of boxes) finished.push(...(await box.h.app.store.recentStays(plate)).filter((s) => !s.provisional && s.recordNo === leave.recordNo));
      assert.equal(finished.length, 1, `${plate}: finished at one box`);
      const stay = finished[0]!;
      assert.equal(leave.enterTime, formatWireTime(stay.enterAtMs, timeZone), `${plate}: the report's entry is the stay's`);
      assert.equal(leave.leaveTime, formatWireTime(stay.exit.leaveAtMs, timeZone), `${plate}: the report's exit is the stay's`);
      assert.ok(stay.exit.leaveAtMs >= stay.enterAtMs, `${plate}: left not before it entered`);
      const fee = bill(tariff.tariff, { enterAtMs: stay.enterAtMs, leaveAtMs: stay.exit.leaveAtMs, vehicleType, timeZone });
      assert.equal(leave.payableFee, fee.payableFee, `${plate}: reported fee is the tariff's for ${leave.enterTime} → ${leave.leaveTime}`);
      assert.equal(stay.exit.payableFen, fee.payableFee, `${plate}: kept fee is the tariff's`);
      const due = fee.payableFee - Number(leave.discountFee) - Number(leave.prepaidFee);
      const paid = Number(leave.paidFee);
      dueFen += due;
      appliedFen += Math.min(paid, due);
      longestMs = Math.max(longestMs, stay.exit.leaveAtMs - stay.enterAtMs);
      highestFen = Math.max(highestFen, fee.payableFee);
      if (String(leave.enterTime).slice(0, 10) !== String(leave.leaveTime).slice(0, 10)) acrossMidnight++;
      const p = stay.exit.extra?.provisional as { takenFen: number; dueFen: number; refundOwedFen: number; writtenOffFen: number } | undefined;
      if (p) {
        assert.equal(p.takenFen - p.refundOwedFen, p.dueFen - p.writtenOffFen, `${plate}: taken − refund = due − written off`);
        assert.deepEqual([p.takenFen, p.dueFen], [paid, due], `${plate}: the reconciled report says what was taken and due`);
        writtenOffFen += p.writtenOffFen;
      } else {
        assert.equal(paid, due, `${plate}: paid what was due at its exit`);
      }
    }

    // Money conserved: every fen the platform collected at an exit (the lanes say the same) is
    // reported as paid, and is either kept for a stay's fee or owed back; every fen due is paid or written off.
    const takenFen = emulator
      .received({ service: "preLeaveNotify" })
      .filter((push) => push.answer.code === emulatorCodes.ok)
      .reduce((sum, push) => sum + Number(push.biz.paidFee), 0);
    const collectedFen = boxes.flatMap((box) => box.h.find("payment")).reduce((sum, event) => sum + Number(event.feeFen), 0);
    const reportedPaidFen = emulator.received({ service: "leaveNotify" }).reduce((sum, push) => sum + Number(push.biz.paidFee), 0);
    let refundsOwedFen = 0;
    for (const box of boxes) {
      for (const refund of box.h.app.lanes.refunds.list()) {
        assert.equal(refund.kind, "provisional-overcharge");
        // Owed back: part of the flat amount taken, never more.
        assert.ok(refund.amountFen > 0 && refund.amountFen <= refund.first.amountFen);
        refundsOwedFen += refund.amountFen;
      }
    }
    t.diagnostic(
      `LK_SOAK_SEED=${SEED}: ${(spanMs / DAY_MS).toFixed(2)} days of the lot from ${formatWireTime(lotStartMs, timeZone)}; ${nextPlate - 1} cars, ${left.size} left, ` +
        `${provisionalExits} provisional exits; ${acrossMidnight} stays across midnight, the longest ${(longestMs / HOUR_MS).toFixed(1)} h, the highest fee ${highestFen} fen; ` +
        `taken ${takenFen} fen = kept ${appliedFen} + owed back ${refundsOwedFen}; due ${dueFen} fen, written off ${writtenOffFen}`,
    );
    assert.ok(spanMs >= SPAN_MS, "the soak spans two days of the lot at least");
    assert.equal(collectedFen, takenFen, "the lanes collected what the platform took");
    assert.equal(reportedPaidFen, takenFen, "every fen taken is reported paid, once");
    assert.equal(appliedFen + refundsOwedFen, takenFen, "taken = kept for the fees + owed back");
    assert.equal(appliedFen + writtenOffFen, dueFen, "due = kept + written off");

    // The same lot everywhere: the cars inside, by the same records.
    await boxes[0]!.h.until(
      () => {
        const sets = boxes.map((box) =>
          box.h.app.store
            .listInPark()
            .items.map((r) => `${r.plate}:${r.recordNo}`)
            .sort()
            .join(","),
        );
        return sets.every((s) => s === sets[0]) && boxes[0]!.h.app.store.inParkCount() === inside.size;
      },
      5000,
      "every box holds the same lot",
    );
  } finally {
    for (const box of boxes.reverse()) {
      await box.h.stop().catch(() => undefined);
      await box.path.close();
    }
    await broker.close();
    await emulator.stop();
  }
});
