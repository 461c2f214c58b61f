import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { App } from "../../src/app/app.js";
import { silentLogger } from "../../src/kernel/log.js";
import { encodeEnvelope } from "../../src/platform/envelope.js";
import { testConfig } from "../helpers/demo-config.js";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";
import { startEmulator, type Emulator } from "../../src/platform/emulator/emulator.js";

// The composition with a fleet link: lane events reach MQTT, a barrier command over MQTT moves
// the barrier, section-4 envelopes over MQTT get the HTTP handler's answer, a bad config push
// is rejected with its paths and changes nothing.
let broker: AedesBroker;
let emulator: Emulator;
let app: App;
let probe: MqttProbe;
const root = "lanekeeper/v1/demo-box-01";

before(async () => {
  broker = await startAedes();
  emulator = await startEmulator({ pid: "P100001", key: "0F1E2D3C4B5A69788796A5B4C3D2E1F0" });
  const config = testConfig((raw) => {
    raw.mqtt = { url: `mqtt://127.0.0.1:${broker.port}`, protocolVersion: 4 };
    raw.platform.baseUrl = emulator.url;
  });
  app = new App({ config, log: silentLogger(), apiPort: 0 });
  probe = await MqttProbe.connect(`mqtt://127.0.0.1:${broker.port}`);
  await probe.subscribe(`${root}/#`);
  await app.start();
  await until(() => app.fleet?.state === "connected", 5000, "fleet connected");
});

after(async () => {
  await app.stop();
  await probe.close();
  await emulator.stop();
  await broker.close();
});

test("lane events are published on evt/<type> with seq and boot", async () => {
  app.simGpio!.setInput("in1.loopA", 1);
  app.lanes.plateRead("in1", { plate: "粤A55555", atMs: Date.now(), source: "sim" });
  const allowed = await probe.waitFor((m) => m.topic === `${root}/evt/entry-allowed`, 5000, "entry-allowed event");
  const payload = allowed.json<{ v: number; seq: number; boot: number; data: { plate: string; recordNo: string } }>();
  assert.equal(payload.v, 1);
  assert.equal(payload.data.plate, "粤A55555");
  assert.match(payload.data.recordNo, /^in1_\d{17}$/);
  assert.ok(payload.seq > 0 && payload.boot >= 1);
  await probe.waitFor((m) => m.topic === `${root}/state/in1`, 5000, "retained lane state");
  app.simGpio!.setInput("in1.loopA", 0);
});

test("an open command over MQTT pulses the relay and is answered on res/open", async () => {
  app.simGpio!.clearHistory();
  await probe.publish(`${root}/cmd/open`, { v: 1, id: "cmd-open-1", expiresAt: Date.now() + 30_000, args: { laneId: "out1", operator: "noc", reason: "test" } });
  const res = await probe.waitFor((m) => m.topic === `${root}/res/open`, 5000, "res/open");
  assert.equal(res.json<{ status: string }>().status, "ok");
  assert.ok(app.simGpio!.outputHistory().some((c) => c.key === "out1.relayOpen" && c.level === 1));
  // The same id again is not re-run.
  app.simGpio!.clearHistory();
  await probe.publish(`${root}/cmd/open`, { v: 1, id: "cmd-open-1", expiresAt: Date.now() + 30_000, args: { laneId: "out1" } });
  const dup = await probe.waitFor((m) => m.topic === `${root}/res/open` && m.json<{ status: string }>().status === "duplicate", 5000, "duplicate");
  assert.ok(dup);
  assert.equal(app.simGpio!.outputHistory().filter((c) => c.key === "out1.relayOpen" && c.level === 1).length, 0);
});

test("a section-4 envelope on platform/req is answered on platform/res by the same handler", async () => {
  const envelope = encodeEnvelope({
    pid: "P100001",
    key: "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    serviceName: "queryFreeSpace",
    timestamp: String(Math.floor(Date.now() / 1000)),
    biz: { parkCode: "TEST/1P1" },
  });
  await probe.publish(`${root}/platform/req`, { id: "req-1", envelope: JSON.parse(envelope.bodyText) });
  const res = await probe.waitFor((m) => m.topic === `${root}/platform/res`, 5000, "platform/res");
  const body = res.json<{ id: string; response: { code: number; data: { totalSpaces: number; freeSpaces: number } } }>();
  assert.equal(body.id, "req-1");
  assert.equal(body.response.code, 200);
  assert.equal(body.response.data.totalSpaces, 50);
  assert.equal(body.response.data.freeSpaces, 50 - app.store.inParkCount());
});

test("an invalid config push is rejected with its paths and changes nothing", async () => {
  await probe.publish(`${root}/cfg/desired`, { v: 1, version: 7, config: { version: 1, deviceId: "bad id" } }, { retain: true });
  const reported = await probe.waitFor((m) => m.topic === `${root}/cfg/reported`, 5000, "cfg/reported");
  const body = reported.json<{ status: string; detail: Array<{ path: string }> }>();
  assert.equal(body.status, "rejected");
  assert.ok(body.detail.some((p) => p.path === "deviceId"));
  assert.ok(app.isReady());
  await probe.publish(`${root}/cfg/desired`, "", { retain: true });
});

test("info lists the jobs capability when the update agent registers its handler after the app was built", async () => {
  // The order of src/app/run.ts: the app (and with it info) first, the update agent's onJob after.
  app.fleet!.onJob(() => undefined);
  const late = await MqttProbe.connect(`mqtt://127.0.0.1:${broker.port}`);
  try {
    await late.subscribe(`${root}/info`);
    const info = await late.waitFor((m) => m.topic === `${root}/info` && m.json<{ capabilities: string[] }>().capabilities.includes("jobs"), 5000, "retained info with jobs");
    assert.equal(info.retain, true);
    const capabilities = info.json<{ capabilities: string[] }>().capabilities;
    assert.ok(capabilities.includes("cmd:open") && capabilities.includes("cfg-push") && capabilities.includes("platform-over-mqtt"), capabilities.join(", "));
  } finally {
    await late.close();
  }
});
