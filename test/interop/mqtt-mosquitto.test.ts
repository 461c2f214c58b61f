import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as mqttConnect, type MqttClient } from "mqtt";
import { silentLogger } from "../../src/kernel/log.js";
import { mqttConfigSchema, type MqttConfig } from "../../src/fleet/config.js";
import { FleetLink, type FleetLinkOptions } from "../../src/fleet/fleet-link.js";
import { registerBuiltinCommands } from "../../src/fleet/builtin-commands.js";
import { laneCommandArgsSchema, type EventPayload } from "../../src/fleet/index.js";
import { findMosquitto, startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";
import { haveOpenssl, makeTestCerts } from "../helpers/test-certs.js";

/**
 * The fleet link against a real mosquitto (MQTT 5) started as a plain child process on a
 * loopback port: the aedes round trips again, plus message expiry and MQTT 5 request/response
 * (response topic + correlation data).
 */

const binary = findMosquitto();
const skip = binary ? false : "mosquitto not installed; .ci/run installs it";

// On CI a missing broker is a broken image, not a reason to pass quietly.
if (!binary && process.env.CI) {
  test("mosquitto is installed on CI", () => {
    assert.fail("mosquitto not installed; .ci/run installs it, so CI without it is a broken image");
  });
}

const root = "lk/v1";
let broker: Mosquitto | undefined;
let seq = 0;

before(async () => {
  if (binary) broker = await startMosquitto(binary);
});
after(async () => {
  await broker?.close();
});

interface Rig {
  url: string;
  base: string;
  deviceId: string;
  probe: MqttProbe;
  /** The mqtt.js client of the link's current connection (to break its socket). */
  client(): MqttClient;
  link(overrides?: Partial<MqttConfig>, options?: Partial<FleetLinkOptions>): FleetLink;
}

async function rig(fn: (r: Rig) => Promise<void>): Promise<void> {
  const url = broker!.url;
  const deviceId = `mq-box-${++seq}`;
  const base = `${root}/${deviceId}`;
  const dir = await mkdtemp(join(tmpdir(), "fleet-mosq-"));
  const probe = await MqttProbe.connect(url, { protocolVersion: 5 });
  await probe.subscribe(`${base}/#`);
  const links: FleetLink[] = [];
  let current: MqttClient | undefined;
  const r: Rig = {
    url,
    base,
    deviceId,
    probe,
    client: () => current!,
    link(overrides = {}, options = {}) {
      const link = new FleetLink({
        config: mqttConfigSchema.parse({ url, protocolVersion: 5, topicRoot: root, ...overrides }),
        deviceId,
        stateDir: join(dir, "fleet"),
        log: silentLogger(),
        random: () => 0.05,
        version: "2.0.0",
        connect: (u, o) => (current = mqttConnect(u, o)),
        ...options,
      });
      links.push(link);
      return link;
    },
  };
  try {
    await fn(r);
  } finally {
    for (const link of links) await link.stop();
    await r.probe.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const connected = (link: FleetLink): Promise<void> => until(() => link.state === "connected", 5000, "the link to connect");
let ids = 0;
const cmdId = (): string => `m-${++ids}`;

test("MQTT 5: retained status, the lost will on an abrupt socket close, offline on stop", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link();
    await link.start();
    await connected(link);
    assert.equal(link.effectiveProtocolVersion, 5, "no fallback against an MQTT 5 broker");
    const online = await r.probe.waitFor((m) => m.topic === `${r.base}/status` && m.json().state === "online");
    assert.equal(online.json().boot, 1);

    const late = await MqttProbe.connect(r.url, { protocolVersion: 5 });
    await late.subscribe(`${r.base}/status`);
    const retained = await late.waitFor((m) => m.topic === `${r.base}/status`);
    assert.equal(retained.retain, true);
    await late.close();

    r.client().stream.destroy();

    await r.probe.waitFor((m) => m.topic === `${r.base}/status` && m.json().state === "lost");
    await r.probe.waitFor((m) => m.topic === `${r.base}/status` && m.json().state === "online" && m !== online, 5000, "online again");
    await connected(link);
    await link.stop();
    await r.probe.waitFor((m) => m.topic === `${r.base}/status` && m.json().state === "offline");
  });
});

