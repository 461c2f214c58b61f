import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { createStoreLotPorts, paymentToStore, vehicleToStore } from "../../../src/app/store-ports.js";
import type { BlacklistRecord, CarGroupRecord, CouponRecord, InParkRecord, LanePort, LotPorts, PaymentRecord, VehicleRecord } from "../../../src/platform/ports.js";
import { Refusal } from "../../../src/platform/services/common.js";
import { LotStore } from "../../../src/store/lot-store.js";
import { freshDir } from "../../helpers/store-fixtures.js";

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
const lanes = [
  { id: "in1", channelId: "1" },
  { id: "out1", channelId: "2" },
];
const lane: LanePort = {
  feeQuery: async () => ({ ok: false, reason: "unavailable", msg: "" }),
  unlicensedEntry: async () => ({ ok: false, reason: "unavailable", msg: "" }),
  remoteControl: async () => ({ ok: false, reason: "unavailable", msg: "" }),
  freeSpaces: async () => ({ total: 1, free: 1 }),
  paymentNotified: async () => undefined,
};

async function withPorts(run: (ports: LotPorts, store: LotStore, clock: FakeClock) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await freshDir("lk-store-ports-unit-");
  const clock = new FakeClock(T0);
  const store = new LotStore({ dir, clock, pruneJob: false });
  await store.start();
  try {
    await run(createStoreLotPorts(store, lane, { clock, log: silentLogger(), timeZone: "Asia/Shanghai", lanes }), store, clock);
  } finally {
    await store.stop();
    await cleanup();
  }
}

const isRefusal = (code: string, msg?: RegExp) => (e: unknown) => e instanceof Refusal && e.codeName === code && (!msg || msg.test(e.message));

// Text with CJK, spaces and surrogate pairs: short, or around the store's limit (`limit`).
const unit = fc.constantFrom("a", "Z", "7", " ", "王", "粤", "😀");
const text = (limit: number, minLength = 0) =>
  fc.oneof(fc.string({ unit, minLength, maxLength: 8 }), fc.string({ unit, minLength: Math.max(minLength, limit - 3), maxLength: limit + 6 }));
const ms = fc.integer({ min: 0, max: 4_102_444_800_000 });
const uuid = fc.stringMatching(/^[0-9A-F]{32}$/);

const vehicleArb: fc.Arbitrary<VehicleRecord> = fc
  .record({
    id: fc.integer({ min: 1, max: 1_000_000 }),
    uuId: uuid,
    carNum: text(32, 1),
    owner: text(64),
    carTypeCode: fc.integer({ min: 10, max: 99 }),
    carGroupId: fc.nat(1000),
    carGroupUuid: text(64),
    carGroup: text(64),
    region: text(64),
    code: text(64),
    virtualCardNum: text(64),
    tel: text(64),
    color: text(64),
    carSpaceNum: text(64),
    remark: text(256),
    balanceFen: fc.integer({ min: -10_000_000, max: 10_000_000 }),
    monthlyRentFen: fc.nat(10_000_000),
    refundFen: fc.nat(10_000_000),
    validFromMs: fc.option(ms, { nil: null }),
    validToMs: fc.option(ms, { nil: null }),
    enabled: fc.boolean(),
    frozen: fc.boolean(),
    updatedAtMs: fc.constant(T0),
  })
  .map((r) => ({ ...r })); // plain objects: fc.record builds them without a prototype

test("vehicles: every field comes back as put, whatever its length (property)", () =>
  withPorts(async (ports, store) => {
    await fc.assert(
      fc.asyncProperty(vehicleArb, async (v) => {
        await ports.vehicles.clear();
        await ports.vehicles.put(v);
        assert.deepEqual(await ports.vehicles.get(v.uuId), v);
        assert.deepEqual(await ports.vehicles.list(), [v]);
        // What the store holds is cut between characters, never inside a surrogate pair.
        const stored = store.getVehicle({ uuId: v.uuId })!;
        for (const value of Object.values(stored)) if (typeof value === "string") assert.doesNotMatch(value, /\p{Cs}/u, "no lone surrogate");
      }),
      { numRuns: 40 },
    );
  }));

