import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes } from "../helpers/aedes-broker.js";
import { CuttablePath, gateLanes } from "../helpers/cuttable-path.js";
import { LotHarness, sleep } from "../helpers/lot-harness.js";
import { ClockWarp } from "../helpers/warp-clock.js";
import { startEmulator } from "../../src/platform/emulator/emulator.js";

/*
 * The wall clocks of a lot stepped forward while a provisional exit waits (docs/mqtt.md
 * "Partitions and reconciliation"): the box waiting looks at the lot again on a poll timer;
 * a stay arriving at the heal must still be reconciled at once, not when that poll comes round
 * (its due time counted on the monotonic clock, which a step of the wall clock does not move).
 */

const HOUR_MS = 3_600_000;
/** ProvisionalExits' poll while an exit waits (src/lot/provisional-exits.ts POLL_MS). */
const POLL_MS = 5000;

test("a clock step while a provisional exit waits: the heal reconciles it at once, not at the next poll", async () => {
  const warp = new ClockWarp();
  const broker = await startAedes();
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai", clock: warp.clock() });
  const pathA = await CuttablePath.open(broker.port);
  const pathB = await CuttablePath.open(broker.port);
  const share = (url: string) => ({ enabled: true, mqtt: { url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 80, provisionalWaitMs: 1500 });
  const boxes: LotHarness[] = [];
  try {
    const a = await LotHarness.create({ emulator, clock: warp.clock(), mutate: (raw) => ((raw.deviceId = "north-box"), (raw.lot.share = share(pathA.url))) });
    boxes.push(a);
    const b = await LotHarness.create({
      emulator,
      clock: warp.clock(),
      mutate: (raw) => {
        raw.deviceId = "south-box";
        raw.lot.share = share(pathB.url);
        gateLanes(raw, 2);
      },
    });
    boxes.push(b);
    await b.until(() => b.app.lotShare!.view.allBoxes().filter((box) => box.online).length === 2, 5000, "B sees A");

    // A cut off; a car in at A, out at B: B (live, A offline) takes a provisional exit.
    pathA.cut();
    await b.until(() => b.app.lotShare!.view.allBoxes().some((box) => box.deviceId === "north-box" && !box.online), 3000, "A offline at B");
    const plate = "粤A71001";
    await a.drive("in1", plate);
    const stay = a.stayOf(plate)!;
    emulator.setPlate(plate, "frictionless");
    await b.arrive("out2", plate);
    const provisional = (await b.waitForEvent("lot-provisional-exit", { plate })).recordNo as string;
    await b.pass("out2");
    // B looked for the stay (half a second after the finish), found none, and now polls.
    await sleep(800);

    // Two hours later by every clock of the lot, A is back.
    warp.advance(2 * HOUR_MS);
    pathA.heal();
    const healedAt = Date.now();
    await b.until(() => b.app.outbox.list({ recordNo: provisional }).length === 0, POLL_MS / 2, "the provisional exit reconciled soon after the heal");
    const leave = await emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo }, 3000);
    assert.ok(Date.now() - healedAt < POLL_MS / 2, "reconciled before the next poll");
    assert.ok(String(leave.biz.leaveTime) < b.wireTime(b.app.clock.now() - HOUR_MS), "reported at the exit's time, not the heal's");
    assert.equal(emulator.received({ service: "enterNotify" }).length, 1, "one entry report");
  } finally {
    for (const box of boxes.reverse()) await box.stop().catch(() => undefined);
    await pathA.close();
    await pathB.close();
    await broker.close();
    await emulator.stop();
  }
});
