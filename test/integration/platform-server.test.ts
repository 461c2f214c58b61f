import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import { request } from "undici";
import { FakeClock } from "../helpers/fake-clock.js";
import { redactedPaths } from "../../src/kernel/log.js";
import { HttpServer } from "../../src/api/http-server.js";
import { defaultReturnCodes, platformConfigSchema, section4ServiceIds, type PlatformConfigInput } from "../../src/platform/config.js";
import { demoCredentials, startEmulator } from "../../src/platform/emulator/emulator.js";
import { encodeEnvelope } from "../../src/platform/envelope.js";
import { createMemoryLotPorts, type MemoryLotPorts } from "../../src/platform/memory-ports.js";
import type { LanePort } from "../../src/platform/ports.js";
import { createOpenInterfaceHandler, registerPlatformRoute, type OpenInterfaceHandler } from "../../src/platform/server.js";
import { emptyGroup, group, monthly, nowMs, stay, storedValue, t, zone } from "../helpers/section4-fixtures.js";

interface Box {
  url: string;
  clock: FakeClock;
  ports: MemoryLotPorts;
  handler: OpenInterfaceHandler;
  logLines: string[];
  laneCalls: Array<[string, unknown]>;
  send(service: string, biz: Record<string, unknown>, options?: SendOptions): Promise<{ status: number; body: { code: number; msg: string; data?: any } }>;
  post(body: string | Buffer, contentType?: string): Promise<{ status: number; body: any }>;
}

interface SendOptions {
  form?: "object" | "string";
  key?: string;
  pid?: string;
  timestampS?: number;
}

async function withBox(fn: (box: Box) => Promise<void>, options: { platform?: Partial<PlatformConfigInput>; lane?: Partial<LanePort> } = {}): Promise<void> {
  const lines: string[] = [];
  const log = pino(
    { level: "debug", redact: { paths: redactedPaths, censor: "HIDDEN" } },
    new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const clock = new FakeClock(nowMs);
  const laneCalls: Array<[string, unknown]> = [];
  const ports = createMemoryLotPorts({
    totalSpaces: 50,
    seed: { vehicles: [monthly, storedValue], carGroups: [group, emptyGroup], inPark: [stay], blacklist: [] },
    lane: {
      async feeQuery(q) {
        laneCalls.push(["feeQuery", q]);
        return {
          ok: true,
          value: {
            recordNo: stay.recordNo,
            plateNum: stay.plate,
            enterTimeMs: stay.enterAtMs,
            leaveTimeMs: nowMs,
            payableFee: 500,
            discountFee: 100,
            paidFee: 400,
            carType: 9,
            carSubType: 91,
            channelId: "2",
          },
        };
      },
      async unlicensedEntry(e) {
        laneCalls.push(["unlicensedEntry", e]);
        return { ok: true, value: { recordNo: "in1_x" } };
      },
      async remoteControl(c) {
        laneCalls.push(["remoteControl", c]);
        return c.plateId === "EX-unknown" ? { ok: false, reason: "not-found", msg: "no pending event EX-unknown" } : { ok: true, value: undefined };
      },
      async paymentNotified(p) {
        laneCalls.push(["paymentNotified", p]);
      },
      ...options.lane,
    },
  });
  const platform = platformConfigSchema.parse({ baseUrl: "http://127.0.0.1:9/", pid: demoCredentials.pid, key: demoCredentials.key, ...options.platform });
  const handler = createOpenInterfaceHandler({
    config: {
      platform,
      lot: { parkCode: "TEST/1P1", timeZone: zone, totalSpaces: 50 },
      lanes: [
        { id: "in1", channelId: "1", direction: "in" },
        { id: "out1", channelId: "2", direction: "out" },
      ],
    },
    ports,
    clock,
    log,
  });
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: "test-token-0123456789", openReads: "loopback" }, log);
  registerPlatformRoute(http, handler);
  http.route("GET", "/healthz", (ctx) => ctx.send(200, { ok: true }), { access: "open" });
  await http.start();
  const url = `http://127.0.0.1:${http.address().port}/platform`;
  const post = async (body: string | Buffer, contentType = "application/json;charset=UTF-8") => {
    const res = await request(url, { method: "POST", headers: { "content-type": contentType }, body });
    const text = await res.body.text();
    return { status: res.statusCode, body: JSON.parse(text) };
  };
  let sent = 0;
  const box: Box = {
    url,
    clock,
    ports,
    handler,
    logLines: lines,
    laneCalls,
    post,
    async send(service, biz, o = {}) {
      const encoded = encodeEnvelope({
        pid: o.pid ?? demoCredentials.pid,
        key: o.key ?? demoCredentials.key,
        serviceName: service,
        // A real cloud signs every request afresh; a byte-identical repeat is a replay (refused),
        // so each send here is stamped one second earlier than the last, well inside the window.
        timestamp: String(o.timestampS ?? Math.floor(clock.now() / 1000) - (sent++ % 250)),
        biz,
        bizContentForm: o.form ?? "object",
      });
      return post(encoded.bodyText);
    },
  };
  try {
    await fn(box);
  } finally {
    await http.stop();
  }
}

