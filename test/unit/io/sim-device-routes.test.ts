import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { HttpServer } from "../../../src/api/http-server.js";
import { registerCameraPushRoute } from "../../../src/io/camera/http-push.js";
import type { PlateRead } from "../../../src/io/camera/plate-read.js";
import { LaneDevices } from "../../../src/io/lane-devices.js";
import type { PaymentCode } from "../../../src/io/scanner/code-parser.js";
import { SimSerialLink } from "../../../src/io/serial/sim-serial-link.js";
import { registerSimDeviceRoutes } from "../../../src/io/sim-device-routes.js";
import { testConfig } from "../../helpers/demo-config.js";

const TOKEN = "test-token-0123456789";

async function rig(run: (ctx: { url: string; devices: LaneDevices; reads: PlateRead[]; codes: PaymentCode[] }) => Promise<void>): Promise<void> {
  const config = testConfig();
  const clock = new FakeClock();
  const log = silentLogger();
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: TOKEN, openReads: "loopback" }, log);
  const devices = new LaneDevices(config, clock, log);
  const reads: PlateRead[] = [];
  const codes: PaymentCode[] = [];
  for (const camera of devices.cameras.values()) camera.onRead((r) => reads.push(r));
  for (const scanner of devices.scanners.values()) scanner.onCode((c) => codes.push(c));
  const receiver = registerCameraPushRoute(http, { lanes: config.lanes.map((l) => l.id), onRead: (_lane, r) => reads.push(r), clock, log });
  registerSimDeviceRoutes(http, { ...devices.simFeeds(config, receiver), displays: devices.displays, clock });
  for (const c of devices.components()) await c.start();
  await http.start();
  try {
    await run({ url: `http://127.0.0.1:${http.address().port}`, devices, reads, codes });
  } finally {
    await http.stop();
    for (const c of devices.components().reverse()) await c.stop();
  }
}

async function post(url: string, body: unknown, token: string | null = TOKEN): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await request(url, { method: "POST", body: JSON.stringify(body), headers });
  return { status: res.statusCode, json: JSON.parse(await res.body.text()) };
}

test("devices are built from the demo config: serial camera, scanner, displays", async () => {
  await rig(async ({ devices }) => {
    assert.deepEqual([...devices.cameras.keys()], ["out1"], "in1's camera is the HTTP push");
    assert.deepEqual([...devices.scanners.keys()], ["out1"]);
    assert.deepEqual([...devices.displays.keys()], ["in1", "out1"]);
    assert.ok(
      [...devices.links.values()].every((l) => l instanceof SimSerialLink),
      "no path → simulated",
    );
    const status = devices.status() as Record<string, { link: { state: string } }>;
    assert.deepEqual(Object.keys(status).sort(), ["cam-out1", "led-in1", "led-out1", "scan-out1"]);
    assert.ok(Object.values(status).every((s) => s.link.state === "up"));
  });
});

