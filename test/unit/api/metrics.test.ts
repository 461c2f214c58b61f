import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BoxMetrics } from "../../../src/api/metrics.js";
import { EventBus } from "../../../src/kernel/event-bus.js";
import type { OutboxStatus } from "../../../src/outbox/types.js";
import { parseExposition, sampleSum, sampleValue } from "../../helpers/prom-text.js";

const fuzzRuns = Number(process.env.LK_FUZZ_RUNS ?? 30);

function busOf(metrics: BoxMetrics): EventBus {
  const bus = new EventBus((error) => {
    throw error;
  });
  metrics.watchBus(bus);
  return bus;
}

const outboxStatus = (fields: Partial<OutboxStatus>): OutboxStatus =>
  ({ depth: 0, oldestAgeMs: 0, parked: 0, retrying: 0, held: 0, inFlight: 0, delivered: 0, sendAttempts: 0, link: "up", ...fields }) as OutboxStatus;

test("lane events become decisions by verdict, opens by what allowed them and faults by kind; other events count nothing", async () => {
  const metrics = new BoxMetrics({ laneIds: ["in1", "out1"] });
  const bus = busOf(metrics);
  const atMs = 1;
  bus.emit({ type: "decided", laneId: "in1", atMs, txId: "t1", verdict: "allow", reason: "temporary", plate: "粤A12345" });
  bus.emit({ type: "barrier-opening", laneId: "in1", atMs, txId: "t1", reason: "temporary" });
  bus.emit({ type: "decided", laneId: "out1", atMs, txId: "t2", verdict: "await", reason: "fee-due" });
  bus.emit({ type: "settled", laneId: "out1", atMs, txId: "t2", reason: "cash" });
  bus.emit({ type: "barrier-opening", laneId: "out1", atMs, txId: "t2", reason: "cash" });
  bus.emit({ type: "decided", laneId: "out1", atMs, txId: "t3", verdict: "deny", reason: "blacklisted" });
  bus.emit({ type: "manual-open", laneId: "out1", atMs, txId: "t3", reason: "车主有月卡", operator: "王芳" });
  bus.emit({ type: "barrier-opening", laneId: "out1", atMs, txId: "t3", reason: "车主有月卡" });
  // An open whose cause belongs to another transaction: not credited to that cause.
  bus.emit({ type: "decided", laneId: "in1", atMs, txId: "t4", verdict: "allow", reason: "monthly" });
  bus.emit({ type: "barrier-opening", laneId: "in1", atMs, txId: "t5", reason: "x" });
  bus.emit({ type: "barrier-reopened", laneId: "in1", atMs, reason: "loopB" });
  bus.emit({ type: "detector-fault", laneId: "in1", atMs, loop: "A" });
  bus.emit({ type: "barrier-fault", laneId: "out1", atMs, during: "opening" });
  bus.emit({ type: "decision-failed", laneId: "out1", atMs, reason: "disk" });
  bus.emit({ type: "decided", laneId: "ghost", atMs, txId: "t6", verdict: "allow", reason: "x" });
  bus.emit({ type: "presence", laneId: "in1", atMs, loop: "A", occupied: true });
  bus.emit({ type: "prepayment", atMs, plate: "粤A12345", feeFen: 500 });

  const text = (await metrics.render()).text;
  const x = parseExposition(text);
  assert.equal(sampleValue(x, "lanekeeper_lane_decisions_total", { lane: "in1", verdict: "allow" }), 2);
  assert.equal(sampleValue(x, "lanekeeper_lane_decisions_total", { lane: "out1", verdict: "await" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_decisions_total", { lane: "out1", verdict: "deny" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_decisions_total", { lane: "other", verdict: "allow" }), 1, "a lane not in the config is 'other'");
  assert.equal(sampleValue(x, "lanekeeper_lane_opens_total", { lane: "in1", reason: "decision" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_opens_total", { lane: "in1", reason: "other" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_opens_total", { lane: "in1", reason: "reopen" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_opens_total", { lane: "out1", reason: "payment" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_opens_total", { lane: "out1", reason: "manual" }), 1);
  assert.equal(sampleSum(x, "lanekeeper_lane_opens_total"), 5);
  assert.equal(sampleValue(x, "lanekeeper_lane_faults_total", { lane: "in1", kind: "detector" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_faults_total", { lane: "out1", kind: "barrier" }), 1);
  assert.equal(sampleValue(x, "lanekeeper_lane_faults_total", { lane: "out1", kind: "decision" }), 1);
  assert.ok(!text.includes("粤A12345") && !text.includes("王芳") && !text.includes("车主"), "no plate, operator or typed reason becomes a label");
});

test("counts and histograms kept before prom-client loaded come out exactly; later ones go straight on", async () => {
  const metrics = new BoxMetrics({ laneIds: ["in1"] });
  const observedMs = [0.2, 0.7, 3, 3, 40, 999, 4000];
  for (const ms of observedMs) metrics.storeCommit("/data/store/inpark.json", ms, true);
  metrics.storeCommit("/data/store/lists.json", 12, false);
  metrics.platformCall("preLeaveNotify", { ok: true, code: 200, msg: "", data: undefined, elapsedMs: 42 });
  metrics.platformCall("preLeaveNotify", { ok: false, kind: "timeout", elapsedMs: 1000 });
  metrics.platformAnswer({ serviceName: "preLeaveNotify", httpStatus: 200, code: 200, late: false });
  metrics.platformAnswer({ serviceName: "preLeaveNotify", httpStatus: 200, code: 0, late: false });
  metrics.platformAnswer({ serviceName: "enterNotify", httpStatus: 502, late: true });

  const first = parseExposition((await metrics.render()).text);
  const commits = { document: "inpark", outcome: "ok" };
  assert.equal(sampleValue(first, "lanekeeper_store_commit_duration_seconds_count", commits), observedMs.length);
  assert.ok(Math.abs(sampleValue(first, "lanekeeper_store_commit_duration_seconds_sum", commits) - observedMs.reduce((a, b) => a + b) / 1000) < 1e-9);
  const bucket = (le: string): number => sampleValue(first, "lanekeeper_store_commit_duration_seconds_bucket", { ...commits, le });
  assert.equal(bucket("0.0005"), 1, "0.2 ms");
  assert.equal(bucket("0.001"), 2, "0.7 ms");
  assert.equal(bucket("0.005"), 4, "3 ms twice");
  assert.equal(bucket("0.05"), 5, "40 ms");
  assert.equal(bucket("1"), 6, "999 ms");
  assert.equal(bucket("2.5"), 6, "4 s is beyond the last bound");
  assert.equal(bucket("+Inf"), 7);
  assert.equal(sampleValue(first, "lanekeeper_store_commit_duration_seconds_count", { document: "lists", outcome: "error" }), 1);
  assert.equal(sampleValue(first, "lanekeeper_platform_call_duration_seconds_count", { service: "preLeaveNotify", outcome: "ok" }), 1);
  assert.equal(sampleValue(first, "lanekeeper_platform_call_duration_seconds_bucket", { service: "preLeaveNotify", outcome: "timeout", le: "1" }), 1);
  assert.equal(sampleValue(first, "lanekeeper_platform_answers_total", { service: "preLeaveNotify", code: "200" }), 1);
  assert.equal(sampleValue(first, "lanekeeper_platform_answers_total", { service: "preLeaveNotify", code: "0" }), 1);
  assert.equal(sampleValue(first, "lanekeeper_platform_answers_total", { service: "enterNotify", code: "none" }), 1);

  metrics.storeCommit("/data/store/inpark.json", 2, true);
  const second = parseExposition((await metrics.render()).text);
  assert.equal(sampleValue(second, "lanekeeper_store_commit_duration_seconds_count", commits), observedMs.length + 1);
  assert.equal(sampleValue(second, "lanekeeper_store_commit_duration_seconds_bucket", { ...commits, le: "0.0025" }), 3);
});

test("scrape-time figures: the outbox queue and the HTTP refusals as they are when asked; process metrics are there", async () => {
  const metrics = new BoxMetrics({ laneIds: [] });
  let status = outboxStatus({ depth: 3, parked: 1, retrying: 2, sendAttempts: 9, delivered: 6, oldestAgeMs: 1500, link: "probing" });
  let rejections: Record<string, number> = { "POST /api/lanes/:laneId/commands": 2, "(unrouted) E_NOT_FOUND": 5 };
  metrics.setSources({ outbox: () => status, httpRejections: () => rejections });
  const x = parseExposition((await metrics.render()).text);
  assert.equal(sampleValue(x, "lanekeeper_outbox_depth"), 3);
  assert.equal(sampleValue(x, "lanekeeper_outbox_parked"), 1);
  assert.equal(sampleValue(x, "lanekeeper_outbox_retrying"), 2);
  assert.equal(sampleValue(x, "lanekeeper_outbox_send_attempts_total"), 9);
  assert.equal(sampleValue(x, "lanekeeper_outbox_delivered_total"), 6);
  assert.equal(sampleValue(x, "lanekeeper_outbox_oldest_age_seconds"), 1.5);
  assert.equal(sampleValue(x, "lanekeeper_outbox_link_up"), 0);
  assert.equal(sampleValue(x, "lanekeeper_http_rejections_total", { route: "(unrouted) E_NOT_FOUND" }), 5);
  assert.equal(x.types.get("lanekeeper_outbox_delivered_total"), "counter");
  assert.equal(x.types.get("process_cpu_seconds_total"), "counter", "collectDefaultMetrics runs on the app's registry");
  assert.ok(sampleValue(x, "nodejs_heap_size_used_bytes") > 0);
  status = outboxStatus({ depth: 0, sendAttempts: 10, delivered: 9 });
  rejections = { "(unrouted) E_NOT_FOUND": 6 };
  const y = parseExposition((await metrics.render()).text);
  assert.equal(sampleValue(y, "lanekeeper_outbox_depth"), 0);
  assert.equal(sampleValue(y, "lanekeeper_outbox_delivered_total"), 9);
  assert.equal(sampleValue(y, "lanekeeper_http_rejections_total", { route: "(unrouted) E_NOT_FOUND" }), 6);
});

test("two apps' metrics in one process never share counts (one registry each)", async () => {
  const a = new BoxMetrics({ laneIds: ["in1"] });
  const b = new BoxMetrics({ laneIds: ["in1"] });
  busOf(a).emit({ type: "decided", laneId: "in1", atMs: 1, verdict: "allow", txId: "t" });
  const [ta, tb] = await Promise.all([a.render(), b.render()]);
  assert.equal(sampleValue(parseExposition(ta.text), "lanekeeper_lane_decisions_total", { lane: "in1", verdict: "allow" }), 1);
  assert.equal(sampleValue(parseExposition(tb.text), "lanekeeper_lane_decisions_total", { lane: "in1", verdict: "allow" }), 0);
});

test("values from outside the config fold into 'other' beyond the cap", async () => {
  const metrics = new BoxMetrics({ laneIds: [], maxLabelValues: 3 });
  for (let code = 0; code < 10; code++) metrics.platformAnswer({ serviceName: "leaveNotify", httpStatus: 200, code, late: false });
  const x = parseExposition((await metrics.render()).text);
  const codes = x.samples.filter((s) => s.name === "lanekeeper_platform_answers_total").map((s) => s.labels.code);
  assert.deepEqual(codes.sort(), ["0", "1", "2", "other"]);
  assert.equal(sampleValue(x, "lanekeeper_platform_answers_total", { service: "leaveNotify", code: "other" }), 7);
});

test("property: any lane ids, service names and codes keep the exposition valid and every count readable", async () => {
  // Arbitrary text (quotes, backslashes, newlines, astral characters) as label values.
  const label = fc.string({ unit: "binary", minLength: 1, maxLength: 24 });
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(label, { minLength: 1, maxLength: 4 }),
      fc.array(fc.record({ lane: fc.nat(5), verdict: fc.constantFrom("allow", "deny", "await", "bogus") }), { maxLength: 20 }),
      fc.array(fc.record({ service: label, code: fc.option(fc.integer(), { nil: undefined }), elapsedMs: fc.double({ min: 0, max: 1e6, noNaN: true }) }), { maxLength: 20 }),
      fc.boolean(),
      async (laneIds, decisions, calls, loadFirst) => {
        const metrics = new BoxMetrics({ laneIds, maxLabelValues: 8 });
        const bus = busOf(metrics);
        if (loadFirst) await metrics.render();
        for (const d of decisions) bus.emit({ type: "decided", laneId: laneIds[d.lane] ?? `x${d.lane}`, atMs: 0, verdict: d.verdict, txId: "t" });
        for (const c of calls) {
          metrics.platformAnswer({ serviceName: c.service, httpStatus: 200, ...(c.code === undefined ? {} : { code: c.code }), late: false });
          metrics.platformCall(c.service, { ok: false, kind: "business-code", elapsedMs: c.elapsedMs });
        }
        const x = parseExposition((await metrics.render()).text);
        assert.equal(sampleSum(x, "lanekeeper_lane_decisions_total"), decisions.length);
        assert.equal(sampleSum(x, "lanekeeper_platform_answers_total"), calls.length);
        assert.equal(sampleSum(x, "lanekeeper_platform_call_duration_seconds_count"), calls.length);
        for (const lane of laneIds) {
          const expected = decisions.filter((d) => laneIds[d.lane] === lane && d.verdict === "allow").length;
          assert.equal(sampleValue(x, "lanekeeper_lane_decisions_total", { lane, verdict: "allow" }), expected, `lane ${JSON.stringify(lane)}`);
        }
      },
    ),
    { numRuns: fuzzRuns },
  );
});