const P = { parkCode: "TEST/1P1" };
const tested = new Set<string>();
function handlerTest(service: string, name: string, fn: (box: Box) => Promise<void>, options?: Parameters<typeof withBox>[1]): void {
  tested.add(service);
  test(`${service}: ${name}`, () => withBox(fn, options));
}
function assertOk(r: { status: number; body: { code: number; msg: string } }): void {
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.code, 200, JSON.stringify(r.body));
  assert.equal(r.body.msg, "成功");
}
function assertRefused(r: { status: number; body: { code: number; msg: string } }, code: number, msg: RegExp): void {
  assert.equal(r.body.code, code, JSON.stringify(r.body));
  assert.match(r.body.msg, msg);
}

// ---- every handler over HTTP with a signed request ----

handlerTest("queryParkFee", "payScene 1 asks the lane for the bill of the car at the exit", async (box) => {
  const r = await box.send("queryParkFee", { ...P, outChannelid: "2", payScene: 1 });
  assertOk(r);
  assert.deepEqual(r.body.data, {
    recordNo: stay.recordNo,
    plateNum: "粤B88888",
    enterTime: "2024-01-15 08:00:00",
    leaveTime: "2024-01-15 10:00:00",
    payableFee: 500,
    discountFee: 100,
    paidFee: 400,
    carType: 9,
    carSubType: 91,
    outChannelid: "2",
  });
  assert.deepEqual(box.laneCalls[0], ["feeQuery", { payScene: 1, channelId: "2", laneId: "out1" }]);
  assertRefused(await box.send("queryParkFee", { ...P, payScene: 0 }), defaultReturnCodes.badBizContent, /plateNum is required/);
  assertRefused(await box.send("queryParkFee", { ...P, payScene: 1, outChannelid: "1" }), defaultReturnCodes.laneInvalid, /not an exit lane/);
});

handlerTest("payNotify", "stores the payment once, tells the lane, and answers repeats with 200", async (box) => {
  const biz = {
    ...P,
    recordNo: stay.recordNo,
    plateNum: "粤B88888",
    orderNo: "TC2024011510000000001",
    payType: 1,
    payFee: 400,
    payTime: "2024-01-15 09:59:00",
    payScene: 0,
    outChannelid: "",
    plateId: "",
  };
  assertOk(await box.send("payNotify", biz));
  assert.equal(box.ports.snapshot().payments.length, 1);
  assert.equal(box.ports.snapshot().payments[0]!.amountFen, 400);
  assert.equal(box.laneCalls.filter(([n]) => n === "paymentNotified").length, 1);
  const writes = box.ports.writes();
  assertOk(await box.send("payNotify", biz));
  assert.equal(box.ports.writes(), writes, "a repeated notice writes nothing");
  assertRefused(await box.send("payNotify", { ...biz, payFee: 999 }), defaultReturnCodes.conflict, /already recorded/);
});

handlerTest("unlicensedReq", "hands the virtual plate to the entry lane; wrong plates and lanes are refused", async (box) => {
  const r = await box.send("unlicensedReq", { channelid: "1", ...P, plateNum: "K7Q2M9X", requestTime: "2024-01-15 09:59:50" });
  assertOk(r);
  assert.equal(r.body.data, undefined, "4.3 answers without data");
  assert.deepEqual(box.laneCalls[0], ["unlicensedEntry", { plateNum: "K7Q2M9X", channelId: "1", laneId: "in1", requestTimeMs: t("2024-01-15 09:59:50") }]);
  assertRefused(await box.send("unlicensedReq", { channelid: "1", ...P, plateNum: "k7q2", requestTime: "2024-01-15 09:59:50" }), defaultReturnCodes.badBizContent, /virtual plate/);
  assertRefused(
    await box.send("unlicensedReq", { channelid: "2", ...P, plateNum: "K7Q2M9X", requestTime: "2024-01-15 09:59:50" }),
    defaultReturnCodes.laneInvalid,
    /not an entry lane/,
  );
});

handlerTest("queryMonthlyRent", "answers monthly and stored-value cars found among the plates", async (box) => {
  const both = await box.send("queryMonthlyRent", { ...P, plateNums: "粤B12345,粤B54321,粤B77777", queryType: 2 });
  assertOk(both);
  assert.deepEqual(both.body.data, [
    { pcardId: 5, pcardUuid: monthly.uuId, plateNum: "粤B12345", status: 1, carType: 8, carSubType: 81, price: "200.50", deadlineDate: "2024-11-30 23:59:59", state: 1, frozen: 0 },
    { pcardId: 2, pcardUuid: storedValue.uuId, plateNum: "粤B77777", status: 1, carType: 7, carSubType: 71, balance: 50, state: 1, frozen: 0 },
  ]);
  const monthlyOnly = await box.send("queryMonthlyRent", { ...P, plateNums: "粤B12345，粤B77777", queryType: "0" });
  assert.deepEqual(
    monthlyOnly.body.data.map((d: { plateNum: string }) => d.plateNum),
    ["粤B12345"],
  );
});

