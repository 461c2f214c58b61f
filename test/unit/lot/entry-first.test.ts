import { test } from "node:test";
import assert from "node:assert/strict";
import { entryReportHoldUntil, withDeliveryNotice } from "../../../src/lot/entry-report-hold.js";
import { lotShareConfigSchema } from "../../../src/lot/config.js";
import { inParkRecordSchema } from "../../../src/store/records.js";
import type { OutboxEntry, SendResult } from "../../../src/outbox/outbox.js";

const NOW = 1_714_519_801_250;
const share = lotShareConfigSchema.parse({ enabled: true, entryReportWaitS: 600 });
const hlc = { wallMs: NOW, counter: 0, deviceId: "north-box" };
const replica = inParkRecordSchema.parse({
  recordNo: "in1_20240501073001250",
  plate: "粤A12345",
  laneId: "in1",
  enterAtMs: NOW - 60_000,
  entryReport: "queued",
  replicaOf: { deviceId: "north-box", hlc },
});

test("a leave report waits for the entry report of a stay entered at another box, at most entryReportWaitS", () => {
  assert.equal(entryReportHoldUntil(replica, "south-box", share, NOW), NOW + 600_000);
  assert.equal(entryReportHoldUntil({ ...replica, entryReport: "delivered" }, "south-box", share, NOW), undefined, "the lot said it was delivered");
  assert.equal(entryReportHoldUntil({ ...replica, replicaOf: undefined }, "south-box", share, NOW), undefined, "an own stay: its reports are in one outbox");
  assert.equal(entryReportHoldUntil(replica, "north-box", share, NOW), undefined, "entered here");
  assert.equal(entryReportHoldUntil({ ...replica, provisional: true }, "south-box", share, NOW), undefined, "a provisional exit is held its own way");
  assert.equal(entryReportHoldUntil(replica, "south-box", { ...share, entryReportWaitS: 0 }, NOW), undefined, "0: never waits");
  assert.equal(entryReportHoldUntil(replica, "south-box", { ...share, enabled: false }, NOW), undefined, "no lot");
});

test("the delivery notice: told of a report the platform took, not of one it refused", async () => {
  const told: string[] = [];
  const entry = { key: "r:enter", recordNo: "r", kind: "enter", service: "enterNotify", biz: {}, createdAtMs: 0, seq: 1, attempts: 1, nextAttemptAtMs: 0 } satisfies OutboxEntry;
  let answer: SendResult = { ok: false, retry: "transient", reason: "HTTP 503" };
  const send = withDeliveryNotice(
    () => Promise.resolve(answer),
    (e) => told.push(e.key),
  );
  const signal = new AbortController().signal;
  assert.deepEqual(await send(entry, { signal }), answer);
  assert.deepEqual(told, []);
  answer = { ok: true };
  assert.deepEqual(await send(entry, { signal }), { ok: true });
  assert.deepEqual(told, ["r:enter"]);
});
