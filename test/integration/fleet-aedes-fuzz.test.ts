import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { mqttConfigSchema } from "../../src/fleet/config.js";
import { FleetLink } from "../../src/fleet/fleet-link.js";
import { CommandErrorCodes, commandResultSchema, jobStatusPayloadSchema, laneCommandArgsSchema, MAX_PAYLOAD_BYTES } from "../../src/fleet/index.js";
import { maxJsonDepth } from "../../src/platform/json-scan.js";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";
import { capturingLogger } from "../helpers/platform-fixtures.js";

/**
 * Hostile input on the two downstream topics that make the box act (`cmd/<name>`, `jobs/<id>`),
 * through a real broker (aedes on loopback): random bytes, JSON of every shape, nesting far
 * beyond the project's JSON depth limit (maxJsonDepth), payloads over MAX_PAYLOAD_BYTES and envelopes with a field of the wrong
 * type. Each one must get exactly one refusal with a stable code, one warning in the log and
 * one counter step, and leave the link as it was: connected, no handler run, no id remembered.
 * LK_FUZZ_RUNS raises the number of payloads per property.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 30);
const root = "lk/v1";
const base = `${root}/fuzz-box`;

interface Rig {
  broker: AedesBroker;
  probe: MqttProbe;
  link: FleetLink;
  lines: string[];
  ran: string[];
}

async function rig(fn: (r: Rig) => Promise<void>): Promise<void> {
  const broker = await startAedes();
  const dir = await mkdtemp(join(tmpdir(), "fleet-fuzz-"));
  const probe = await MqttProbe.connect(broker.url);
  await probe.subscribe([`${base}/res/#`, `${base}/jobs/+/status`]);
  const { log, lines } = capturingLogger();
  const ran: string[] = [];
  const link = new FleetLink({
    config: mqttConfigSchema.parse({ url: broker.url, protocolVersion: 4, topicRoot: root }),
    deviceId: "fuzz-box",
    stateDir: join(dir, "fleet"),
    log,
    random: () => 0.05,
    version: "1.2.3",
  });
  // The barrier command: expiresAt and a lane id are required, so no generated payload is valid.
  link.registerCommand("open", laneCommandArgsSchema, async (args) => void ran.push(`open ${args.laneId}`), { requiresExpiresAt: true });
  link.onJob((jobId) => void ran.push(`job ${jobId}`));
  try {
    await link.start();
    await until(() => link.state === "connected", 5000, "the link to connect");
    await until(() => broker.broker.connectedClients >= 2, 5000, "both clients");
    await fn({ broker, probe, link, lines, ran });
  } finally {
    await link.stop();
    await probe.close();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  }
}

let serial = 0;
const futureMs = (): number => Date.now() + 600_000;

/** `depth` containers inside each other, arrays or objects. */
const deepArb = fc
  .record({ depth: fc.integer({ min: maxJsonDepth + 1, max: 30_000 }), objects: fc.boolean() })
  .map(({ depth, objects }) => (objects ? '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1) : "[".repeat(depth) + "]".repeat(depth)));

/** Over the limit, with or without an id the box can read from the head. */
const hugeArb = fc.record({ extra: fc.integer({ min: 1, max: 8192 }), withId: fc.boolean(), json: fc.boolean() }).map(({ extra, withId, json }) => {
  const head = withId ? `{"v":1,"id":"huge-${++serial}","pad":"` : json ? '{"pad":"' : "\u0000\u00ff";
  const tail = json ? '"}' : "";
  return Buffer.concat([Buffer.from(head), Buffer.alloc(MAX_PAYLOAD_BYTES + extra - head.length - tail.length, "x"), Buffer.from(tail)]);
});

const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }));