handlerTest("monthlyPayNotify", "extends the card to the new end and records the payment", async (box) => {
  const r = await box.send("monthlyPayNotify", {
    ...P,
    orderNo: "TC-M-1",
    pcardUuid: monthly.uuId,
    plateNum: "粤B12345",
    payType: 2,
    payFee: 20050,
    payTime: "2024-01-15 09:00:00",
    timeEnd: "2024-12-31 23:59:59",
  });
  assertOk(r);
  assert.equal(r.body.data.timeEnd, "2024-12-31 23:59:59");
  const v = box.ports.snapshot().vehicles.find((x) => x.uuId === monthly.uuId)!;
  assert.equal(v.timeEndMs, t("2024-12-31 23:59:59"));
  assert.equal(box.ports.snapshot().payments[0]!.kind, "fixed-car");
  assertRefused(
    await box.send("monthlyPayNotify", {
      ...P,
      orderNo: "TC-M-2",
      pcardUuid: monthly.uuId,
      plateNum: "粤B99999",
      payType: 2,
      payFee: 1,
      payTime: "2024-01-15 09:00:00",
      timeEnd: "2024-12-31 23:59:59",
    }),
    defaultReturnCodes.conflict,
    /belongs to/,
  );
});

handlerTest("queryInPark", "says whether and since when a plate is inside", async (box) => {
  const inside = await box.send("queryInPark", { ...P, plateNum: "粤B88888" });
  assertOk(inside);
  assert.equal(inside.body.data.inPark, 1);
  assert.equal(inside.body.data.enterTime, "2024-01-15 08:00:00");
  assert.equal(inside.body.data.parkedSeconds, 7200);
  const outside = await box.send("queryInPark", { ...P, plateNum: "粤B00000" });
  assert.deepEqual(outside.body.data, { inPark: 0, plateNum: "粤B00000" });
});

handlerTest("issueCoupon", "grants one coupon per stay, idempotent on couponNo", async (box) => {
  const biz = { ...P, couponNo: "CP1", plateNum: "粤B88888", couponType: 1, value: 300 };
  const r = await box.send("issueCoupon", biz);
  assertOk(r);
  assert.deepEqual(r.body.data, { couponNo: "CP1", recordNo: stay.recordNo });
  assertOk(await box.send("issueCoupon", biz));
  assert.equal(box.ports.snapshot().coupons.length, 1);
  assertRefused(await box.send("issueCoupon", { ...biz, couponNo: "CP2" }), defaultReturnCodes.conflict, /already holds/);
  assertRefused(await box.send("issueCoupon", { ...biz, couponNo: "CP3", plateNum: "粤B00000" }), defaultReturnCodes.notFound, /no stay/);
});

handlerTest("queryFreeSpace", "answers total and free spaces as absolute numbers", async (box) => {
  const r = await box.send("queryFreeSpace", P);
  assertOk(r);
  assert.deepEqual(r.body.data, { totalSpaces: 50, freeSpaces: 49 });
});

handlerTest("queryBlacklist", "returns every entry when no page is given, filtered by plate", async (box) => {
  await box.send("addBlacklist", { ...P, carNum: "粤B44444", remark: "unpaid" });
  await box.send("addBlacklist", { ...P, carNum: "粤B55555", type: 1 });
  const all = await box.send("queryBlacklist", P);
  assertOk(all);
  assert.equal(all.body.data.totalItems, 2);
  const one = await box.send("queryBlacklist", { ...P, carNum: "44444", page: 1, pageSize: 10 });
  assert.deepEqual(
    one.body.data.items.map((i: { carNum: string }) => i.carNum),
    ["粤B44444"],
  );
  assert.equal(one.body.data.items[0].denyIn, 1);
});

handlerTest("addBlacklist", "adds with defaults and updates the same plate and type in place", async (box) => {
  const r = await box.send("addBlacklist", { ...P, carNum: "粤B44444", duration: "2024-06-30 23:59:59", operator: "ops" });
  assertOk(r);
  assert.match(r.body.data.uuid, /^[0-9A-F]{32}$/);
  const again = await box.send("addBlacklist", { ...P, carNum: "粤B44444", denyOut: 0 });
  assert.equal(again.body.data.uuid, r.body.data.uuid);
  const [entry] = box.ports.snapshot().blacklist;
  assert.equal(box.ports.snapshot().blacklist.length, 1);
  assert.equal(entry!.denyOut, false);
  assertRefused(await box.send("addBlacklist", { ...P, carNum: "粤B1", type: 3 }), defaultReturnCodes.badBizContent, /type 3/);
});

handlerTest("deleteBlacklist", "deletes by uuid; an unknown entry is notFound", async (box) => {
  const added = await box.send("addBlacklist", { ...P, carNum: "粤B44444" });
  assertRefused(await box.send("deleteBlacklist", { ...P, uuid: "NOPE" }), defaultReturnCodes.notFound, /no such/);
  const r = await box.send("deleteBlacklist", { ...P, uuid: added.body.data.uuid });
  assertOk(r);
  assert.deepEqual(r.body.data, { deleted: 1 });
  assert.equal(box.ports.snapshot().blacklist.length, 0);
});

