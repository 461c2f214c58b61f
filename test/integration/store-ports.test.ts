import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cp, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { FakeClock } from "../helpers/fake-clock.js";
import { silentLogger } from "../../src/kernel/log.js";
import { createStoreLotPorts } from "../../src/app/store-ports.js";
import { HttpServer } from "../../src/api/http-server.js";
import { defaultReturnCodes, platformConfigSchema, type PlatformConfigInput, type ReturnCodeName } from "../../src/platform/config.js";
import { demoCredentials, startEmulator, type BoxCallOptions, type Emulator } from "../../src/platform/emulator/emulator.js";
import { createMemoryLotPorts } from "../../src/platform/memory-ports.js";
import type { LanePort, LotPorts } from "../../src/platform/ports.js";
import { createOpenInterfaceHandler, registerPlatformRoute, section4Services } from "../../src/platform/server.js";
import { LotStore } from "../../src/store/lot-store.js";
import { freshDir } from "../helpers/store-fixtures.js";
import { emptyGroup, group, monthly, nowMs, stay, storedValue, t, zone } from "../helpers/section4-fixtures.js";

/*
 * The section-4 handler scenarios of the platform tests, run twice: against the in-memory
 * ports (the reference) and against the store-backed ports on a LotStore in a fresh temp dir.
 * Both boxes get the same signed requests from the emulator (callBox, over loopback HTTP);
 * the answers, the lists and the lane calls must match. On the store box, after every
 * accepted change: a copy of the directory taken at once (a crash image) opens with the
 * change, and the store is stopped and a new LotStore is started on the same directory
 * before the next request. Refused requests and queries leave the directory byte for byte.
 */

const P = { parkCode: "TEST/1P1" };

const lanes = [
  { id: "in1", channelId: "1", direction: "in" as const },
  { id: "out1", channelId: "2", direction: "out" as const },
];

const mutating = new Map(section4Services.map((s) => [s.id as string, s.mutates]));

interface Lists {
  vehicles: unknown[];
  blacklist: unknown[];
  carGroups: unknown[];
  coupons: unknown[];
  inPark: unknown[];
  payments: unknown[];
}

async function listsOf(ports: LotPorts): Promise<Lists> {
  return {
    vehicles: await ports.vehicles.list(),
    blacklist: await ports.blacklist.list(),
    carGroups: await ports.carGroups.list(),
    coupons: await ports.coupons.list(),
    inPark: await ports.inPark.list(),
    payments: await ports.payments.list(),
  };
}

/** Every file under `dir` with a hash of its bytes: "changes nothing on disk" compares these. */
async function diskState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[path.slice(dir.length)] = createHash("sha256")
      .update(await readFile(path))
      .digest("hex");
  }
  return out;
}

interface Answer {
  status: number;
  code: number;
  msg: string;
  data?: any;
}

interface Box {
  readonly kind: "memory" | "store";
  /** Requests and answers, for comparing the two boxes. */
  readonly transcript: string[];
  readonly laneCalls: string[];
  call(service: string, biz: Record<string, unknown>, options?: BoxCallOptions): Promise<Answer>;
  /** Asserts an accepted answer; returns its data. */
  ok(service: string, biz: Record<string, unknown>): Promise<any>;
  refused(service: string, biz: Record<string, unknown>, code: ReturnCodeName, msg?: RegExp): Promise<void>;
  lists(): Promise<Lists>;
}

interface StoreBox extends Box {
  readonly store: LotStore;
  readonly dir: string;
  /** Accepted requests that changed a list, each checked against a crash image and a restart. */
  readonly checkedChanges: number;
}

interface BoxOptions {
  platform?: Partial<PlatformConfigInput>;
}

const clock = new FakeClock(nowMs);
let emulator: Emulator;

function recordingLane(calls: string[], inParkCount: () => number): LanePort {
  const unavailable = { ok: false as const, reason: "unavailable" as const, msg: "lane control is not connected" };
  return {
    feeQuery: async () => unavailable,
    unlicensedEntry: async () => unavailable,
    remoteControl: async () => unavailable,
    freeSpaces: async () => ({ total: 50, free: 50 - inParkCount() }),
    paymentNotified: async (p) => {
      calls.push(`paymentNotified ${JSON.stringify(p)}`);
    },
  };
}