/** A valid `open` request with one field broken (wrong type, out of range, or an unknown key). */
const wrongTypesArb = fc
  .oneof(
    fc.record({
      field: fc.constant("v"),
      value: fc.oneof(
        notAString,
        fc.string(),
        fc.integer().filter((n) => n !== 1),
      ),
    }),
    fc.record({ field: fc.constant("id"), value: fc.oneof(notAString, fc.constant(""), fc.constant("has space"), fc.string({ minLength: 129, maxLength: 300 })) }),
    fc.record({
      field: fc.constant("expiresAt"),
      value: fc.oneof(
        fc.boolean(),
        fc.constant(null),
        fc.string(),
        fc.integer({ max: -1 }),
        fc.double({ noNaN: true }).filter((n) => !Number.isInteger(n)),
        fc.object(),
      ),
    }),
    fc.record({
      field: fc.constant("args"),
      value: fc.oneof(notAString, fc.string(), fc.record({ laneId: notAString }), fc.record({ laneId: fc.constant("out1"), extra: fc.jsonValue() })),
    }),
    fc.record({ field: fc.string().filter((key) => !["v", "id", "expiresAt", "args", "__proto__"].includes(key)), value: fc.jsonValue() }),
    fc.record({ field: fc.integer({ min: 1000, max: 100_000 }).map((n) => "k".repeat(n)), value: fc.constant(1) }),
  )
  .map(({ field, value }) => {
    const request: Record<string, unknown> = { v: 1, id: `wt-${++serial}`, expiresAt: futureMs(), args: { laneId: "out1" } };
    request[field] = value;
    return JSON.stringify(request);
  });

const commandPayloadArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
  fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value))),
  fc
    .record({ deep: deepArb, wrapped: fc.boolean() })
    .map(({ deep, wrapped }) => Buffer.from(wrapped ? `{"v":1,"id":"deep-${++serial}","expiresAt":${futureMs()},"args":{"laneId":"out1","x":${deep}}}` : deep)),
  hugeArb,
  wrongTypesArb.map((text) => Buffer.from(text)),
);

const commandCounters = ["cmdOversized", "cmdNonJson", "cmdTooDeep", "cmdWrongVersion", "cmdUnknown", "cmdInvalid", "cmdRetained", "cmdDuplicate", "cmdExpired"];
const sum = (stats: Record<string, number>, names: string[]): number => names.reduce((total, name) => total + (stats[name] ?? 0), 0);
const logged = (lines: string[], msg: string): number => lines.filter((line) => line.includes(`"msg":"${msg}"`)).length;

test("property: any malformed command is refused once with a stable code, logged, counted, and harms nothing", async () => {
  await rig(async (r) => {
    const codes = new Set<string>(Object.values(CommandErrorCodes));
    const remembered = r.link.stats().rememberedCommandIds;
    await fc.assert(
      fc.asyncProperty(commandPayloadArb, fc.constantFrom("open", "levitate"), async (payload, name) => {
        const topic = `${base}/res/${name}`;
        const answersBefore = r.probe.on(topic).length;
        const refusedBefore = sum(r.link.stats(), commandCounters);
        const logBefore = logged(r.lines, "command refused");
        await r.probe.publish(`${base}/cmd/${name}`, payload);
        const [answer] = (await r.probe.waitForCount(topic, answersBefore + 1, 5000)).slice(answersBefore);
        const result = commandResultSchema.parse(answer!.json());
        assert.notEqual(result.status, "ok", JSON.stringify(result));
        assert.ok(result.code !== undefined && codes.has(result.code), `a stable code: ${JSON.stringify(result)}`);
        assert.ok((result.error ?? "").length > 0 && (result.error ?? "").length < 1000, "a short reason in words");
        if (name === "levitate" && result.code !== "E_CMD_TOO_LARGE" && result.code !== "E_CMD_NOT_JSON" && result.code !== "E_CMD_TOO_DEEP") {
          assert.ok(["E_CMD_INVALID", "E_CMD_VERSION", "E_CMD_UNKNOWN"].includes(result.code), result.code);
        }
        const stats = r.link.stats();
        assert.equal(sum(stats, commandCounters), refusedBefore + 1, "counted once");
        assert.equal(logged(r.lines, "command refused"), logBefore + 1, "logged once");
        assert.equal(r.link.state, "connected");
        assert.equal(stats.disconnects ?? 0, 0);
        assert.equal(stats.handlerFailures ?? 0, 0);
        assert.equal(stats.rememberedCommandIds, remembered, "no id remembered");
        assert.deepEqual(r.ran, [], "no handler ran");
      }),
      { numRuns: runs },
    );
    // The link carries on: a valid command still runs, and once.
    const id = `valid-${++serial}`;
    await r.probe.publish(`${base}/cmd/open`, { v: 1, id, expiresAt: futureMs(), args: { laneId: "out1" } });
    const ok = await r.probe.waitFor((m) => m.topic === `${base}/res/open` && m.json().id === id);
    assert.equal(ok.json().status, "ok");
    assert.deepEqual(r.ran, ["open out1"]);
  });
});

