import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { App } from "../../src/app/app.js";
import { FakeClock } from "../helpers/fake-clock.js";
import type { SequencedEvent } from "../../src/kernel/event-bus.js";
import { silentLogger } from "../../src/kernel/log.js";
import { SimGpio } from "../../src/io/gpio/sim-gpio.js";
import { gpioLinesFromConfig } from "../../src/io/gpio/lines.js";
import { startEmulator } from "../../src/platform/emulator/emulator.js";
import { formatWireTime } from "../../src/platform/wire.js";
import { testConfig } from "../helpers/demo-config.js";
import { shortTimers } from "../helpers/lot-harness.js";
import { seededRandom } from "../helpers/seeded-random.js";

/**
 * Days of traffic through the real composition on a fake clock: a small pool of plates comes
 * and goes many times (the same plate several times a day, stays from minutes to more than a
 * day), leaving every way there is (nothing due, frictionless, a scanner code, cash at the
 * booth, cash because the platform is down or hangs, prepaid in the lot, a car without plates
 * through the QR codes, let go by the attendant), with shop coupons, exit misreads left to the
 * fuzzy rule, drivers who back out at the fee and come back, plates read before the car
 * reaches the loop, and cars entering while others leave; a restart halfway and a blacklisted
 * car now and then come in between. Bugs that need history to show (a plate's second exit, a
 * re-entry window, a report per stay) surface here. The checks are on what the lot and the
 * cloud hold at the end, not on the path each car took.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const STEPS = 160;
const PLATES = ["粤S10001", "粤S10002", "粤S10003", "粤S10004", "粤S10005", "粤S10006", "粤S10007", "粤S10008", "粤S10009", "粤S10010"];
const REENTRY_CAP_FEN = 1500;
const BLACKLISTED = "粤S66666";
/** A monthly car among the pool: registered for the whole run, it never pays. */
const MONTHLY = "粤S10010";

type PayWay = "frictionless" | "scanner" | "cash" | "platform-down" | "platform-hangs" | "prepaid" | "attendant-opens";