const stayArb: fc.Arbitrary<InParkRecord> = fc
  .record({
    recordNo: fc.stringMatching(/^[A-Za-z0-9_]{1,40}$/).filter((k) => k !== "__proto__"),
    plateNum: text(32),
    plateColor: fc.option(fc.integer({ min: -5, max: 150 }), { nil: null }),
    carType: fc.integer({ min: 0, max: 99 }),
    carSubType: fc.integer({ min: 0, max: 999 }),
    enterTimeMs: ms,
    inChannelId: text(10),
    source: fc.constantFrom("lane" as const, "unlicensed" as const, "platform" as const),
    operator: text(30),
    updatedAtMs: ms,
  })
  .map((r) => ({ ...r }));

test("in-park records: added and edited records come back as put (property)", () =>
  withPorts(async (ports) => {
    await fc.assert(
      fc.asyncProperty(stayArb, stayArb, async (added, edit) => {
        await ports.inPark.put(added);
        assert.deepEqual(await ports.inPark.get(added.recordNo), added);
        const edited = { ...edit, recordNo: added.recordNo };
        await ports.inPark.put(edited);
        assert.deepEqual(await ports.inPark.get(added.recordNo), edited);
      }),
      { numRuns: 30 },
    );
  }));

test("blacklist, car groups, coupons and payments come back as put", () =>
  withPorts(async (ports, store) => {
    const entry: BlacklistRecord = {
      id: 4,
      uuid: "B1",
      carNum: "粤B44444",
      type: 1,
      untilMs: T0 + 1000,
      operator: "o".repeat(70),
      remark: "r".repeat(300),
      denyIn: false,
      denyOut: true,
      inNotify: true,
      createdAtMs: T0,
    };
    await ports.blacklist.put(entry);
    assert.deepEqual(await ports.blacklist.get("B1"), entry);
    assert.equal(store.blacklist.get("B1")!.operator.length, 64);

    const group: CarGroupRecord = {
      id: 7,
      uuid: "G7",
      name: "n".repeat(65),
      spaceCount: 3,
      carTypeCode: 82,
      validFromMs: T0,
      validToMs: null,
      monthlyRentFen: 123,
      balanceFen: -5,
      remark: "",
      enabled: false,
      updatedAtMs: T0,
    };
    await ports.carGroups.put(group);
    assert.deepEqual(await ports.carGroups.get("G7"), group);
    const stored = store.getCarGroup({ carGroupID: 7 })!;
    assert.equal(stored.spaces, 3);
    assert.deepEqual(stored.extra, { carTypeCode: 82, validFromMs: T0, validToMs: null, monthlyRentFen: 123, balanceFen: -5, enabled: false, fullText: { name: "n".repeat(65) } });

    const stay: InParkRecord = {
      recordNo: "in1_20260601080000000",
      plateNum: "粤B1",
      plateColor: 0,
      carType: 9,
      carSubType: 91,
      enterTimeMs: T0,
      inChannelId: "1",
      source: "lane",
      operator: "",
      updatedAtMs: T0,
    };
    await ports.inPark.put(stay);
    const coupon: CouponRecord = {
      couponNo: "CP1",
      recordNo: stay.recordNo,
      plateNum: "粤B1",
      kind: "percent",
      value: 50,
      expiresAtMs: null,
      operator: "shop",
      issuedAtMs: T0 - 5,
    };
    await ports.coupons.put(coupon);
    assert.deepEqual(await ports.coupons.get("CP1"), coupon);
    assert.deepEqual(await ports.coupons.list(), [coupon]);

    const kinds: PaymentRecord[] = [
      {
        orderNo: "O1",
        kind: "stay",
        recordNo: stay.recordNo,
        plateNum: "粤B1",
        targetUuid: "",
        payType: 1,
        amountFen: 400,
        payTimeMs: T0,
        payScene: 0,
        channelId: "2",
        plateId: "EX1",
        receivedAtMs: T0 + 1,
      },
      {
        orderNo: "O2",
        kind: "fixed-car",
        recordNo: "",
        plateNum: "粤B1",
        targetUuid: "V1",
        payType: 2,
        amountFen: 20050,
        payTimeMs: T0,
        payScene: null,
        channelId: "",
        plateId: "",
        receivedAtMs: T0,
      },
      {
        orderNo: "O3",
        kind: "car-group",
        recordNo: "",
        plateNum: "",
        targetUuid: "G7",
        payType: 0,
        amountFen: 0,
        payTimeMs: T0,
        payScene: null,
        channelId: "",
        plateId: "",
        receivedAtMs: T0,
      },
      {
        orderNo: "O4",
        kind: "refund",
        recordNo: "",
        plateNum: "粤B1",
        targetUuid: "V1",
        payType: 3,
        amountFen: 10025,
        payTimeMs: T0,
        payScene: null,
        channelId: "",
        plateId: "",
        receivedAtMs: T0,
      },
      {
        orderNo: "O5",
        kind: "stay",
        recordNo: "",
        plateNum: "",
        targetUuid: "",
        payType: 4,
        amountFen: 1,
        payTimeMs: T0,
        payScene: 2,
        channelId: "",
        plateId: "",
        receivedAtMs: T0,
      },
      // Money was taken: a recordNo or plate longer than the store keeps is kept whole.
      {
        orderNo: "O6",
        kind: "stay",
        recordNo: "R".repeat(80),
        plateNum: "粤".repeat(40),
        targetUuid: "",
        payType: 1,
        amountFen: 5,
        payTimeMs: T0,
        payScene: 1,
        channelId: "",
        plateId: "",
        receivedAtMs: T0,
      },
    ];
    for (const p of kinds) await ports.payments.put(p);
    for (const p of kinds) assert.deepEqual(await ports.payments.get(p.orderNo), p);
    assert.deepEqual(await ports.payments.list(), kinds);
  }));

