import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { IClientPublishOptions, IPublishPacket } from "mqtt";
import { LOT_MAX_PAYLOAD_BYTES, LotPayloadError, decodeBox } from "../../../src/lot/lot-payloads.js";
import {
  LotRequestError,
  LotRequests,
  decodeRemoteAnswer,
  decodeRemoteRequest,
  requestLifetimeMs,
  requestTopics,
  type ForwardedCommand,
  type RemoteRequest,
} from "../../../src/lot/lot-requests.js";
import { LotView } from "../../../src/lot/lot-view.js";
import { silentLogger } from "../../../src/kernel/log.js";
import type { LaneAnswer } from "../../../src/platform/ports.js";
import { FakeClock, flushMicrotasks } from "../../helpers/fake-clock.js";

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);
const base = "lanekeeper/v1/lot/TEST%2F1P1";
const topics = requestTopics(base);

const request: RemoteRequest = {
  v: 1,
  id: "0123456789abcdef0123456789abcdef",
  from: "north-box",
  to: "south-box",
  channelId: "4",
  type: 2,
  plateId: "EX20240501073001250",
  operator: "cloud-ops",
  cmd: 0,
  openGateCase: 1,
  expiresAtMs: 1_714_519_802_750,
};

function buf(value: unknown): Buffer {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
}

test("a request and both kinds of answer decode; the topic must name the request's target", () => {
  const decoded = decodeRemoteRequest(buf(request), "south-box");
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, request);
  const elsewhere = decodeRemoteRequest(buf(request), "west-box");
  assert.equal(elsewhere.ok ? "" : elsewhere.code, LotPayloadError.TopicMismatch);
  assert.ok(decodeRemoteAnswer(buf({ v: 1, id: request.id, deviceId: "south-box", ok: true, msg: "操作成功" })).ok);
  assert.ok(decodeRemoteAnswer(buf({ v: 1, id: request.id, deviceId: "south-box", ok: false, reason: "not-found", msg: "unknown or expired plateId" })).ok);
});

test("a request without openGateCase for a free release or manual raise, or with an unknown reason in an answer, is invalid", () => {
  for (const bad of [
    { ...request, type: 2, openGateCase: null },
    { ...request, type: 0, cmd: 1, openGateCase: null },
    { ...request, type: 3 },
    { ...request, id: "short" },
    { ...request, extra: 1 },
  ]) {
    const decoded = decodeRemoteRequest(buf(bad), "south-box");
    assert.equal(decoded.ok ? "" : decoded.code, LotPayloadError.Invalid, JSON.stringify(bad));
  }
  const answer = decodeRemoteAnswer(buf({ v: 1, id: request.id, deviceId: "south-box", ok: false, reason: "on-fire", msg: "x" }));
  assert.equal(answer.ok ? "" : answer.code, LotPayloadError.Invalid);
  const tooLarge = decodeRemoteRequest(Buffer.alloc(LOT_MAX_PAYLOAD_BYTES + 1, 0x20), "south-box");
  assert.equal(tooLarge.ok ? "" : tooLarge.code, LotPayloadError.TooLarge);
  const notJson = decodeRemoteAnswer(buf("{nope"));
  assert.equal(notJson.ok ? "" : notJson.code, LotPayloadError.NotJson);
});

test("fuzz: any bytes on the request or response topic decode to a value or a stable code, never throw", () => {
  const codes = new Set<string>(Object.values(LotPayloadError));
  const mutated = fc.record({ key: fc.constantFrom(...Object.keys(request)), value: fc.jsonValue() }).map(({ key, value }) => JSON.stringify({ ...request, [key]: value }));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.json(),
        mutated,
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
      ),
      (text) => {
        for (const decoded of [decodeRemoteRequest(Buffer.from(text, "latin1"), "south-box"), decodeRemoteAnswer(Buffer.from(text, "latin1"))]) {
          if (!decoded.ok) assert.ok(codes.has(decoded.code), decoded.code);
        }
      },
    ),
    { numRuns: runs },
  );
});

// ---- two boxes over an in-memory MQTT 5 "broker" ----------------------------------------------

interface Box {
  deviceId: string;
  requests: LotRequests;
  view: LotView;
  rejected: Array<{ code: string; message: string }>;
  applied: ForwardedCommand[];
  connected: boolean;
}

/**
 * A tiny broker: publishes are delivered to the box whose request/response topic they name,
 * with the MQTT 5 properties as a broker passes them; `hold` keeps them instead (a slow link).
 */