async function serve(ports: LotPorts, options: BoxOptions): Promise<{ url: string; stop: () => Promise<void> }> {
  const log = silentLogger();
  const platform = platformConfigSchema.parse({ baseUrl: "http://127.0.0.1:9/", pid: demoCredentials.pid, key: demoCredentials.key, ...options.platform });
  const handler = createOpenInterfaceHandler({ config: { platform, lot: { parkCode: P.parkCode, timeZone: zone, totalSpaces: 50 }, lanes }, ports, clock, log });
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: "test-token-0123456789", openReads: "loopback" }, log);
  registerPlatformRoute(http, handler);
  await http.start();
  return { url: `http://127.0.0.1:${http.address().port}/platform`, stop: () => http.stop() };
}

function makeBox(kind: "memory" | "store", url: string, lists: () => Promise<Lists>, laneCalls: string[], afterAnswer: (service: string, answer: Answer) => Promise<void>): Box {
  const transcript: string[] = [];
  const box: Box = {
    kind,
    transcript,
    laneCalls,
    async call(service, biz, options) {
      const res = await emulator.callBox(url, service, biz, options);
      const body = res.body as { code: number; msg: string; data?: unknown };
      const answer: Answer = { status: res.status, code: body.code, msg: body.msg, ...(body.data !== undefined ? { data: body.data } : {}) };
      transcript.push(JSON.stringify({ service, biz, answer }));
      await afterAnswer(service, answer);
      return answer;
    },
    async ok(service, biz) {
      const r = await box.call(service, biz);
      assert.equal(r.code, 200, `${kind} ${service}: ${JSON.stringify(r)}`);
      return r.data;
    },
    async refused(service, biz, code, msg) {
      const r = await box.call(service, biz);
      assert.equal(r.code, defaultReturnCodes[code], `${kind} ${service}: ${JSON.stringify(r)}`);
      if (msg) assert.match(r.msg, msg);
    },
    lists,
  };
  return box;
}

async function withMemoryBox(options: BoxOptions, fn: (box: Box) => Promise<void>): Promise<Lists> {
  const laneCalls: string[] = [];
  const ports = createMemoryLotPorts({ seed: { vehicles: [monthly, storedValue], carGroups: [group, emptyGroup], inPark: [stay] } });
  const lotPorts: LotPorts = { ...ports, lane: recordingLane(laneCalls, () => ports.inPark.size()) };
  const server = await serve(lotPorts, options);
  const box = makeBox(
    "memory",
    server.url,
    () => listsOf(lotPorts),
    laneCalls,
    async () => undefined,
  );
  try {
    await fn(box);
    return await box.lists();
  } finally {
    await server.stop();
  }
}

/** Opens a LotStore on `dir`, reads its lists through new store ports, and stops it. */
async function listsOnDisk(dir: string): Promise<Lists> {
  const store = new LotStore({ dir, clock, pruneJob: false });
  await store.start();
  try {
    return await listsOf(
      createStoreLotPorts(
        store,
        recordingLane([], () => 0),
        { clock, log: silentLogger(), timeZone: zone },
      ),
    );
  } finally {
    await store.stop();
  }
}