test("only a stay payment counts as a prepayment; a fixed-car fee or a refund for the same plate does not", () =>
  withPorts(async (ports, store) => {
    await ports.inPark.put({
      recordNo: "R1",
      plateNum: "粤B12345",
      plateColor: null,
      carType: 8,
      carSubType: 81,
      enterTimeMs: T0,
      inChannelId: "1",
      source: "lane",
      operator: "",
      updatedAtMs: T0,
    });
    const base = { recordNo: "", plateNum: "粤B12345", targetUuid: "V1", payType: 1, payTimeMs: T0, payScene: null, channelId: "", plateId: "", receivedAtMs: T0 };
    await ports.payments.put({ ...base, orderNo: "M1", kind: "fixed-car", amountFen: 20050 });
    await ports.payments.put({ ...base, orderNo: "F1", kind: "refund", amountFen: 100 });
    assert.deepEqual(store.getInPark("R1")!.prepayments, []);
    assert.equal(store.payments.get("M1")!.plate, undefined, "kept in extra, out of the store's plate matching");
    await ports.payments.put({ ...base, orderNo: "S1", kind: "stay", targetUuid: "", amountFen: 300, payScene: 0 });
    assert.deepEqual(
      store.getInPark("R1")!.prepayments.map((p) => [p.orderNo, p.amountFen]),
      [["S1", 300]],
    );
    // A repeated orderNo keeps the first record (money is never rewritten).
    await ports.payments.put({ ...base, orderNo: "S1", kind: "stay", targetUuid: "", amountFen: 999, payScene: 0 });
    assert.equal((await ports.payments.get("S1"))!.amountFen, 300);
    assert.equal(store.getInPark("R1")!.prepayments.length, 1);
    assert.deepEqual(paymentToStore({ ...base, orderNo: "M2", kind: "fixed-car", amountFen: 1 }).extra, {
      kind: "fixed-car",
      targetUuid: "V1",
      payScene: null,
      channelId: "",
      plateId: "",
      recordNo: "",
      plateNum: "粤B12345",
    });
  }));

test("extra keys the platform does not manage survive its edits; fullText goes when the text fits again", () =>
  withPorts(async (ports, store) => {
    const v = await store.upsertVehicle({ carNum: "粤B1", carTypeCode: 81, extra: { integrator: { site: 7 } } });
    const record = (await ports.vehicles.get(v.uuId))!;
    await ports.vehicles.put({ ...record, owner: "x".repeat(70) });
    assert.deepEqual(store.getVehicle({ uuId: v.uuId })!.extra, { integrator: { site: 7 }, fullText: { owner: "x".repeat(70) } });
    await ports.vehicles.put({ ...record, owner: "short" });
    assert.deepEqual(store.getVehicle({ uuId: v.uuId })!.extra, { integrator: { site: 7 } });
    assert.equal(vehicleToStore({ ...record, owner: "short" }).extra, undefined, "no extra without an existing one");
  }));