handlerTest("queryCarGroupPage", "pages car groups with their member counts", async (box) => {
  const r = await box.send("queryCarGroupPage", { ...P, page: 1, pageSize: 1 });
  assertOk(r);
  assert.equal(r.body.data.totalItems, 2);
  assert.equal(r.body.data.totalPages, 2);
  assert.deepEqual(r.body.data.items[0], {
    carGroupID: 3,
    carGroupUuid: group.carGroupUuid,
    name: "Tower B",
    spaceCount: 2,
    carTypeCode: 81,
    timeStart: "",
    timeEnd: "2024-12-31 23:59:59",
    carMMoney: 400,
    balance: 0,
    remark: "",
    state: 1,
    carCount: 1,
  });
});

handlerTest("addCarGroup", "creates a group and answers its ids; duplicate names conflict", async (box) => {
  const r = await box.send("addCarGroup", { ...P, name: "Visitors", spaceCount: 5, carMMoney: 150.5 });
  assertOk(r);
  assert.equal(r.body.data.carGroupID, 5);
  assert.equal(box.ports.snapshot().carGroups.find((g) => g.name === "Visitors")!.carMMoneyFen, 15050);
  assertRefused(await box.send("addCarGroup", { ...P, name: "Visitors", spaceCount: 1 }), defaultReturnCodes.conflict, /exists/);
});

handlerTest("editCarGroup", "replaces the sent fields", async (box) => {
  const r = await box.send("editCarGroup", { ...P, carGroupID: 3, spaceCount: 4, remark: "bigger" });
  assertOk(r);
  assert.equal(r.body.data.spaceCount, 4);
  assert.equal(r.body.data.name, "Tower B");
  assertRefused(await box.send("editCarGroup", { ...P, carGroupUuid: "NOPE", spaceCount: 4 }), defaultReturnCodes.notFound, /no car group/);
});

handlerTest("deleteCarGroup", "refuses while vehicles belong to the group, deletes an empty one", async (box) => {
  assertRefused(await box.send("deleteCarGroup", { ...P, carGroupUuid: group.carGroupUuid }), defaultReturnCodes.conflict, /still has 1 vehicle/);
  assertOk(await box.send("deleteCarGroup", { ...P, carGroupUuid: emptyGroup.carGroupUuid }));
  assert.deepEqual(
    box.ports.snapshot().carGroups.map((g) => g.carGroupID),
    [3],
  );
});

handlerTest("rechargeCarGroup", "extends a group once per orderNo", async (box) => {
  const biz = { ...P, carGroupUuid: group.carGroupUuid, orderNo: "TC-G-1", amount: 400, timeEnd: "2025-12-31 23:59:59" };
  const r = await box.send("rechargeCarGroup", biz);
  assertOk(r);
  assert.equal(r.body.data.timeEnd, "2025-12-31 23:59:59");
  const writes = box.ports.writes();
  assertOk(await box.send("rechargeCarGroup", biz));
  assert.equal(box.ports.writes(), writes);
});

handlerTest("queryCarPage", "the document's example (numbers as strings) pages the registered vehicles", async (box) => {
  const r = await box.send("queryCarPage", { carNum: "粤B12345", page: "1", pageSize: "10", parkCode: "TEST/1P1" });
  assertOk(r);
  assert.equal(r.body.data.totalItems, 1);
  assert.equal(r.body.data.itemsPerPage, 10);
  const item = r.body.data.items[0];
  assert.equal(item.uuId, monthly.uuId);
  assert.equal(item.carMMoney, 200.5);
  assert.equal(item.timeEnd, "2024-11-30 23:59:59");
  const clamped = await box.send("queryCarPage", { ...P, page: 1, pageSize: 100000 });
  assert.equal(clamped.body.data.itemsPerPage, 100);
});

handlerTest("addCar", "the document's example adds a vehicle and answers id and uuId", async (box) => {
  const biz = {
    carMMoney: 200.5,
    carNum: "粤B54321",
    carSpaceNum: "B2-017",
    carTypeCode: 81,
    id: 0,
    owner: "张三",
    parkCode: "TEST/1P1",
    state: 1,
    tel: "13800000000",
    timeEnd: "2024-11-30 23:59:59",
    timeStart: "2023-12-01 00:00:00",
  };
  const r = await box.send("addCar", biz);
  assertOk(r);
  assert.equal(r.body.data.id, 6);
  const v = box.ports.snapshot().vehicles.find((x) => x.carNum === "粤B54321")!;
  assert.equal(v.uuId, r.body.data.uuId);
  assert.equal(v.carMMoneyFen, 20050);
  assert.equal(v.timeStartMs, t("2023-12-01 00:00:00"));
  assertRefused(await box.send("addCar", biz), defaultReturnCodes.conflict, /already registered/);
  assertRefused(await box.send("addCar", { ...biz, carNum: "粤B11111", carTypeCode: 8 }), defaultReturnCodes.badBizContent, /concrete type/);
});

