import { test } from "node:test";
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { getEventListeners } from "node:events";
import { systemClock } from "../../src/kernel/clock.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createPlatformClient, type PlatformAnswer, type PlatformClient } from "../../src/platform/client.js";
import { platformConfigSchema, type PlatformConfigInput } from "../../src/platform/config.js";
import { demoCredentials, startEmulator, type Emulator } from "../../src/platform/emulator/emulator.js";
import type { LeaveNotifyBiz, PreLeaveNotifyBiz } from "../../src/platform/section3.js";
import { capturingLogger, sampleEnter as enter } from "../helpers/platform-fixtures.js";

async function setup(overrides: Partial<PlatformConfigInput> = {}, clock = systemClock) {
  const emulator = await startEmulator({ frictionlessPlates: ["粤A00001"] });
  const config = platformConfigSchema.parse({ baseUrl: emulator.url, pid: demoCredentials.pid, key: demoCredentials.key, ...overrides });
  const { log, lines } = capturingLogger();
  const client = createPlatformClient({ config, clock, log });
  return { emulator, client, lines, config };
}

async function teardown(emulator: Emulator, client: PlatformClient): Promise<void> {
  await client.close();
  await emulator.stop();
}

const bill = (plateNum: string, plateId: string, extra: Partial<PreLeaveNotifyBiz> = {}): PreLeaveNotifyBiz => ({
  parkCode: "TEST/1P1",
  recordNo: "in1_20231114200000000",
  plateNum,
  carType: 9,
  carSubType: 91,
  enterTime: "2023-11-14 20:00:00",
  leaveTime: "2023-11-14 22:13:20",
  payableFee: 500,
  discountFee: 100,
  paidFee: 400,
  outChannelid: "2",
  sweepCode: 0,
  plateId,
  ...extra,
});

test("success: enterNotify is signed, verified, received exactly once, canonical, and answered 200", async () => {
  const { emulator, client } = await setup();
  try {
    const result = await client.enterNotify(enter);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.ok && result.code, 200);
    const [push] = emulator.received({ service: "enterNotify", recordNo: enter.recordNo });
    assert.ok(push);
    assert.equal(push.count, 1);
    assert.equal(push.canonical, true);
    assert.equal(
      push.bizText,
      '{"carSubType":91,"carType":9,"enterTime":"2023-11-14 20:00:00","inChannelid":"1","parkCode":"TEST/1P1","plateColor":0,"plateNum":"粤B12345","recordNo":"in1_20231114200000000"}',
    );
    assert.equal(emulator.rejected().length, 0);
  } finally {
    await teardown(emulator, client);
  }
});

test("business code 0: a bill for an ordinary plate is 'awaiting payment'", async () => {
  const { emulator, client } = await setup();
  try {
    const result = await client.preLeaveNotify(bill("粤B12345", "EX1"));
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.kind, "business-code");
    assert.equal(!result.ok && result.code, 0);
    assert.equal(!result.ok && result.msg, "待支付");
  } finally {
    await teardown(emulator, client);
  }
});