async function withStoreBox(options: BoxOptions, fn: (box: StoreBox) => Promise<void>): Promise<{ lists: Lists; restarted: Lists }> {
  const { dir, cleanup } = await freshDir("lk-store-ports-");
  const laneCalls: string[] = [];
  let store = new LotStore({ dir, clock, pruneJob: false });
  await store.start();
  const lane = recordingLane(laneCalls, () => store.inParkCount());
  const portsOf = (s: LotStore): LotPorts => createStoreLotPorts(s, lane, { clock, log: silentLogger(), timeZone: zone });
  let current = portsOf(store);
  // The handler keeps this object; after a restart it reaches the new store's ports.
  const ports: LotPorts = {
    get vehicles() {
      return current.vehicles;
    },
    get blacklist() {
      return current.blacklist;
    },
    get carGroups() {
      return current.carGroups;
    },
    get coupons() {
      return current.coupons;
    },
    get inPark() {
      return current.inPark;
    },
    get payments() {
      return current.payments;
    },
    lane,
  };
  for (const v of [monthly, storedValue]) await ports.vehicles.put(v);
  for (const g of [group, emptyGroup]) await ports.carGroups.put(g);
  await ports.inPark.put(stay);

  const server = await serve(ports, options);
  let checkedChanges = 0;
  let before = await diskState(dir);
  let listsBefore = await listsOf(current);
  const afterAnswer = async (service: string, answer: Answer): Promise<void> => {
    const after = await diskState(dir);
    const live = await listsOf(current);
    if (answer.code !== 200 || mutating.get(service) !== true) {
      assert.deepEqual(after, before, `${service} answered ${answer.code} and must leave the store's files as they were`);
      assert.deepEqual(live, listsBefore);
      return;
    }
    if (isDeepStrictEqual(live, listsBefore)) {
      // An accepted repeat (same orderNo, couponNo, a freeze of a frozen car): no write at all.
      assert.deepEqual(after, before, `${service} changed no list and must not write`);
      return;
    }
    // Crash image: the directory as it is the moment the answer left, opened elsewhere.
    const image = await freshDir("lk-store-ports-image-");
    try {
      await cp(dir, image.dir, { recursive: true });
      assert.deepEqual(await listsOnDisk(image.dir), live, `${service}: the change is on disk when the platform is answered`);
    } finally {
      await image.cleanup();
    }
    // Restart on the same directory; the scenario goes on against the reloaded store.
    await store.stop();
    store = new LotStore({ dir, clock, pruneJob: false });
    await store.start();
    // start() rewrites a replayed journal as a snapshot in the background: let it settle, so
    // the next request's "nothing changed on disk" compares against a quiet directory.
    await store.compact();
    current = portsOf(store);
    assert.deepEqual(await listsOf(current), live, `${service}: the change is there after a restart`);
    checkedChanges++;
    before = await diskState(dir);
    listsBefore = live;
  };
  const base = makeBox("store", server.url, () => listsOf(current), laneCalls, afterAnswer);
  // Getters (not Object.assign, which would copy today's values): the store changes at each restart.
  const box = Object.defineProperties(base, {
    store: { get: () => store },
    dir: { value: dir },
    checkedChanges: { get: () => checkedChanges },
  }) as StoreBox;
  try {
    await fn(box);
    const lists = await box.lists();
    await store.stop();
    return { lists, restarted: await listsOnDisk(dir) };
  } finally {
    await server.stop();
    await store.stop();
    await cleanup();
  }
}

/** Generated uuids differ between the boxes: number them by first appearance. */
function normaliser(): (text: string) => string {
  const seen = new Map<string, string>();
  return (text) =>
    text.replace(/\b[0-9A-F]{32}\b/g, (u) => {
      if (!seen.has(u)) seen.set(u, `UUID${seen.size + 1}`);
      return seen.get(u)!;
    });
}

/** JSON with every object's keys sorted: the memory and the store box may build a record's fields in another order. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * A stay's coupons and prepayments are the store's copies of the coupon and payment lists
 * (compared there); the memory lists keep no such copies.
 */
function withoutCopies(name: string, item: unknown): unknown {
  if (name !== "inPark") return item;
  const { coupons: _coupons, prepayments: _prepayments, ...stay } = item as Record<string, unknown>;
  return stay;
}

function normalisedLists(norm: (text: string) => string, lists: Lists): Record<string, string[]> {
  return Object.fromEntries(Object.entries(lists).map(([name, items]) => [name, (items as unknown[]).map((i) => norm(sortedJson(withoutCopies(name, i)))).sort()]));
}

interface Scenario {
  /** Runs on both boxes; ids from earlier answers come from the same box. */
  run(box: Box): Promise<void>;
  /** Extra checks of the store box (its records as stored). */
  store?(box: StoreBox): Promise<void>;
  options?: BoxOptions;
  /** Requests of the scenario that change a list (each checked by crash image and restart). */
  changes: number;
}