handlerTest("editCar", "replaces the record found by uuId; a different plate is refused", async (box) => {
  const biz = {
    ...P,
    id: 5,
    uuId: monthly.uuId,
    carNum: "粤B12345",
    owner: "李四",
    carTypeCode: 81,
    carGroupID: 0,
    carGroupUuid: "",
    remark: "",
    state: 0,
    timeStart: "2023-12-01 00:00:00",
    timeEnd: "2025-01-31 23:59:59",
    balance: 0,
    carMMoney: 220,
    region: "",
    code: "",
    carGroup: "",
    tel: "",
    color: "",
    carSpaceNum: "",
  };
  assertOk(await box.send("editCar", biz));
  const v = box.ports.snapshot().vehicles.find((x) => x.uuId === monthly.uuId)!;
  assert.equal(v.owner, "李四");
  assert.equal(v.state, 0);
  assert.equal(v.carGroupUuid, "", 'carGroupUuid "" clears the group');
  assert.equal(v.carMMoneyFen, 22000);
  assert.equal(v.tel, "", "an empty string clears a field");
  assertRefused(await box.send("editCar", { ...biz, carNum: "粤B99999" }), defaultReturnCodes.conflict, /changeCarNum/);
});

handlerTest("deleteCar", "deletes by uuId", async (box) => {
  assertOk(await box.send("deleteCar", { ...P, uuId: storedValue.uuId }));
  assert.deepEqual(
    box.ports.snapshot().vehicles.map((v) => v.id),
    [5],
  );
  assertRefused(await box.send("deleteCar", { ...P, uuId: storedValue.uuId }), defaultReturnCodes.notFound, /no vehicle/);
});

handlerTest("changeCarNum", "changes the plate; a plate held by another car conflicts", async (box) => {
  const r = await box.send("changeCarNum", { ...P, uuId: monthly.uuId, carNum: "粤B12345", newCarNum: "粤B12346" });
  assertOk(r);
  assert.equal(box.ports.snapshot().vehicles.find((v) => v.uuId === monthly.uuId)!.carNum, "粤B12346");
  assertRefused(await box.send("changeCarNum", { ...P, uuId: monthly.uuId, newCarNum: "粤B77777" }), defaultReturnCodes.conflict, /already registered/);
});

handlerTest("rechargeCar", "sets the new balance once per orderNo", async (box) => {
  const biz = { ...P, uuId: storedValue.uuId, orderNo: "TC-R-1", amount: 100, balance: 150 };
  const r = await box.send("rechargeCar", biz);
  assertOk(r);
  assert.equal(r.body.data.balance, 150);
  assertOk(await box.send("rechargeCar", biz));
  assert.equal(box.ports.snapshot().payments.length, 1);
  assertRefused(await box.send("rechargeCar", { ...P, uuId: storedValue.uuId, orderNo: "TC-R-2" }), defaultReturnCodes.badBizContent, /timeEnd or balance/);
});

handlerTest("freezeCar", "freezes a vehicle", async (box) => {
  const r = await box.send("freezeCar", { ...P, id: 5, operator: "ops" });
  assertOk(r);
  assert.equal(r.body.data.frozen, 1);
  assert.equal(box.ports.snapshot().vehicles.find((v) => v.id === 5)!.frozen, true);
});

handlerTest("unfreezeCar", "unfreezes a vehicle", async (box) => {
  await box.send("freezeCar", { ...P, carNum: "粤B12345" });
  assertOk(await box.send("unfreezeCar", { ...P, carNum: "粤B12345" }));
  assert.equal(box.ports.snapshot().vehicles.find((v) => v.id === 5)!.frozen, false);
});

handlerTest("clearCar", "is refused unless switched on in the config; nothing is deleted", async (box) => {
  const before = box.ports.snapshot();
  assertRefused(await box.send("clearCar", { ...P, operator: "ops" }), defaultReturnCodes.forbidden, /disabled/);
  assert.deepEqual(box.ports.snapshot(), before);
  assert.ok(
    box.logLines.some((l) => /clear all vehicles/.test(l)),
    "the attempt is logged",
  );
});

test("clearCar: with platform.server.allowClearAllVehicles on, every vehicle is deleted and it is logged", () =>
  withBox(
    async (box) => {
      const r = await box.send("clearCar", { ...P, operator: "ops" });
      assertOk(r);
      assert.deepEqual(r.body.data, { deleted: 2 });
      assert.equal(box.ports.snapshot().vehicles.length, 0);
      assert.ok(box.logLines.some((l) => /all vehicles cleared/.test(l)));
    },
    { platform: { server: { allowClearAllVehicles: true } } },
  ));

