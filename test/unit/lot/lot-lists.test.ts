import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { anyDeliveryOrder } from "../../helpers/delivery-orders.js";
import { decodeListEntry, listTopics, type ListKind, type ListPayload } from "../../../src/lot/lot-list-payloads.js";
import { LotListView, compareListVersions } from "../../../src/lot/lot-list-view.js";
import { LotPayloadError } from "../../../src/lot/lot-payloads.js";

/*
 * The lists the lot shares (docs/mqtt.md "Lists shared by the lot"): the payload decoder with
 * its stable rejection codes, and the pure rule that picks an entry's winning version.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);
const MINUTE_MS = 60_000;
const T0 = 1_714_500_000_000;

function blacklisted(uuid: string, carNum: string, atMs = T0) {
  return { id: 1, uuid, carNum, type: 0, untilMs: null, operator: "ops", remark: "", denyIn: true, denyOut: true, inNotify: false, createdAtMs: atMs, updatedAtMs: atMs } as const;
}

function version(key: string, fields: { deleted?: boolean; wallMs: number; counter?: number; deviceId: string; carNum?: string }): ListPayload {
  return {
    v: 1,
    kind: "blacklist",
    key,
    deleted: fields.deleted ?? false,
    ...(fields.deleted ? {} : { entry: blacklisted(key, fields.carNum ?? "粤A12345", fields.wallMs) }),
    hlc: { wallMs: fields.wallMs, counter: fields.counter ?? 0, deviceId: fields.deviceId },
  };
}

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

test("a list version decodes on its own topic; a tombstone carries no entry", () => {
  const topics = listTopics("lanekeeper/v1/lot/TEST%2F1P1");
  assert.equal(topics.entry("car-groups", "G/1"), "lanekeeper/v1/lot/TEST%2F1P1/lists/car-groups/G%2F1");
  assert.deepEqual(topics.parse(topics.entry("car-groups", "G/1")), { ok: true, kind: "car-groups", key: "G/1" });
  assert.equal(topics.parse("lanekeeper/v1/lot/TEST%2F1P1/lists/coupons/C1").ok, false, "no such kind");
  assert.equal(topics.parse("lanekeeper/v1/lot/TEST%2F1P1/lists/vehicles/%E0").ok, false, "a broken escape");
  assert.equal(topics.filter, "lanekeeper/v1/lot/TEST%2F1P1/lists/+/+");

  const entry = version("B1", { wallMs: T0, deviceId: "north-box" });
  const decoded = decodeListEntry(bytes(entry), "blacklist", "B1");
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, entry);
  const tomb = decodeListEntry(bytes(version("B1", { deleted: true, wallMs: T0, deviceId: "north-box" })), "blacklist", "B1");
  assert.ok(tomb.ok && tomb.value.deleted && tomb.value.entry === undefined);
});

test("malformed list messages are rejected with the lot's codes", () => {
  const good = version("B1", { wallMs: T0, deviceId: "north-box" });
  const code = (payload: Buffer, kind: ListKind = "blacklist", key = "B1") => {
    const decoded = decodeListEntry(payload, kind, key);
    return decoded.ok ? "ok" : decoded.code;
  };
  assert.equal(code(Buffer.from("{nope")), LotPayloadError.NotJson);
  assert.equal(code(Buffer.alloc(70 * 1024, 0x20)), LotPayloadError.TooLarge);
  assert.equal(code(bytes({ ...good, v: 2 })), LotPayloadError.Invalid);
  assert.equal(code(bytes({ ...good, surprise: 1 })), "ok", "a newer box's extra field is ignored, not a reason to refuse");
  assert.equal(code(bytes({ ...good, deleted: true })), LotPayloadError.Invalid, "a tombstone with an entry");
  assert.equal(code(bytes({ ...good, entry: undefined })), LotPayloadError.Invalid, "an entry version without its entry");
  assert.equal(code(bytes({ ...good, key: "B2" }), "blacklist", "B2"), LotPayloadError.Invalid, "the entry's own key differs");
  assert.equal(code(bytes({ ...good, key: "__proto__", entry: { ...good.entry, uuid: "__proto__" } }), "blacklist", "__proto__"), LotPayloadError.Invalid);
  assert.equal(code(bytes({ ...good, entry: { ...good.entry, carNum: "" } })), LotPayloadError.Invalid);
  assert.equal(code(bytes(good), "blacklist", "B9"), LotPayloadError.TopicMismatch);
  assert.equal(code(bytes(good), "vehicles", "B1"), LotPayloadError.TopicMismatch);
  assert.equal(code(bytes(good)), "ok");
});

test("fuzz: any bytes, and any JSON near a valid version, decode or reject with a stable code; never throw", () => {
  const codes = new Set<string>(Object.values(LotPayloadError));
  const good = version("B1", { wallMs: T0, deviceId: "north-box" }) as unknown as Record<string, unknown>;
  const nearGood = fc.record({ field: fc.constantFrom(...Object.keys(good), "entry.carNum", "hlc.counter", "extra"), value: fc.jsonValue() }).map(({ field, value }) => {
    const copy = structuredClone(good) as Record<string, any>;
    const [head, tail] = field.split(".");
    if (tail) copy[head!] = { ...copy[head!], [tail]: value };
    else copy[head!] = value;
    return Buffer.from(JSON.stringify(copy) ?? "");
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? "")),
        nearGood,
      ),
      (payload) => {
        const decoded = decodeListEntry(payload, "blacklist", "B1");
        if (!decoded.ok) assert.ok(codes.has(decoded.code), decoded.code);
        else {
          assert.equal(decoded.value.key, "B1");
          assert.equal(decoded.value.deleted, decoded.value.entry === undefined);
        }
      },
    ),
    { numRuns: runs * 5 },
  );
});

test("the newest write wins, whether it wrote the entry or removed it", () => {
  const view = new LotListView();
  assert.equal(view.apply(version("B1", { wallMs: 100, deviceId: "box-a" })), true);
  assert.equal(view.apply(version("B1", { deleted: true, wallMs: 99, counter: 5, deviceId: "box-b" })), false, "an older removal changes nothing");
  assert.equal(view.apply(version("B1", { deleted: true, wallMs: 200, deviceId: "box-b" })), true, "a newer removal wins");
  assert.equal(view.apply(version("B1", { wallMs: 150, deviceId: "box-c" })), false, "an older write does not bring it back");
  assert.equal(view.apply(version("B1", { wallMs: 300, deviceId: "box-a" })), true, "a newer write adds it again");
  assert.equal(view.get("blacklist", "B1")?.deleted, false);
  assert.equal(view.apply(version("B1", { wallMs: 300, deviceId: "box-a" })), false, "the same version again changes nothing");
});

const versionArb = fc
  .record({
    key: fc.constantFrom("B1", "B2", "B3"),
    deleted: fc.boolean(),
    // Skewed clocks on a coarse grid, so equal wall times and the tie-breaks come up often.
    wallMs: fc.integer({ min: -10, max: 10 }).map((m) => T0 + m * MINUTE_MS),
    counter: fc.integer({ min: 0, max: 2 }),
    deviceId: fc.constantFrom("box-a", "box-b", "box-c"),
    carNum: fc.constantFrom("粤A11111", "粤A22222"),
  })
  .map((f) => version(f.key, f));

test("property: any delivery order of the same versions, duplicates included, gives the same lists", () => {
  fc.assert(
    fc.property(anyDeliveryOrder(versionArb), ([versions, delivered]) => {
      const inOrder = new LotListView();
      for (const v of versions) inOrder.apply(v);
      const other = new LotListView();
      for (const v of delivered) other.apply(v);
      assert.equal(JSON.stringify(other.all()), JSON.stringify(inOrder.all()));
      for (const held of inOrder.all()) {
        for (const v of versions.filter((x) => x.key === held.key)) assert.ok(compareListVersions(held, v) >= 0);
      }
    }),
    { numRuns: runs },
  );
});

test("property: the order is total and antisymmetric", () => {
  fc.assert(
    // The order ranks versions of one entry (the view compares nothing else): b is drawn for a's
    // entry. Two tombstones of different entries with the same clock would compare 0 and differ.
    fc.property(versionArb, versionArb, (a, drawn) => {
      const b = { ...drawn, key: a.key };
      const ab = compareListVersions(a, b);
      // `+ 0` folds -0 into 0: two equal versions compare 0 both ways (strict equality tells -0 apart).
      assert.equal(Math.sign(ab) + 0, -Math.sign(compareListVersions(b, a)) + 0);
      if (ab === 0) assert.equal(JSON.stringify(a), JSON.stringify(b));
    }),
    { numRuns: runs },
  );
});

test("forgetDeleted drops only tombstones older than the cut", () => {
  const view = new LotListView();
  view.apply(version("old-tomb", { deleted: true, wallMs: 100, deviceId: "box-a" }));
  view.apply(version("new-tomb", { deleted: true, wallMs: 5000, deviceId: "box-a" }));
  view.apply(version("old-live", { wallMs: 100, deviceId: "box-a" }));
  assert.equal(view.forgetDeleted(1000), 1);
  assert.deepEqual(
    view.all().map((v) => v.key),
    ["new-tomb", "old-live"],
  );
});
