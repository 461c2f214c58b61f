import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { createStoreLotPorts } from "../../../src/app/store-ports.js";
import type { LanePort, LotPorts } from "../../../src/platform/ports.js";
import { Refusal } from "../../../src/platform/services/common.js";
import { LotStore } from "../../../src/store/lot-store.js";
import type { BlacklistEntry, CarGroup, InParkRecord, Payment, StayCoupon, Vehicle } from "../../../src/store/records.js";
import { freshDir } from "../../helpers/store-fixtures.js";

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
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
    await run(createStoreLotPorts(store, lane, { clock, log: silentLogger(), timeZone: "Asia/Shanghai" }), store, clock);
  } finally {
    await store.stop();
    await cleanup();
  }
}

const isRefusal = (code: string, msg?: RegExp) => (e: unknown) => e instanceof Refusal && e.codeName === code && (!msg || msg.test(e.message));

// Text with CJK, spaces and surrogate pairs: short, or longer than a platform's declared length (`limit`).
const unit = fc.constantFrom("a", "Z", "7", " ", "王", "粤", "😀");
const text = (limit: number, minLength = 0) =>
  fc.oneof(fc.string({ unit, minLength, maxLength: 8 }), fc.string({ unit, minLength: Math.max(minLength, limit - 3), maxLength: limit + 6 }));
const ms = fc.integer({ min: 0, max: 4_102_444_800_000 });
const uuid = fc.stringMatching(/^[0-9A-F]{32}$/);

const vehicleArb: fc.Arbitrary<Vehicle> = fc
  .record({
    id: fc.integer({ min: 1, max: 1_000_000 }),
    uuId: uuid,
    carNum: text(32, 1),
    owner: text(64),
    carTypeCode: fc.integer({ min: 10, max: 99 }),
    carGroupID: fc.nat(1000),
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
    carMMoneyFen: fc.nat(10_000_000),
    refundFen: fc.nat(10_000_000),
    timeStartMs: fc.option(ms, { nil: null }),
    timeEndMs: fc.option(ms, { nil: null }),
    state: fc.constantFrom(0 as const, 1 as const),
    frozen: fc.boolean(),
    createdAtMs: fc.constant(T0),
    updatedAtMs: fc.constant(T0),
  })
  .map((r) => ({ ...r })); // plain objects: fc.record builds them without a prototype

test("vehicles: every field comes back as put, whole text of any length included (property)", () =>
  withPorts(async (ports) => {
    await fc.assert(
      fc.asyncProperty(vehicleArb, async (v) => {
        await ports.vehicles.clear();
        await ports.vehicles.put(v);
        assert.deepEqual(await ports.vehicles.get(v.uuId), v);
        assert.deepEqual(await ports.vehicles.list(), [v]);
      }),
      { numRuns: 40 },
    );
  }));

/** A stay as the platform adds it (4.13.4). */
const platformStay = (recordNo: string, plate: string, fields: Partial<InParkRecord> = {}): InParkRecord => ({
  recordNo,
  plate,
  laneId: "in1",
  enterAtMs: T0,
  vehicleType: "temporary",
  carType: 9,
  carSubType: 91,
  source: "platform",
  inChannelId: "1",
  operator: "ops",
  updatedAtMs: T0,
  entryReport: "none",
  prepayments: [],
  coupons: [],
  ...fields,
});

const stayEditArb = fc.record({
  plate: text(32),
  plateColor: fc.option(fc.integer({ min: -5, max: 150 }), { nil: undefined }),
  carType: fc.integer({ min: 0, max: 99 }),
  carSubType: fc.integer({ min: 0, max: 999 }),
  enterAtMs: ms,
  inChannelId: text(10),
  operator: text(30),
  updatedAtMs: ms,
});

test("in-park records: an added stay comes back as put; an edit changes the platform's fields and keeps the lane's (property)", () =>
  withPorts(async (ports, store) => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_]{1,40}$/), stayEditArb, async (recordNo, edit) => {
        if (store.getInPark(recordNo)) await ports.inPark.remove(recordNo);
        const added = platformStay(recordNo, "粤B1", { plateColor: 1 });
        await ports.inPark.put(added);
        assert.deepEqual(await ports.inPark.get(recordNo), added);
        // The lane meanwhile: a prepayment and a pending exit the platform's copy does not hold.
        await store.updateInPark(recordNo, { vehicleType: "monthly", prepayments: [{ orderNo: "P1", amountFen: 100, payAtMs: T0 }] });
        const { plateColor: _unsent, ...rest } = added;
        const edited: InParkRecord = { ...rest, ...edit, source: "lane", laneId: "other" };
        await ports.inPark.put(edited);
        const got = (await ports.inPark.get(recordNo))!;
        assert.deepEqual(
          [got.plate, got.plateColor, got.carType, got.carSubType, got.enterAtMs, got.inChannelId, got.operator, got.updatedAtMs],
          [edit.plate, edit.plateColor ?? 1, edit.carType, edit.carSubType, edit.enterAtMs, edit.inChannelId, edit.operator, edit.updatedAtMs],
          "an edit sets the fields it carries; one it leaves out keeps its value",
        );
        assert.deepEqual([got.vehicleType, got.prepayments.length, got.source, got.laneId], ["monthly", 1, "platform", "in1"], "the lane's fields stay as the store holds them");
      }),
      { numRuns: 30 },
    );
  }));

