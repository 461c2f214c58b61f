import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { demoCredentials, startEmulator, type Emulator } from "../../src/platform/emulator/emulator.js";
import { onEmulatorPort } from "../../src/demo/demo-emulator.js";
import type { PlatformConfig } from "../../src/platform/config.js";
import { encodeEnvelope, timestampText } from "../../src/platform/envelope.js";
import { sampleEnter as enter } from "../helpers/platform-fixtures.js";
import { rawRequest, requestBytes } from "../helpers/raw-http.js";

async function push(emulator: Emulator, serviceName: string, biz: Record<string, unknown>, options: { key?: string; pid?: string; timestampS?: number } = {}) {
  const body = encodeEnvelope({
    pid: options.pid ?? demoCredentials.pid,
    key: options.key ?? demoCredentials.key,
    serviceName,
    timestamp: options.timestampS === undefined ? timestampText(Date.now()) : String(options.timestampS),
    biz,
  }).bodyText;
  const res = await request(emulator.url, { method: "POST", headers: { "content-type": "application/json;charset=UTF-8" }, body });
  const text = await res.body.text();
  return { status: res.statusCode, body: (res.statusCode === 200 ? JSON.parse(text) : { code: -1, msg: text }) as { code: number; msg: string; data?: unknown } };
}

async function control(emulator: Emulator, method: "GET" | "POST" | "DELETE", path: string, body?: unknown) {
  const res = await request(`${emulator.url}_emulator/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as any };
}

async function withEmulator(fn: (emulator: Emulator) => Promise<void>): Promise<void> {
  const emulator = await startEmulator();
  try {
    await fn(emulator);
  } finally {
    await emulator.stop();
  }
}

test("a config whose platform URL names port 0 is pointed at the emulator's port; any other port is left alone", () =>
  withEmulator(async (emulator) => {
    const port = new URL(emulator.url).port;
    assert.notEqual(port, "0");
    const platform = (baseUrl: string) => ({ platform: { baseUrl } as PlatformConfig, deviceId: "box-1" });
    const anyPort = platform("http://127.0.0.1:0/lane/api?x=1");
    const pointed = onEmulatorPort(anyPort, emulator);
    assert.equal(pointed.platform.baseUrl, `http://127.0.0.1:${port}/lane/api?x=1`, "the port only: host, path and query kept");
    assert.equal(pointed.deviceId, "box-1", "the rest of the config kept");
    assert.equal(anyPort.platform.baseUrl, "http://127.0.0.1:0/lane/api?x=1", "the config given is not changed");
    const fixed = platform("http://127.0.0.1:8090/");
    assert.equal(onEmulatorPort(fixed, emulator), fixed);
    // The pointed URL reaches the emulator.
    const res = await request(`${pointed.platform.baseUrl.replace(/lane\/api\?x=1$/, "")}_emulator/received`);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  }));

test("strict checks of every section-3 push: types, required fields, conditional fields", () =>
  withEmulator(async (emulator) => {
    assert.equal((await push(emulator, "enterNotify", enter)).body.code, 200);
    const stringNumber = await push(emulator, "enterNotify", { ...enter, recordNo: "R2", carType: "9" });
    assert.equal(stringNumber.body.code, 4010);
    assert.match(stringNumber.body.msg, /carType/);
    const missing = await push(emulator, "enterNotify", { ...enter, recordNo: "R3", inChannelid: undefined });
    assert.match(missing.body.msg, /inChannelid/);
    const extra = await push(emulator, "enterNotify", { ...enter, recordNo: "R4", inChannelId: "1" });
    assert.equal(extra.body.code, 4010, "a misspelt field is caught");
    const badTime = await push(emulator, "preEnterNotify", { ...enter, recordNo: "R5", arriveTime: "2023/11/14 20:00", reason: "x", enterTime: undefined });
    assert.match(badTime.body.msg, /arriveTime: must be YYYY-MM-DD HH:mm:ss/);
    const noAuthCode = await push(emulator, "preLeaveNotify", {
      parkCode: "TEST/1P1",
      recordNo: "R",
      plateNum: "粤B1",
      carType: 9,
      carSubType: 91,
      enterTime: "2023-11-14 20:00:00",
      leaveTime: "2023-11-14 21:00:00",
      payableFee: 1,
      discountFee: 0,
      paidFee: 1,
      sweepCode: 1,
      plateId: "EX1",
    });
    assert.match(noAuthCode.body.msg, /sweepAuthCode is required/);
    const leave = await push(emulator, "leaveNotify", { ...enter, plateColor: undefined, inChannelid: undefined });
    assert.equal(leave.body.code, 4010);
    for (const field of ["leaveTime", "payableFee", "prepaidFee", "payType", "releaseType", "operator"]) assert.match(leave.body.msg, new RegExp(field));
    assert.equal(emulator.received().length, 1);
    assert.equal(emulator.rejected().length, 6);
  }));