test("days of random traffic: every stay reported once, each car paid what it was shown and the amounts add up, no decision failed, the lot holds the parked cars", async (t) => {
  const seed = Number(process.env.LK_SOAK_SEED ?? 20261126);
  t.diagnostic(`seed ${seed} (LK_SOAK_SEED to replay)`);
  const rand = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

  const clock = new FakeClock(Date.UTC(2026, 10, 2, 0, 0, 0));
  const emulator = await startEmulator({ clock, timestampWindowS: 0, timeZone: "Asia/Shanghai" });
  t.after(() => emulator.stop());
  const config = testConfig((raw) => {
    shortTimers(raw);
    raw.platform.baseUrl = emulator.url;
    // (Platform deadlines run on real time; short ones keep the hanging platform's exits quick.)
    raw.platform.deadlines = { preLeaveMs: 300, preEnterMs: 300, reportMs: 300 };
    raw.fees.tariffs.standard.reentryCap = { capFen: REENTRY_CAP_FEN, windowHours: 24 };
    for (const lane of raw.lanes) lane.timers = { ...lane.timers, dedupeWindowMs: 0 };
  });
  let gpio = new SimGpio(gpioLinesFromConfig(config), clock);
  const events: SequencedEvent[] = [];
  const startApp = async () => {
    const started = new App({ config, log: silentLogger(), clock, gpio, apiPort: 0, outboxBackoff: { baseMs: 50, capMs: 400, minMs: 20 } });
    started.bus.on((event) => events.push(event));
    await started.start();
    return started;
  };
  let app = await startApp();
  await app.store.addBlacklist({ carNum: BLACKLISTED, remark: "unpaid fees" });
  await app.store.upsertVehicle({ carNum: MONTHLY, owner: "soak", carTypeCode: 81, timeStartMs: clock.now() - 24 * HOUR_MS, timeEndMs: clock.now() + 90 * 24 * HOUR_MS });
  t.after(async () => {
    await app.stop().catch(() => undefined);
    await rm(config.store.dir, { recursive: true, force: true });
  });

  const lane = (id: string) => config.lanes.find((l) => l.id === id)!;
  const onMs = lane("in1").detector.minOnMs + 1;
  const offMs = lane("in1").detector.minOffMs + 1;
  const moveMs = Math.max(lane("in1").relayPulseMs, lane("in1").timers.travelTimeMs) + 1;
  const barrier = (laneId: string) => app.lanes.runners.get(laneId)!.snapshot().barrier;
  const find = (type: string, filter: Record<string, unknown> = {}) => events.filter((e) => e.type === type && Object.entries(filter).every(([k, v]) => e[k] === v));
  /** Steps the fake clock in small moves, letting real I/O (fsyncs, HTTP) finish between them. */
  const until = async (condition: () => boolean, what: string) => {
    for (let i = 0; i < 2000; i++) {
      if (condition()) return;
      await clock.advance(10);
      if (i % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const recent = events.slice(-12).map((e) => `${e.type}${e.plate ? ` ${String(e.plate)}` : ""}${e.reason ? ` (${String(e.reason)})` : ""}`);
    throw new Error(`seed ${seed}: gave up waiting for ${what}; last events: ${recent.join(", ")}`);
  };
  /** The car drives onto loopA and its plate is read; `atRead` runs at the read's instant. */
  const arrive = async (laneId: string, plate: string, atRead?: () => Promise<void>) => {
    // Cameras often read a plate before the car reaches the loop (video trigger): now and then
    // the read comes first.
    if (rand() < 0.2) {
      await atRead?.();
      app.lanes.plateRead(laneId, { plate, atMs: clock.now(), source: "sim" });
      await clock.advance(50);
      gpio.setInput(`${laneId}.loopA`, 1);
      await clock.advance(onMs);
      readsFirst++;
      return;
    }
    gpio.setInput(`${laneId}.loopA`, 1);
    await clock.advance(onMs);
    await atRead?.();
    app.lanes.plateRead(laneId, { plate, atMs: clock.now(), source: "sim" });
  };
  let readsFirst = 0;
  const boxUrl = () => `http://127.0.0.1:${app.http.address().port}${config.platform.server.path}`;
  const pass = async (laneId: string) => {
    await until(() => barrier(laneId) === "open", `${laneId} open`);
    await clock.advance(moveMs);
    gpio.setInput(`${laneId}.loopB`, 1);
    await clock.advance(onMs);
    gpio.setInput(`${laneId}.loopA`, 0);
    await clock.advance(offMs);
    gpio.setInput(`${laneId}.loopB`, 0);
    await clock.advance(offMs);
    await until(() => barrier(laneId) === "closed" && app.lanes.runners.get(laneId)!.isIdle(), `${laneId} closed and idle`);
  };

  const parked = new Map<string, { recordNo: string; leaveAfterMs: number; short: boolean }>();
  /** A car that just drove in: its stay, and when it means to leave. */
  const parkedNow = (plate: string) => {
    const stay = app.store.findInParkByPlate(plate)[0];
    assert.ok(stay, `seed ${seed}: ${plate} entered and has a stay`);
    // Most stays are hours; some are within the free half hour, some over a day.
    // (The first car stays within the free time: every seed takes that path.)
    const r = parked.size === 0 && exits.length === 0 ? 0 : rand();
    const stayMs = r < 0.2 ? Math.floor(rand() * 25 * MINUTE_MS) : r < 0.9 ? Math.floor(rand() * 8 * HOUR_MS) : 24 * HOUR_MS + Math.floor(rand() * 8 * HOUR_MS);
    parked.set(plate, { recordNo: stay.recordNo, leaveAfterMs: clock.now() + stayMs, short: stayMs < 25 * MINUTE_MS });
  };
  const exits: Array<{ plate: string; recordNo: string; way: PayWay | "free" | "unlicensed"; dueFen: number; prepaidFen: number; couponFen: number }> = [];
  let backOuts = 0;
  let misreads = 0;
  let unlicensed: { plate: string; recordNo: string; leaveAfterMs: number } | undefined;
  const coupons = new Map<string, number>();
  let refused = 0;
  let together = 0;
  for (let step = 0; step < STEPS; step++) {
    // Time passes between cars: minutes mostly, now and then most of a day.
    // A car that came for a few minutes leaves when it planned to (within the free time);
    // otherwise time passes between cars: minutes mostly, now and then most of a day.
    const quick = [...parked].find(([, stay]) => stay.short);
    if (quick) clock.jump(Math.max(0, quick[1].leaveAfterMs - clock.now()));
    else clock.jump(rand() < 0.1 ? Math.floor(rand() * 20 * HOUR_MS) : Math.floor(rand() * 90 * MINUTE_MS));
    if (step === STEPS / 2) {
      // A restart with cars in the lot (a power cut's orderly twin): the lanes come back from
      // the store; the history and the outbox carry on.
      await app.stop();
      gpio = new SimGpio(gpioLinesFromConfig(config), clock);
      app = await startApp();
    }
    if (step % 40 === 7) {
      // Now and then the blacklisted car tries to come in and is turned away.
      await arrive("in1", BLACKLISTED);
      await until(() => find("decided", { laneId: "in1", plate: BLACKLISTED }).length > refused, "the blacklisted car refused");
      assert.equal(find("decided", { laneId: "in1", plate: BLACKLISTED }).at(-1)!.reason, "blacklisted");
      refused++;
      gpio.setInput("in1.loopA", 0);
      await clock.advance(offMs);
      await until(() => app.lanes.lanesIdle() && barrier("in1") === "closed", "in1 idle after the refusal");
    }
    if (!quick && unlicensed === undefined && rand() < 0.06) {
      // A car without plates: the camera reads nothing, the driver scans the entry QR code and
      // the cloud asks the box to let it in under a virtual plate (unlicensedReq).
      const plate = `K7Q${String(step).padStart(4, "0")}`;
      gpio.setInput("in1.loopA", 1);
      await clock.advance(onMs);
      app.lanes.plateRead("in1", { plate: "", atMs: clock.now(), source: "sim" });
      const answer = await emulator.callBox(boxUrl(), "unlicensedReq", {
        parkCode: config.lot.parkCode,
        plateNum: plate,
        channelid: lane("in1").channelId,
        requestTime: formatWireTime(clock.now(), config.lot.timeZone),
      });
      assert.equal((answer.body as { code: number }).code, 200, `seed ${seed}: unlicensedReq ${plate}: ${answer.bodyText}`);
      await pass("in1");
      const stay = app.store.findInParkByPlate(plate)[0];
      assert.ok(stay, `seed ${seed}: the unlicensed car ${plate} has a stay`);
      unlicensed = { plate, recordNo: stay.recordNo, leaveAfterMs: clock.now() + Math.floor(rand() * 6 * HOUR_MS) };
      continue;
    }
    if (!quick && unlicensed !== undefined && unlicensed.leaveAfterMs <= clock.now() && rand() < 0.5) {
      // At the exit the camera reads nothing again; the driver scans the exit QR code, the cloud
      // asks the fee for the car at that lane (queryParkFee scene 2) and notifies the payment.
      const { plate, recordNo } = unlicensed;
      gpio.setInput("out1.loopA", 1);
      await clock.advance(onMs);
      app.lanes.plateRead("out1", { plate: "", atMs: clock.now(), source: "sim" });
      const quote = (
        await emulator.callBox(boxUrl(), "queryParkFee", { parkCode: config.lot.parkCode, payScene: 2, plateNum: `无${plate}`, recordNo, outChannelid: lane("out1").channelId })
      ).body as { code: number; msg: string; data?: { paidFee?: number } };
      assert.equal(quote.code, 200, `seed ${seed}: queryParkFee scene 2 for ${plate}: ${quote.msg}`);
      const owed = Number(quote.data?.paidFee ?? 0);
      if (owed > 0) {
        const notice = await emulator.callBox(boxUrl(), "payNotify", {
          parkCode: config.lot.parkCode,
          recordNo,
          plateNum: `无${plate}`,
          orderNo: `UL-${step}`,
          payType: 1,
          payFee: owed,
          payTime: formatWireTime(clock.now(), config.lot.timeZone),
          payScene: 2,
          outChannelid: lane("out1").channelId,
        });
        assert.equal((notice.body as { code: number }).code, 200, `seed ${seed}: payNotify scene 2 for ${plate}: ${notice.bodyText}`);
      }
      await pass("out1");
      exits.push({ plate, recordNo, way: owed > 0 ? "unlicensed" : "free", dueFen: owed, prepaidFen: 0, couponFen: 0 });
      unlicensed = undefined;
      continue;
    }
    const ready = quick ? [quick] : [...parked].filter(([, stay]) => stay.leaveAfterMs <= clock.now());
    const absent = PLATES.filter((p) => !parked.has(p));
    if (!quick && absent.length > 0 && (ready.length === 0 || rand() < 0.5)) {
      const plate = pick(absent);
      await arrive("in1", plate);
      await pass("in1");
      parkedNow(plate);
    } else if (ready.length > 0) {
      const [plate, stay] = pick(ready);
      const ways: PayWay[] = ["frictionless", "scanner", "cash", "platform-down", "platform-hangs", "prepaid", "attendant-opens"];
      // The first paying exits take each way once, whatever the seed.
      const paying = exits.filter((e) => e.way !== "free").length;
      const way = paying < ways.length ? ways[paying]! : pick(ways);
      emulator.setPlate(plate, way === "frictionless" ? "frictionless" : "awaiting");
      let prepaidFen = 0;
      if (way === "prepaid") {
        // Paid at a pay station in the lot (the cloud asks the fee, then notifies the payment),
        // then a walk to the car: within the post-payment grace or past it.
        const quote = (await emulator.callBox(boxUrl(), "queryParkFee", { parkCode: config.lot.parkCode, payScene: 0, plateNum: plate })).body as {
          code: number;
          data?: { paidFee?: number; recordNo?: string };
        };
        const owed = Number(quote.data?.paidFee ?? 0);
        if (quote.code === 200 && owed > 0) {
          const notice = await emulator.callBox(boxUrl(), "payNotify", {
            parkCode: config.lot.parkCode,
            recordNo: stay.recordNo,
            plateNum: plate,
            orderNo: `PRE-${step}`,
            payType: 1,
            payFee: owed,
            payTime: formatWireTime(clock.now(), config.lot.timeZone),
            payScene: 0,
          });
          assert.equal((notice.body as { code: number }).code, 200, `seed ${seed}: payNotify for ${plate}: ${notice.bodyText}`);
          prepaidFen = owed;
          clock.jump(Math.floor(rand() * 40 * MINUTE_MS));
        }
      }
      // Now and then the shop the driver visited gives a 3-yuan coupon through the cloud.
      // (One per stay: the lot's maxCouponsPerStay; a car that backed out may hold one already.)
      const holds = app.store.getInPark(stay.recordNo)?.coupons.length ?? 0;
      if (holds === 0 && way !== "prepaid" && (coupons.size === 0 || rand() < 0.15)) {
        const couponFen = 300;
        coupons.set(stay.recordNo, couponFen);
        const coupon = await emulator.callBox(boxUrl(), "issueCoupon", {
          parkCode: config.lot.parkCode,
          couponNo: `CP-${seed}-${step}`,
          recordNo: stay.recordNo,
          couponType: 1,
          value: couponFen,
          operator: "mall",
        });
        assert.equal((coupon.body as { code: number }).code, 200, `seed ${seed}: issueCoupon for ${plate}: ${coupon.bodyText}`);
      }
      // Some who would pay cash see the fee and back out instead; they come back later.
      const backsOut = way === "cash" && (backOuts === 0 || rand() < 0.3);
      if (way === "platform-down") await emulator.setFaults({ refuse: true });
      // A platform that takes the bill and never answers: the exit is decided at the deadline.
      if (way === "platform-hangs") await emulator.setFaults({ hang: true });
      // What the cloud is told the car owes (queryParkFee by plate) at the very instant of the read.
      let quoted: { code: number; data?: { paidFee?: number } } | undefined;
      // Now and then a car comes in at the same moment: both lanes decide, write and report at once.
      const companion = rand() < 0.3 ? absent[0] : undefined;
      if (companion) await arrive("in1", companion);
      const mark = events.length;
      /** Events of this visit to the exit (positions, not seq: a restart numbers them anew). */
      const since = (type: string, filter: Record<string, unknown> = {}) =>
        events.slice(mark).filter((e) => e.type === type && Object.entries(filter).every(([k, v]) => e[k] === v));
      // Now and then the exit camera misreads the plate (1 read as I, or the province): the
      // fuzzy rule must still find this car's stay and no other.
      const readAs = rand() < 0.15 ? (rand() < 0.5 ? `${plate.slice(0, 2)}I${plate.slice(3)}` : `鄂${plate.slice(1)}`) : plate;
      if (readAs !== plate) misreads++;
      await arrive("out1", readAs, async () => {
        quoted = (await emulator.callBox(boxUrl(), "queryParkFee", { parkCode: config.lot.parkCode, payScene: 0, plateNum: plate })).body as typeof quoted;
      });
      if (companion) {
        await pass("in1");
        parkedNow(companion);
        together++;
      }
      await until(() => since("decided", { laneId: "out1" }).length > 0, `a decision for ${plate}`);
      const decided = since("decided", { laneId: "out1" })[0]!;
      assert.notEqual(decided.reason, "internal-error", `seed ${seed}: ${plate} refused by a fault (${JSON.stringify(decided)})`);
      if (decided.verdict === "await") await until(() => since("fee-due", { recordNo: stay.recordNo }).length > 0, `${plate}'s bill shown`);
      const due = since("fee-due", { recordNo: stay.recordNo })[0];
      if (readAs !== plate) assert.equal(since("plate-fuzzy-matched", { laneId: "out1" })[0]?.recordNo, stay.recordNo, `seed ${seed}: ${readAs} matched to ${plate}'s stay`);
      if (due) assert.equal(quoted?.data?.paidFee, due.feeFen, `seed ${seed}: ${plate} quoted ${JSON.stringify(quoted)} to the cloud, billed ${String(due.feeFen)} at the exit`);
      else assert.ok(!(quoted?.code === 200 && Number(quoted.data?.paidFee) > 0), `seed ${seed}: ${plate} left without paying but was quoted ${JSON.stringify(quoted)}`);
      if (backsOut && decided.verdict === "await") {
        gpio.setInput("out1.loopA", 0);
        await clock.advance(offMs);
        await until(() => barrier("out1") === "closed" && app.lanes.runners.get("out1")!.isIdle(), "out1 idle after the back-out");
        assert.ok(app.store.getInPark(stay.recordNo), `seed ${seed}: ${plate}'s stay is still in the lot after backing out`);
        stay.leaveAfterMs = clock.now() + Math.floor(rand() * 60 * MINUTE_MS);
        backOuts++;
        continue;
      }
      // A bill the platform does not collect (it answers "awaiting", or it is down): the
      // attendant takes cash.
      if (decided.verdict === "await" && way === "scanner") {
        // The driver shows a payment code: the bill goes again with it, the platform collects.
        app.lanes.scannerCode("out1", "134567890123456789");
      } else if (decided.verdict === "await" && (way === "platform-down" || way === "platform-hangs")) {
        // The attendant is asked for cash once the platform has failed (at once when it is
        // down, at the deadline when it hangs), and takes it.
        await until(() => since("cash-fallback", { laneId: "out1" }).length > 0, "the cash fallback");
        const fallback = since("cash-fallback", { laneId: "out1" })[0]!;
        assert.equal(fallback.reason, way === "platform-down" ? "refused" : "timeout", `seed ${seed}: ${plate}'s fallback reason`);
        const result = app.lanes.command("out1", "cash-paid", "soak-attendant", "cash after the platform failed");
        assert.ok(result.ok, `seed ${seed}: cash-paid for ${plate}: ${JSON.stringify(result)}`);
      } else if (decided.verdict === "await" && way === "attendant-opens") {
        // The attendant lets the car out without payment (a guest, a dispute): a hand release.
        const result = app.lanes.command("out1", "open", "soak-attendant", "guest of the management");
        assert.ok(result.ok, `seed ${seed}: open for ${plate}: ${JSON.stringify(result)}`);
      } else if (decided.verdict === "await" && way !== "frictionless") {
        const result = app.lanes.command("out1", "cash-paid", "soak-attendant", "cash at the booth");
        assert.ok(result.ok, `seed ${seed}: cash-paid for ${plate}: ${JSON.stringify(result)}`);
      }
      await pass("out1");
      if (due) {
        const settledBy = {
          frictionless: "platform",
          scanner: "scanner",
          cash: "cash",
          "platform-down": "cash",
          "platform-hangs": "cash",
          prepaid: "cash",
          "attendant-opens": "manual",
        }[way];
        assert.equal(since("settled", { laneId: "out1" })[0]?.reason, settledBy, `seed ${seed}: ${plate} settled by ${settledBy}`);
      }
      if (way === "platform-down" || way === "platform-hangs") await emulator.clearFaults();
      const handReleased = way === "attendant-opens" && due !== undefined;
      exits.push({
        plate,
        recordNo: stay.recordNo,
        way: due || prepaidFen > 0 ? way : "free",
        dueFen: handReleased ? 0 : Number(due?.feeFen ?? 0),
        prepaidFen,
        couponFen: coupons.get(stay.recordNo) ?? 0,
      });
      parked.delete(plate);
    }
  }

  // Everything reported once the platform has been up for a while.
  await emulator.clearFaults();
  await until(() => app.outbox.status().depth === 0 && app.outbox.status().inFlight === 0, "the outbox drained");

  t.diagnostic(
    `exits ${exits.length}: ${JSON.stringify(Object.fromEntries(["free", "frictionless", "scanner", "cash", "platform-down", "platform-hangs", "prepaid", "attendant-opens", "unlicensed"].map((w) => [w, exits.filter((e) => e.way === w).length])))}; prepaid and then nothing due ${exits.filter((e) => e.prepaidFen > 0 && e.dueFen === 0).length}, something due ${exits.filter((e) => e.prepaidFen > 0 && e.dueFen > 0).length}`,
  );
  assert.ok(exits.length > 40, `seed ${seed}: enough exits to mean something (${exits.length})`);
  const visits = new Map<string, number>();
  for (const exit of exits) visits.set(exit.plate, (visits.get(exit.plate) ?? 0) + 1);
  assert.ok(Math.max(...visits.values()) >= 3, `seed ${seed}: plates come back (${JSON.stringify([...visits])})`);
  assert.ok(
    exits.some((e) => e.way === "free"),
    `seed ${seed}: a free exit`,
  );
  for (const way of ["frictionless", "scanner", "cash", "platform-down", "platform-hangs", "prepaid", "attendant-opens"])
    assert.ok(
      exits.some((e) => e.way === way),
      `seed ${seed}: someone paid by ${way}`,
    );
  assert.ok(
    exits.some((e) => e.plate === MONTHLY),
    `seed ${seed}: the monthly car came and went`,
  );
  assert.ok(
    exits.some((e) => e.way === "unlicensed" || e.plate.startsWith("K7Q")),
    `seed ${seed}: a car without plates came and went`,
  );
  for (const exit of exits.filter((e) => e.plate === MONTHLY)) assert.equal(exit.way, "free", `seed ${seed}: the monthly car never pays (${exit.recordNo})`);
  assert.equal(find("decided", { reason: "internal-error" }).length, 0, `seed ${seed}: no decision failed`);

  for (const exit of exits) {
    const enter = emulator.received({ service: "enterNotify", recordNo: exit.recordNo });
    const leave = emulator.received({ service: "leaveNotify", recordNo: exit.recordNo });
    assert.equal(enter.length, 1, `seed ${seed}: one entry report for ${exit.plate} ${exit.recordNo}`);
    assert.equal(leave.length, 1, `seed ${seed}: one exit report for ${exit.plate} ${exit.recordNo}`);
    const biz = leave[0]!.biz as { payableFee: number; paidFee: number; discountFee: number; prepaidFee?: number };
    assert.equal(biz.paidFee, exit.dueFen, `seed ${seed}: ${exit.recordNo} paid what was shown as due`);
    assert.equal(Number(biz.prepaidFee ?? 0), exit.prepaidFen, `seed ${seed}: ${exit.recordNo} reported what it prepaid`);
    if (exit.couponFen > 0) assert.equal(biz.discountFee, Math.min(exit.couponFen, biz.payableFee), `seed ${seed}: ${exit.recordNo}'s coupon counted`);
    const released = (leave[0]!.biz as { releaseType?: number }).releaseType ?? 0;
    if (exit.way === "attendant-opens") assert.equal(released, 3, `seed ${seed}: ${exit.recordNo} reported as a hand release`);
    // What was owed is paid, discounted or prepaid, unless someone let the car go by hand.
    else assert.equal(biz.paidFee + biz.discountFee + Number(biz.prepaidFee ?? 0), biz.payableFee, `seed ${seed}: ${exit.recordNo} adds up (${JSON.stringify(biz)})`);
    assert.ok(biz.payableFee >= biz.paidFee, `seed ${seed}: ${exit.recordNo} paid more than it owed`);
  }
  assert.ok(refused >= 3, "the blacklisted car came");
  assert.ok(misreads > 0, `seed ${seed}: the exit camera misread now and then`);
  assert.ok(readsFirst > 0, `seed ${seed}: plates were read before the loop now and then`);
  assert.ok(backOuts > 0 && exits.some((e) => e.couponFen > 0), `seed ${seed}: a car backed out (${backOuts}) and a coupon was used`);
  assert.ok(together >= 5, `seed ${seed}: cars came in while others left (${together})`);
  assert.equal(emulator.received({ plateNum: BLACKLISTED }).length, 0, "a refused car leaves no stay to report");

  // The lot holds exactly the cars still parked; its free-space count agrees.
  const inPark = new Set(app.store.listInPark(undefined, { page: 1, pageSize: 1000 }).items.map((r) => r.plate));
  const stillParked = [...parked.keys(), ...(unlicensed ? [unlicensed.plate] : [])];
  assert.deepEqual([...inPark].sort(), stillParked.sort(), `seed ${seed}: in-park records are the parked cars`);
  assert.equal(app.lanes.freeSpaces(), config.lot.totalSpaces - stillParked.length);
});
