import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { demoRaw, tempDir, writeConfigFile } from "../helpers/demo-config.js";
import { startCli, type RunningChild } from "../helpers/child.js";
import { LotHarness, shortTimers, sleep } from "../helpers/lot-harness.js";
import { startEmulator, type Emulator, type ReceivedPush } from "../../src/platform/emulator/emulator.js";

/*
 * The box killed mid-transaction and restarted: a real child process
 * (`lanekeeper run`) on a store dir that survives it, the platform emulator in this process,
 * the car driven through the child's local API (/api/sim/...). After SIGKILL and a restart on
 * the same store: every relay output is off, the stay is still there, and the platform hears
 * every report exactly once.
 */

const TOKEN = "demo-token-change-me-0001";

interface Box {
  running: RunningChild;
  url: string;
}

function childConfig(emulator: Emulator, storeDir: string, mutate?: (raw: Record<string, any>) => void): string {
  const raw = demoRaw() as Record<string, any>;
  shortTimers(raw);
  raw.api.port = 0;
  raw.store.dir = storeDir;
  raw.platform.baseUrl = emulator.url;
  raw.log = { level: "info" };
  // No free time: a car that just came in has something to pay at the exit.
  raw.fees.tariffs.standard.free = { minutes: 0 };
  mutate?.(raw);
  return writeConfigFile(raw);
}

async function boot(configPath: string): Promise<Box> {
  const running = startCli(["run", "--config", configPath]);
  const [, url] = await running.waitFor(/local API on (http:\/\/[^\s]+)/, 20_000);
  return { running, url: url! };
}

