import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import iconv from "iconv-lite";
import { request } from "undici";
import { FakeClock } from "../../../helpers/fake-clock.js";
import { silentLogger } from "../../../../src/kernel/log.js";
import { HttpServer, isLoopback } from "../../../../src/api/http-server.js";
import {
  CameraPushCounters,
  buildAlarmInfoPlate,
  cameraPushBodyLimitBytes,
  decodePushBody,
  parseAlarmInfoPlate,
  registerCameraPushRoute,
  type CameraPushOptions,
} from "../../../../src/io/camera/http-push.js";
import type { PlateRead } from "../../../../src/io/camera/plate-read.js";

const fixtureBytes = (name: string) => readFileSync(new URL(`../../../fixtures/camera/${name}`, import.meta.url));
const fixture = (name: string) => decodePushBody(fixtureBytes(name));
const AT = 1_705_284_050_000;

function parsed(name: string): PlateRead {
  const result = parseAlarmInfoPlate(fixture(name), AT);
  assert.ok(result.ok, `fixture ${name} should parse: ${JSON.stringify(result)}`);
  return result.read;
}

// ---- the pure parser, on fixtures ----

test("documented shape", () => {
  assert.deepEqual(parsed("alarm-basic.json"), {
    plate: "京A12345",
    atMs: AT,
    source: "http",
    colorCode: 1,
    color: "blue",
    confidence: 99,
    plateId: "1234",
    triggerType: 8,
    plateType: 1,
    cameraAtMs: 1_705_284_046_708,
  });
  const result = parseAlarmInfoPlate(fixture("alarm-basic.json"), AT);
  assert.ok(result.ok);
  assert.deepEqual(result.device, { serialno: "c4e8cb0f-8d2d1b35", deviceName: "IVS", ipaddr: "192.168.1.100", channel: 0 });
});

test("numbers sent as strings read as numbers; the plate's separator dot is dropped", () => {
  assert.deepEqual(parsed("alarm-numbers-as-strings.json"), {
    plate: "粤BD12345",
    atMs: AT,
    source: "http",
    colorCode: 5,
    color: "green",
    confidence: 87,
    plateId: "88",
    triggerType: 2,
    plateType: 1,
    cameraAtMs: 1_705_284_100_250,
  });
});

test("embedded base64 images are ignored", () => {
  const body = fixtureBytes("alarm-with-image.json");
  assert.ok(body.length > 40_000, "the fixture really carries an image");
  const read = parsed("alarm-with-image.json");
  assert.equal(read.plate, "苏E12345");
  assert.equal(read.plateId, "2001");
  assert.ok(!JSON.stringify(read).includes("/9j/"), "no image data leaks into the read");
});

test("three-region plates joined by |: the mainland plate first, the others as altPlates", () => {
  const read = parsed("alarm-three-region.json");
  assert.equal(read.plate, "粤Z1A23港");
  assert.deepEqual(read.altPlates, ["AB1234", "MA1234"]);
  assert.equal(read.color, "black");
});

test("_无_ is a read without a plate", () => {
  const read = parsed("alarm-no-plate.json");
  assert.equal(read.plate, "");
  assert.equal(read.noPlate, true);
  assert.equal(read.plateType, 31);
});

test("isoffline = 1 is marked offline", () => {
  const read = parsed("alarm-offline.json");
  assert.equal(read.offline, true);
  assert.equal(read.plate, "沪C88888");
  assert.equal(read.cameraAtMs, 1_705_200_000_000);
});

test("older firmware: PlateResult directly under AlarmInfoPlate, no timestamp", () => {
  const read = parsed("alarm-old-firmware.json");
  assert.equal(read.plate, "浙A5B6C7");
  assert.equal(read.cameraAtMs, undefined);
});

test("a GBK body is decoded", () => {
  assert.equal(parsed("alarm-gbk.bin").plate, "川A9B8C7");
});

test("bad shapes are refused with a stable code", () => {
  const bad = parseAlarmInfoPlate(fixture("alarm-bad-license.json"), AT);
  assert.deepEqual(bad.ok ? "ok" : bad.code, "E_PLATE");
  for (const body of [null, 5, "x", [], {}, { AlarmInfoPlate: {} }, { AlarmInfoPlate: { result: { PlateResult: { license: 7 } } } }]) {
    const result = parseAlarmInfoPlate(body, AT);
    assert.equal(result.ok ? "ok" : result.code, "E_SHAPE", JSON.stringify(body));
  }
});

