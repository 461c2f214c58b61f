import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  LOT_MAX_PAYLOAD_BYTES,
  LotPayloadError,
  decodeBox,
  decodeStay,
  inParkPayload,
  leftPayload,
  recordOfPayload,
  sameContent,
  type StayPayload,
} from "../../../src/lot/lot-payloads.js";
import { entryReportStates, inParkRecordSchema } from "../../../src/store/records.js";
import { lotTopics, topicLevel } from "../../../src/lot/lot-topics.js";

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);
const hlc = { wallMs: 1_714_519_801_250, counter: 0, deviceId: "north-box" };

const record = inParkRecordSchema.parse({
  recordNo: "in1_20240501073001250",
  plate: "粤A12345",
  plateColor: 1,
  laneId: "in1",
  enterAtMs: 1_714_519_801_250,
  vehicleType: "temporary",
  carType: 1,
  carSubType: 11,
  source: "camera",
  entryReport: "queued",
  prepayments: [{ orderNo: "P1", amountFen: 300, payAtMs: 1_714_520_000_000 }],
  pendingExit: { laneId: "out1", plateId: "x", atMs: 1, payableFen: 0, discountFen: 0, dueFen: 0 },
});

function buf(value: unknown): Buffer {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
}

test("a stay survives the round trip: store record → payload → bytes → decoded → replica record", () => {
  const payload = inParkPayload(record, "north-box", hlc);
  const decoded = decodeStay(buf(payload), record.recordNo);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, payload);
  const replica = recordOfPayload(decoded.value);
  assert.equal(replica.entryReport, "queued", "a replica's entry report is the other box's, not said delivered yet");
  assert.equal(replica.pendingExit, undefined, "the other box's lane bookkeeping stays there");
  assert.deepEqual({ ...replica, entryReport: record.entryReport, pendingExit: record.pendingExit }, record);
  assert.ok(sameContent(payload, { ...payload, hlc: { ...hlc, counter: 9 } }), "the clock is not content");
  assert.ok(!sameContent(payload, { ...payload, plate: "粤A99999" }));
});

test("entryReported: said once the entering box's entry report is delivered, kept through a replica, absent read as unknown", () => {
  const queued = inParkPayload(record, "north-box", hlc);
  assert.equal(queued.entryReported, undefined, "a report still queued is not said");
  const delivered = inParkPayload({ ...record, entryReport: "delivered" }, "north-box", hlc);
  assert.equal(delivered.entryReported, true);
  assert.ok(!sameContent(queued, delivered), "the fact is content: its version is published");
  assert.equal(inParkPayload({ ...record, entryReport: "none", source: "platform" }, "north-box", hlc).entryReported, true, "a stay the platform made itself");
  const decoded = decodeStay(buf(delivered), record.recordNo);
  assert.ok(decoded.ok);
  assert.equal(decoded.value.entryReported, true);
  const replica = recordOfPayload(decoded.value);
  assert.equal(replica.entryReport, "delivered");
  // A box's edit of the replica says it again; its finish too.
  assert.equal(inParkPayload({ ...replica, replicaOf: { deviceId: "north-box", hlc } }, "south-box", hlc).entryReported, true);
  const left = leftPayload(
    { ...replica, exit: { laneId: "out2", leaveAtMs: 2, payableFen: 0, discountFen: 0, prepaidFen: 0, paidFen: 0, reason: "normal" }, finishedAtMs: 3 },
    "south-box",
    hlc,
  );
  assert.equal(left.entryReported, true);
  // An older box's version has no such field: unknown, the replica's report not delivered.
  const { entryReported: _omitted, ...older } = delivered;
  const olderDecoded = decodeStay(buf(older), record.recordNo);
  assert.ok(olderDecoded.ok);
  assert.equal(recordOfPayload(olderDecoded.value).entryReport, "queued");
  // Only `true` is a value: anything else is refused.
  for (const bad of [false, "yes", 1, null]) {
    const refused = decodeStay(buf({ ...delivered, entryReported: bad }), record.recordNo);
    assert.ok(!refused.ok && refused.code === LotPayloadError.Invalid, `entryReported ${JSON.stringify(bad)} refused`);
  }
});