async function call(box: Box, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${box.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const payload = await response.json();
  if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(payload)}`);
  return payload;
}

const input = (box: Box, laneId: string, name: string, level: 0 | 1) => call(box, "POST", `/api/sim/inputs/${laneId}/${name}`, { level });
const read = (box: Box, laneId: string, plate: string) => call(box, "POST", `/api/sim/camera/${laneId}`, { plate, confidence: 95 });

async function lane(box: Box, laneId: string): Promise<any> {
  const status = await call(box, "GET", "/api/status");
  return (status.lanes as Array<{ id: string }>).find((l) => l.id === laneId);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function drivePast(box: Box, laneId: string): Promise<void> {
  await until(`${laneId} open`, async () => (await lane(box, laneId)).barrier === "open");
  await input(box, laneId, "loopB", 1);
  await sleep(100);
  await input(box, laneId, "loopA", 0);
  await sleep(100);
  await input(box, laneId, "loopB", 0);
  await until(`${laneId} closed`, async () => (await lane(box, laneId)).barrier === "closed");
}

async function kill(box: Box): Promise<void> {
  box.running.child.kill("SIGKILL");
  const { signal } = await box.running.exited;
  assert.equal(signal, "SIGKILL");
}

async function assertSafeAfterRestart(box: Box): Promise<void> {
  const sim = await call(box, "GET", "/api/sim/outputs");
  for (const [key, level] of Object.entries(sim.outputs as Record<string, number>)) assert.equal(level, 0, `${key} is ${level} after the restart`);
  assert.equal((sim.history as Array<{ level: number }>).filter((h) => h.level === 1).length, 0, "nothing was switched on at start-up");
  for (const laneId of ["in1", "out1"]) assert.equal((await lane(box, laneId)).barrier, "closed");
}

/** A child box on a fresh store and emulator; `restart` SIGKILLs it and boots it again. */
async function withBox(body: (emulator: Emulator, first: Box, restart: (box: Box) => Promise<Box>) => Promise<void>, mutate?: (raw: Record<string, any>) => void): Promise<void> {
  const emulator = await startEmulator();
  const storeDir = tempDir("lk-restart-");
  const configPath = childConfig(emulator, storeDir, mutate);
  let current = await boot(configPath);
  try {
    await body(emulator, current, async (box) => {
      await kill(box);
      current = await boot(configPath);
      return current;
    });
  } finally {
    current.running.child.kill("SIGKILL");
    await current.running.exited;
    await emulator.stop();
    await rm(storeDir, { recursive: true, force: true });
    await rm(dirname(configPath), { recursive: true, force: true });
  }
}

/** A car enters through in1; resolves with its entry report as the platform received it. */
async function driveIn(box: Box, emulator: Emulator, plate: string): Promise<ReceivedPush> {
  await input(box, "in1", "loopA", 1);
  await sleep(80);
  await read(box, "in1", plate);
  await drivePast(box, "in1");
  return emulator.waitFor({ service: "enterNotify", plateNum: plate });
}

/**
 * Every report (entry, exit) reached the platform once. A pre-leave bill may be sent again
 * with the same plateId after a restart (the box asks whether it was paid); that is a
 * question, not a second bill, and is checked where it matters.
 */
function assertEachOnce(emulator: Emulator): void {
  const repeated = emulator.received().filter((p) => p.count > 1 && p.service !== "preLeaveNotify");
  assert.deepEqual(
    repeated.map((p) => p.idempotencyKey),
    [],
    "reports delivered more than once",
  );
  assert.equal(emulator.rejected().length, 0, JSON.stringify(emulator.rejected()));
}

test("killed while a car awaits payment at the exit: after the restart the stay is there, relays are off, the car pays and each report went out once", () =>
  withBox(async (emulator, first, restart) => {
    let box = first;
    const enter = await driveIn(box, emulator, "粤A99001");
    const recordNo = String(enter.biz.recordNo);

    await input(box, "out1", "loopA", 1);
    await sleep(80);
    await read(box, "out1", "粤A99001");
    await until("awaiting payment", async () => (await lane(box, "out1")).phase === "awaitingPayment");
    const pre = await emulator.waitFor({ service: "preLeaveNotify", recordNo });
    box = await restart(box);
    await assertSafeAfterRestart(box);
    // The bill pending at the kill is asked about again, same plateId: still unpaid.
    await until("the pending bill asked about again", async () => emulator.received({ service: "preLeaveNotify", plateId: String(pre.biz.plateId) })[0]!.count === 2);
    const records = await call(box, "GET", `/api/records?plate=${encodeURIComponent("粤A99001")}`);
    assert.equal(records.inPark.length, 1, "the stay is not lost");
    assert.equal(records.inPark[0].recordNo, recordNo);
    assert.equal(records.inPark[0].pendingExit?.plateId, pre.biz.plateId, "the bill that was pending is on record");

    // The car is still there: the lane sees it again, bills it, the attendant takes cash.
    await input(box, "out1", "loopA", 1);
    await sleep(80);
    await read(box, "out1", "粤A99001");
    await until("awaiting payment again", async () => (await lane(box, "out1")).phase === "awaitingPayment");
    await call(box, "POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth", reason: "cash" });
    await drivePast(box, "out1");
    const leave = await emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.equal(leave.biz.payType, 4);
    assert.equal(leave.biz.enterTime, enter.biz.enterTime);
    await sleep(300);
    assert.equal(emulator.received({ service: "enterNotify" }).length, 1);
    assert.equal(emulator.received({ service: "leaveNotify" }).length, 1);
    assertEachOnce(emulator);
  }));

test("killed right after an entry decision, then right after an entry report went out: stays kept, each reported once, relays off, the cars can leave", () =>
  withBox(async (emulator, first, restart) => {
    let box = first;
    await input(box, "in1", "loopA", 1);
    await sleep(80);
    await read(box, "in1", "粤A99002");
    await until("entry decided", async () => ["opening", "open"].includes((await lane(box, "in1")).barrier));
    box = await restart(box);
    await assertSafeAfterRestart(box);
    const records = await call(box, "GET", `/api/records?plate=${encodeURIComponent("粤A99002")}`);
    assert.equal(records.inPark.length, 1, "the stay is not lost");
    const recordNo = records.inPark[0].recordNo as string;
    // It most likely went in: the entry report goes out now, once.
    const enter = await emulator.waitFor({ service: "enterNotify", recordNo });
    assert.equal(enter.biz.plateNum, "粤A99002");

    // A second car passes; the box dies the moment its entry report was delivered.
    const enter3 = await driveIn(box, emulator, "粤A99003");
    box = await restart(box);
    await assertSafeAfterRestart(box);
    const status = await call(box, "GET", "/api/status");
    assert.equal(status.lot.inPark, 2);

    for (const [plate, entered] of [
      ["粤A99002", enter],
      ["粤A99003", enter3],
    ] as const) {
      await input(box, "out1", "loopA", 1);
      await sleep(80);
      await read(box, "out1", plate);
      await until(`${plate} awaiting payment`, async () => (await lane(box, "out1")).phase === "awaitingPayment");
      await call(box, "POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth", reason: "cash" });
      await drivePast(box, "out1");
      const leave = await emulator.waitFor({ service: "leaveNotify", recordNo: String(entered.biz.recordNo) });
      assert.equal(leave.biz.enterTime, entered.biz.enterTime);
    }
    await sleep(300);
    assert.equal(emulator.received({ service: "enterNotify" }).length, 2);
    assert.equal(emulator.received({ service: "leaveNotify" }).length, 2);
    assertEachOnce(emulator);
  }));

test("killed the moment a frictionless exit opened: after the restart the car read again leaves on that payment, no second bill, reported once", () =>
  withBox(async (emulator, first, restart) => {
    let box = first;
    const enter = await driveIn(box, emulator, "粤A99004");
    const recordNo = String(enter.biz.recordNo);

    emulator.setPlate("粤A99004", "frictionless");
    await input(box, "out1", "loopA", 1);
    await sleep(80);
    await read(box, "out1", "粤A99004");
    await until("out1 opening", async () => ["opening", "open"].includes((await lane(box, "out1")).barrier), 5000);
    box = await restart(box);
    const pre = emulator.received({ service: "preLeaveNotify", recordNo });
    assert.equal(pre.length, 1);
    const orderNo = (pre[0]!.answer.data as { orderNo: string }).orderNo;
    await assertSafeAfterRestart(box);
    // Whether the answer reached the disk before the kill or is asked for again, the stay ends
    // up holding the platform's payment.
    await until("the stay holds the payment", async () => {
      const records = await call(box, "GET", `/api/records?plate=${encodeURIComponent("粤A99004")}`);
      return records.inPark[0]?.extra?.settlement?.orderNo === orderNo;
    });
    await input(box, "out1", "loopA", 1);
    await sleep(80);
    await read(box, "out1", "粤A99004");
    await drivePast(box, "out1");
    const leave = await emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.equal(leave.biz.orderNo, orderNo, "reported with the platform's order");
    assert.equal(leave.biz.payType, 1);
    assert.equal(leave.biz.paidFee, pre[0]!.biz.paidFee);
    const plateIds = new Set(emulator.received({ service: "preLeaveNotify", recordNo }).map((p) => p.biz.plateId));
    assert.equal(plateIds.size, 1, "no second bill after the restart");
    await sleep(300);
    assert.equal(emulator.received({ service: "leaveNotify" }).length, 1);
    assertEachOnce(emulator);
  }));

test("killed while a blind-cash exit report waits out its bill's late-answer window: after the restart it goes once (no second payment could be heard)", () =>
  withBox(
    async (emulator, first, restart) => {
      let box = first;
      const enter = await driveIn(box, emulator, "粤A99031");
      const recordNo = String(enter.biz.recordNo);
      emulator.setPlate("粤A99031", "frictionless");
      // The platform takes every bill and never answers: cash is taken blind.
      await emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "hang" } }] });
      await input(box, "out1", "loopA", 1);
      await sleep(80);
      await read(box, "out1", "粤A99031");
      await until("the cash fallback", async () => (await lane(box, "out1")).vehicle?.paymentPath === "cash-fallback");
      const cash = await call(box, "POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth", reason: "cash" });
      assert.match(String(cash.detail), /not reachable/);
      await drivePast(box, "out1");
      await until("the exit report queued", async () =>
        (await call(box, "GET", `/api/outbox?recordNo=${encodeURIComponent(recordNo)}`)).entries.some((e: { kind: string }) => e.kind === "leave"),
      );
      const queued = (await call(box, "GET", `/api/outbox?recordNo=${encodeURIComponent(recordNo)}`)).entries.find((e: { kind: string }) => e.kind === "leave");
      assert.ok(queued.notBeforeMs > Date.now(), "held for the late-answer window");
      assert.equal(emulator.received({ service: "leaveNotify", recordNo }).length, 0);

      box = await restart(box);
      await assertSafeAfterRestart(box);
      const leave = await emulator.waitFor({ service: "leaveNotify", recordNo }, 8000);
      assert.equal(leave.biz.payType, 4);
      assert.equal(leave.biz.doublePaid, undefined, "the box died with the calls: no second payment was heard");
      await sleep(300);
      assert.equal(emulator.received({ service: "leaveNotify" }).length, 1);
      assertEachOnce(emulator);
      assert.equal((await call(box, "GET", `/api/records?plate=${encodeURIComponent("粤A99031")}`)).inPark.length, 0, "the stay is finished");
    },
    (raw) => (raw.platform.deadlines = { ...raw.platform.deadlines, lateAnswerMs: 3000, cashCheckMs: 400, reaskFirstMs: 30_000, reaskMaxMs: 30_000 }),
  ));

test("bills pending at a stop are asked about again at start: paid ones settle (once the platform answers), a car not seen again is reported as left at its bill's time, one read again leaves on it", async () => {
  const HOUR_MS = 3_600_000;
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai" });
  const storeDir = tempDir("lk-restart-");
  // The state a stop leaves between the open on the platform's 200 and the write of that
  // answer: each stay holds its pre-leave bill, nothing says how it was settled.
  const first = await LotHarness.create({ storeDir, emulator });
  const stays = new Map<string, { recordNo: string; plateId: string; atMs: number }>();
  try {
    for (const plate of ["粤A99011", "粤A99012", "粤A99013"]) {
      const stay = await first.park(plate, 3 * HOUR_MS, { entryReport: "delivered" });
      const atMs = Date.now() - 60_000;
      const plateId = `EXRECOVER${plate.slice(-5)}out1`;
      await first.app.store.updateInPark(stay.recordNo, { pendingExit: { laneId: "out1", plateId, atMs, payableFen: 700, discountFen: 0, dueFen: 700 } });
      stays.set(plate, { recordNo: stay.recordNo, plateId, atMs });
    }
  } finally {
    await first.stop({ keepStore: true });
  }
  // 粤A99013 did not pay: the platform answers "awaiting payment" for its bill.
  emulator.setPlate("粤A99011", "frictionless");
  emulator.setPlate("粤A99012", "frictionless");
  await emulator.setFaults({ refuse: true });
  const lot = await LotHarness.create({ storeDir, emulator, mutate: (raw) => (raw.policy.exit = { settledHoldMs: 2500 }) });
  try {
    await sleep(300);
    assert.equal(lot.find("payment-recovered").length, 0, "nothing settles while the platform is unreachable");
    await emulator.clearFaults();
    // Asked again with backoff (1 s after the first try).
    const recovered = await lot.waitForEvent("payment-recovered", { plate: "粤A99011" }, 4000);
    assert.equal(recovered.plateId, stays.get("粤A99011")!.plateId);
    await lot.waitForEvent("payment-recovered", { plate: "粤A99012" }, 4000);
    for (const plate of ["粤A99011", "粤A99012", "粤A99013"]) {
      const asked = lot.emulator.received({ service: "preLeaveNotify", plateId: stays.get(plate)!.plateId });
      assert.equal(asked.length, 1, `${plate}'s bill asked about with its own plateId`);
    }

    // 粤A99012 is still at the exit: read again, it leaves on the recovered payment.
    await lot.drive("out1", "粤A99012");
    assert.equal((await lot.waitForEvent("settled-earlier", { plate: "粤A99012" })).path, "platform");
    const leave12 = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stays.get("粤A99012")!.recordNo });
    assert.equal(leave12.biz.paidFee, 700);
    assert.equal(lot.emulator.received({ service: "preLeaveNotify", plateNum: "粤A99012" }).length, 1, "no second bill");

    // 粤A99011 left during the stop: after the hold it is finished at its bill's time.
    const finished = await lot.waitForEvent("settled-stay-finished", { plate: "粤A99011" }, 5000);
    assert.equal(finished.path, "platform");
    const leave11 = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stays.get("粤A99011")!.recordNo });
    assert.equal(leave11.biz.leaveTime, lot.wireTime(stays.get("粤A99011")!.atMs));
    assert.equal(leave11.biz.paidFee, 700);
    assert.equal(leave11.biz.payType, 1);
    const answer = lot.emulator.received({ service: "preLeaveNotify", plateId: stays.get("粤A99011")!.plateId })[0]!.answer.data as { orderNo: string };
    assert.equal(leave11.biz.orderNo, answer.orderNo);
    assert.equal(lot.stayOf("粤A99011"), undefined);

    // 粤A99013 never paid: still in the lot, no report, no settlement.
    const unpaid = lot.stayOf("粤A99013");
    assert.ok(unpaid, "the unpaid stay is kept");
    assert.equal(unpaid.extra?.settlement, undefined);
    assert.equal(lot.emulator.received({ service: "leaveNotify", plateNum: "粤A99013" }).length, 0);
  } finally {
    await lot.stop();
    await emulator.stop();
  }
});