test("MQTT 5: command round trips, with response topic and correlation data honoured", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link();
    const opened: unknown[] = [];
    link.registerCommand(
      "open",
      laneCommandArgsSchema,
      async (args) => {
        opened.push(args);
        return { barrier: "opening" };
      },
      { requiresExpiresAt: true },
    );
    registerBuiltinCommands(link, {});
    await link.start();
    await connected(link);
    const res = `${r.base}/res/open`;
    const expiresAt = Date.now() + 60_000;

    // Default route: res/<name>, with the correlation data echoed.
    const ok = cmdId();
    await r.probe.publish(`${r.base}/cmd/open`, { v: 1, id: ok, expiresAt, args: { laneId: "out1" } }, { properties: { correlationData: Buffer.from("corr-ok") } });
    const okMsg = await r.probe.waitFor((m) => m.topic === res && m.json().id === ok);
    assert.equal(okMsg.json().status, "ok");
    assert.equal(okMsg.properties?.correlationData?.toString(), "corr-ok");

    // A response topic of the requester's choosing wins.
    await r.probe.subscribe("backend/replies/#");
    const routed = cmdId();
    await r.probe.publish(
      `${r.base}/cmd/open`,
      { v: 1, id: routed, expiresAt, args: { laneId: "in1" } },
      { properties: { responseTopic: "backend/replies/7", correlationData: Buffer.from([0, 1, 2, 255]) } },
    );
    const routedMsg = await r.probe.waitFor((m) => m.topic === "backend/replies/7");
    assert.equal(routedMsg.json().id, routed);
    assert.deepEqual([...(routedMsg.properties?.correlationData ?? [])], [0, 1, 2, 255], "binary correlation data comes back byte for byte");

    await r.probe.publish(`${r.base}/cmd/open`, { v: 1, id: ok, expiresAt, args: { laneId: "out1" } });
    await r.probe.waitFor((m) => m.topic === res && m.json().id === ok && m.json().status === "duplicate");
    const expired = cmdId();
    await r.probe.publish(`${r.base}/cmd/open`, { v: 1, id: expired, expiresAt: Date.now() - 1, args: { laneId: "out1" } });
    const expiredMsg = (await r.probe.waitFor((m) => m.topic === res && m.json().id === expired)).json();
    assert.deepEqual([expiredMsg.status, expiredMsg.error], ["rejected", "expired"]);
    const invalid = cmdId();
    await r.probe.publish(`${r.base}/cmd/open`, { v: 1, id: invalid, expiresAt, args: { laneId: ["x"] } });
    assert.equal((await r.probe.waitFor((m) => m.topic === res && m.json().id === invalid)).json().status, "error");
    const nonJson = cmdId();
    await r.probe.publish(`${r.base}/cmd/open`, `{"id":"${nonJson}"`);
    assert.equal((await r.probe.waitFor((m) => m.topic === res && m.json().id === nonJson)).json().error, "payload is not JSON");
    assert.equal(opened.length, 2);

    // health-now: answered, and published on `health` with a message expiry.
    const health = cmdId();
    await r.probe.publish(`${r.base}/cmd/health-now`, { v: 1, id: health });
    const healthRes = (await r.probe.waitFor((m) => m.topic === `${r.base}/res/health-now` && m.json().id === health)).json();
    assert.equal((healthRes.data as { links: Record<string, string> }).links.mqtt, "up");
    const healthMsg = await r.probe.waitFor((m) => m.topic === `${r.base}/health`);
    assert.ok((healthMsg.properties?.messageExpiryInterval ?? 0) > 0, "health carries a message expiry");
  });
});