function lot(options: { protocolVersion?: 4 | 5; waitMs?: number; answer?: (command: ForwardedCommand) => Promise<LaneAnswer> } = {}) {
  const clock = new FakeClock();
  const boxes = new Map<string, Box>();
  const held: Array<() => void> = [];
  let holding = false;
  const published: Array<{ topic: string; text: string; options: IClientPublishOptions }> = [];
  function make(deviceId: string): Box {
    const view = new LotView();
    const box: Box = { deviceId, view, rejected: [], applied: [], connected: true, requests: undefined as unknown as LotRequests };
    box.requests = new LotRequests({
      deviceId,
      base,
      view,
      waitMs: options.waitMs ?? 2000,
      clock,
      log: silentLogger(),
      remoteControl: async (command) => {
        box.applied.push(command);
        return options.answer ? options.answer(command) : { ok: true, value: undefined, msg: "操作成功" };
      },
      link: {
        protocolVersion: options.protocolVersion ?? 5,
        connected: () => box.connected,
        reject: (_topic, code, message) => box.rejected.push({ code, message }),
        publish: async (topic, text, publishOptions) => {
          published.push({ topic, text, options: publishOptions });
          const deliver = () => {
            for (const other of boxes.values()) {
              const packet = { properties: publishOptions.properties ?? {} } as unknown as IPublishPacket;
              other.requests.take(topic, Buffer.from(text), packet);
            }
          };
          if (holding) held.push(deliver);
          else deliver();
        },
      },
    });
    boxes.set(deviceId, box);
    return box;
  }
  const a = make("north-box");
  const b = make("south-box");
  const announce = (online: boolean) => {
    for (const box of [a, b]) {
      box.view.applyBox({ v: 1, deviceId: "north-box", lanes: [{ laneId: "out1", direction: "out", channelId: "2" }], online: true, seenAtMs: 1 });
      box.view.applyBox({ v: 1, deviceId: "south-box", lanes: [{ laneId: "out2", direction: "out", channelId: "4" }], online, seenAtMs: 2 });
    }
  };
  announce(true);
  return {
    clock,
    a,
    b,
    published,
    announce,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      for (const deliver of held.splice(0)) deliver();
    },
  };
}

const command: ForwardedCommand = { channelId: "4", type: 0, plateId: "EX1", operator: "cloud-ops", cmd: 0, openGateCase: null };

test("a channel no other box announced is not forwarded; one of another box is, and its answer is the answer", async () => {
  const { a, b, published } = lot({ answer: async () => ({ ok: false, reason: "not-found", msg: "unknown or expired plateId" }) });
  assert.equal(a.requests.forward({ ...command, channelId: "9" }), undefined);
  assert.equal(a.requests.forward({ ...command, channelId: "2" }), undefined, "this box's own channel is not forwarded");
  const answer = await a.requests.forward(command);
  assert.deepEqual(answer, { ok: false, reason: "not-found", msg: "box south-box: unknown or expired plateId" });
  assert.deepEqual(b.applied, [command]);
  const sent = published[0]!;
  assert.equal(sent.topic, topics.request("south-box"));
  assert.equal(sent.options.qos, 1);
  assert.equal(sent.options.retain, false);
  assert.equal(sent.options.properties?.responseTopic, topics.response("north-box"));
  assert.equal(sent.options.properties?.messageExpiryInterval, Math.ceil(requestLifetimeMs(2000) / 1000));
  const body = JSON.parse(sent.text) as RemoteRequest;
  assert.equal(sent.options.properties?.correlationData?.toString(), body.id);
  assert.equal(published[1]!.topic, topics.response("north-box"));
  assert.deepEqual(a.requests.counters().forwardAnswered, 1);
});