test("frictionless plate and scanner code: 200 with payType, payTime and orderNo", async () => {
  const { emulator, client } = await setup();
  try {
    const frictionless = await client.preLeaveNotify(bill("粤A00001", "EX2"));
    assert.equal(frictionless.ok, true);
    assert.ok(frictionless.ok && frictionless.data);
    assert.equal(frictionless.ok && frictionless.data?.payType, 1);
    assert.match(frictionless.ok ? frictionless.data.orderNo : "", /^TC\d{14}\d{5}$/);
    assert.match(frictionless.ok ? frictionless.data.payTime : "", /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const scanned = await client.preLeaveNotify(bill("粤B12345", "EX3", { sweepCode: 1, sweepAuthCode: "134567890123456789", discountFee: 0, paidFee: 500 }));
    assert.equal(scanned.ok, true, JSON.stringify(scanned));
  } finally {
    await teardown(emulator, client);
  }
});

test("refused: the emulator closes its socket; the call fails fast as 'refused', and works again after", async () => {
  const { emulator, client } = await setup();
  try {
    assert.equal((await client.enterNotify(enter)).ok, true);
    await emulator.setFaults({ refuse: true });
    const begun = performance.now();
    const result = await client.enterNotify({ ...enter, recordNo: "R-refused" });
    const took = performance.now() - begun;
    assert.equal(!result.ok && result.kind, "refused", JSON.stringify(result));
    assert.ok(took < 1000, `refusal took ${took} ms`);
    await emulator.clearFaults();
    assert.equal((await client.enterNotify({ ...enter, recordNo: "R-after" })).ok, true);
  } finally {
    await teardown(emulator, client);
  }
});

test("hang past the deadline: the call returns at the deadline ± 50 ms as 'timeout'", async () => {
  const { emulator, client } = await setup();
  try {
    await emulator.setFaults({ hang: true });
    for (const deadlineMs of [200, 400]) {
      const begun = performance.now();
      const result = await client.preLeaveNotify(bill("粤B12345", `EX-hang-${deadlineMs}`), { deadlineMs });
      const took = performance.now() - begun;
      assert.equal(!result.ok && result.kind, "timeout");
      assert.ok(Math.abs(took - deadlineMs) <= 50, `returned after ${took.toFixed(1)} ms for a ${deadlineMs} ms deadline`);
    }
    assert.equal(emulator.received().length, 0);
  } finally {
    await teardown(emulator, client);
  }
});

test("a slow answer inside the deadline succeeds; beyond it times out", async () => {
  const { emulator, client } = await setup();
  try {
    await emulator.setFaults({ delayMs: 100 });
    assert.equal((await client.enterNotify(enter, { deadlineMs: 1000 })).ok, true);
    const late = await client.enterNotify({ ...enter, recordNo: "R-late" }, { deadlineMs: 50 });
    assert.equal(!late.ok && late.kind, "timeout");
  } finally {
    await teardown(emulator, client);
  }
});

test("a late answer: the call times out at its deadline and the 200 that comes within the listening window is handed on", async () => {
  const { emulator, client } = await setup();
  try {
    await emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 300 } }] });
    const heard: Array<{ ok: boolean; code?: number }> = [];
    let lateArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (lateArrived = resolve));
    const begun = performance.now();
    const result = await client.preLeaveNotify(bill("粤A00001", "EX-late"), {
      deadlineMs: 100,
      listenMs: 2000,
      onLateAnswer: (late) => {
        heard.push({ ok: late.ok, ...(late.ok ? { code: late.code } : {}) });
        lateArrived();
      },
    });
    assert.equal(!result.ok && result.kind, "timeout", "the deadline decides what the caller gets");
    assert.ok(performance.now() - begun < 250, "returned at the deadline, not at the answer");
    await arrived;
    assert.deepEqual(heard, [{ ok: true, code: 200 }], "the late 200 is not lost");
    assert.equal(client.stats().lateAnswers, 1);
    // Without a listening window the answer after the deadline is dropped, as before.
    await emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 150 } }] });
    const plain = await client.preLeaveNotify(bill("粤A00001", "EX-plain"), { deadlineMs: 50 });
    assert.equal(!plain.ok && plain.kind, "timeout");
  } finally {
    await teardown(emulator, client);
  }
});