function scenario(name: string, s: Scenario): void {
  test(name, async () => {
    const memory = { transcript: [] as string[], laneCalls: [] as string[] };
    const memoryLists = await withMemoryBox(s.options ?? {}, async (box) => {
      await s.run(box);
      memory.transcript.push(...box.transcript);
      memory.laneCalls.push(...box.laneCalls);
    });
    let storeBox: StoreBox | undefined;
    const stored = await withStoreBox(s.options ?? {}, async (box) => {
      storeBox = box;
      await s.run(box);
      await s.store?.(box);
    });
    // One normaliser per box, fed in the same order, so UUIDn means the n-th uuid each box saw.
    const normMemory = normaliser();
    const normStore = normaliser();
    assert.deepEqual(storeBox!.transcript.map(normStore), memory.transcript.map(normMemory), "the store box answers like the memory box");
    assert.deepEqual(storeBox!.laneCalls.map(normStore), memory.laneCalls.map(normMemory), "the lane hears the same");
    assert.deepEqual(normalisedLists(normStore, stored.lists), normalisedLists(normMemory, memoryLists), "the lists match the memory box");
    assert.deepEqual(stored.restarted, stored.lists, "a restart finds every list as it was");
    assert.equal(storeBox!.checkedChanges, s.changes, "accepted changes, each checked on disk");
  });
}

before(async () => {
  emulator = await startEmulator({ clock });
});
after(async () => {
  await emulator.stop();
});

// ---- vehicles (4.4, 4.5, 4.11) ---------------------------------------------------------

const addBiz = {
  carMMoney: 200.5,
  carNum: "粤B54321",
  carSpaceNum: "B2-018",
  carTypeCode: 81,
  id: 0,
  owner: "李四",
  parkCode: P.parkCode,
  state: 1,
  tel: "13900000000",
  timeEnd: "2024-11-30 23:59:59",
  timeStart: "2023-12-01 00:00:00",
};

scenario("addCar, editCar, plate change and deleteCar keep every field through the store", {
  changes: 4,
  async run(b) {
    const added = await b.ok("addCar", { ...addBiz, remark: "r".repeat(300), owner: "王".repeat(70), carGroupUuid: group.carGroupUuid, virtualCardNum: "V-1" });
    assert.equal(added.id, 6);
    await b.refused("addCar", addBiz, "conflict", /already registered/);
    await b.ok("editCar", { ...addBiz, uuId: added.uuId, owner: "赵六", state: 0, carMMoney: 220, balance: 12.34, remark: "edited", carGroupUuid: "" });
    await b.refused("editCar", { ...addBiz, uuId: added.uuId, carNum: "粤B99999" }, "conflict", /changeCarNum/);
    await b.ok("changeCarNum", { ...P, uuId: added.uuId, carNum: "粤B54321", newCarNum: "粤B54322" });
    await b.refused("changeCarNum", { ...P, uuId: added.uuId, newCarNum: "粤B77777" }, "conflict", /already registered/);
    const page = await b.ok("queryCarPage", { ...P, carNum: "54322", page: 1, pageSize: 10 });
    assert.equal(page.items[0].carMMoney, 220);
    assert.equal(page.items[0].balance, 12.34);
    assert.equal(page.items[0].state, 0);
    await b.ok("deleteCar", { ...P, uuId: storedValue.uuId });
    await b.refused("deleteCar", { ...P, uuId: storedValue.uuId }, "notFound", /no vehicle/);
  },
  async store(b) {
    const v = b.store.listVehicles({ carNum: "54322" }).items[0]!;
    assert.equal(v.carMMoneyFen, 22000);
    assert.equal(v.balanceFen, 1234);
    assert.equal(v.state, 0);
    assert.equal(v.timeStartMs, t("2023-12-01 00:00:00"));
    assert.equal(v.owner, "赵六");
    assert.equal(b.store.getVehicle({ uuId: storedValue.uuId }), undefined);
  },
});

scenario("text longer than the platform declares is answered whole after restarts", {
  changes: 1,
  async run(b) {
    const added = await b.ok("addCar", { ...addBiz, remark: "备注".repeat(150), owner: "王".repeat(70) });
    const page = await b.ok("queryCarPage", { ...P, carNum: "54321", page: 1, pageSize: 10 });
    assert.equal(page.items[0].uuId, added.uuId);
    assert.equal(page.items[0].remark, "备注".repeat(150));
    assert.equal(page.items[0].owner, "王".repeat(70));
    // Past what the box keeps, the text is refused by name, never cut.
    await b.refused("addCar", { ...addBiz, carNum: "粤B66666", remark: "备".repeat(1025) }, "badBizContent", /remark/);
  },
  async store(b) {
    const v = b.store.listVehicles({ carNum: "54321" }).items[0]!;
    assert.deepEqual([v.owner, v.remark, v.extra], ["王".repeat(70), "备注".repeat(150), undefined], "kept whole, as fields");
  },
});