test("entryReported: any record's payload decodes, and says the fact exactly when the report was delivered (property)", () => {
  fc.assert(
    fc.property(fc.constantFrom(...entryReportStates), fc.constantFrom("camera", "manual", "platform", undefined), (entryReport, source) => {
      const payload = inParkPayload({ ...record, entryReport, ...(source !== undefined ? { source } : {}) }, "north-box", hlc);
      const decoded = decodeStay(buf(payload), record.recordNo);
      assert.ok(decoded.ok);
      const said = entryReport === "delivered" || (source ?? record.source) === "platform";
      assert.equal(decoded.value.entryReported === true, said);
      assert.equal(recordOfPayload(decoded.value).entryReport, said ? "delivered" : "queued");
    }),
    { numRuns: Math.min(runs, 100) },
  );
});

test("a finished stay is published with its settlement summary", () => {
  const left = leftPayload(
    {
      ...record,
      exit: { laneId: "out2", leaveAtMs: 1_714_530_000_000, payableFen: 700, discountFen: 0, prepaidFen: 300, paidFen: 400, reason: "normal" },
      finishedAtMs: 1_714_530_000_100,
    },
    "south-box",
    { ...hlc, deviceId: "south-box" },
  );
  assert.equal(left.state, "left");
  assert.equal(left.enterDeviceId, "south-box", "an own stay of the finishing box");
  assert.deepEqual(left.settlement, {
    exitDeviceId: "south-box",
    exitLaneId: "out2",
    leaveAtMs: 1_714_530_000_000,
    payableFen: 700,
    paidFen: 400,
    prepaidFen: 300,
    reason: "normal",
  });
  const replicaLeft = leftPayload(
    {
      ...record,
      replicaOf: { deviceId: "north-box", hlc },
      exit: { laneId: "out2", leaveAtMs: 1, payableFen: 0, discountFen: 0, prepaidFen: 0, paidFen: 0, reason: "normal" },
      finishedAtMs: 2,
    },
    "south-box",
    hlc,
  );
  assert.equal(replicaLeft.enterDeviceId, "north-box", "a replica keeps the box it entered at");
  assert.ok(decodeStay(buf(left), record.recordNo).ok);
});

test("malformed stays and boxes are rejected with stable codes", () => {
  const good = inParkPayload(record, "north-box", hlc);
  const cases: Array<[Buffer, string]> = [
    [buf("{not json"), LotPayloadError.NotJson],
    [buf("null"), LotPayloadError.Invalid],
    [buf({ ...good, v: 2 }), LotPayloadError.Invalid],
    [buf({ ...good, hlc: { ...hlc, counter: -1 } }), LotPayloadError.Invalid],
    [buf({ ...good, enterDeviceId: "a/b" }), LotPayloadError.Invalid],
    [buf({ ...good, prepayments: [{ orderNo: "x", amountFen: 1.5, payAtMs: 1 }] }), LotPayloadError.Invalid],
    [buf({ ...good, state: "gone" }), LotPayloadError.Invalid],
    [buf({ ...good, recordNo: "in1_other" }), LotPayloadError.TopicMismatch],
    [Buffer.alloc(LOT_MAX_PAYLOAD_BYTES + 1, 32), LotPayloadError.TooLarge],
  ];
  for (const [payload, code] of cases) {
    const decoded = decodeStay(payload, record.recordNo);
    assert.ok(!decoded.ok);
    assert.equal(decoded.code, code, payload.toString("utf8", 0, 80));
  }
  // A field this box does not know (a newer box's, within v 1) is dropped, not a reason to refuse the stay.
  const newer = decodeStay(buf({ ...good, surprise: 1 }), record.recordNo);
  const same = decodeStay(buf(good), record.recordNo);
  assert.ok(newer.ok && same.ok);
  assert.deepEqual(newer.value, same.value, "the unknown field dropped, the rest as sent");
  const box = { v: 1, deviceId: "north-box", lanes: [{ laneId: "in1", direction: "in" }], online: true, seenAtMs: 1 };
  assert.ok(decodeBox(buf({ ...box, lanes: [{ laneId: "in1", direction: "in", gateName: "north" }], firmware: "x" }), "north-box").ok, "a newer box's extra fields are ignored");
  assert.ok(decodeBox(buf(box), "north-box").ok);
  assert.equal((decodeBox(buf(box), "south-box") as { code: string }).code, LotPayloadError.TopicMismatch);
  assert.equal((decodeBox(buf({ ...box, lanes: [{ laneId: "in1", direction: "sideways" }] }), "north-box") as { code: string }).code, LotPayloadError.Invalid);
});