/** JSON that is not a job the link can route: anything but an object with `v: 1` and a short string `type`. */
const notAJob = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return true;
  const record = value as Record<string, unknown>;
  return record.v !== 1 || typeof record.type !== "string" || record.type.length === 0 || record.type.length > 64;
};

const jobPayloadArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
  fc
    .jsonValue()
    .filter(notAJob)
    .map((value) => Buffer.from(JSON.stringify(value))),
  fc.record({ deep: deepArb, wrapped: fc.boolean() }).map(({ deep, wrapped }) => Buffer.from(wrapped ? `{"v":1,"type":"update","x":${deep}}` : deep)),
  hugeArb,
  fc
    .oneof(
      fc.record({
        v: fc.oneof(
          notAString,
          fc.string(),
          fc.integer().filter((n) => n !== 1),
        ),
        type: fc.constant("update"),
      }),
      fc.record({ v: fc.constant(1), type: fc.oneof(notAString, fc.constant(""), fc.string({ minLength: 65, maxLength: 100 })) }),
    )
    .map((job) => Buffer.from(JSON.stringify({ ...job, version: "1.5.0", url: "https://example.com/b.tar" }))),
);

const jobCounters = ["jobOversized", "jobNonJson", "jobTooDeep", "jobInvalid", "jobRetained", "jobNoHandler"];

test("property: any malformed job is rejected once with E_JOB_INVALID, logged, counted, and harms nothing", async () => {
  await rig(async (r) => {
    const remembered = r.link.stats().rememberedCommandIds;
    await fc.assert(
      fc.asyncProperty(jobPayloadArb, async (payload) => {
        const jobId = `upd-${++serial}`;
        const refusedBefore = sum(r.link.stats(), jobCounters);
        const logBefore = logged(r.lines, "job refused");
        await r.probe.publish(`${base}/jobs/${jobId}`, payload);
        const [status] = await r.probe.waitForCount(`${base}/jobs/${jobId}/status`, 1, 5000);
        const body = jobStatusPayloadSchema.parse(status!.json());
        assert.equal(body.status, "rejected");
        assert.match(body.detail ?? "", /^E_JOB_INVALID \S/, "the update agent's code for a job that is not one");
        const stats = r.link.stats();
        assert.equal(sum(stats, jobCounters), refusedBefore + 1, "counted once");
        assert.equal(logged(r.lines, "job refused"), logBefore + 1, "logged once");
        assert.equal(r.link.state, "connected");
        assert.equal(stats.disconnects ?? 0, 0);
        assert.equal(stats.rememberedCommandIds, remembered, "no job id remembered");
        assert.deepEqual(r.ran, [], "the job handler never ran");
      }),
      { numRuns: runs },
    );
    // Still listening: a routable job reaches the handler.
    await r.probe.publish(`${base}/jobs/upd-valid`, { v: 1, type: "update" });
    await until(() => r.ran.length === 1, 3000, "the valid job");
    assert.deepEqual(r.ran, ["job upd-valid"]);
  });
});