scenario("recharge, refund, freeze and unfreeze: once per orderNo, durable", {
  changes: 5,
  async run(b) {
    const recharge = { ...P, uuId: storedValue.uuId, orderNo: "TC-R-1", amount: 100, balance: 150, payType: 2, payTime: "2024-01-15 09:58:00" };
    assert.equal((await b.ok("rechargeCar", recharge)).balance, 150);
    await b.ok("rechargeCar", recharge);
    await b.refused("rechargeCar", { ...recharge, amount: 1 }, "conflict", /other content/);
    await b.refused("rechargeCar", { ...P, uuId: storedValue.uuId, orderNo: "TC-R-2" }, "badBizContent", /timeEnd or balance/);
    const refund = await b.ok("refundCar", { ...P, uuId: monthly.uuId, orderNo: "TC-F-1", refund: 100.25, timeEnd: "2024-06-30 23:59:59" });
    assert.equal(refund.refund, 100.25);
    await b.ok("refundCar", { ...P, uuId: monthly.uuId, orderNo: "TC-F-1", refund: 100.25, timeEnd: "2024-06-30 23:59:59" });
    assert.equal((await b.ok("freezeCar", { ...P, id: 5, operator: "ops" })).frozen, 1);
    await b.ok("freezeCar", { ...P, id: 5 });
    await b.ok("unfreezeCar", { ...P, carNum: "粤B12345" });
    const rent = await b.ok("monthlyPayNotify", {
      ...P,
      orderNo: "TC-M-1",
      pcardUuid: monthly.uuId,
      plateNum: "粤B12345",
      payType: 2,
      payFee: 20050,
      payTime: "2024-01-15 09:00:00",
      timeEnd: "2024-12-31 23:59:59",
    });
    assert.equal(rent.timeEnd, "2024-12-31 23:59:59");
  },
  async store(b) {
    const v = b.store.getVehicle({ uuId: storedValue.uuId })!;
    assert.equal(v.balanceFen, 15000);
    const m = b.store.getVehicle({ uuId: monthly.uuId })!;
    assert.equal(m.refundFen, 10025);
    assert.equal(m.timeEndMs, t("2024-12-31 23:59:59"));
    assert.equal(m.frozen, false);
    assert.deepEqual(
      b.store.payments.values().map((p) => [p.orderNo, p.amountFen, p.kind]),
      [
        ["TC-R-1", 10000, "fixed-car"],
        ["TC-F-1", 10025, "refund"],
        ["TC-M-1", 20050, "fixed-car"],
      ],
    );
  },
});

scenario("queryCarPage pages 25 added vehicles; queryMonthlyRent finds monthly and stored-value cars", {
  changes: 25,
  async run(b) {
    for (let i = 0; i < 25; i++) {
      await b.ok("addCar", { ...addBiz, carNum: `粤C${String(10000 + i)}`, carTypeCode: i % 2 === 0 ? 81 : 71, balance: i });
    }
    const first = await b.ok("queryCarPage", { ...P, page: 1, pageSize: 10 });
    assert.deepEqual([first.totalItems, first.totalPages, first.items.length], [27, 3, 10]);
    const last = await b.ok("queryCarPage", { ...P, page: 3, pageSize: 10 });
    assert.equal(last.items.length, 7);
    assert.deepEqual(
      last.items.map((i: { id: number }) => i.id),
      [24, 25, 26, 27, 28, 29, 30],
    );
    const byType = await b.ok("queryCarPage", { ...P, page: 1, pageSize: 100, carTypeCode: 71 });
    assert.equal(byType.totalItems, 13);
    const rent = await b.ok("queryMonthlyRent", { ...P, plateNums: "粤B12345,粤C10001,粤B77777,粤B00000", queryType: 2, recharge: 1 });
    assert.deepEqual(rent.map((r: { plateNum: string }) => r.plateNum).sort(), ["粤B12345", "粤B77777", "粤C10001"]);
  },
});

scenario("clearCar: refused while platform.server.allowClearAllVehicles is off; nothing changes", {
  changes: 0,
  async run(b) {
    await b.refused("clearCar", { ...P, operator: "ops" }, "forbidden", /disabled/);
  },
});