test("buildAlarmInfoPlate round-trips through the parser", () => {
  const body = buildAlarmInfoPlate({ plate: "京A12345", colorCode: 2, confidence: 90, plateId: "s1", atMs: AT, triggerType: 2 });
  const result = parseAlarmInfoPlate(JSON.parse(JSON.stringify(body)), AT + 5);
  assert.ok(result.ok);
  assert.deepEqual(result.read, {
    plate: "京A12345",
    atMs: AT + 5,
    source: "http",
    colorCode: 2,
    color: "yellow",
    confidence: 90,
    plateId: "s1",
    triggerType: 2,
    plateType: 1,
    cameraAtMs: AT,
  });
});

// ---- the route, on a real server ----

const REPLY = { Response_AlarmInfoPlate: { info: "no", content: "retransfer_stop" } };

async function withRoute(
  options: Partial<CameraPushOptions>,
  run: (ctx: { url: string; live: PlateRead[]; history: PlateRead[]; counters: CameraPushCounters; http: HttpServer }) => Promise<void>,
): Promise<void> {
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: "test-token-0123456789", openReads: "loopback" }, silentLogger());
  const live: PlateRead[] = [];
  const history: PlateRead[] = [];
  const counters = new CameraPushCounters();
  registerCameraPushRoute(http, {
    lanes: ["in1", "out1"],
    onRead: (laneId, read) => live.push({ ...read, laneId }),
    onHistory: (laneId, read) => history.push({ ...read, laneId }),
    counters,
    clock: new FakeClock(AT),
    ...options,
  });
  await http.start();
  try {
    await run({ url: `http://127.0.0.1:${http.address().port}`, live, history, counters, http });
  } finally {
    await http.stop();
  }
}

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await request(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, json: JSON.parse(text) };
}

test("route: a read is delivered to its lane and answered in the protocol's shape", async () => {
  await withRoute({}, async ({ url, live, counters }) => {
    const res = await post(`${url}/camera/in1`, fixtureBytes("alarm-basic.json"));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, REPLY);
    assert.equal(live.length, 1);
    assert.equal(live[0]!.laneId, "in1");
    assert.equal(live[0]!.plate, "京A12345");
    assert.equal(live[0]!.atMs, AT, "stamped with the box's clock");
    assert.equal(counters.status().lanes.in1!.live, 1);
  });
});

test("route: re-sends with the same plateid are answered but delivered once", async () => {
  await withRoute({}, async ({ url, live, counters }) => {
    for (let i = 0; i < 3; i++) assert.deepEqual((await post(`${url}/camera/out1`, fixtureBytes("alarm-basic.json"))).json, REPLY);
    // The same plateid on another lane is another camera's read.
    await post(`${url}/camera/in1`, fixtureBytes("alarm-basic.json"));
    assert.deepEqual(
      live.map((r) => r.laneId),
      ["out1", "in1"],
    );
    assert.equal(counters.status().lanes.out1!.duplicates, 2);
  });
});

test("route: dedupe memory is bounded per lane", async () => {
  await withRoute({ dedupeCapacity: 2 }, async ({ url, live }) => {
    const send = (id: number) => post(`${url}/camera/in1`, JSON.stringify(buildAlarmInfoPlate({ plate: "京A12345", plateId: id, atMs: AT })));
    await send(1);
    await send(2);
    await send(3); // forgets 1
    await send(1);
    await send(3); // still remembered
    assert.equal(live.length, 4);
  });
});

test("route: isoffline=1 goes to history, not to the lane; _无_ is a read without plate", async () => {
  await withRoute({}, async ({ url, live, history, counters }) => {
    assert.deepEqual((await post(`${url}/camera/in1`, fixtureBytes("alarm-offline.json"))).json, REPLY);
    assert.equal(live.length, 0);
    assert.equal(history.length, 1);
    assert.equal(history[0]!.offline, true);
    await post(`${url}/camera/in1`, fixtureBytes("alarm-no-plate.json"));
    assert.equal(live.length, 1);
    assert.equal(live[0]!.noPlate, true);
    const lane = counters.status().lanes.in1!;
    assert.equal(lane.history, 1);
    assert.equal(lane.noPlate, 1);
  });
});