test("a settled stay finished as left after a restart whose car is read at an exit after all: resumed, it pays only for the time since; one paid too long ago meets the no-record rule", async () => {
  const HOUR_MS = 3_600_000;
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai" });
  const storeDir = tempDir("lk-restart-");
  const settledAt = { 粤A99021: Date.now() - HOUR_MS, 粤A99022: Date.now() - 2 * 24 * HOUR_MS };
  const recordNos = new Map<string, string>();
  const enteredAt = new Map<string, number>();
  const first = await LotHarness.create({ storeDir, emulator });
  try {
    for (const [plate, atMs] of Object.entries(settledAt)) {
      // Paid 700 on a bill made 2.5 h into the stay (30 min free, 5 yuan, then 1 yuan per
      // started hour); the stop came between the open and the passage.
      const stay = await first.park(plate, Date.now() - atMs + 2.5 * HOUR_MS, { entryReport: "delivered" });
      await first.app.store.updateInPark(stay.recordNo, {
        pendingExit: { laneId: "out1", plateId: `EXRESUME${plate.slice(-5)}out1`, atMs, payableFen: 700, discountFen: 0, dueFen: 700 },
        extra: {
          settlement: {
            releaseType: 0,
            payType: 1,
            paidFen: 700,
            orderNo: `PAID-${plate.slice(-5)}`,
            payTimeMs: atMs,
            operator: "",
            path: "platform",
            settledAtMs: atMs,
            laneId: "out1",
            billAtMs: atMs,
            payableFen: 700,
            discountFen: 0,
            prepaidFen: 0,
          },
        },
      });
      recordNos.set(plate, stay.recordNo);
      enteredAt.set(plate, stay.enterAtMs);
    }
  } finally {
    await first.stop({ keepStore: true });
  }
  const lot = await LotHarness.create({ storeDir, emulator, mutate: (raw) => (raw.policy.exit = { settledHoldMs: 1000 }) });
  try {
    for (const plate of Object.keys(settledAt)) {
      await lot.waitForEvent("settled-stay-finished", { plate }, 4000);
      await lot.emulator.waitFor({ service: "leaveNotify", recordNo: recordNos.get(plate)! });
    }

    // 粤A99021 had not left: read at the exit an hour after paying (past the grace).
    lot.emulator.setPlate("粤A99021", "frictionless");
    await lot.drive("out1", "粤A99021");
    const resumed = await lot.waitForEvent("settled-stay-resumed", { plate: "粤A99021" });
    assert.equal(resumed.resumes, recordNos.get("粤A99021"));
    assert.notEqual(resumed.recordNo, recordNos.get("粤A99021"), "a new recordNo: the old stay was reported");
    assert.equal(lot.find("no-entry-record", { plate: "粤A99021" }).length, 0);
    const recordNo = String(resumed.recordNo);
    const pre = await lot.emulator.waitFor({ service: "preLeaveNotify", recordNo });
    // Past the post-payment grace, billing restarts from the first period at the payment
    // (docs/tariffs.md `postPayment`): 7 yuan to the payment, then 5 + 1 for the hour and a second since.
    assert.equal(pre.biz.payableFee, 1300);
    assert.equal(pre.biz.paidFee, 600, "only the time since the payment is due");
    const enter = await lot.emulator.waitFor({ service: "enterNotify", recordNo });
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo });
    assert.ok(enter.seq < leave.seq);
    assert.equal(enter.biz.enterTime, lot.wireTime(enteredAt.get("粤A99021")!), "the stay's own entry time");
    assert.equal(leave.biz.payableFee, 1300);
    assert.equal(leave.biz.prepaidFee, 700);
    assert.equal(leave.biz.paidFee, 600);
    assert.equal(lot.emulator.received({ service: "leaveNotify", recordNo: recordNos.get("粤A99021")! }).length, 1, "the old stay reported once");

    // 粤A99022 paid two days ago (beyond settledResumeMs, 24 h): an unknown car again.
    await lot.arrive("out1", "粤A99022");
    await lot.waitForEvent("no-entry-record", { plate: "粤A99022" });
    assert.equal(lot.find("settled-stay-resumed", { plate: "粤A99022" }).length, 0);
  } finally {
    await lot.stop();
    await emulator.stop();
  }
});