test("onAnswer: every answer once, with its service, HTTP status, business code and whether it came late; a throwing listener changes nothing", async () => {
  const { emulator, client, lines } = await setup();
  try {
    const heard: PlatformAnswer[] = [];
    client.onAnswer(() => {
      throw new Error("listener bug");
    });
    client.onAnswer((answer) => heard.push(answer));
    await emulator.setFaults({ rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 300 } }] });
    let lateArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (lateArrived = resolve));
    const timedOut = await client.preLeaveNotify(bill("粤A00001", "EX-hook"), { deadlineMs: 100, listenMs: 2000, onLateAnswer: () => lateArrived() });
    assert.equal(!timedOut.ok && timedOut.kind, "timeout");
    assert.deepEqual(heard, [], "nothing heard before the answer");
    await arrived;
    await emulator.setFaults({ rules: [{ service: "enterNotify", action: { kind: "business", code: 4006, msg: "sign error" } }] });
    assert.equal((await client.enterNotify(enter)).ok, false);
    await emulator.setFaults({ httpStatus: 503 });
    assert.equal((await client.enterNotify(enter)).ok, false);
    assert.deepEqual(heard, [
      { serviceName: "preLeaveNotify", httpStatus: 200, code: 200, late: true },
      { serviceName: "enterNotify", httpStatus: 200, code: 4006, late: false },
      { serviceName: "enterNotify", httpStatus: 503, late: false },
    ]);
    assert.equal(lines.filter((l) => l.includes('"msg":"platform answer listener failed"')).length, 3);
  } finally {
    await teardown(emulator, client);
  }
});

test("an aborted call resolves at once as 'aborted' and no late answer follows; onAnswer hears any answer", async () => {
  const { emulator, client } = await setup();
  try {
    const heard: PlatformAnswer[] = [];
    const unsubscribe = client.onAnswer((answer) => heard.push(answer));
    await emulator.setFaults({ hang: true });
    const controller = new AbortController();
    let late = 0;
    const begun = performance.now();
    const pending = client.preLeaveNotify(bill("粤B12345", "EX-abort"), { deadlineMs: 100, listenMs: 5000, signal: controller.signal, onLateAnswer: () => late++ });
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    assert.equal(!result.ok && result.kind, "aborted");
    assert.ok(performance.now() - begun < 200);
    // Aborted in the listening window: the late outcome is the abort, handed on once.
    const afterDeadline = new AbortController();
    const timedOut = await client.preLeaveNotify(bill("粤B12345", "EX-abort2"), {
      deadlineMs: 50,
      listenMs: 5000,
      signal: afterDeadline.signal,
      onLateAnswer: (r) => (late += !r.ok && r.kind === "aborted" ? 10 : 100),
    });
    assert.equal(!timedOut.ok && timedOut.kind, "timeout");
    afterDeadline.abort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(late, 10);
    assert.deepEqual(heard, [], "no answer heard while the platform hangs");
    await emulator.clearFaults();
    assert.equal((await client.enterNotify(enter)).ok, true);
    assert.deepEqual(heard, [{ serviceName: "enterNotify", httpStatus: 200, code: 200, late: false }]);
    unsubscribe();
    await emulator.setFaults({ httpStatus: 503 });
    await client.enterNotify(enter);
    assert.equal(heard.length, 1, "unsubscribed");
    assert.equal(client.stats().failures.aborted, 1);
  } finally {
    await teardown(emulator, client);
  }
});

test("HTTP 500 is 'http-status' with the status; malformed JSON is 'bad-response'", async () => {
  const { emulator, client } = await setup();
  try {
    await emulator.setFaults({ httpStatus: 500 });
    const failed = await client.enterNotify(enter);
    assert.equal(!failed.ok && failed.kind, "http-status");
    assert.equal(!failed.ok && failed.status, 500);
    await emulator.setFaults({ malformed: true });
    const malformed = await client.enterNotify(enter);
    assert.equal(!malformed.ok && malformed.kind, "bad-response");
    assert.equal(emulator.received().length, 0, "a faulted push is not counted as delivered");
    await emulator.clearFaults();
    assert.equal((await client.enterNotify(enter)).ok, true);
    assert.deepEqual(client.stats(), {
      calls: 3,
      ok: 1,
      failures: { refused: 0, timeout: 0, "http-status": 1, "bad-response": 1, "business-code": 0, aborted: 0 },
      lateAnswers: 0,
    });
  } finally {
    await teardown(emulator, client);
  }
});