test("stays: laneId from the entry channel, else the recordNo, else cloud; a lane's stay reads its channel from the config", () =>
  withPorts(async (ports, store) => {
    const base: InParkRecord = {
      recordNo: "",
      plateNum: "粤B1",
      plateColor: null,
      carType: 9,
      carSubType: 91,
      enterTimeMs: T0,
      inChannelId: "",
      source: "platform",
      operator: "ops",
      updatedAtMs: T0,
    };
    await ports.inPark.put({ ...base, recordNo: "A", inChannelId: "1" });
    await ports.inPark.put({ ...base, recordNo: "out1_20260601080000000", plateNum: "粤B2" });
    await ports.inPark.put({ ...base, recordNo: "IN20231114200000001", plateNum: "粤B3" });
    assert.deepEqual(
      ["A", "out1_20260601080000000", "IN20231114200000001"].map((k) => [store.getInPark(k)!.laneId, store.getInPark(k)!.entryReport, store.getInPark(k)!.source]),
      [
        ["in1", "none", "platform"],
        ["out1", "none", "platform"],
        ["cloud", "none", "platform"],
      ],
    );
    // A stay the lane flows wrote straight into the store (no extra).
    await store.addInPark({ recordNo: "in1_20260601090000000", plate: "粤B4", laneId: "in1", enterAtMs: T0, source: "manual" });
    const read = (await ports.inPark.get("in1_20260601090000000"))!;
    assert.deepEqual(read, {
      recordNo: "in1_20260601090000000",
      plateNum: "粤B4",
      plateColor: null,
      carType: 0,
      carSubType: 0,
      enterTimeMs: T0,
      inChannelId: "1",
      source: "lane",
      operator: "",
      updatedAtMs: T0,
    });
    await ports.inPark.put({ ...read, plateNum: "粤B5" });
    assert.equal(store.getInPark("in1_20260601090000000")!.source, "manual", "an edit keeps the store's finer source");
  }));

test("stays: remove ends the stay in history as platform-delete; its coupons go with it", () =>
  withPorts(async (ports, store, clock) => {
    const stay: InParkRecord = {
      recordNo: "in1_20260601080000000",
      plateNum: "粤B1",
      plateColor: null,
      carType: 9,
      carSubType: 91,
      enterTimeMs: T0,
      inChannelId: "1",
      source: "lane",
      operator: "",
      updatedAtMs: T0,
    };
    await ports.inPark.put(stay);
    await ports.coupons.put({ couponNo: "CP1", recordNo: stay.recordNo, plateNum: "粤B1", kind: "free", value: 0, expiresAtMs: null, operator: "", issuedAtMs: T0 });
    await clock.advance(60_000);
    assert.equal(await ports.inPark.remove(stay.recordNo), true);
    assert.equal(await ports.inPark.remove(stay.recordNo), false);
    assert.deepEqual(await ports.coupons.list(), []);
    const [ended] = await store.recentStays("粤B1");
    assert.deepEqual([ended!.exit.reason, ended!.exit.leaveAtMs, ended!.coupons.map((c) => c.couponId)], ["platform-delete", T0 + 60_000, ["CP1"]]);
  }));

test("coupons: replaced in place, moved between stays, removed; a coupon for no stay is notFound", () =>
  withPorts(async (ports, store) => {
    const stay = (recordNo: string, plateNum: string): InParkRecord => ({
      recordNo,
      plateNum,
      plateColor: null,
      carType: 9,
      carSubType: 91,
      enterTimeMs: T0,
      inChannelId: "",
      source: "lane",
      operator: "",
      updatedAtMs: T0,
    });
    await ports.inPark.put(stay("R1", "粤B1"));
    await ports.inPark.put(stay("R2", "粤B2"));
    const coupon: CouponRecord = { couponNo: "CP1", recordNo: "R1", plateNum: "粤B1", kind: "amount", value: 300, expiresAtMs: T0 + 1, operator: "shop", issuedAtMs: T0 };
    await ports.coupons.put(coupon);
    await ports.coupons.put({ ...coupon, value: 500 });
    assert.deepEqual(
      store.getInPark("R1")!.coupons.map((c) => [c.couponId, c.value]),
      [["CP1", 500]],
    );
    await ports.coupons.put({ ...coupon, recordNo: "R2", plateNum: "粤B2" });
    assert.deepEqual(store.getInPark("R1")!.coupons, []);
    assert.deepEqual(await ports.coupons.get("CP1"), { ...coupon, recordNo: "R2", plateNum: "粤B2" });
    await assert.rejects(ports.coupons.put({ ...coupon, couponNo: "CP2", recordNo: "R9" }), isRefusal("notFound", /R9/));
    assert.equal(await ports.coupons.remove("CP1"), true);
    assert.equal(await ports.coupons.remove("CP1"), false);
    assert.deepEqual(store.getInPark("R2")!.coupons, []);
  }));