test("MQTT 5: a retained command or job published while the box is online is refused at once (retain-as-published)", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link();
    const closed: unknown[] = [];
    const jobs: string[] = [];
    link.registerCommand("close", laneCommandArgsSchema, async (args) => closed.push(args), { requiresExpiresAt: true });
    link.onJob((jobId) => void jobs.push(jobId));
    await link.start();
    await connected(link);
    // Subscribed: the link answers a command only after its SUBACK, so wait for one answer first.
    const ready = cmdId();
    await r.probe.publish(`${r.base}/cmd/close`, { v: 1, id: ready, expiresAt: Date.now() + 60_000, args: { laneId: "in1" } });
    await r.probe.waitFor((m) => m.topic === `${r.base}/res/close` && m.json().id === ready);
    assert.equal(closed.length, 1);

    const id = cmdId();
    await r.probe.publish(`${r.base}/cmd/close`, { v: 1, id, expiresAt: Date.now() + 60_000, args: { laneId: "out1" } }, { retain: true });
    const refused = (await r.probe.waitFor((m) => m.topic === `${r.base}/res/close` && m.json().id === id)).json();
    assert.deepEqual([refused.status, refused.code, refused.error], ["rejected", "E_CMD_RETAINED", "retained"]);
    assert.equal(closed.length, 1, "the retained command did not run");

    await r.probe.publish(`${r.base}/jobs/upd-r1`, { v: 1, type: "update" }, { retain: true });
    const job = (await r.probe.waitFor((m) => m.topic === `${r.base}/jobs/upd-r1/status`)).json();
    assert.deepEqual([job.status, job.detail], ["rejected", "retained jobs are not run"]);
    assert.deepEqual(jobs, []);

    // Clearing both (empty retained payloads, delivered with the retain flag kept) is silent.
    await r.probe.publish(`${r.base}/cmd/close`, "", { retain: true });
    await r.probe.publish(`${r.base}/jobs/upd-r1`, "", { retain: true });
    await until(() => (link.stats().cmdEmpty ?? 0) === 1 && (link.stats().jobEmpty ?? 0) === 1, 3000, "the clears to arrive");
    assert.equal(r.probe.on(`${r.base}/jobs/upd-r1/status`).length, 1);
    assert.equal(r.probe.on(`${r.base}/res/close`).length, 2);
    assert.equal(link.stats().cmdRetained, 1);
    assert.equal(link.stats().jobRetained, 1);
  });
});

test("MQTT 3.1.1 on mosquitto: without retain-as-published a live retained command runs once, and its stored copy is refused later", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link({ protocolVersion: 4 });
    const closed: unknown[] = [];
    link.registerCommand("close", laneCommandArgsSchema, async (args) => closed.push(args), { requiresExpiresAt: true });
    await link.start();
    await connected(link);
    const ready = cmdId();
    await r.probe.publish(`${r.base}/cmd/close`, { v: 1, id: ready, expiresAt: Date.now() + 60_000, args: { laneId: "in1" } });
    await r.probe.waitFor((m) => m.topic === `${r.base}/res/close` && m.json().id === ready);

    const id = cmdId();
    await r.probe.publish(`${r.base}/cmd/close`, { v: 1, id, expiresAt: Date.now() + 60_000, args: { laneId: "out1" } }, { retain: true });
    const first = await r.probe.waitFor((m) => m.topic === `${r.base}/res/close` && m.json().id === id);
    assert.equal(first.json().status, "ok", "3.1.1 forwards it live without the flag: the box cannot tell");
    r.client().stream.destroy();
    // (The first answer may come twice: one not yet acknowledged when the socket broke is re-sent.)
    const again = await r.probe.waitFor((m) => m.topic === `${r.base}/res/close` && m.json().id === id && m.json().status !== "ok", 5000, "the stored copy's answer");
    assert.deepEqual([again.json().status, again.json().code], ["rejected", "E_CMD_RETAINED"]);
    assert.equal(closed.length, 2, "the retained command ran once, never again");
    await r.probe.publish(`${r.base}/cmd/close`, "", { retain: true });
  });
});

