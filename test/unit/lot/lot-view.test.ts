import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { anyDeliveryOrder } from "../../helpers/delivery-orders.js";
import { LotView, compareStayVersions } from "../../../src/lot/lot-view.js";
import type { StayPayload } from "../../../src/lot/lot-payloads.js";

const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);
const MINUTE_MS = 60_000;

function version(recordNo: string, fields: { state?: "in-park" | "left"; wallMs: number; counter?: number; deviceId: string; plate?: string }): StayPayload {
  return {
    v: 1,
    recordNo,
    plate: fields.plate ?? "粤A12345",
    enterAtMs: 1_714_500_000_000,
    enterDeviceId: "box-a",
    enterLaneId: "in1",
    vehicleType: "temporary",
    prepayments: [],
    coupons: [],
    state: fields.state ?? "in-park",
    hlc: { wallMs: fields.wallMs, counter: fields.counter ?? 0, deviceId: fields.deviceId },
  };
}

const versionArb = fc
  .record({
    recordNo: fc.constantFrom("in1_1", "in1_2", "in2_1"),
    state: fc.constantFrom<"in-park" | "left">("in-park", "left"),
    // Box clocks skewed by up to ten minutes against each other, on a coarse grid so that
    // equal wall times (and the tie-breaks after them) come up often.
    wallMs: fc.integer({ min: -10, max: 10 }).map((m) => 1_714_500_000_000 + m * MINUTE_MS),
    counter: fc.integer({ min: 0, max: 2 }),
    deviceId: fc.constantFrom("box-a", "box-b", "box-c"),
  })
  // A box never issues one clock value twice: one version, one content (the plate it wrote).
  .map((f) => version(f.recordNo, { ...f, plate: `粤A${(f.wallMs / MINUTE_MS + f.counter) % 7}${f.deviceId}` }));

function snapshot(view: LotView): string {
  return JSON.stringify(view.allStays());
}

test("the higher clock wins between two versions of the same state; a finished stay beats any in-park version", () => {
  const view = new LotView();
  assert.equal(view.applyStay(version("r", { wallMs: 100, deviceId: "box-a" })), true);
  assert.equal(view.applyStay(version("r", { wallMs: 99, counter: 7, deviceId: "box-b" })), false, "an older version changes nothing");
  assert.equal(view.applyStay(version("r", { wallMs: 100, deviceId: "box-b" })), true, "the same instant: deviceId decides");
  assert.equal(view.applyStay(version("r", { wallMs: 100, deviceId: "box-b" })), false, "the same version again changes nothing");
  assert.equal(view.applyStay(version("r", { state: "left", wallMs: 50, deviceId: "box-a" })), true, "left beats a newer in-park edit");
  assert.equal(view.applyStay(version("r", { wallMs: 10_000, deviceId: "box-c" })), false, "a late edit does not bring the car back");
  assert.equal(view.inPark().length, 0);
  assert.equal(view.stay("r")?.state, "left");
});

test("property: any delivery order of the same versions, duplicates included, converges to the same view", () => {
  fc.assert(
    fc.property(anyDeliveryOrder(versionArb), ([versions, delivered]) => {
      const inOrder = new LotView();
      for (const v of versions) inOrder.applyStay(v);
      const other = new LotView();
      for (const v of delivered) other.applyStay(v);
      assert.equal(snapshot(other), snapshot(inOrder));
      // And the view holds, per stay, the maximum of the versions under the conflict rule.
      for (const stay of inOrder.allStays()) {
        for (const v of versions.filter((x) => x.recordNo === stay.recordNo)) assert.ok(compareStayVersions(stay, v) >= 0);
      }
    }),
    { numRuns: runs },
  );
});

test("forgetLeft drops only finished stays older than the cut", () => {
  const view = new LotView();
  view.applyStay(version("old-left", { state: "left", wallMs: 100, deviceId: "box-a" }));
  view.applyStay(version("new-left", { state: "left", wallMs: 5000, deviceId: "box-a" }));
  view.applyStay(version("old-in", { wallMs: 100, deviceId: "box-a" }));
  assert.equal(view.forgetLeft(1000), 1);
  assert.deepEqual(
    view.allStays().map((s) => s.recordNo),
    ["new-left", "old-in"],
  );
});

test("boxes: the last thing each box said, in deviceId order", () => {
  const view = new LotView();
  view.applyBox({ v: 1, deviceId: "south", lanes: [{ laneId: "out2", direction: "out" }], online: true, seenAtMs: 10 });
  view.applyBox({ v: 1, deviceId: "north", lanes: [{ laneId: "in1", direction: "in" }], online: true, seenAtMs: 20 });
  view.applyBox({ v: 1, deviceId: "south", lanes: [{ laneId: "out2", direction: "out" }], online: false, seenAtMs: 30 });
  assert.deepEqual(
    view.allBoxes().map((b) => [b.deviceId, b.online, b.lastSeenMs]),
    [
      ["north", true, 20],
      ["south", false, 30],
    ],
  );
});
