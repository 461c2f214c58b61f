import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes } from "../helpers/aedes-broker.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { CuttablePath, gateLanes, skewedClock } from "../helpers/cuttable-path.js";

/*
 * A soak of one lot through partitions (docs/mqtt.md "Partitions and reconciliation"): three
 * in-process boxes on one broker (aedes), each behind a TCP path the test cuts and heals at
 * random, their clocks minutes apart, random cars in at one gate and out at another. At the
 * end, with every box back: every car is one record at the platform (one enterNotify, and one
 * leaveNotify under the same recordNo when it left, never before the enter), every flat amount
 * taken for a provisional exit is accounted for, and every box holds the same lot.
 * LK_SOAK_SEED replays a run; LK_SOAK_STEPS sets its length.
 */

const SEED = Number(process.env.LK_SOAK_SEED ?? Date.now() % 100_000);
const STEPS = Number(process.env.LK_SOAK_STEPS ?? 36);

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
  const broker = await startAedes();
  const boxes: Box[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const path = await CuttablePath.open(broker.port);
      const deviceId = `box-${i}`;
      const h = await LotHarness.create({
        ...(boxes[0] ? { emulator: boxes[0].h.emulator } : {}),
        // Clocks that disagree by minutes: box-1 four ahead, box-3 two behind.
        clock: skewedClock([4, 0, -2][i - 1]! * 60_000),
        mutate: (raw) => {
          raw.deviceId = deviceId;
          raw.lot.share = { enabled: true, mqtt: { url: path.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 80, provisionalWaitMs: 400 };
          gateLanes(raw, i);
          // The plates here differ by one digit: exact matching only (the fuzzy rule has tests of its own).
          raw.policy = { ...raw.policy, exit: { fuzzy: { maxDifferences: 0, ignoreProvince: false, misreads: false } } };
        },
      });
      boxes.push({ h, path, deviceId, laneIn: `in${i}`, laneOut: `out${i}` });
    }
    const emulator = boxes[0]!.h.emulator;
    const seesAll = async (box: Box): Promise<void> => {
      await box.h.until(
        () => box.h.app.lotShare!.status().view === "live" && box.h.app.lotShare!.view.allBoxes().filter((b) => b.online).length === 3,
        5000,
        `${box.deviceId} sees the whole lot`,
      );
    };
    for (const box of boxes) await seesAll(box);

    const inside = new Map<string, Box>();
    const left = new Set<string>();
    let provisionalExits = 0;
    let nextPlate = 1;
    for (let step = 0; step < STEPS; step++) {
      const roll = random();
      const cut = boxes.filter((b) => b.path.isCut);
      if (roll < 0.15 && cut.length === 0) {
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
    t.diagnostic(`${nextPlate - 1} cars, ${left.size} left, ${provisionalExits} provisional exits`);

    // Every held report reconciled or released, every box drained.
    for (const box of boxes) {
      await box.h.until(() => box.h.app.outbox.list().every((e) => e.notBeforeMs === undefined || e.notBeforeMs < box.h.app.clock.now()), 8000, `${box.deviceId} holds no report`);
      await box.h.drained(8000);
    }
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

    // Every fen of the provisional exits explained.
    for (const box of boxes) {
      for (const refund of box.h.app.lanes.refunds.list()) {
        assert.equal(refund.kind, "provisional-overcharge");
        // Owed back: part of the flat amount taken, never more.
        assert.ok(refund.amountFen > 0 && refund.amountFen <= refund.first.amountFen);
      }
    }
    for (const plate of left) {
      const stays = (await Promise.all(boxes.map((box) => box.h.app.store.recentStays(plate)))).flat().filter((s) => !s.provisional);
      for (const s of stays) {
        const p = s.exit.extra?.provisional as { takenFen: number; dueFen: number; refundOwedFen: number; writtenOffFen: number } | undefined;
        if (p) assert.equal(p.takenFen - p.refundOwedFen, p.dueFen - p.writtenOffFen, `${plate}: taken − refund = due − written off`);
      }
    }

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
  }
});