test("fuzz: the decoders never throw, and whatever they accept is a well-formed version of the topic's stay", () => {
  const good = inParkPayload(record, "north-box", hlc);
  // Mutations of a valid payload (most of the interesting inputs are near-valid) and raw bytes.
  const mutated = fc.record({ key: fc.constantFrom(...Object.keys(good), "hlc.wallMs", "extra"), value: fc.anything() }).map(({ key, value }) => {
    const copy = JSON.parse(JSON.stringify(good)) as Record<string, any>;
    if (key === "hlc.wallMs") copy.hlc.wallMs = value;
    else copy[key] = value;
    return Buffer.from(JSON.stringify(copy) ?? "");
  });
  const raw = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.jsonValue().map((v) => buf(JSON.stringify(v) ?? "")),
    mutated,
  );
  fc.assert(
    fc.property(raw, (payload) => {
      const stay = decodeStay(payload, record.recordNo);
      if (stay.ok) {
        const v: StayPayload = stay.value;
        assert.equal(v.recordNo, record.recordNo);
        assert.ok(Number.isInteger(v.hlc.wallMs) && Number.isInteger(v.hlc.counter));
        assert.ok(
          v.prepayments.every((p) => Number.isInteger(p.amountFen) && p.amountFen >= 0),
          "money is whole fen",
        );
        // What is accepted can become a replica record.
        recordOfPayload(v);
      } else assert.ok(Object.values(LotPayloadError).includes(stay.code));
      const box = decodeBox(payload, "north-box");
      if (!box.ok) assert.ok(Object.values(LotPayloadError).includes(box.code));
    }),
    { numRuns: runs },
  );
});

test("topics: park codes, device ids and record numbers are one level each, and parse back", () => {
  const topics = lotTopics("lanekeeper/v1", "TEST/1P1");
  assert.equal(topics.base, "lanekeeper/v1/lot/TEST%2F1P1");
  assert.equal(topics.stay("in1_20240501073001250"), "lanekeeper/v1/lot/TEST%2F1P1/stays/in1_20240501073001250");
  assert.equal(topics.staysFilter, "lanekeeper/v1/lot/TEST%2F1P1/stays/+");
  assert.deepEqual(topics.parse(topics.box("north-box")), { kind: "box", deviceId: "north-box" });
  assert.equal(topics.parse("lanekeeper/v1/lot/TEST%2F1P1/stays/%E0%A4%A"), undefined, "broken percent-encoding");
  assert.equal(topics.parse("lanekeeper/v1/lot/TEST%2F1P1/other/x"), undefined);
  assert.equal(topics.parse("lanekeeper/v1/lot/TEST%2F1P1/stays/a/b"), undefined);
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 64, unit: "grapheme" }), (text) => {
      const level = topicLevel(text);
      assert.ok(!/[/+#\u0000]/.test(level), level);
      assert.deepEqual(topics.parse(topics.stay(text)), { kind: "stay", recordNo: text });
    }),
    { numRuns: runs },
  );
});
