import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { z } from "zod";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { mqttConfigSchema, type MqttConfig } from "../../../src/fleet/config.js";
import { FleetLink, type FleetLinkOptions } from "../../../src/fleet/fleet-link.js";
import { registerBuiltinCommands } from "../../../src/fleet/builtin-commands.js";
import { FleetError, healthPayloadSchema, laneStatePayloadSchema, type EventPayload } from "../../../src/fleet/index.js";
import { scriptedConnect, type ScriptedClient } from "../../helpers/scripted-mqtt-client.js";

/** The fleet link's offline behaviour on fake time, with a scripted client instead of a broker. */

const base = "lk/box-1";

interface Fixture {
  clock: FakeClock;
  link: FleetLink;
  clients: ScriptedClient[];
  /** The client of the latest attempt. */
  last(): ScriptedClient;
}

async function fixture(fn: (f: Fixture) => Promise<void>, config: Partial<MqttConfig> = {}, options: Partial<FleetLinkOptions> = {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "fleet-link-"));
  const clock = new FakeClock();
  const scripted = scriptedConnect();
  const link = new FleetLink({
    config: mqttConfigSchema.parse({ url: "mqtt://127.0.0.1:1", protocolVersion: 5, topicRoot: "lk", healthIntervalS: 5, ...config }),
    deviceId: "box-1",
    stateDir: dir,
    log: silentLogger(),
    clock,
    random: () => 0.5,
    version: "9.9.9",
    connect: scripted.connect,
    ...options,
  });
  try {
    await fn({ clock, link, clients: scripted.clients, last: () => scripted.clients.at(-1)! });
  } finally {
    await link.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Fake time for the timers, but the spool and the command ids are real files: advance the clock
 * by nothing and let real IO finish until `check` holds.
 */
async function settle(clock: FakeClock, check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  for (;;) {
    await clock.advance(0);
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const eventsOn = (client: ScriptedClient): EventPayload[] => client.published.filter((p) => p.topic.startsWith(`${base}/evt/`)).map((p) => JSON.parse(p.payload) as EventPayload);

test("publishEvent before start is a wiring error with a stable code", async () => {
  await fixture(async ({ link }) => {
    assert.throws(
      () => link.publishEvent("tailgate", {}),
      (error: unknown) => error instanceof FleetError && error.code === "E_FLEET_NOT_STARTED",
    );
    await link.start();
    assert.throws(
      () => link.publishEvent("Bad Type", {}),
      (error: unknown) => error instanceof FleetError && error.code === "E_FLEET_BAD_NAME",
    );
    assert.throws(
      () => link.publishEvent("payment", { feeFen: 10n }),
      (error: unknown) => error instanceof FleetError && error.code === "E_FLEET_BAD_PAYLOAD",
    );
    assert.equal(link.publishEvent("payment", { feeFen: 500 }).seq, 1, "a refused event does not use up a seq");
  });
});

test("the connect options: MQTT 5, clean start, no session, will `lost` retained on status", async () => {
  await fixture(async ({ link, clock, last }) => {
    await link.start();
    await clock.advance(0);
    const options = last().options;
    assert.equal(options.protocolVersion, 5);
    assert.equal(options.clean, true);
    assert.equal(options.reconnectPeriod, 0);
    assert.equal(options.queueQoSZero, false);
    assert.deepEqual(options.properties, { sessionExpiryInterval: 0, maximumPacketSize: 1024 * 1024 });
    assert.equal(options.will?.topic, `${base}/status`);
    assert.equal(options.will?.retain, true);
    assert.equal(options.will?.qos, 1);
    assert.deepEqual({ ...JSON.parse(String(options.will?.payload)), ts: 0 }, { v: 1, state: "lost", boot: 1, version: "9.9.9", configVersion: 0, ts: 0 });
  });
});

test("offline events are spooled; unacknowledged in-flight events are re-sent first, all in order", async () => {
  await fixture(async ({ link, clock, clients, last }) => {
    await link.start();
    await clock.advance(0);
    link.publishEvent("vehicle-entered", { n: 1 }); // still connecting: spooled
    assert.equal(link.stats().spoolDepth, 1);
    last().accept();
    await settle(clock, () => link.stats().spoolDepth === 0 && eventsOn(clients[0]!).length === 1, "the spool to drain");

    clients[0]!.autoAck = false; // the broker stops answering
    link.publishEvent("vehicle-left", { n: 2 });
    link.publishEvent("vehicle-left", { n: 3 });
    await settle(clock, () => eventsOn(clients[0]!).length === 3, "2 and 3 on the wire");
    assert.deepEqual(
      eventsOn(clients[0]!).map((e) => e.data.n),
      [1, 2, 3],
    );
    clients[0]!.drop();
    await clock.advance(0);
    link.publishEvent("payment", { n: 4 });
    assert.equal(link.stats().spoolDepth, 3, "2 and 3 went back to the spool, 4 joined them");

    await clock.advance(1000); // reconnect (failures 1, random 0.5 → 500 ms)
    assert.equal(clients.length, 2);
    last().accept();
    await settle(clock, () => eventsOn(clients[1]!).length >= 3 && link.stats().spoolDepth === 0, "the re-send");
    assert.deepEqual(
      eventsOn(clients[1]!).map((e) => e.data.n),
      [2, 3, 4],
    );
    assert.deepEqual(
      eventsOn(clients[1]!).map((e) => e.seq),
      [2, 3, 4],
    );
    assert.equal(link.stats().spoolDepth, 0);
    assert.equal(clients[1]!.published.find((p) => p.topic.includes("/evt/"))?.options.properties?.messageExpiryInterval, 7 * 86_400);
  });
});

test("an overflowing spool drops the oldest, counts them, and says so in an events-dropped event", async () => {
  await fixture(
    async ({ link, clock, last }) => {
      await link.start();
      await clock.advance(0);
      for (let n = 1; n <= 15; n++) link.publishEvent("tailgate", { n });
      assert.equal(link.stats().spoolDepth, 10);
      assert.equal(link.stats().spoolDropped, 5);
      last().accept();
      await settle(clock, () => eventsOn(last()).length >= 11, "the drain");
      const sent = eventsOn(last());
      assert.deepEqual(
        sent.filter((e) => e.type === "tailgate").map((e) => e.data.n),
        [6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      );
      assert.equal(sent[0]?.type, "events-dropped", "the gap is announced first, outside the full spool");
      assert.deepEqual(sent[0]?.data, { count: 5, totalSinceStart: 5, reason: "offline spool full" });
      assert.equal(sent[0]?.seq, 16);
      assert.equal(link.stats().spoolDropped, 5, "announcing did not drop another");
    },
    { spoolMaxEvents: 10 },
  );
});

test("health: published every interval with the link's counters; dropped and counted while offline", async () => {
  await fixture(
    async ({ link, clock, last }) => {
      await link.start();
      await clock.advance(0);
      last().accept();
      await clock.advance(5000);
      const health = last().published.filter((p) => p.topic === `${base}/health`);
      assert.equal(health.length, 1);
      assert.equal(health[0]!.options.qos, 0);
      assert.equal(health[0]!.options.retain, false);
      assert.equal(health[0]!.options.properties?.messageExpiryInterval, 10);
      const payload = healthPayloadSchema.parse(JSON.parse(health[0]!.payload));
      assert.equal(payload.links.mqtt, "up");
      assert.equal(payload.fleet.spoolDepth, 0);
      assert.ok(payload.memory.rssBytes > 0);

      last().drop();
      await clock.advance(0);
      await clock.advance(5000);
      assert.equal(link.stats().qos0Dropped, 1);
    },
    {},
    { healthSource: () => ({ outbox: { depth: 3, oldestAgeS: 12, parked: 1 }, clockSynced: true, links: { platform: "up" } }) },
  );
});

test("the health source's sections reach the payload", async () => {
  await fixture(
    async ({ link, clock, last }) => {
      await link.start();
      last().accept();
      await clock.advance(0);
      const payload = await link.publishHealth();
      assert.deepEqual(payload.outbox, { depth: 3, oldestAgeS: 12, parked: 1 });
      assert.deepEqual(payload.links, { platform: "down", mqtt: "up" });
      assert.equal(payload.clockSynced, false);
      assert.deepEqual(payload.storeWarnings, ["history: fell back to generation 2"]);
    },
    {},
    {
      healthSource: () => ({
        outbox: { depth: 3, oldestAgeS: 12, parked: 1 },
        clockSynced: false,
        links: { platform: "down" },
        storeWarnings: ["history: fell back to generation 2"],
      }),
    },
  );
});

test("retained latest values (status, info, lane state) are re-sent on every connect", async () => {
  await fixture(async ({ link, clock, clients, last }) => {
    link.registerCommand("open", laneArgs(), async () => "ok", { requiresExpiresAt: true });
    await link.start();
    await clock.advance(0);
    link.publishInfo({ hardware: { board: "pi4" }, lanes: [{ id: "in1", direction: "in" }], capabilities: ["camera-http"] });
    link.publishLaneState("in1", { barrier: "closed", loops: { loopA: false, loopB: false }, pending: null });
    last().accept();
    await clock.advance(0);
    clients[0]!.drop();
    await clock.advance(1000);
    last().accept();
    await clock.advance(0);
    for (const client of clients) {
      const topics = client.published.filter((p) => p.options.retain).map((p) => p.topic);
      assert.deepEqual(topics, [`${base}/status`, `${base}/info`, `${base}/state/in1`]);
    }
    const info = clients[1]!.payloadsOn(`${base}/info`)[0]!;
    assert.deepEqual(info.capabilities, ["camera-http", "cmd:open"]);
    assert.equal(info.deviceId, "box-1");
    const state = laneStatePayloadSchema.parse(clients[1]!.payloadsOn(`${base}/state/in1`)[0]);
    assert.equal(state.barrier, "closed");
    assert.deepEqual(clients[1]!.subscribed, [`${base}/cmd/+`, `${base}/cfg/desired`, `${base}/jobs/+`, `${base}/platform/req`], "re-subscribed on the new connection");
  });
});

test("an answer produced while offline is held and sent after the reconnect", async () => {
  await fixture(async ({ link, clock, clients, last }) => {
    let release: (() => void) | undefined;
    link.registerCommand("slow", strictEmpty(), () => new Promise((resolve) => (release = () => resolve({ done: true }))));
    await link.start();
    last().accept();
    await clock.advance(0);
    clients[0]!.deliver(`${base}/cmd/slow`, { v: 1, id: "s-1" });
    await settle(clock, () => release !== undefined, "the handler to start");
    clients[0]!.drop();
    await clock.advance(0);
    release!();
    await clock.advance(0);
    assert.equal(link.stats().offlineAnswers, 1);
    await clock.advance(1000);
    last().accept();
    await settle(clock, () => clients[1]!.payloadsOn(`${base}/res/slow`).length > 0, "the held answer");
    const answers = clients[1]!.payloadsOn(`${base}/res/slow`);
    assert.deepEqual(
      answers.map((a) => [a.id, a.status]),
      [["s-1", "ok"]],
    );
  });
});

test("a command handler that hangs is answered with an error after its timeout", async () => {
  await fixture(async ({ link, clock, last }) => {
    let started = false;
    link.registerCommand(
      "hang",
      strictEmpty(),
      () => {
        started = true;
        return new Promise(() => undefined);
      },
      { timeoutMs: 2000 },
    );
    await link.start();
    last().accept();
    await clock.advance(0);
    last().deliver(`${base}/cmd/hang`, { v: 1, id: "h-1" });
    await settle(clock, () => started, "the handler to start");
    await clock.advance(1999);
    assert.equal(last().payloadsOn(`${base}/res/hang`).length, 0);
    await clock.advance(1);
    await settle(clock, () => last().payloadsOn(`${base}/res/hang`).length > 0, "the timeout answer");
    const [answer] = last().payloadsOn(`${base}/res/hang`);
    assert.equal(answer?.status, "error");
    assert.match(String(answer?.error), /E_FLEET_COMMAND_TIMEOUT/);
  });
});

test("built-ins: restart runs only after its answer was acknowledged; set-log-level uses the hook; absent hooks are unknown", async () => {
  await fixture(async ({ link, clock, last }) => {
    const calls: string[] = [];
    const names = registerBuiltinCommands(link, {
      restart: (args) => void calls.push(`restart ${args.reason ?? ""}`),
      setLogLevel: (level) => void calls.push(`level ${level}`),
    });
    assert.deepEqual(names, ["health-now", "last-events", "set-log-level", "restart"]);
    await link.start();
    last().accept();
    await clock.advance(0);
    const client = last();
    client.autoAck = false;
    client.deliver(`${base}/cmd/restart`, { v: 1, id: "r-1", expiresAt: clock.now() + 10_000, args: { reason: "update" } });
    await settle(clock, () => client.published.some((p) => p.topic === `${base}/res/restart`), "the restart answer");
    const answer = client.published.find((p) => p.topic === `${base}/res/restart`);
    assert.equal(JSON.parse(answer!.payload).status, "ok");
    assert.deepEqual(calls, [], "not before the broker acknowledged the answer");
    answer!.ack();
    await settle(clock, () => calls.length > 0, "the restart hook");
    assert.deepEqual(calls, ["restart update"]);

    client.autoAck = true;
    client.deliver(`${base}/cmd/set-log-level`, { v: 1, id: "l-1", args: { level: "debug" } });
    client.deliver(`${base}/cmd/set-log-level`, { v: 1, id: "l-2", args: { level: "loud" } });
    client.deliver(`${base}/cmd/retry-parked-outbox`, { v: 1, id: "o-1" });
    await settle(clock, () => client.payloadsOn(`${base}/res/set-log-level`).length === 2 && client.payloadsOn(`${base}/res/retry-parked-outbox`).length === 1, "three answers");
    assert.deepEqual(calls, ["restart update", "level debug"]);
    assert.deepEqual(
      client
        .payloadsOn(`${base}/res/set-log-level`)
        .map((a) => [a.id, a.status])
        .sort(),
      [
        ["l-1", "ok"],
        ["l-2", "error"],
      ],
    );
    assert.equal(client.payloadsOn(`${base}/res/retry-parked-outbox`)[0]?.error, 'unknown command "retry-parked-outbox"');
  });
});

test("jobs: routed to the handler once per id; bad and retained jobs are rejected on jobs/<id>/status", async () => {
  await fixture(async ({ link, clock, last }) => {
    const jobs: string[] = [];
    link.onJob(async (jobId, job, { repeat }) => {
      jobs.push(`${jobId}:${job.type}${repeat ? ":repeat" : ""}`);
      if (repeat) return;
      await link.publishJobStatus(jobId, { status: "running", step: "download", progress: 0.25 });
    });
    await link.start();
    last().accept();
    await clock.advance(0);
    const client = last();
    client.deliver(`${base}/jobs/j-1`, { v: 1, type: "update", version: "1.3.0", url: "https://example/bundle.tar" });
    await settle(clock, () => client.payloadsOn(`${base}/jobs/j-1/status`).length > 0, "the job to start");
    client.deliver(`${base}/jobs/j-1`, { v: 1, type: "update" });
    client.deliver(`${base}/jobs/j-2`, "not json");
    client.deliver(`${base}/jobs/j-3`, { v: 1, type: "update" }, { retain: true });
    client.deliver(`${base}/jobs/j-4`, { v: 3, type: "update" });
    await settle(
      clock,
      () => ["j-2", "j-3", "j-4"].every((id) => client.payloadsOn(`${base}/jobs/${id}/status`).length > 0) && (link.stats().jobDuplicate ?? 0) > 0,
      "the refusals",
    );
    // The repeat reaches the handler as a repeat (to publish its status again), never as a new job.
    assert.deepEqual(jobs, ["j-1:update", "j-1:update:repeat"]);
    assert.equal(link.stats().jobDuplicate, 1);
    const status = client.payloadsOn(`${base}/jobs/j-1/status`)[0]!;
    assert.deepEqual([status.status, status.step, status.progress, status.jobId], ["running", "download", 0.25, "j-1"]);
    for (const id of ["j-2", "j-3", "j-4"]) {
      assert.equal(client.payloadsOn(`${base}/jobs/${id}/status`)[0]?.status, "rejected", id);
    }
  });
});

test("messages on unexpected topics and platform requests without a handler do not hurt the link", async () => {
  await fixture(async ({ link, clock, last }) => {
    await link.start();
    last().accept();
    await clock.advance(0);
    const client = last();
    client.deliver(`${base}/something/else`, "x");
    client.deliver(`${base}/platform/req`, { id: "p-1", envelope: "{}" });
    client.deliver(`${base}/platform/req`, '{"pid":"1"}', { properties: { responseTopic: "replies/a", correlationData: Buffer.from("c1") } });
    await clock.advance(0);
    assert.equal(link.stats().messagesUnrouted, 1);
    assert.match(String(client.payloadsOn(`${base}/platform/res`)[0]?.error), /not enabled/);
    const raw = client.published.find((p) => p.topic === "replies/a");
    assert.deepEqual(JSON.parse(raw!.payload), { code: 503, msg: "platform requests over MQTT are not enabled on this box" });
    assert.equal((raw!.options.properties?.correlationData as Buffer).toString(), "c1");
    assert.equal(link.state, "connected");
  });
});

function strictEmpty() {
  return z.strictObject({});
}
function laneArgs() {
  return z.strictObject({ laneId: z.string() });
}

test("stop stays bounded when the broker no longer answers, and keeps unsent events in the spool", async () => {
  await fixture(async ({ link, clock, last }) => {
    await link.start();
    last().accept();
    await clock.advance(0);
    const client = last();
    client.autoAck = false;
    link.publishEvent("barrier-fault", { laneId: "out1" });
    const began = performance.now();
    await link.stop();
    const tookMs = performance.now() - began;
    assert.ok(tookMs < 450, `stop took ${Math.round(tookMs)} ms (the app allows 500)`);
    const offline = client.published.find((p) => p.topic === `${base}/status` && JSON.parse(p.payload).state === "offline");
    assert.equal(offline?.options.retain, true, "offline was attempted, retained");
    assert.ok(client.ended);
    assert.equal(link.state, "stopped");
    assert.equal(link.stats().spoolDepth, 1, "the unacknowledged event waits on disk for the next start");
  });
});

test("info announces handlers registered after it was published (the update agent wires onJob late)", async () => {
  await fixture(async ({ link, clock, clients, last }) => {
    link.publishInfo({ hardware: {}, lanes: [], capabilities: [] });
    link.onConfigDesired(async () => ({ status: "applied", detail: "ok" }));
    await link.start();
    await clock.advance(0);
    last().accept();
    await clock.advance(0);
    assert.deepEqual(clients[0]!.payloadsOn(`${base}/info`).at(-1)?.capabilities, ["cfg-push"], "registered before the connect: in the first info");
    // Registered while connected: the retained info is sent again with it.
    link.onJob(() => undefined);
    await clock.advance(0);
    const infos = clients[0]!.payloadsOn(`${base}/info`);
    assert.equal(infos.length, 2);
    assert.deepEqual(infos.at(-1)?.capabilities, ["cfg-push", "jobs"]);
    assert.ok(clients[0]!.published.filter((p) => p.topic === `${base}/info`).every((p) => p.options.retain === true));
    // ... and it is what every later connect re-sends.
    last().drop();
    await clock.advance(1000);
    last().accept();
    await clock.advance(0);
    assert.deepEqual(clients[1]!.payloadsOn(`${base}/info`).at(-1)?.capabilities, ["cfg-push", "jobs"]);
  });
});

test("subscriptions ask for retain-as-published on MQTT 5, where the option exists", async () => {
  await fixture(async ({ link, clock, last }) => {
    await link.start();
    await clock.advance(0);
    last().accept();
    await clock.advance(0);
    assert.deepEqual(last().subscribeOptions, [{ qos: 1, rap: true }]);
  });
  await fixture(
    async ({ link, clock, last }) => {
      await link.start();
      await clock.advance(0);
      last().accept();
      await clock.advance(0);
      assert.deepEqual(last().subscribeOptions, [{ qos: 1 }], "MQTT 3.1.1 has no subscription options");
    },
    { protocolVersion: 4 },
  );
});

test("an empty payload on jobs/<id> or platform/req clears a retained message: ignored, counted, not answered", async () => {
  await fixture(async ({ link, clock, last }) => {
    const jobs: string[] = [];
    link.onJob((jobId) => void jobs.push(jobId));
    link.onPlatformRequest(async () => ({ code: 200, msg: "ok" }));
    await link.start();
    await clock.advance(0);
    last().accept();
    await clock.advance(0);
    const client = last();
    client.deliver(`${base}/jobs/j-clear`, "", { retain: true });
    client.deliver(`${base}/jobs/j-clear`, ""); // a clear forwarded live by a 3.1.1 broker
    client.deliver(`${base}/platform/req`, "", { retain: true });
    client.deliver(`${base}/jobs/j-next`, "[]"); // a marker: answered, so everything before it was handled
    await settle(clock, () => client.payloadsOn(`${base}/jobs/j-next/status`).length === 1, "the marker's answer");
    assert.equal(client.payloadsOn(`${base}/jobs/j-clear/status`).length, 0, "no answer to a clear");
    assert.equal(client.payloadsOn(`${base}/platform/res`).length, 0);
    assert.deepEqual(jobs, []);
    assert.equal(link.stats().jobEmpty, 2);
    assert.equal(link.stats().platformEmpty, 1);
    assert.match(String(client.payloadsOn(`${base}/jobs/j-next/status`)[0]?.detail), /^E_JOB_INVALID /, "a malformed job carries the code of an invalid job");
  });
});