test("envelope checks: wrong pid, bad sign, stale and future timestamps, unknown service, malformed JSON", () =>
  withEmulator(async (emulator) => {
    assert.equal((await push(emulator, "enterNotify", enter, { pid: "P2" })).body.code, 4008);
    assert.equal((await push(emulator, "enterNotify", enter, { key: "X" })).body.code, 4006);
    assert.equal((await push(emulator, "enterNotify", enter, { timestampS: Math.floor(Date.now() / 1000) - 400 })).body.code, 4007);
    assert.equal((await push(emulator, "enterNotify", enter, { timestampS: Math.floor(Date.now() / 1000) + 400 })).body.code, 4007);
    assert.equal((await push(emulator, "carInNotify", enter)).body.code, 4005);
    const res = await request(emulator.url, { method: "POST", body: "{oops" });
    assert.equal(((await res.body.json()) as { code: number }).code, 4001);
    assert.deepEqual(
      emulator.rejected().map((r) => r.reason),
      ["wrong pid", "bad sign", "stale timestamp", "stale timestamp", "unknown service", "bad envelope"],
    );
    assert.equal(emulator.received().length, 0);
  }));

test("HTTP control: received pushes are queryable and duplicates counted", () =>
  withEmulator(async (emulator) => {
    await push(emulator, "enterNotify", enter);
    await push(emulator, "enterNotify", enter);
    await push(emulator, "enterNotify", { ...enter, recordNo: "other" });
    const all = await control(emulator, "GET", "received?service=enterNotify");
    assert.equal(all.body.items.length, 2);
    const one = await control(emulator, "GET", `received?recordNo=${enter.recordNo}`);
    assert.equal(one.body.items[0].count, 2);
    assert.equal(one.body.items[0].biz.plateNum, "粤B12345");
    const stats = await control(emulator, "GET", "stats");
    assert.deepEqual(stats.body, { received: 2, deliveries: 3, duplicates: 1, rejected: 0, byService: { enterNotify: 2 } });
    await control(emulator, "POST", "reset");
    assert.equal(emulator.received().length, 0);
  }));