test("route: bodies over 1.5 MiB are refused with 413; images just below the limit pass", async () => {
  await withRoute({}, async ({ url, live, counters, http }) => {
    const body = buildAlarmInfoPlate({ plate: "京A12345", plateId: "big", atMs: AT }) as any;
    body.AlarmInfoPlate.result.PlateResult.imageFile = "A".repeat(cameraPushBodyLimitBytes);
    const res = await post(`${url}/camera/in1`, JSON.stringify(body));
    assert.equal(res.status, 413);
    assert.deepEqual(res.json.Response_AlarmInfoPlate, REPLY.Response_AlarmInfoPlate);
    assert.equal(res.json.error.code, "E_TOO_LARGE");
    assert.equal(counters.status().lanes.in1!.rejected.tooLarge, 1);
    assert.equal(http.rejectionCounts()["POST /camera/:laneId"], 1);
    body.AlarmInfoPlate.result.PlateResult.imageFile = "A".repeat(cameraPushBodyLimitBytes - 1000);
    const ok = await post(`${url}/camera/in1`, JSON.stringify(body));
    assert.equal(ok.status, 200);
    assert.equal(live.length, 1);
  });
});

test("route: a configured key is required, in the URL or the x-camera-key header", async () => {
  await withRoute({ cameraKey: "cam-secret-1" }, async ({ url, live, counters }) => {
    const body = fixtureBytes("alarm-basic.json");
    const none = await post(`${url}/camera/in1`, body);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, "E_CAMERA_KEY");
    assert.deepEqual(none.json.Response_AlarmInfoPlate, REPLY.Response_AlarmInfoPlate);
    assert.equal((await post(`${url}/camera/in1?key=wrong`, body)).status, 401);
    assert.equal((await post(`${url}/camera/in1`, body, { "x-camera-key": "cam-secret-" })).status, 401);
    assert.equal(live.length, 0);
    assert.equal(counters.status().lanes.in1!.rejected.auth, 3);
    assert.equal((await post(`${url}/camera/in1?key=cam-secret-1`, body)).status, 200);
    assert.equal((await post(`${url}/camera/out1`, body, { "x-camera-key": "cam-secret-1" })).status, 200);
    assert.equal(live.length, 2);
  });
});

test("route: unknown lane → 404 in the same shape; bad bodies → 400; all counted", async () => {
  await withRoute({}, async ({ url, live, counters }) => {
    const unknown = await post(`${url}/camera/nope`, fixtureBytes("alarm-basic.json"));
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json.Response_AlarmInfoPlate, REPLY.Response_AlarmInfoPlate);
    assert.equal(unknown.json.error.code, "E_UNKNOWN_LANE");
    const notJson = await post(`${url}/camera/in1`, "{not json");
    assert.equal(notJson.status, 400);
    assert.deepEqual(notJson.json.Response_AlarmInfoPlate, REPLY.Response_AlarmInfoPlate);
    const noPlate = await post(`${url}/camera/in1`, fixtureBytes("alarm-bad-license.json"));
    assert.equal(noPlate.status, 400);
    assert.equal(noPlate.json.error.code, "E_PLATE");
    assert.equal(live.length, 0);
    const status = counters.status();
    assert.equal(status.unknownLane, 1);
    assert.deepEqual(status.lanes.in1!.rejected, { auth: 0, tooLarge: 0, badBody: 1, badRead: 1 });
    assert.equal(status.lanes.nope, undefined, "untrusted lane names do not grow the counters");
    // The lane still works after the rejections.
    assert.equal((await post(`${url}/camera/in1`, fixtureBytes("alarm-basic.json"))).status, 200);
    assert.equal(live.length, 1);
  });
});

test("route: a throwing listener does not fail the camera's request", async () => {
  await withRoute(
    {
      onRead: () => {
        throw new Error("lane exploded");
      },
    },
    async ({ url }) => {
      const res = await post(`${url}/camera/in1`, fixtureBytes("alarm-basic.json"));
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, REPLY);
    },
  );
});