test("MQTT 5: config push applied and rejected", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link();
    link.onConfigDesired(async (_version, config) =>
      typeof config.lot === "object" ? { status: "applied", detail: "ok" } : { status: "rejected", detail: [{ path: "lot", message: "is required (object)" }] },
    );
    await link.start();
    await connected(link);
    await r.probe.publish(`${r.base}/cfg/desired`, { v: 1, version: 5, config: { lot: {} } }, { retain: true });
    const applied = (await r.probe.waitFor((m) => m.topic === `${r.base}/cfg/reported` && m.json().version === 5)).json();
    assert.equal(applied.status, "applied");
    await r.probe.publish(`${r.base}/cfg/desired`, { v: 1, version: 6, config: {} }, { retain: true });
    const rejected = (await r.probe.waitFor((m) => m.topic === `${r.base}/cfg/reported` && m.json().version === 6)).json();
    assert.deepEqual([rejected.status, rejected.detail], ["rejected", [{ path: "lot", message: "is required (object)" }]]);
    assert.equal(link.configVersion, 5);
    await r.probe.publish(`${r.base}/cfg/desired`, "", { retain: true }); // leave the broker clean
  });
});

test("MQTT 5: raw platform envelopes answered on the response topic with the correlation data", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link();
    const received: string[] = [];
    link.onPlatformRequest(async (raw) => {
      received.push(raw);
      return { code: 200, msg: "成功" };
    });
    await link.start();
    await connected(link);
    await r.probe.subscribe("platform/replies/#");
    const envelope = '{"pid":"P1","serviceName":"queryFee","sign":"X","timestamp":"1700000000","bizContent":{"plate":"粤B1"}}';
    await r.probe.publish(`${r.base}/platform/req`, envelope, { properties: { responseTopic: "platform/replies/box", correlationData: Buffer.from("req-77") } });
    const reply = await r.probe.waitFor((m) => m.topic === "platform/replies/box");
    assert.deepEqual(reply.json(), { code: 200, msg: "成功" });
    assert.equal(reply.properties?.correlationData?.toString(), "req-77");
    assert.equal(received[0], envelope, "the handler sees the raw text");

    // The wrapped form works on MQTT 5 too (platform/res by default).
    await r.probe.publish(`${r.base}/platform/req`, { id: "w-1", envelope });
    const wrapped = await r.probe.waitFor((m) => m.topic === `${r.base}/platform/res` && m.json().id === "w-1");
    assert.deepEqual(wrapped.json().response, { code: 200, msg: "成功" });
  });
});

test("MQTT 5: events carry a message expiry, and an expired event is not delivered late", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link({ eventExpiryS: 1 });
    await link.start();
    await connected(link);
    const live = await (async () => {
      link.publishEvent("tailgate", { n: "live" });
      return r.probe.waitFor((m) => m.topic === `${r.base}/evt/tailgate`);
    })();
    const expiry = live.properties?.messageExpiryInterval;
    assert.ok(expiry !== undefined && expiry >= 0 && expiry <= 1, `expiry ${expiry}`);

    // A backend with a persistent session that is away: what expires meanwhile is dropped by the broker.
    const sessionOptions = { protocolVersion: 5 as const, clean: false, clientId: `backend-${r.deviceId}`, properties: { sessionExpiryInterval: 300 } };
    const backend = await MqttProbe.connect(r.url, sessionOptions);
    await backend.subscribe(`${r.base}/evt/#`);
    await backend.close();
    const sentBefore = link.stats().eventsSent ?? 0;
    link.publishEvent("tailgate", { n: "old" });
    await until(() => (link.stats().eventsSent ?? 0) > sentBefore, 3000, "the old event to be acknowledged");
    await new Promise((resolve) => setTimeout(resolve, 2200));
    link.publishEvent("tailgate", { n: "new" });
    await until(() => (link.stats().eventsSent ?? 0) > sentBefore + 1, 3000, "the new event to be acknowledged");
    const back = await MqttProbe.connect(r.url, sessionOptions);
    try {
      await back.waitFor((m) => m.json<EventPayload>().data.n === "new", 3000, "the unexpired event");
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(
        back.messages.map((m) => m.json<EventPayload>().data.n),
        ["new"],
        "the expired event was not delivered",
      );
    } finally {
      await back.client.endAsync(true, { properties: { sessionExpiryInterval: 0 } }).catch(() => undefined);
    }
  });
});