scenario("clearCar with platform.server.allowClearAllVehicles on clears every vehicle durably", {
  changes: 1,
  options: { platform: { server: { allowClearAllVehicles: true } } },
  async run(b) {
    assert.deepEqual(await b.ok("clearCar", { ...P, operator: "ops" }), { deleted: 2 });
    assert.equal((await b.ok("queryCarPage", { ...P, page: 1, pageSize: 10 })).totalItems, 0);
  },
  async store(b) {
    assert.equal(b.store.status().vehicles, 0);
  },
});

// ---- blacklist (4.9) and car groups (4.10) ----------------------------------------------

scenario("blacklist add, update in place, query and delete", {
  changes: 6,
  async run(b) {
    const first = await b.ok("addBlacklist", { ...P, carNum: "粤B44444", duration: "2024-06-30 23:59:59", operator: "ops", remark: "unpaid" });
    assert.equal((await b.ok("addBlacklist", { ...P, carNum: "粤B44444", denyOut: 0 })).uuid, first.uuid);
    await b.ok("addBlacklist", { ...P, uuid: "B0000000000000000000000000000009", carNum: "粤B55555", type: 1, inNotify: 1 });
    await b.refused("addBlacklist", { ...P, carNum: "粤B1", type: 3 }, "badBizContent", /type 3/);
    const all = await b.ok("queryBlacklist", P);
    assert.equal(all.totalItems, 2);
    const one = await b.ok("queryBlacklist", { ...P, carNum: "44444", page: 1, pageSize: 10 });
    assert.deepEqual([one.items[0].denyIn, one.items[0].denyOut, one.items[0].duration], [1, 0, ""]);
    await b.refused("deleteBlacklist", { ...P, uuid: "NOPE" }, "notFound", /no such/);
    assert.deepEqual(await b.ok("deleteBlacklist", { ...P, uuid: first.uuid }), { deleted: 1 });
    await b.ok("addBlacklist", { ...P, carNum: "粤B66666" });
    assert.deepEqual(await b.ok("deleteBlacklist", { ...P, carNum: "粤B66666" }), { deleted: 1 });
  },
  async store(b) {
    assert.deepEqual(
      b.store.listBlacklist().items.map((e) => [e.uuid, e.carNum, e.type, e.inNotify]),
      [["B0000000000000000000000000000009", "粤B55555", 1, true]],
    );
    assert.equal(b.store.blacklistFor("粤B55555").length, 1, "the lane's plate lookup sees it");
  },
});

scenario("car groups: add, edit, recharge once, delete only when empty, paged query", {
  changes: 4,
  async run(b) {
    const added = await b.ok("addCarGroup", { ...P, name: "Visitors", spaceCount: 5, carMMoney: 150.5, timeEnd: "2024-12-31 23:59:59", state: 0 });
    assert.equal(added.carGroupID, 5);
    await b.refused("addCarGroup", { ...P, name: "Visitors", spaceCount: 1 }, "conflict", /exists/);
    const edited = await b.ok("editCarGroup", { ...P, carGroupID: 3, spaceCount: 4, remark: "bigger" });
    assert.deepEqual([edited.spaceCount, edited.name, edited.carCount], [4, "Tower B", 1]);
    await b.refused("editCarGroup", { ...P, carGroupUuid: "NOPE", spaceCount: 4 }, "notFound", /no car group/);
    const recharge = { ...P, carGroupUuid: group.carGroupUuid, orderNo: "TC-G-1", amount: 400, timeEnd: "2025-12-31 23:59:59", balance: 9.5 };
    assert.equal((await b.ok("rechargeCarGroup", recharge)).timeEnd, "2025-12-31 23:59:59");
    await b.ok("rechargeCarGroup", recharge);
    await b.refused("deleteCarGroup", { ...P, carGroupUuid: group.carGroupUuid }, "conflict", /still has 1 vehicle/);
    await b.ok("deleteCarGroup", { ...P, carGroupUuid: emptyGroup.carGroupUuid });
    const page = await b.ok("queryCarGroupPage", { ...P, page: 1, pageSize: 1 });
    assert.deepEqual([page.totalItems, page.totalPages], [2, 2]);
    const visitors = await b.ok("queryCarGroupPage", { ...P, name: "Visitors" });
    assert.deepEqual(visitors.items[0], {
      carGroupID: 5,
      carGroupUuid: added.carGroupUuid,
      name: "Visitors",
      spaceCount: 5,
      carTypeCode: 81,
      timeStart: "",
      timeEnd: "2024-12-31 23:59:59",
      carMMoney: 150.5,
      balance: 0,
      remark: "",
      state: 0,
      carCount: 0,
    });
  },
  async store(b) {
    const g = b.store.getCarGroup({ carGroupUuid: group.carGroupUuid })!;
    assert.equal(g.spaces, 4);
    assert.equal(g.remark, "bigger");
    assert.equal(g.balanceFen, 950);
    assert.equal(g.timeEndMs, t("2025-12-31 23:59:59"));
    assert.equal(b.store.getCarGroup({ carGroupID: 4 }), undefined);
  },
});

