import { test } from "node:test";
import assert from "node:assert/strict";
import { createMemoryLotPorts } from "../../../src/platform/memory-ports.js";
import type { InParkRecord } from "../../../src/store/records.js";

const stay = (recordNo: string): InParkRecord => ({
  recordNo,
  plate: "粤B12345",
  plateColor: 0,
  laneId: "in1",
  enterAtMs: 1,
  vehicleType: "temporary",
  carType: 9,
  carSubType: 91,
  source: "camera",
  entryReport: "queued",
  prepayments: [],
  coupons: [],
});

test("memory lists copy records in and out: only put changes state", async () => {
  const ports = createMemoryLotPorts();
  await ports.inPark.put(stay("R1"));
  const got = (await ports.inPark.get("R1"))!;
  got.plate = "changed";
  assert.equal((await ports.inPark.get("R1"))!.plate, "粤B12345");
  (await ports.inPark.list())[0]!.plate = "changed";
  assert.equal(ports.snapshot().inPark[0]!.plate, "粤B12345");
  assert.equal(ports.writes(), 1);
  assert.equal(await ports.inPark.remove("nope"), false);
  assert.equal(ports.writes(), 1, "a remove that removed nothing is no write");
  assert.equal(await ports.inPark.remove("R1"), true);
  assert.equal(ports.writes(), 2);
});

test("default lane callbacks refuse as unavailable; freeSpaces counts the in-park list; injected callbacks win", async () => {
  const ports = createMemoryLotPorts({ totalSpaces: 2, seed: { inPark: [stay("R1")] } });
  assert.deepEqual(await ports.lane.freeSpaces(), { total: 2, free: 1 });
  const answer = await ports.lane.remoteControl({ channelId: "1", laneId: "in1", type: 0, plateId: "x", operator: "o", cmd: 0, openGateCase: null });
  assert.deepEqual(answer, { ok: false, reason: "unavailable", msg: "lane control is not connected" });
  const injected = createMemoryLotPorts({ lane: { freeSpaces: async () => ({ total: 9, free: 3 }) } });
  assert.deepEqual(await injected.lane.freeSpaces(), { total: 9, free: 3 });
  assert.equal(await injected.vehicles.clear(), 0);
});