test("a poisoned recordNo gets a business error while other records pass", async () => {
  const { emulator, client } = await setup();
  try {
    await emulator.setFaults({ rules: [{ recordNo: "R-poison", action: { kind: "business", code: 500, msg: "记录异常" } }] });
    const poisoned = await client.enterNotify({ ...enter, recordNo: "R-poison" });
    assert.equal(!poisoned.ok && poisoned.kind, "business-code");
    assert.equal(!poisoned.ok && poisoned.code, 500);
    assert.equal((await client.enterNotify({ ...enter, recordNo: "R-fine" })).ok, true);
  } finally {
    await teardown(emulator, client);
  }
});

test("retries with the same recordNo are de-duplicated and counted; exit reports must repeat the entry time", async () => {
  const { emulator, client } = await setup();
  try {
    await client.enterNotify(enter);
    await client.enterNotify(enter);
    const [push] = emulator.received({ service: "enterNotify" });
    assert.equal(push?.count, 2);
    assert.equal(emulator.duplicates(), 1);
    const leave: LeaveNotifyBiz = {
      parkCode: "TEST/1P1",
      recordNo: enter.recordNo,
      plateNum: enter.plateNum,
      carType: 9,
      carSubType: 91,
      enterTime: "2023-11-14 20:00:01",
      leaveTime: "2023-11-14 22:15:00",
      payableFee: 500,
      discountFee: 0,
      prepaidFee: 0,
      paidFee: 500,
      payType: 4,
      payTime: "2023-11-14 22:14:50",
      orderNo: "",
      outChannelid: "2",
      releaseType: 0,
      operator: "",
    };
    const mismatched = await client.leaveNotify(leave);
    assert.equal(!mismatched.ok && mismatched.kind, "business-code");
    // The entry time the platform knows: the entry report's (no editParkRecord came between).
    assert.match(!mismatched.ok ? (mismatched.msg ?? "") : "", new RegExp(`differs from the entry time the platform knows, ${enter.enterTime}$`));
    assert.equal((await client.leaveNotify({ ...leave, enterTime: enter.enterTime })).ok, true);
  } finally {
    await teardown(emulator, client);
  }
});

test("keep-alive: twenty calls in a row reuse their connections", async () => {
  // undici's pool may open a second socket while the first is being released, so with the
  // default pool the count is at most 2; with a pool of one it is exactly 1.
  for (const [connections, most] of [
    [4, 2],
    [1, 1],
  ] as const) {
    const { emulator, client } = await setup({ client: { connections } });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await client.enterNotify({ ...enter, recordNo: `R-${i}` })).ok, true);
      assert.ok(emulator.connections() >= 1 && emulator.connections() <= most, `${emulator.connections()} connections for 20 calls`);
    } finally {
      await teardown(emulator, client);
    }
  }
});