test("blacklist, car groups, coupons and payments come back as put, the store's stamps aside", () =>
  withPorts(async (ports, store, clock) => {
    const entry: BlacklistEntry = {
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
      updatedAtMs: T0,
    };
    await ports.blacklist.put(entry);
    assert.deepEqual(await ports.blacklist.get("B1"), entry);

    const group: CarGroup = {
      carGroupID: 7,
      carGroupUuid: "G7",
      name: "n".repeat(65),
      spaces: 3,
      carTypeCode: 82,
      timeStartMs: T0,
      timeEndMs: null,
      carMMoneyFen: 123,
      balanceFen: -5,
      remark: "",
      state: 0,
      createdAtMs: T0,
      updatedAtMs: T0,
    };
    await ports.carGroups.put(group);
    assert.deepEqual(await ports.carGroups.get("G7"), group);
    await clock.advance(1000);
    await ports.carGroups.put({ ...group, createdAtMs: 1, updatedAtMs: 1, name: "Tower" });
    assert.deepEqual(await ports.carGroups.get("G7"), { ...group, name: "Tower", updatedAtMs: T0 + 1000 }, "the store keeps createdAtMs and stamps updatedAtMs");

    const stay = platformStay("in1_20260601080000000", "粤B1");
    await ports.inPark.put(stay);
    const coupon: StayCoupon = { couponId: "CP1", recordNo: stay.recordNo, kind: "percent", value: 50, operator: "shop", grantedAtMs: T0 - 5, source: "platform" };
    await ports.coupons.put(coupon);
    assert.deepEqual(await ports.coupons.get("CP1"), coupon);
    assert.deepEqual(await ports.coupons.list(), [coupon]);
    assert.deepEqual(store.getInPark(stay.recordNo)!.coupons, [{ couponId: "CP1", kind: "percent", value: 50, operator: "shop", grantedAtMs: T0 - 5, source: "platform" }]);

    const base = { payType: "1", payAtMs: T0, source: "platform", receivedAtMs: T0 };
    const kinds: Payment[] = [
      { ...base, orderNo: "O1", kind: "stay", recordNo: stay.recordNo, plate: "粤B1", amountFen: 400, payScene: 0, channelId: "2", plateId: "EX1" },
      { ...base, orderNo: "O2", kind: "fixed-car", plate: "粤B1", targetUuid: "V1", amountFen: 20050 },
      { ...base, orderNo: "O3", kind: "car-group", targetUuid: "G7", amountFen: 0 },
      { ...base, orderNo: "O4", kind: "refund", plate: "粤B1", targetUuid: "V1", amountFen: 10025 },
      // Money was taken: a recordNo or plate longer than the platform declares is kept whole.
      { ...base, orderNo: "O6", kind: "stay", recordNo: "R".repeat(80), plate: "粤".repeat(40), amountFen: 5, payScene: 1 },
    ];
    for (const p of kinds) await ports.payments.put(p);
    for (const p of kinds) assert.deepEqual(await ports.payments.get(p.orderNo), p);
    assert.deepEqual(await ports.payments.list(), kinds);
  }));

test("only a stay payment counts as a prepayment; a fixed-car fee or a refund for the same plate does not", () =>
  withPorts(async (ports, store) => {
    await ports.inPark.put(platformStay("R1", "粤B12345"));
    const base = { plate: "粤B12345", targetUuid: "V1", payType: "1", payAtMs: T0, source: "platform", receivedAtMs: T0 };
    await ports.payments.put({ ...base, orderNo: "M1", kind: "fixed-car", recordNo: "R1", amountFen: 20050 });
    await ports.payments.put({ ...base, orderNo: "F1", kind: "refund", amountFen: 100 });
    assert.deepEqual(store.getInPark("R1")!.prepayments, []);
    await ports.payments.put({ ...base, orderNo: "S1", kind: "stay", amountFen: 300, payScene: 0 });
    assert.deepEqual(
      store.getInPark("R1")!.prepayments.map((p) => [p.orderNo, p.amountFen]),
      [["S1", 300]],
    );
    // A repeated orderNo keeps the first record (money is never rewritten).
    await ports.payments.put({ ...base, orderNo: "S1", kind: "stay", amountFen: 999, payScene: 0 });
    assert.equal((await ports.payments.get("S1"))!.amountFen, 300);
    assert.equal(store.getInPark("R1")!.prepayments.length, 1);
  }));