test("HTTP control: faults and plate behaviours are settable; bad fault documents are refused", () =>
  withEmulator(async (emulator) => {
    assert.equal((await control(emulator, "POST", "faults", { business: { code: 9, msg: "down for maintenance" } })).status, 200);
    assert.deepEqual((await push(emulator, "enterNotify", enter)).body, { code: 9, msg: "down for maintenance" });
    await control(emulator, "POST", "faults", { httpStatus: 503 });
    assert.equal((await push(emulator, "enterNotify", enter)).status, 503);
    await control(emulator, "DELETE", "faults");
    assert.equal((await push(emulator, "enterNotify", enter)).body.code, 200);
    const bad = await control(emulator, "POST", "faults", { hang: "always" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /hang must be true or false/);

    const bill = {
      parkCode: "TEST/1P1",
      recordNo: "R",
      plateNum: "粤C00001",
      carType: 9,
      carSubType: 91,
      enterTime: "2023-11-14 20:00:00",
      leaveTime: "2023-11-14 21:00:00",
      payableFee: 1,
      discountFee: 0,
      paidFee: 1,
      sweepCode: 0,
      plateId: "EX1",
    };
    assert.equal((await push(emulator, "preLeaveNotify", bill)).body.code, 0);
    await control(emulator, "POST", "plates", { plate: "粤C00001", behaviour: "frictionless" });
    const paid = await push(emulator, "preLeaveNotify", { ...bill, plateId: "EX2" });
    assert.equal(paid.body.code, 200);
    assert.deepEqual(Object.keys(paid.body.data as object).sort(), ["orderNo", "payTime", "payType"]);
    await control(emulator, "POST", "plates", { plate: "粤C00001", behaviour: { code: 3, msg: "blocked" } });
    assert.deepEqual((await push(emulator, "preLeaveNotify", { ...bill, plateId: "EX3" })).body, { code: 3, msg: "blocked" });
  }));

test("HTTP control: refuseForMs closes the socket and listens again by itself", () =>
  withEmulator(async (emulator) => {
    await control(emulator, "POST", "faults", { refuse: true, refuseForMs: 300 });
    await assert.rejects(
      () => push(emulator, "enterNotify", enter),
      (e: Error & { code?: string }) => e.code === "ECONNREFUSED",
    );
    await new Promise((resolve) => setTimeout(resolve, 450));
    assert.equal((await push(emulator, "enterNotify", enter)).body.code, 200);
  }));

test("waitFor resolves when a matching push arrives, and times out otherwise", () =>
  withEmulator(async (emulator) => {
    const waiting = emulator.waitFor({ service: "enterNotify", recordNo: "late" }, 2000);
    setTimeout(() => void push(emulator, "enterNotify", { ...enter, recordNo: "late" }), 50);
    assert.equal((await waiting).biz.recordNo, "late");
    await assert.rejects(() => emulator.waitFor({ recordNo: "never" }, 100), /no push matching/);
  }));

test("a timed hang holds pushes until the platform recovers, then answers them late (or drops them)", () =>
  withEmulator(async (emulator) => {
    emulator.setPlate("粤C00002", "frictionless");
    const bill = {
      parkCode: "TEST/1P1",
      recordNo: "R",
      plateNum: "粤C00002",
      carType: 9,
      carSubType: 91,
      enterTime: "2023-11-14 20:00:00",
      leaveTime: "2023-11-14 21:00:00",
      payableFee: 1,
      discountFee: 0,
      paidFee: 1,
      sweepCode: 0,
      plateId: "LATE1",
    };
    assert.equal((await control(emulator, "POST", "faults", { rules: [{ service: "preLeaveNotify", action: { kind: "hang", forMs: 300 } }] })).status, 200);
    const startedMs = performance.now();
    const late = await push(emulator, "preLeaveNotify", bill);
    const waitedMs = performance.now() - startedMs;
    assert.equal(late.body.code, 200, "the held bill is answered normally: paid");
    assert.ok(waitedMs >= 250, `held until the platform recovered (${waitedMs.toFixed(0)} ms)`);
    assert.equal(emulator.received({ plateId: "LATE1" }).length, 1, "the late-answered push was accepted");
    const afterMs = performance.now();
    assert.equal((await push(emulator, "preLeaveNotify", { ...bill, plateId: "LATE2" })).body.code, 200);
    assert.ok(performance.now() - afterMs < 200, "after recovery pushes are answered at once");

    await control(emulator, "POST", "faults", { hangForMs: 200, hangThen: "drop" });
    await assert.rejects(() => push(emulator, "preLeaveNotify", { ...bill, plateId: "LATE3" }), "the held push's connection is closed");
    assert.equal(emulator.received({ plateId: "LATE3" }).length, 0, "a dropped push is never accepted");
    const bad = await control(emulator, "POST", "faults", { hangThen: "later" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /hangThen/);
  }));

test("hostile requests: a bad request target or line, deep nesting and oversized bodies are refused; the emulator keeps serving", () =>
  withEmulator(async (emulator) => {
    const badTarget = await rawRequest(emulator.port, "POST http://[::1 HTTP/1.1\r\nhost: cloud\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    assert.equal(badTarget.status, 400, badTarget.bodyText);
    assert.deepEqual((badTarget.json as { error: { code: string } }).error.code, "E_BAD_URL");
    const badLine = await rawRequest(emulator.port, "POST / HTTP/1.1 junk\r\n\r\n");
    assert.equal(badLine.status, 400);
    assert.equal((badLine.json as { error: { code: string } }).error.code, "E_BAD_REQUEST");
    const deep = await rawRequest(emulator.port, requestBytes("POST", "/", { "content-type": "application/json" }, "[".repeat(60_000)));
    assert.equal(deep.status, 400);
    assert.equal((deep.json as { error: { code: string } }).error.code, "E_JSON_DEPTH");
    const deepControl = await rawRequest(emulator.port, requestBytes("POST", "/_emulator/faults", { "content-type": "application/json" }, `{"rules":${"[".repeat(100)}`));
    assert.equal(deepControl.status, 400);
    const large = await rawRequest(emulator.port, requestBytes("POST", "/", { "content-type": "application/json" }, `{"pad":"${"x".repeat(70_000)}"}`));
    assert.equal(large.status, 413);
    assert.equal((large.json as { error: { code: string } }).error.code, "E_TOO_LARGE");
    assert.deepEqual(emulator.faults(), {}, "no control request changed the faults");
    assert.equal(emulator.received().length, 0);
    assert.equal((await push(emulator, "enterNotify", enter)).body.code, 200, "still serving");
  }));