test("unreachable: 3.1.1 broker, broker away, target offline, no answer in time — each a box-unreachable answer, and no barrier moves late", async () => {
  const v4 = lot({ protocolVersion: 4 });
  const onV4 = await v4.a.requests.forward(command)!;
  assert.equal(onV4.ok ? "" : onV4.reason, "box-unreachable");
  assert.match(onV4.ok ? "" : onV4.msg, /3\.1\.1/);
  assert.deepEqual(v4.a.requests.subscriptions(), {});

  const away = lot();
  away.a.connected = false;
  const noBroker = await away.a.requests.forward(command)!;
  assert.match(noBroker.ok ? "" : noBroker.msg, /not connected to the lot broker/);

  const offline = lot();
  offline.announce(false);
  const off = await offline.a.requests.forward(command)!;
  assert.match(off.ok ? "" : off.msg, /south-box.*offline/);
  assert.equal(offline.published.length, 0);

  // A link that holds the request past the wait: the requester answers at its bound, and the
  // request, delivered afterwards, is refused by the target as expired.
  const slow = lot({ waitMs: 1000 });
  slow.hold();
  const pending = slow.a.requests.forward(command)!;
  let settled = false;
  void pending.then(() => (settled = true));
  await slow.clock.advance(999);
  assert.equal(settled, false);
  await slow.clock.advance(1);
  const late = await pending;
  assert.equal(late.ok ? "" : late.reason, "box-unreachable");
  assert.match(late.ok ? "" : late.msg, /did not answer within 1000 ms/);
  slow.release();
  await flushMicrotasks();
  assert.deepEqual(slow.b.applied, [], "a request delivered after it expired never reaches the lane");
  assert.equal(slow.b.requests.counters().requestsExpired, 1);
  assert.equal(slow.a.requests.counters().answersLate, 1);
});

test("the same request id twice is applied once and answered twice with the first answer", async () => {
  const { a, b, published } = lot();
  await a.requests.forward(command);
  const first = published[0]!;
  const again = { properties: first.options.properties } as unknown as IPublishPacket;
  b.requests.take(first.topic, Buffer.from(first.text), again);
  await flushMicrotasks();
  assert.equal(b.applied.length, 1);
  assert.equal(b.requests.counters().requestsRepeated, 1);
  const answers = published.filter((p) => p.topic === topics.response("north-box"));
  assert.equal(answers.length, 2);
  assert.equal(answers[0]!.text, answers[1]!.text);
});

test("a request without a matching response topic or correlation data, and an answer from the wrong box, are rejected and counted", async () => {
  const { a, b, published, hold } = lot();
  const text = JSON.stringify({ ...request, from: "north-box", to: "south-box", expiresAtMs: Date.now() * 2 });
  const cases: Array<Record<string, unknown>> = [
    {},
    { responseTopic: topics.response("north-box") },
    { responseTopic: "elsewhere/responses/north-box", correlationData: Buffer.from(request.id) },
    { responseTopic: topics.response("north-box"), correlationData: Buffer.from("another-id-123") },
  ];
  for (const properties of cases) b.requests.take(topics.request("south-box"), Buffer.from(text), { properties } as unknown as IPublishPacket);
  await flushMicrotasks();
  assert.deepEqual(
    b.rejected.map((r) => r.code),
    cases.map(() => LotRequestError.NoReturn),
  );
  assert.equal(b.applied.length, 0);

  hold();
  const pending = a.requests.forward(command)!;
  const id = (JSON.parse(published[0]!.text) as RemoteRequest).id;
  const forged = { v: 1, id, deviceId: "west-box", ok: true };
  a.requests.take(topics.response("north-box"), buf(forged), { properties: { correlationData: Buffer.from(id) } } as unknown as IPublishPacket);
  assert.equal(a.rejected.at(-1)?.code, LotPayloadError.TopicMismatch);
  a.requests.stop();
  const stopped = await pending;
  assert.equal(stopped.ok ? "" : stopped.reason, "box-unreachable");
});

test("a channel two boxes announce is refused as an invalid lane, naming both", async () => {
  const { a } = lot();
  a.view.applyBox({ v: 1, deviceId: "west-box", lanes: [{ laneId: "out9", direction: "out", channelId: "4" }], online: true, seenAtMs: 3 });
  const answer = await a.requests.forward(command)!;
  assert.equal(answer.ok ? "" : answer.reason, "lane-invalid");
  assert.match(answer.ok ? "" : answer.msg, /south-box, west-box/);
});

test("a box announces its lanes' channel ids (optional: a box that does not forward may leave them out)", () => {
  const box = { v: 1, deviceId: "south-box", lanes: [{ laneId: "out2", direction: "out", channelId: "4" }], online: true, seenAtMs: 1 };
  const decoded = decodeBox(buf(box), "south-box");
  assert.ok(decoded.ok);
  assert.equal(decoded.value.lanes[0]!.channelId, "4");
  assert.ok(decodeBox(buf({ ...box, lanes: [{ laneId: "out2", direction: "out" }] }), "south-box").ok);
  const empty = decodeBox(buf({ ...box, lanes: [{ laneId: "out2", direction: "out", channelId: "" }] }), "south-box");
  assert.equal(empty.ok ? "" : empty.code, LotPayloadError.Invalid);
});