test("extra keys survive the platform's edits", () =>
  withPorts(async (ports, store) => {
    const v = await store.upsertVehicle({ carNum: "粤B1", carTypeCode: 81, extra: { integrator: { site: 7 } } });
    const record = (await ports.vehicles.get(v.uuId))!;
    await ports.vehicles.put({ ...record, owner: "x".repeat(70) });
    const stored = store.getVehicle({ uuId: v.uuId })!;
    assert.deepEqual([stored.owner, stored.extra], ["x".repeat(70), { integrator: { site: 7 } }]);
  }));

test("stays: remove ends the stay in history as platform-delete; its coupons go with it", () =>
  withPorts(async (ports, store, clock) => {
    const stay = platformStay("in1_20260601080000000", "粤B1");
    await ports.inPark.put(stay);
    await ports.coupons.put({ couponId: "CP1", recordNo: stay.recordNo, kind: "free", value: 0, grantedAtMs: T0 });
    await clock.advance(60_000);
    assert.equal(await ports.inPark.remove(stay.recordNo), true);
    assert.equal(await ports.inPark.remove(stay.recordNo), false);
    assert.deepEqual(await ports.coupons.list(), []);
    const [ended] = await store.recentStays("粤B1");
    assert.deepEqual([ended!.exit.reason, ended!.exit.leaveAtMs, ended!.coupons.map((c) => c.couponId)], ["platform-delete", T0 + 60_000, ["CP1"]]);
  }));

test("coupons: replaced in place, moved between stays, removed; a coupon for no stay is notFound", () =>
  withPorts(async (ports, store) => {
    await ports.inPark.put(platformStay("R1", "粤B1"));
    await ports.inPark.put(platformStay("R2", "粤B2"));
    const coupon: StayCoupon = { couponId: "CP1", recordNo: "R1", kind: "amount", value: 300, expiresAtMs: T0 + 1, operator: "shop", grantedAtMs: T0 };
    await ports.coupons.put(coupon);
    await ports.coupons.put({ ...coupon, value: 500 });
    assert.deepEqual(
      store.getInPark("R1")!.coupons.map((c) => [c.couponId, c.value]),
      [["CP1", 500]],
    );
    await ports.coupons.put({ ...coupon, recordNo: "R2" });
    assert.deepEqual(store.getInPark("R1")!.coupons, []);
    assert.deepEqual(await ports.coupons.get("CP1"), { ...coupon, recordNo: "R2" });
    await assert.rejects(ports.coupons.put({ ...coupon, couponId: "CP2", recordNo: "R9" }), isRefusal("notFound", /R9/));
    assert.equal(await ports.coupons.remove("CP1"), true);
    assert.equal(await ports.coupons.remove("CP1"), false);
    assert.deepEqual(store.getInPark("R2")!.coupons, []);
  }));

test("refusals: a plate the store finds registered, an id another record holds, a key it cannot keep, an invalid value", () =>
  withPorts(async (ports, store) => {
    const v: Vehicle = {
      id: 1,
      uuId: "U1",
      carNum: "粤B12345",
      owner: "",
      carTypeCode: 81,
      carGroupID: 0,
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
      carMMoneyFen: 0,
      refundFen: 0,
      timeStartMs: null,
      timeEndMs: null,
      state: 1,
      frozen: false,
      createdAtMs: T0,
      updatedAtMs: T0,
    };
    await ports.vehicles.put(v);
    // What a handler reads is a copy: changing it changes nothing stored until a put.
    (await ports.vehicles.get("U1"))!.carNum = "粤B0";
    (await ports.vehicles.list())[0]!.owner = "changed";
    assert.deepEqual([store.getVehicle({ uuId: "U1" })!.carNum, store.getVehicle({ uuId: "U1" })!.owner], ["粤B12345", ""]);
    const seq = store.status().documents.map((d) => d.seq);
    await assert.rejects(ports.vehicles.put({ ...v, id: 2, uuId: "U2", carNum: "粤b 12345" }), isRefusal("conflict", /already registered/));
    await assert.rejects(ports.vehicles.put({ ...v, uuId: "U3", carNum: "粤B3" }), isRefusal("conflict", /id 1 belongs to U1/));
    await assert.rejects(ports.vehicles.put({ ...v, uuId: "__proto__", id: 9, carNum: "粤B9" }), isRefusal("badBizContent", /cannot be stored/));
    await assert.rejects(ports.vehicles.put({ ...v, uuId: "U".repeat(65), id: 9, carNum: "粤B9" }), isRefusal("badBizContent", /uuId/));
    await assert.rejects(ports.inPark.put(platformStay("__proto__", "")), isRefusal("badBizContent"));
    await assert.rejects(
      ports.blacklist.put({
        id: 1,
        uuid: "B1",
        carNum: "粤B1",
        type: 2 as 0,
        untilMs: null,
        operator: "",
        remark: "",
        denyIn: true,
        denyOut: true,
        inNotify: false,
        createdAtMs: T0,
        updatedAtMs: T0,
      }),
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
