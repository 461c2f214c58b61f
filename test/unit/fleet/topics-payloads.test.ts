import { test } from "node:test";
import assert from "node:assert/strict";
import { fleetTopics, parseInboundTopic } from "../../../src/fleet/topics.js";
import { commandResultSchema, configDesiredSchema, eventPayloadSchema, platformWrappedRequestSchema, statusPayloadSchema } from "../../../src/fleet/payloads.js";
import { mqttConfigSchema } from "../../../src/fleet/config.js";
import { validateConfig } from "../../../src/config/load.js";
import { readFileSync } from "node:fs";

const topics = fleetTopics("lanekeeper/v1/", "box-7");

test("topics follow docs/mqtt.md §2 under <root>/<deviceId>", () => {
  assert.equal(topics.base, "lanekeeper/v1/box-7");
  assert.equal(topics.status(), "lanekeeper/v1/box-7/status");
  assert.equal(topics.laneState("out1"), "lanekeeper/v1/box-7/state/out1");
  assert.equal(topics.event("vehicle-left"), "lanekeeper/v1/box-7/evt/vehicle-left");
  assert.equal(topics.commandResult("open"), "lanekeeper/v1/box-7/res/open");
  assert.equal(topics.jobStatus("j-1"), "lanekeeper/v1/box-7/jobs/j-1/status");
  assert.deepEqual(topics.subscriptions(), ["lanekeeper/v1/box-7/cmd/+", "lanekeeper/v1/box-7/cfg/desired", "lanekeeper/v1/box-7/jobs/+", "lanekeeper/v1/box-7/platform/req"]);
});

test("names that would break the topic tree are refused", () => {
  for (const bad of ["a/b", "+", "#", "", "x".repeat(65), "sp ace"]) {
    assert.throws(() => topics.event(bad), RangeError, bad);
  }
});

test("inbound topics are routed; our own upstream topics are not", () => {
  assert.deepEqual(parseInboundTopic(topics, "lanekeeper/v1/box-7/cmd/open"), { kind: "command", name: "open" });
  assert.deepEqual(parseInboundTopic(topics, "lanekeeper/v1/box-7/cfg/desired"), { kind: "configDesired" });
  assert.deepEqual(parseInboundTopic(topics, "lanekeeper/v1/box-7/jobs/j-9"), { kind: "job", jobId: "j-9" });
  assert.deepEqual(parseInboundTopic(topics, "lanekeeper/v1/box-7/platform/req"), { kind: "platformRequest" });
  for (const not of [
    "lanekeeper/v1/box-7/jobs/j-9/status",
    "lanekeeper/v1/box-7/res/open",
    "lanekeeper/v1/box-7/cfg/reported",
    "lanekeeper/v1/box-8/cmd/open",
    "lanekeeper/v1/box-7/cmd/",
  ]) {
    assert.equal(parseInboundTopic(topics, not), null, not);
  }
});

test("every payload schema insists on v: 1", () => {
  const ts = 1_700_000_000_000;
  assert.ok(statusPayloadSchema.safeParse({ v: 1, state: "lost", boot: 3, version: "1.0.0", configVersion: 0, ts }).success);
  assert.ok(!statusPayloadSchema.safeParse({ v: 2, state: "lost", boot: 3, version: "1.0.0", configVersion: 0, ts }).success);
  assert.ok(!statusPayloadSchema.safeParse({ v: 1, state: "sleeping", boot: 3, version: "1.0.0", configVersion: 0, ts }).success);
  assert.ok(eventPayloadSchema.safeParse({ v: 1, type: "tailgate", seq: 1, boot: 1, ts, data: {} }).success);
  assert.ok(!eventPayloadSchema.safeParse({ v: 1, type: "Tail Gate", seq: 1, boot: 1, ts, data: {} }).success);
  assert.ok(!eventPayloadSchema.safeParse({ v: 1, type: "tailgate", seq: 0, boot: 1, ts, data: {} }).success, "seq starts at 1");
  assert.ok(commandResultSchema.safeParse({ v: 1, id: null, status: "error", error: "payload is not JSON", ts }).success);
  assert.ok(!configDesiredSchema.safeParse({ v: 1, version: 0, config: {} }).success, "versions start at 1");
  assert.ok(platformWrappedRequestSchema.safeParse({ id: "p1", envelope: '{"pid":"1"}' }).success);
  assert.ok(!platformWrappedRequestSchema.safeParse({ id: "p1" }).success);
});

test("the mqtt config section defaults what the link needs, and the demo config stays valid", () => {
  const parsed = mqttConfigSchema.parse({ url: "mqtts://broker.example:8883" });
  assert.equal(parsed.protocolVersion, 5);
  assert.equal(parsed.keepaliveS, 30);
  assert.equal(parsed.spoolMaxEvents, 10_000);
  assert.equal(parsed.rejectUnauthorized, true);
  assert.ok(!mqttConfigSchema.safeParse({ url: "mqtt://x", spoolMaxEvents: 1 }).success);
  // Other sections of the demo are other modules' business; this checks that the mqtt
  // section adds no problem to it and reports its own mistakes by path.
  const demo = JSON.parse(readFileSync(new URL("../../../config/demo.json", import.meta.url), "utf8")) as Record<string, unknown>;
  const mqttProblems = (raw: unknown): string[] => {
    const result = validateConfig(raw);
    return result.ok ? [] : result.problems.filter((p) => p.path.startsWith("mqtt")).map((p) => `${p.path}: ${p.message}`);
  };
  assert.deepEqual(mqttProblems(demo), []);
  assert.deepEqual(mqttProblems({ ...demo, mqtt: { url: "mqtt://127.0.0.1:1883", protocolVersion: 4, eventExpiryS: 3600 } }), []);
  assert.deepEqual(
    mqttProblems({ ...demo, mqtt: { url: "http://x", keepaliveS: 1 } }).map((p) => p.split(":")[0]),
    ["mqtt.url", "mqtt.keepaliveS"],
  );
});