test("records written elsewhere read with the documented defaults", () =>
  withPorts(async (ports, store) => {
    const g = await store.upsertCarGroup({ name: "Local" });
    assert.deepEqual(await ports.carGroups.get(g.carGroupUuid), {
      id: 1,
      uuid: g.carGroupUuid,
      name: "Local",
      spaceCount: 0,
      carTypeCode: 81,
      validFromMs: null,
      validToMs: null,
      monthlyRentFen: 0,
      balanceFen: 0,
      remark: "",
      enabled: true,
      updatedAtMs: T0,
    });
    await store.recordPayment({ orderNo: "SCAN1", plate: "粤B1", amountFen: 100, payAtMs: T0, payType: "wechat", source: "scanner" });
    assert.deepEqual(await ports.payments.get("SCAN1"), {
      orderNo: "SCAN1",
      kind: "stay",
      recordNo: "",
      plateNum: "粤B1",
      targetUuid: "",
      payType: 0,
      amountFen: 100,
      payTimeMs: T0,
      payScene: null,
      channelId: "",
      plateId: "",
      receivedAtMs: T0,
    });
  }));

test("refusals: a plate the store finds registered, an id another record holds, a key it cannot keep, an invalid value", () =>
  withPorts(async (ports, store) => {
    const v: VehicleRecord = {
      id: 1,
      uuId: "U1",
      carNum: "粤B12345",
      owner: "",
      carTypeCode: 81,
      carGroupId: 0,
      carGroupUuid: "",
      carGroup: "",
      region: "",
      code: "",
      virtualCardNum: "",
      tel: "",
      color: "",
      carSpaceNum: "",
      remark: "",
      balanceFen: 0,
      monthlyRentFen: 0,
      refundFen: 0,
      validFromMs: null,
      validToMs: null,
      enabled: true,
      frozen: false,
      updatedAtMs: T0,
    };
    await ports.vehicles.put(v);
    const seq = store.status().documents.map((d) => d.seq);
    await assert.rejects(ports.vehicles.put({ ...v, id: 2, uuId: "U2", carNum: "粤b 12345" }), isRefusal("conflict", /already registered/));
    await assert.rejects(ports.vehicles.put({ ...v, uuId: "U3", carNum: "粤B3" }), isRefusal("conflict", /id 1 belongs to U1/));
    await assert.rejects(ports.vehicles.put({ ...v, uuId: "__proto__", id: 9, carNum: "粤B9" }), isRefusal("badBizContent", /cannot be stored/));
    await assert.rejects(ports.vehicles.put({ ...v, uuId: "U".repeat(65), id: 9, carNum: "粤B9" }), isRefusal("badBizContent", /uuId/));
    await assert.rejects(
      ports.inPark.put({
        recordNo: "__proto__",
        plateNum: "",
        plateColor: null,
        carType: 9,
        carSubType: 91,
        enterTimeMs: T0,
        inChannelId: "",
        source: "platform",
        operator: "",
        updatedAtMs: T0,
      }),
      isRefusal("badBizContent"),
    );
    await assert.rejects(
      ports.blacklist.put({ id: 1, uuid: "B1", carNum: "粤B1", type: 2, untilMs: null, operator: "", remark: "", denyIn: true, denyOut: true, inNotify: false, createdAtMs: T0 }),
      isRefusal("badBizContent", /type/),
    );
    assert.deepEqual(
      store.status().documents.map((d) => d.seq),
      seq,
      "nothing was written",
    );
    assert.equal(await ports.vehicles.remove("nope"), false);
    assert.equal(await ports.blacklist.remove("nope"), false);
    assert.equal(await ports.carGroups.remove("nope"), false);
    assert.equal(await ports.payments.remove("nope"), false);
    assert.deepEqual(
      store.status().documents.map((d) => d.seq),
      seq,
      "removing nothing writes nothing",
    );
    assert.equal(ports.lane, lane, "the lane port is passed through");
  }));
