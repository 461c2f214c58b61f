import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import fc from "fast-check";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { defaultBackoff } from "../../../src/fleet/backoff.js";
import { mqttConfigSchema } from "../../../src/fleet/config.js";
import { FleetConnection } from "../../../src/fleet/connection.js";
import { FleetCounters, type FleetExtension, type InboundMessage } from "../../../src/fleet/extension.js";
import { fleetTopics, type InboundTopic } from "../../../src/fleet/topics.js";
import { scriptedConnect, type ScriptedClient } from "../../helpers/scripted-mqtt-client.js";

const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);
const topics = fleetTopics("lanekeeper/v1", "box-1");

/** An extension that records what the connection asked of it. */
class RecordingExtension implements FleetExtension {
  readonly calls: string[] = [];
  readonly handled: InboundMessage[] = [];
  failNext = false;

  constructor(
    readonly name: string,
    readonly inbound: InboundTopic["kind"] | undefined,
    private readonly journal: string[],
  ) {}

  onConnected(): void {
    this.journal.push(`${this.name}:connected`);
  }

  onClosed(): void {
    this.journal.push(`${this.name}:closed`);
  }

  async handle(message: InboundMessage): Promise<void> {
    this.handled.push(message);
    if (this.failNext) {
      this.failNext = false;
      throw new Error("handler broke");
    }
  }
}

function setup(protocolVersion: 4 | 5 = 4) {
  const scripted = scriptedConnect();
  const counters = new FleetCounters();
  const journal: string[] = [];
  const connection = new FleetConnection({
    config: mqttConfigSchema.parse({ url: "mqtt://127.0.0.1:1", protocolVersion }),
    deviceId: "box-1",
    topics,
    log: silentLogger(),
    clock: new FakeClock(),
    counters,
    random: () => 0.5,
    backoff: defaultBackoff,
    stableAfterMs: 60_000,
    connect: scripted.connect,
    connectTimeoutMs: 1000,
    will: () => ({ v: 1, state: "lost" }),
  });
  const status = new RecordingExtension("status", undefined, journal);
  const jobs = new RecordingExtension("jobs", "job", journal);
  const commands = new RecordingExtension("commands", "command", journal);
  for (const extension of [status, jobs, commands]) connection.use(extension);
  return { connection, counters, journal, status, jobs, commands, clients: scripted.clients };
}

async function connected(h: ReturnType<typeof setup>): Promise<ScriptedClient> {
  await h.connection.prepare();
  h.connection.start();
  while (h.clients.length === 0) await nextTurn();
  const client = h.clients[0]!;
  client.accept();
  return client;
}

test("the connection subscribes the extensions' filters in their order and calls their connect hooks", async () => {
  const h = setup(5);
  const client = await connected(h);
  assert.equal(h.connection.state, "connected");
  // Only extensions with an inbound topic subscribe; the order is the order of use().
  assert.deepEqual(client.subscribed, [`${topics.base}/jobs/+`, `${topics.base}/cmd/+`]);
  assert.deepEqual(client.subscribeOptions, [{ qos: 1, rap: true }]);
  assert.deepEqual(h.journal, ["status:connected", "jobs:connected", "commands:connected"]);
  assert.equal(JSON.parse(String(client.options.will?.payload)).state, "lost");
  client.drop();
  assert.deepEqual(h.journal.slice(3), ["status:closed", "jobs:closed", "commands:closed"]);
  assert.equal(h.connection.state, "waiting");
  await h.connection.stop(async () => undefined);
});

test("inbound messages go to the extension that owns the topic; a failing handler leaves the link up", async () => {
  const h = setup();
  const client = await connected(h);
  client.deliver(`${topics.base}/jobs/j-1`, { v: 1 });
  client.deliver(`${topics.base}/cmd/open`, { v: 1 }, { retain: true });
  // A kind the link parses but no extension here owns, and a topic outside the tree.
  client.deliver(`${topics.base}/platform/req`, {});
  client.deliver("elsewhere/box-1/cmd/open", {});
  h.commands.failNext = true;
  client.deliver(`${topics.base}/cmd/close`, {});
  await nextTurn();
  assert.deepEqual(
    h.jobs.handled.map((m) => m.route),
    [{ kind: "job", jobId: "j-1" }],
  );
  assert.deepEqual(
    h.commands.handled.map((m) => [m.route, m.packet.retain]),
    [
      [{ kind: "command", name: "open" }, true],
      [{ kind: "command", name: "close" }, false],
    ],
  );
  const counts = h.counters.snapshot();
  assert.equal(counts.messagesIn, 5);
  assert.equal(counts.messagesUnrouted, 2);
  assert.equal(counts.handlerFailures, 1);
  assert.equal(h.connection.state, "connected");
  client.deliver(`${topics.base}/jobs/j-2`, {});
  assert.equal(h.jobs.handled.length, 2, "the link still dispatches after a handler failed");
  await h.connection.stop(async () => undefined);
});

test("any topic and payload is counted once and either dispatched or unrouted (fuzz)", async () => {
  const h = setup();
  const client = await connected(h);
  const topicArb = fc.oneof(
    fc.string(),
    fc.constantFrom("cmd/", "jobs/", "cfg/", "platform/", "state/", "evt/").chain((prefix) => fc.string().map((rest) => `${topics.base}/${prefix}${rest}`)),
  );
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(topicArb, fc.uint8Array({ maxLength: 64 })), { maxLength: 20 }), async (messages) => {
      for (const [topic, bytes] of messages) {
        client.emit("message", topic, Buffer.from(bytes), { cmd: "publish", topic, payload: Buffer.from(bytes), qos: 1, retain: false, dup: false });
        sent++;
      }
      await nextTurn();
      const counts = h.counters.snapshot();
      const handled = h.jobs.handled.length + h.commands.handled.length;
      assert.equal(counts.messagesIn ?? 0, sent);
      assert.equal((counts.messagesUnrouted ?? 0) + handled, sent);
      for (const m of h.jobs.handled) assert.equal(m.route.kind, "job");
      for (const m of h.commands.handled) assert.equal(m.route.kind, "command");
    }),
    { numRuns: runs },
  );
  assert.equal(h.connection.state, "connected");
  await h.connection.stop(async () => undefined);
});

test("stop sends what the caller asks before a clean disconnect, and nothing reconnects", async () => {
  const h = setup();
  const client = await connected(h);
  const order: string[] = [];
  await h.connection.stop(async (conn) => {
    order.push(`before-disconnect ended=${client.ended}`);
    await h.connection.send(conn, topics.status(), { v: 1, state: "offline" }, { qos: 1, retain: true });
  });
  assert.deepEqual(order, ["before-disconnect ended=false"]);
  assert.equal(client.ended, true);
  assert.deepEqual(client.payloadsOn(topics.status()), [{ v: 1, state: "offline" }]);
  assert.equal(h.connection.live(), undefined);
  assert.equal(h.connection.running, false);
  assert.equal(h.clients.length, 1);
});