handlerTest("refundCar", "records the refund and shortens validity", async (box) => {
  const r = await box.send("refundCar", { ...P, uuId: monthly.uuId, orderNo: "TC-F-1", refund: 100.25, timeEnd: "2024-06-30 23:59:59" });
  assertOk(r);
  assert.equal(r.body.data.refund, 100.25);
  assert.equal(r.body.data.timeEnd, "2024-06-30 23:59:59");
  assert.equal(box.ports.snapshot().payments[0]!.kind, "refund");
});

handlerTest("remoteDev", "the document's example (string bizContent, channelId spelling, numbers as strings) reaches the lane", async (box) => {
  const r = await box.send("remoteDev", { channelId: "2", cmd: "0", operator: "gate-admin", ...P, plateId: "EX20231114221320001", type: "0" }, { form: "string" });
  assertOk(r);
  assert.equal(r.body.data, "操作成功");
  assert.deepEqual(box.laneCalls[0], [
    "remoteControl",
    { channelId: "2", laneId: "out1", type: 0, plateId: "EX20231114221320001", operator: "gate-admin", cmd: 0, openGateCase: null },
  ]);
  assertRefused(await box.send("remoteDev", { channelid: "2", operator: "a", ...P, plateId: "EX-unknown", type: 0 }), defaultReturnCodes.notFound, /no pending event/);
  assertRefused(await box.send("remoteDev", { channelid: "2", operator: "a", ...P, plateId: "EX1", type: 2 }), defaultReturnCodes.badBizContent, /openGateCase/);
  assertRefused(await box.send("remoteDev", { channelid: "9", operator: "a", ...P, plateId: "EX1", type: 0 }), defaultReturnCodes.laneInvalid, /not a lane/);
});

handlerTest("queryParkRecordPage", "pages in-park records, filtered by plate and entry time", async (box) => {
  await box.send("addParkRecord", { ...P, plateNum: "粤B66666", enterTime: "2024-01-15 09:00:00", inChannelid: "1" });
  const all = await box.send("queryParkRecordPage", { ...P, page: 1, pageSize: 10 });
  assertOk(all);
  assert.deepEqual(
    all.body.data.items.map((i: { plateNum: string }) => i.plateNum),
    ["粤B88888", "粤B66666"],
  );
  const late = await box.send("queryParkRecordPage", { ...P, startTime: "2024-01-15 08:30:00", page: 1, pageSize: 10 });
  assert.deepEqual(
    late.body.data.items.map((i: { plateNum: string }) => i.plateNum),
    ["粤B66666"],
  );
});

handlerTest("editParkRecord", "fixes a plate read wrongly; a future entry time is refused", async (box) => {
  const r = await box.send("editParkRecord", { ...P, recordNo: stay.recordNo, plateNum: "粤B88889", operator: "ops" });
  assertOk(r);
  assert.equal(box.ports.snapshot().inPark[0]!.plate, "粤B88889");
  assert.equal(box.ports.snapshot().inPark[0]!.enterAtMs, stay.enterAtMs);
  assertRefused(await box.send("editParkRecord", { ...P, recordNo: stay.recordNo, enterTime: "2024-01-16 00:00:00" }), defaultReturnCodes.badBizContent, /future/);
});

handlerTest("deleteParkRecord", "removes a stay without an exit report", async (box) => {
  assertOk(await box.send("deleteParkRecord", { ...P, recordNo: stay.recordNo }));
  assert.equal(box.ports.snapshot().inPark.length, 0);
  assertRefused(await box.send("deleteParkRecord", { ...P, recordNo: stay.recordNo }), defaultReturnCodes.notFound, /no in-park record/);
});

handlerTest("addParkRecord", "adds a stay with a generated recordNo; a car already inside conflicts", async (box) => {
  const r = await box.send("addParkRecord", { ...P, plateNum: "粤B66666", enterTime: "2024-01-15 09:00:00", inChannelid: "1" });
  assertOk(r);
  assert.equal(r.body.data.recordNo, "in1_20240115090000000");
  const added = box.ports.snapshot().inPark.find((s) => s.plate === "粤B66666")!;
  assert.equal(added.carType, 9);
  assert.equal(added.source, "platform");
  assertRefused(await box.send("addParkRecord", { ...P, plateNum: "粤B88888", enterTime: "2024-01-15 09:00:00" }), defaultReturnCodes.conflict, /already in the park/);
});

test("every interface of the table of contents has a handler test above", () => {
  assert.deepEqual([...tested].sort(), [...section4ServiceIds].sort());
});

test("the emulator, acting as the cloud, calls the box over HTTP (callBox)", () =>
  withBox(async (box) => {
    const emulator = await startEmulator({ clock: new FakeClock(nowMs) });
    try {
      const answer = await emulator.callBox(box.url, "queryFreeSpace", P);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { code: 200, msg: "成功", data: { totalSpaces: 50, freeSpaces: 49 } });
    } finally {
      await emulator.stop();
    }
  }));

// ---- rejections: a clear code/msg, no state change, process alive ----