// ---- stays: coupons (4.7), payments (4.2), in-park records (4.6, 4.13) -------------------

scenario("issueCoupon: on the stay's in-park record, idempotent on couponNo", {
  changes: 1,
  async run(b) {
    const biz = { ...P, couponNo: "CP1", plateNum: "粤B88888", couponType: 1, value: 300, expireTime: "2024-01-15 23:59:59", operator: "shop-3" };
    assert.deepEqual(await b.ok("issueCoupon", biz), { couponNo: "CP1", recordNo: stay.recordNo });
    await b.ok("issueCoupon", biz);
    await b.refused("issueCoupon", { ...biz, value: 200 }, "conflict", /other content/);
    await b.refused("issueCoupon", { ...biz, couponNo: "CP2" }, "conflict", /already holds/);
    await b.refused("issueCoupon", { ...biz, couponNo: "CP3", plateNum: "粤B00000" }, "notFound", /no stay/);
  },
  async store(b) {
    const coupons = b.store.getInPark(stay.recordNo)!.coupons;
    assert.deepEqual(coupons, [
      {
        couponId: "CP1",
        kind: "amount",
        value: 300,
        grantedAtMs: nowMs,
        source: "platform",
        expiresAtMs: t("2024-01-15 23:59:59"),
        operator: "shop-3",
      },
    ]);
  },
});

scenario("payNotify: stored once, counted as the stay's prepayment, repeats answered 200", {
  changes: 2,
  async run(b) {
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
    await b.ok("payNotify", biz);
    await b.ok("payNotify", biz);
    await b.refused("payNotify", { ...biz, payFee: 999 }, "conflict", /already recorded/);
    // Money for a stay that is not here is kept anyway (the exit flow matches it by plate).
    await b.ok("payNotify", { ...biz, recordNo: "in1_gone", orderNo: "TC-2", plateNum: "粤B00001", payScene: 1, outChannelid: "2", plateId: "EX1" });
  },
  async store(b) {
    assert.deepEqual(b.store.getInPark(stay.recordNo)!.prepayments, [{ orderNo: "TC2024011510000000001", amountFen: 400, payAtMs: t("2024-01-15 09:59:00"), payType: "1" }]);
    const other = b.store.payments.get("TC-2")!;
    assert.deepEqual(
      [other.recordNo, other.plate, other.kind, other.targetUuid, other.payScene, other.channelId, other.plateId, other.extra],
      ["in1_gone", "粤B00001", "stay", undefined, 1, "2", "EX1", undefined],
    );
  },
});