test("a re-entry cap window longer than a day: a stay that left 30 h ago still counts toward the cap after a restart", async () => {
  const HOUR_MS = 3_600_000;
  const plate = "粤A48001";
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai" });
  const storeDir = tempDir("lk-restart-");
  // Every started hour costs from the first minute; a plate's stays within 48 h cost 6 yuan at most.
  const tariff = (raw: Record<string, any>) => {
    raw.fees.tariffs.standard.free = { minutes: 0 };
    raw.fees.tariffs.standard.reentryCap = { capFen: 600, windowHours: 48 };
  };
  try {
    const first = await LotHarness.create({ storeDir, emulator, mutate: tariff });
    try {
      const old = await first.park(plate, 31 * HOUR_MS, { entryReport: "delivered" });
      await first.app.store.finishStay(old.recordNo, { laneId: "out1", leaveAtMs: Date.now() - 30 * HOUR_MS, payableFen: 500, paidFen: 500 });
    } finally {
      await first.stop({ keepStore: true });
    }
    emulator.setPlate(plate, "frictionless");
    const lot = await LotHarness.create({ storeDir, emulator, mutate: tariff });
    try {
      const stay = await lot.park(plate, 10 * 60_000);
      await lot.arrive("out1", plate);
      const due = await lot.waitForEvent("fee-due", { recordNo: stay.recordNo });
      assert.equal(due.feeFen, 100, "500 for the started hour, capped at 600 − the 500 of the stay 30 h ago");
      await lot.pass("out1");
    } finally {
      await lot.stop();
    }
  } finally {
    await emulator.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
});