async function rejects(
  box: Box,
  attempt: () => Promise<{ status: number; body: { code: number; msg: string } }>,
  status: number,
  code: number,
  msg: RegExp,
  reason: string,
): Promise<void> {
  const before = box.ports.snapshot();
  const writes = box.ports.writes();
  const r = await attempt();
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.code, code, JSON.stringify(r.body));
  assert.match(r.body.msg, msg);
  assert.deepEqual(box.ports.snapshot(), before, "no state change");
  assert.equal(box.ports.writes(), writes);
  assert.equal(box.laneCalls.length, 0, "the lane was not asked");
  assert.ok(
    box.logLines.some((l) => l.includes(`"reason":"${reason}"`)),
    `logged with reason ${reason}`,
  );
  // Still alive and answering.
  assertOk(await box.send("queryFreeSpace", P));
}

const addBiz = { ...P, id: 0, carNum: "粤B54321", owner: "张三", carTypeCode: 81, state: 1 };

test("rejected: unknown serviceName", () =>
  withBox((box) => rejects(box, () => box.send("launchRocket", addBiz), 200, defaultReturnCodes.unknownService, /unknown serviceName launchRocket/, "unknownService")));

test("rejected: malformed JSON", () => withBox((box) => rejects(box, () => box.post('{"pid":"P100001",'), 400, defaultReturnCodes.badJson, /not valid JSON/, "badJson")));

test("rejected: body over 64 KiB answers 413 with an envelope", () =>
  withBox((box) =>
    rejects(box, () => box.send("addCar", { ...addBiz, remark: "x".repeat(64 * 1024 + 10) }), 413, defaultReturnCodes.tooLarge, /exceeds the limit of 65536/, "tooLarge"),
  ));

test("rejected: wrong content type, and a charset other than UTF-8", () =>
  withBox(async (box) => {
    const body = encodeEnvelope({ pid: demoCredentials.pid, key: demoCredentials.key, serviceName: "addCar", timestamp: String(nowMs / 1000), biz: addBiz }).bodyText;
    await rejects(box, () => box.post(body, "application/x-www-form-urlencoded"), 415, defaultReturnCodes.badContentType, /not JSON/, "badContentType");
    await rejects(box, () => box.post(body, "application/json; charset=GBK"), 415, defaultReturnCodes.badContentType, /charset gbk/, "badContentType");
    // text/plain is accepted: some platforms send it.
    assertOk(await box.post(body, "text/plain; charset=utf-8"));
  }));

test("rejected: body bytes that are not UTF-8", () =>
  withBox((box) => rejects(box, () => box.post(Buffer.from([0x7b, 0xc1, 0xfe, 0x7d])), 400, defaultReturnCodes.badJson, /UTF-8/, "badJson")));

test("rejected: bad sign, missing sign, wrong pid", () =>
  withBox(async (box) => {
    await rejects(box, () => box.send("addCar", addBiz, { key: "00000000000000000000000000000000" }), 200, defaultReturnCodes.badSign, /sign does not match/, "badSign");
    const unsigned = encodeEnvelope({ pid: demoCredentials.pid, key: demoCredentials.key, serviceName: "addCar", timestamp: String(nowMs / 1000), biz: addBiz }).bodyText.replace(
      /"sign":"[0-9A-F]+",/,
      "",
    );
    await rejects(box, () => box.post(unsigned), 200, defaultReturnCodes.badSign, /sign is missing/, "badSign");
    await rejects(box, () => box.send("addCar", addBiz, { pid: "P999" }), 200, defaultReturnCodes.wrongPid, /pid P999/, "wrongPid");
  }));

test("rejected: stale and future timestamps (window 300 s)", () =>
  withBox(async (box) => {
    await rejects(box, () => box.send("addCar", addBiz, { timestampS: nowMs / 1000 - 301 }), 200, defaultReturnCodes.staleTimestamp, /301 s old/, "staleTimestamp");
    await rejects(box, () => box.send("addCar", addBiz, { timestampS: nowMs / 1000 + 400 }), 200, defaultReturnCodes.staleTimestamp, /in the future/, "staleTimestamp");
    assertOk(await box.send("addCar", addBiz, { timestampS: nowMs / 1000 - 299 }));
  }));

test("rejected: wrong parkCode and a missing required field", () =>
  withBox(async (box) => {
    await rejects(box, () => box.send("addCar", { ...addBiz, parkCode: "OTHER/1" }), 200, defaultReturnCodes.wrongParkCode, /parkCode OTHER\/1/, "wrongParkCode");
    await rejects(box, () => box.send("addCar", { ...addBiz, owner: undefined }), 200, defaultReturnCodes.badBizContent, /owner is required/, "badBizContent");
  }));

test("a failing store answers 500 'internal', changes nothing, and the box keeps answering", () =>
  withBox(async (box) => {
    const original = box.ports.vehicles.put.bind(box.ports.vehicles);
    box.ports.vehicles.put = async () => {
      throw new Error("disk full");
    };
    const r = await box.send("addCar", addBiz);
    assert.equal(r.status, 500);
    assert.equal(r.body.code, defaultReturnCodes.internal);
    assert.doesNotMatch(r.body.msg, /disk full/, "internals stay in the log");
    box.ports.vehicles.put = original;
    assertOk(await box.send("addCar", addBiz));
  }));