test("MQTT 5: events spooled while mosquitto is down arrive in order after it restarts", { skip }, async () => {
  await rig(async (r) => {
    const link = r.link({}, { random: () => 0.99 });
    await link.start();
    await connected(link);
    link.publishEvent("vehicle-left", { n: 0 });
    await r.probe.waitFor((m) => m.topic.startsWith(`${r.base}/evt/`));
    await r.probe.close();
    await broker!.stop();
    await until(() => link.state !== "connected", 3000, "the link to notice");
    for (let i = 1; i <= 25; i++) link.publishEvent("vehicle-entered", { n: i });
    assert.ok(link.stats().spoolDepth >= 25);
    await broker!.start();
    r.probe = await MqttProbe.connect(r.url, { protocolVersion: 5 });
    await r.probe.subscribe(`${r.base}/evt/#`);
    await r.probe.waitFor(() => r.probe.messages.length >= 25, 8000, "the spooled events");
    const ns = r.probe.messages.map((m) => m.json<EventPayload>().data.n);
    assert.deepEqual(
      ns,
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
  });
});

const skipTls = skip || ((await haveOpenssl()) ? false : "openssl CLI not installed (needed to make test certificates)");

test("MQTT 5 over TLS: mosquitto requires the box's client certificate and takes its CN as the username", { skip: skipTls }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "fleet-mosq-tls-"));
  const certs = await makeTestCerts(dir);
  const tlsBroker = await startMosquitto(binary!, { tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
  const links: FleetLink[] = [];
  const link = (files: { certFile?: string; keyFile?: string }, deviceId: string): FleetLink => {
    const made = new FleetLink({
      config: mqttConfigSchema.parse({ url: tlsBroker.url, protocolVersion: 5, topicRoot: root, caFile: certs.caFile, ...files }),
      deviceId,
      stateDir: join(dir, deviceId),
      log: silentLogger(),
      random: () => 0.05,
      version: "2.0.0",
    });
    links.push(made);
    return made;
  };
  // The probe is a client like any other here: it shows a certificate too.
  const probe = await MqttProbe.connect(tlsBroker.url, {
    protocolVersion: 5,
    ca: await readFile(certs.caFile),
    cert: await readFile(certs.clientCertFile),
    key: await readFile(certs.clientKeyFile),
  });
  try {
    // Retain-as-published: the live status message keeps its retain flag.
    await probe.subscribe(`${root}/#`, { rap: true });
    const box = link({ certFile: certs.clientCertFile, keyFile: certs.clientKeyFile }, "box-1");
    await box.start();
    await connected(box);
    assert.equal(box.effectiveProtocolVersion, 5);
    const online = await probe.waitFor((m) => m.topic === `${root}/box-1/status` && m.json().state === "online");
    assert.equal(online.retain, true);

    // Without a client certificate the handshake is refused: never connected, retried.
    const anonymous = link({}, "box-2");
    await anonymous.start();
    await until(() => (anonymous.stats().connectAttempts ?? 0) >= 2, 5000, "a retry after the TLS refusal");
    assert.notEqual(anonymous.state, "connected");
    assert.equal(probe.messages.filter((m) => m.topic.startsWith(`${root}/box-2/`)).length, 0, "nothing of box-2 reached the broker");
  } finally {
    for (const made of links) await made.stop();
    await probe.close();
    await tlsBroker.close();
    await rm(dir, { recursive: true, force: true });
  }
});