test("route: replyInfo ok for installs where the camera drives the barrier", async () => {
  await withRoute({ replyInfo: "ok" }, async ({ url }) => {
    const res = await post(`${url}/camera/in1`, fixtureBytes("alarm-basic.json"));
    assert.deepEqual(res.json, { Response_AlarmInfoPlate: { info: "ok", content: "retransfer_stop" } });
  });
});

/** An address of this machine that is not loopback, so a connection to it is "from the network". */
function networkAddress(): string | undefined {
  const all = Object.values(networkInterfaces()).flat();
  return all.find((a) => a && !a.internal && a.family === "IPv4")?.address ?? all.find((a) => a && !a.internal && a.family === "IPv6" && !a.address.startsWith("fe80"))?.address;
}

test("route: without a camera key, pushes from the network are refused (403) and loopback ones accepted", async (t) => {
  const address = networkAddress();
  const http = new HttpServer({ host: address?.includes(":") ? "::" : "0.0.0.0", port: 0, token: "test-token-0123456789", openReads: "loopback" }, silentLogger());
  const live: PlateRead[] = [];
  const counters = new CameraPushCounters();
  registerCameraPushRoute(http, { lanes: ["in1"], onRead: (_laneId, read) => live.push(read), counters, clock: new FakeClock(AT) });
  await http.start();
  t.after(() => http.stop());
  const port = http.address().port;
  const local = await post(`http://127.0.0.1:${port}/camera/in1`, fixtureBytes("alarm-basic.json"));
  assert.equal(local.status, 200, "the box itself (loopback) may push without a key");
  assert.equal(live.length, 1);
  if (!address) {
    // A machine without any network interface: the rule itself, on the addresses it decides by.
    t.diagnostic("no non-loopback interface on this machine; checked the address rule only");
    assert.equal(isLoopback("192.0.2.7"), false);
    assert.equal(isLoopback("::ffff:127.0.0.1"), true);
    return;
  }
  const host = address.includes(":") ? `[${address}]` : address;
  const remote = await post(`http://${host}:${port}/camera/in1`, JSON.stringify(buildAlarmInfoPlate({ plate: "京A54321", plateId: "r1", atMs: AT })));
  assert.equal(remote.status, 403, JSON.stringify(remote.json));
  assert.equal(remote.json.error.code, "E_CAMERA_KEY_REQUIRED");
  assert.deepEqual(remote.json.Response_AlarmInfoPlate, REPLY.Response_AlarmInfoPlate, "the camera still gets its stop-resending answer");
  assert.equal(live.length, 1, "the network push reached no lane");
  assert.equal(counters.status().lanes.in1!.rejected.auth, 1);
});

test("route: a push nested too deep is refused with E_JSON_DEPTH before parsing, in UTF-8 and in GBK", async () => {
  await withRoute({}, async ({ url, live, counters }) => {
    const deep = await post(`${url}/camera/in1`, `{"AlarmInfoPlate":${"[".repeat(5000)}`);
    assert.equal(deep.status, 400);
    assert.equal(deep.json.error.code, "E_JSON_DEPTH");
    // In GBK, 乗 is 0x81 0x5C: its second byte is a backslash, which may make the streaming
    // count drift (here it swallows a closing quote); a real push still passes...
    const gbkBody = iconv.encode(JSON.stringify({ note: "乗", ...buildAlarmInfoPlate({ plate: "京A12345", plateId: "g1", atMs: AT }), tail: "乗乗\\[[[{{{" }), "gbk");
    const ok = await post(`${url}/camera/in1`, gbkBody);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(live.length, 1);
    // ...and the decoded text is checked exactly: a deep GBK body is refused all the same.
    const deepGbk = iconv.encode(`{"note":"乗","AlarmInfoPlate":${"[".repeat(40)}1${"]".repeat(40)}}`, "gbk");
    const refused = await post(`${url}/camera/in1`, deepGbk);
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, "E_JSON_DEPTH");
    assert.equal(counters.status().lanes.in1!.rejected.badBody, 2);
  });
});