test("the key never reaches the log, and every rejection is counted by reason", () =>
  withBox(async (box) => {
    await box.send("addCar", addBiz, { key: "00000000000000000000000000000000" });
    await box.send("nope", addBiz);
    await box.post("{");
    assertOk(await box.send("queryFreeSpace", P));
    assert.deepEqual(box.handler.stats(), {
      accepted: 1,
      rejected: { badSign: 1, unknownService: 1, badJson: 1 },
      overLengthWarnings: 0,
      replayCache: { entries: 2, evictions: 0 },
    });
    const text = box.logLines.join("");
    assert.ok(!text.includes(demoCredentials.key));
  }));

test("replay: the same signed request again is refused with its own code, once per window, on every transport", () =>
  withBox(async (box) => {
    const signed = encodeEnvelope({ pid: demoCredentials.pid, key: demoCredentials.key, serviceName: "addCar", timestamp: String(nowMs / 1000), biz: addBiz }).bodyText;
    assertOk(await box.post(signed));
    const vehicles = box.ports.snapshot();
    await rejects(box, () => box.post(signed), 200, defaultReturnCodes.replay, /already received/, "replay");
    // The MQTT transport hands its bodies to the same handler: the same cache.
    const overMqtt = await box.handler.handle(signed, { transport: "mqtt" });
    assert.equal(overMqtt.body.code, defaultReturnCodes.replay);
    assert.deepEqual(box.ports.snapshot(), vehicles, "no repeat reached a handler");
    // The same content signed afresh is a new request: the handler answers it (a duplicate car).
    const again = await box.send("addCar", addBiz);
    assert.equal(again.body.code, defaultReturnCodes.conflict, JSON.stringify(again.body));
    // Once the window has passed, the entry is gone and the timestamp check refuses the body.
    box.clock.jump(301_000);
    const late = await box.post(signed);
    assert.equal(late.body.code, defaultReturnCodes.staleTimestamp);
    // The next verified request sweeps what has left the window: only itself remains.
    assertOk(await box.send("queryFreeSpace", P));
    const stats = box.handler.stats();
    assert.equal(stats.rejected.replay, 2);
    assert.deepEqual(stats.replayCache, { entries: 1, evictions: 0 });
  }));

test("replay: a renamed return code applies, and a body that is not valid JSON never enters the cache", () =>
  withBox(
    async (box) => {
      const signed = encodeEnvelope({ pid: demoCredentials.pid, key: demoCredentials.key, serviceName: "queryFreeSpace", timestamp: String(nowMs / 1000), biz: P }).bodyText;
      assertOk(await box.post(signed));
      assert.equal((await box.post(signed)).body.code, 4999);
      const badSign = signed.replace(/"sign":"[0-9A-F]/, '"sign":"Z');
      assert.equal((await box.post(badSign)).body.code, defaultReturnCodes.badSign);
      assert.equal((await box.post(badSign)).body.code, defaultReturnCodes.badSign, "an unverified request is not remembered");
      assert.equal(box.handler.stats().replayCache.entries, 1);
    },
    { platform: { server: { returnCodes: { replay: 4999 } } } },
  ));

test("section-4 bodies nested too deep are refused as badJson before parsing, also inside a string-form bizContent", () =>
  withBox(async (box) => {
    await rejects(box, () => box.post(`{"pid":"P100001","bizContent":${"[".repeat(20_000)}`), 400, defaultReturnCodes.badJson, /nested deeper than 32/, "badJson");
    const inner = JSON.stringify(`${"[".repeat(5000)}${"]".repeat(5000)}`);
    await rejects(
      box,
      () =>
        box.handler
          .handle(`{"pid":"P100001","serviceName":"addCar","timestamp":"${nowMs / 1000}","bizContent":${inner},"sign":"X"}`)
          .then((r) => ({ status: r.status, body: r.body })),
      200,
      defaultReturnCodes.badEnvelope,
      /nested deeper than 32/,
      "badEnvelope",
    );
  }));

test("values over their declared length are accepted with a warning", () =>
  withBox(async (box) => {
    assertOk(await box.send("remoteDev", { channelid: "2", operator: "gate-admin", ...P, plateId: "EX2023111422132000100001x", type: 0 }));
    assert.equal(box.handler.stats().overLengthWarnings, 1);
    assert.ok(box.logLines.some((l) => /plateId has 25 characters/.test(l)));
  }));

test("renamed service names and return codes apply", () =>
  withBox(
    async (box) => {
      assertOk(await box.send("payResultNotify", { ...P, recordNo: "", plateNum: "粤B1", orderNo: "O1", payType: 1, payFee: 1, payTime: "2024-01-15 09:00:00", payScene: 0 }));
      const r = await box.send("payNotify", P);
      assert.equal(r.body.code, 1005);
    },
    { platform: { server: { serviceNames: { payNotify: "payResultNotify" }, returnCodes: { unknownService: 1005 } } } },
  ));