test("sim camera on a serial lane: the line goes through the link and the line parser", async () => {
  await rig(async ({ url, devices, reads }) => {
    const res = await post(`${url}/api/sim/camera/out1`, { plate: "京A12345", color: "blue", confidence: 95 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { ok: true, delivered: true });
    assert.equal(reads.length, 1);
    assert.deepEqual({ ...reads[0], atMs: 0 }, { plate: "京A12345", color: "blue", colorCode: 1, confidence: 95, atMs: 0, source: "serial", laneId: "out1" });
    const link = devices.links.get("cam-out1")!;
    // "京A12345,蓝,95\r\n" in GBK: 2 + 6 + 1 + 2 + 1 + 2 + 2 bytes.
    assert.equal(link.status().rxBytes, 16);
    // Bad input is refused by the same parser as a real camera's line.
    const bad = await post(`${url}/api/sim/camera/out1`, { plate: "HELLO" });
    assert.equal(bad.status, 422);
    assert.match(bad.json.error.message, /plate/);
    assert.equal(devices.cameras.get("out1")!.status().rejectedByReason.plate, 1);
    const noPlate = await post(`${url}/api/sim/camera/out1`, { plate: "" });
    assert.equal(noPlate.status, 200);
    assert.equal(reads.at(-1)!.noPlate, true);
  });
});

test("sim camera on an HTTP lane: an AlarmInfoPlate body through the push parser", async () => {
  await rig(async ({ url, reads }) => {
    assert.equal((await post(`${url}/api/sim/camera/in1`, { plate: "粤B12345", color: 5 })).status, 200);
    assert.equal((await post(`${url}/api/sim/camera/in1`, { plate: "粤B12345", color: 5 })).status, 200, "each sim read has its own plateid");
    assert.equal(reads.length, 2);
    assert.equal(reads[0]!.source, "http");
    assert.equal(reads[0]!.color, "green");
    assert.equal(reads[0]!.laneId, "in1");
    assert.notEqual(reads[0]!.plateId, reads[1]!.plateId);
  });
});

test("sim scanner: digits become a payment code; anything else is rejected and counted", async () => {
  await rig(async ({ url, devices, codes }) => {
    assert.equal((await post(`${url}/api/sim/scanner/out1`, { code: "134567890123456789" })).status, 200);
    assert.deepEqual(
      codes.map((c) => [c.laneId, c.code]),
      [["out1", "134567890123456789"]],
    );
    const bad = await post(`${url}/api/sim/scanner/out1`, { code: "12AB" });
    assert.equal(bad.status, 422);
    assert.equal(devices.scanners.get("out1")!.status().rejected, 1);
    assert.equal((await post(`${url}/api/sim/scanner/out1`, { code: "1\r\n2" })).status, 400);
    assert.equal((await post(`${url}/api/sim/scanner/in1`, { code: "134567890123456789" })).status, 404);
    assert.equal(codes.length, 1);
  });
});

test("sim routes need the token, validate bodies, and report a link that is down", async () => {
  await rig(async ({ url, devices }) => {
    assert.equal((await post(`${url}/api/sim/camera/out1`, { plate: "京A12345" }, null)).status, 401);
    assert.equal((await post(`${url}/api/sim/camera/out1`, { plate: 5 })).status, 400);
    assert.equal((await post(`${url}/api/sim/camera/out1`, { plate: "京A12345", color: "purple" })).status, 400);
    assert.equal((await post(`${url}/api/sim/camera/out1`, { plate: "京A12345", confidence: 101 })).status, 400);
    assert.equal((await post(`${url}/api/sim/camera/zz`, { plate: "京A12345" })).status, 404);
    (devices.links.get("cam-out1") as SimSerialLink).disconnect();
    const down = await post(`${url}/api/sim/camera/out1`, { plate: "京A12345" });
    assert.equal(down.status, 409);
    assert.equal(down.json.error.code, "E_LINK_DOWN");
  });
});

test("displays of the demo config show on their simulated boards, readable over the API", async () => {
  await rig(async ({ url, devices }) => {
    const display = devices.displays.get("out1")!;
    await display.show({ kind: "payCash", plate: "京A12345", feeFen: 700 });
    assert.deepEqual(display.shown().at(-1)?.lines, ["京A12345", "请现金缴费7.00元"]);
    assert.equal(display.shown().at(-1)?.voice, "请现金缴费7元");
    const res = await request(`${url}/api/sim/displays?limit=1`);
    const body = (await res.body.json()) as { displays: Record<string, { device: string; current: string[]; shown: Array<{ lines: string[]; voice?: string }> }> };
    assert.equal(res.statusCode, 200);
    assert.deepEqual(body.displays.out1!.current, ["京A12345", "请现金缴费7.00元"]);
    assert.equal(body.displays.out1!.shown.length, 1);
    assert.equal(body.displays.out1!.shown[0]!.voice, "请现金缴费7元");
    assert.equal(body.displays.in1!.device, "led-in1");
  });
});