scenario("in-park records: add (4.13.4), query (4.6, 4.13.1), edit (4.13.2), delete (4.13.3)", {
  changes: 4,
  async run(b) {
    const added = await b.ok("addParkRecord", { ...P, plateNum: "粤B66666", enterTime: "2024-01-15 09:00:00", inChannelid: "1", operator: "ops" });
    assert.equal(added.recordNo, "in1_20240115090000000");
    await b.refused("addParkRecord", { ...P, plateNum: "粤B88888", enterTime: "2024-01-15 09:00:00" }, "conflict", /already in the park/);
    const cloud = await b.ok("addParkRecord", { ...P, plateNum: "粤B67890", plateColor: 4, carType: 8, carSubType: 81, enterTime: "2024-01-15 09:30:00" });
    assert.equal(cloud.recordNo, "cloud_20240115093000000");
    const inside = await b.ok("queryInPark", { ...P, plateNum: "粤B66666" });
    assert.deepEqual([inside.inPark, inside.enterTime, inside.parkedSeconds, inside.inChannelid, inside.source], [1, "2024-01-15 09:00:00", 3600, "1", "platform"]);
    const late = await b.ok("queryParkRecordPage", { ...P, startTime: "2024-01-15 08:30:00", page: 1, pageSize: 10 });
    assert.deepEqual(
      late.items.map((i: { plateNum: string }) => i.plateNum),
      ["粤B66666", "粤B67890"],
    );
    await b.ok("editParkRecord", { ...P, recordNo: stay.recordNo, plateNum: "粤B88889", plateColor: 1, operator: "ops" });
    await b.refused("editParkRecord", { ...P, recordNo: stay.recordNo, enterTime: "2024-01-16 00:00:00" }, "badBizContent", /future/);
    await b.ok("deleteParkRecord", { ...P, recordNo: added.recordNo, operator: "ops" });
    await b.refused("deleteParkRecord", { ...P, recordNo: added.recordNo }, "notFound", /no in-park record/);
    assert.deepEqual(await b.ok("queryFreeSpace", P), { totalSpaces: 50, freeSpaces: 48 });
  },
  async store(b) {
    const edited = b.store.getInPark(stay.recordNo)!;
    assert.deepEqual([edited.plate, edited.plateColor, edited.laneId, edited.source, edited.entryReport], ["粤B88889", 1, "in1", "camera", "delivered"]);
    assert.deepEqual([edited.inChannelId, edited.operator, edited.updatedAtMs, edited.extra], [undefined, "ops", nowMs, undefined]);
    const cloud = b.store.getInPark("cloud_20240115093000000")!;
    assert.deepEqual([cloud.laneId, cloud.source, cloud.entryReport, cloud.carType, cloud.plateColor], ["cloud", "platform", "none", 8, 4]);
    const ended = await b.store.recentStays("粤B66666");
    assert.equal(ended.length, 1, "the deleted stay is in history");
    assert.equal(ended[0]!.exit.reason, "platform-delete");
    assert.equal(ended[0]!.laneId, "in1");
  },
});

// ---- what only the store refuses, and rejected requests -----------------------------------

test("a plate the store's normalisation finds registered is refused as conflict; nothing on disk changes", async () => {
  const result = await withStoreBox({}, async (b) => {
    const before = await diskState(b.dir);
    // The handler compares plates trimmed; the store also ignores inner spaces (lane lookups).
    await b.refused("addCar", { ...addBiz, carNum: "粤B 12345" }, "conflict", /already registered/);
    assert.deepEqual(await diskState(b.dir), before);
    assert.equal(b.checkedChanges, 0);
  });
  assert.deepEqual(result.restarted, result.lists);
});

test("rejected requests (bad sign, stale timestamp, wrong pid, bad parkCode) change nothing on disk", async () => {
  const result = await withStoreBox({ platform: { server: { allowClearAllVehicles: true } } }, async (b) => {
    const before = await diskState(b.dir);
    const lists = await b.lists();
    const badKey = { key: "00000000000000000000000000000000" };
    const cases: Array<[string, Record<string, unknown>, BoxCallOptions, ReturnCodeName]> = [
      ["addCar", addBiz, badKey, "badSign"],
      ["clearCar", P, badKey, "badSign"],
      ["deleteParkRecord", { ...P, recordNo: stay.recordNo }, badKey, "badSign"],
      ["payNotify", { ...P, recordNo: stay.recordNo, plateNum: "粤B88888", orderNo: "X1", payType: 1, payFee: 1, payTime: "2024-01-15 09:00:00", payScene: 0 }, badKey, "badSign"],
      ["addBlacklist", { ...P, carNum: "粤B44444" }, { timestamp: String(nowMs / 1000 - 400) }, "staleTimestamp"],
      ["deleteCar", { ...P, uuId: monthly.uuId }, { pid: "P999" }, "wrongPid"],
      ["addCarGroup", { ...P, parkCode: "OTHER/1", name: "X", spaceCount: 1 }, {}, "wrongParkCode"],
    ];
    for (const [service, biz, options, code] of cases) {
      const r = await b.call(service, biz, options);
      assert.equal(r.code, defaultReturnCodes[code], `${service}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(await diskState(b.dir), before, "not a byte changed");
    assert.deepEqual(await b.lists(), lists);
    // The same box still takes a good request.
    assert.deepEqual(await b.ok("clearCar", P), { deleted: 2 });
    assert.equal(b.checkedChanges, 1);
  });
  assert.deepEqual(result.restarted.vehicles, []);
});