test("a finished call leaves nothing behind: no timer of its listening window, no listener on the caller's long-lived signal", async () => {
  const { emulator, client } = await setup();
  // Timers the client made during the calls and not yet fired or cleared when they are over
  // (the sockets' keep-alive timers are the connections', not the calls'). A call that kept
  // its window's timer (and signal) until listenMs shows here as one per call.
  const pending = new Set<number>();
  const hook = createHook({
    init: (asyncId, type) => void (type === "Timeout" && /platform[\\/]client\.ts/.test(new Error().stack ?? "") && pending.add(asyncId)),
    destroy: (asyncId) => void pending.delete(asyncId),
  });
  const stop = new AbortController();
  const calls = 20;
  try {
    assert.equal((await client.enterNotify(enter, { signal: stop.signal })).ok, true, "warm: the agent and its sockets exist");
    const listenersAtStart = getEventListeners(stop.signal, "abort").length;
    hook.enable();
    for (let i = 0; i < calls; i++) {
      const result = await client.enterNotify({ ...enter, recordNo: `W-${i}` }, { signal: stop.signal, deadlineMs: 2000, listenMs: 60_000 });
      assert.equal(result.ok, true, JSON.stringify(result));
    }
    // A bill that times out at its deadline and gets its late answer inside the window.
    await emulator.setFaults({ delayMs: 150 });
    let late = 0;
    const timedOut = await client.preLeaveNotify(bill("粤B12345", "EX-window"), { signal: stop.signal, deadlineMs: 50, listenMs: 60_000, onLateAnswer: () => late++ });
    assert.equal(!timedOut.ok && timedOut.kind, "timeout");
    while (late === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    hook.disable();
    assert.equal(getEventListeners(stop.signal, "abort").length, listenersAtStart, "listeners on the caller's signal back to the start");
    assert.equal(pending.size, 0, `${pending.size} timers of the client still pending after ${calls + 1} finished calls`);
    // The caller's signal still reaches a call in flight.
    await emulator.setFaults({ hang: true });
    const inFlight = client.enterNotify(enter, { signal: stop.signal, deadlineMs: 5000 });
    setTimeout(() => stop.abort(), 20);
    const aborted = await inFlight;
    assert.equal(!aborted.ok && aborted.kind, "aborted");
  } finally {
    hook.disable();
    await teardown(emulator, client);
  }
});

test("per-service paths and renamed services reach the emulator as configured", async () => {
  const { emulator, client } = await setup({ pathStyle: "per-service", pathTemplate: "/api/{service}", serviceNames: { enterNotify: "carInNotify" } });
  try {
    assert.equal(client.urlFor("carInNotify"), `${emulator.url}api/carInNotify`);
    // The emulator was started with the default names, so it refuses the renamed service...
    const renamed = await client.enterNotify(enter);
    assert.equal(!renamed.ok && renamed.kind, "business-code");
    assert.match(emulator.rejected().at(-1)?.msg ?? "", /unknown serviceName carInNotify/);
    // ...and accepts a literal serviceName at its per-service path.
    assert.equal((await client.call("enterNotify", { ...enter })).ok, false, "id enterNotify maps to carInNotify");
    const direct = await client.call("preEnterNotify", {
      parkCode: "TEST/1P1",
      recordNo: "PE1",
      plateNum: "粤B12345",
      plateColor: 0,
      carType: 9,
      carSubType: 91,
      inChannelid: "1",
      arriveTime: "2023-11-14 20:00:00",
      reason: "confirm-required",
    });
    assert.equal(direct.ok, true, JSON.stringify(direct));
    assert.equal(emulator.received({ service: "preEnterNotify" })[0]?.path, "/api/preEnterNotify");
  } finally {
    await teardown(emulator, client);
  }
});

test("wrong key → sign error; a box clock far off → stale timestamp; neither is recorded as delivered", async () => {
  const wrongKey = await setup({ key: "00000000000000000000000000000000" });
  try {
    const r = await wrongKey.client.enterNotify(enter);
    assert.equal(!r.ok && r.kind, "business-code");
    assert.equal(wrongKey.emulator.rejected()[0]?.reason, "bad sign");
  } finally {
    await teardown(wrongKey.emulator, wrongKey.client);
  }
  const skewed = await setup({}, new FakeClock(Date.now() - 3_600_000));
  try {
    const r = await skewed.client.enterNotify(enter);
    assert.equal(!r.ok && r.kind, "business-code");
    assert.equal(skewed.emulator.rejected()[0]?.reason, "stale timestamp");
    assert.equal(skewed.emulator.received().length, 0);
  } finally {
    await teardown(skewed.emulator, skewed.client);
  }
});

test("the client never logs the key or a full sweepAuthCode", async () => {
  const { emulator, client, lines } = await setup();
  try {
    await emulator.setFaults({ httpStatus: 500 });
    await client.preLeaveNotify(bill("粤B12345", "EX-log", { sweepCode: 1, sweepAuthCode: "134567890123456789" }));
    await emulator.clearFaults();
    await client.preLeaveNotify(bill("粤B12345", "EX-log2", { sweepCode: 1, sweepAuthCode: "134567890123456789" }));
    const text = lines.join("");
    assert.ok(lines.length >= 2, "calls are logged");
    assert.ok(!text.includes(demoCredentials.key));
    assert.ok(!text.includes("134567890123456789"));
    assert.match(text, /1345\*+6789/);
  } finally {
    await teardown(emulator, client);
  }
});
