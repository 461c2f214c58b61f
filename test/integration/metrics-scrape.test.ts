import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness } from "../helpers/lot-harness.js";
import { parseExposition, sampleSum, sampleValue, type Exposition } from "../helpers/prom-text.js";

/*
 * GET /metrics on a composed box (docs/api.md "Metrics"): a car driven in and out moves the
 * lane, platform, outbox and store figures by exactly what it did, read back by parsing the
 * exposition line by line.
 */

async function scrape(lot: LotHarness, headers: Record<string, string> = {}): Promise<Exposition> {
  const response = await fetch(`${lot.apiUrl}/metrics`, { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

test("a car in and out: decisions, opens, platform answers and latencies, outbox deliveries and store commits move by what happened", async () => {
  const lot = await LotHarness.create();
  try {
    const before = await scrape(lot);
    const delta = (after: Exposition, name: string, labels: Record<string, string> = {}): number => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    const commitsBefore = sampleSum(before, "lanekeeper_store_commit_duration_seconds_count", { document: "inpark", outcome: "ok" });

    await lot.drive("in1", "粤A70001");
    const stay = lot.stayOf("粤A70001")!;
    await lot.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });
    await lot.drive("out1", "粤A70001");
    await lot.waitForEvent("vehicle-left", { plate: "粤A70001" });
    await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    await lot.drained();
    const after = await scrape(lot);

    assert.equal(delta(after, "lanekeeper_lane_decisions_total", { lane: "in1", verdict: "allow" }), 1);
    assert.equal(delta(after, "lanekeeper_lane_decisions_total", { lane: "out1", verdict: "allow" }), 1, "within the free time: allowed at the decision");
    assert.equal(sampleSum(after, "lanekeeper_lane_decisions_total") - sampleSum(before, "lanekeeper_lane_decisions_total"), 2);
    assert.equal(delta(after, "lanekeeper_lane_opens_total", { lane: "in1", reason: "decision" }), 1);
    assert.equal(delta(after, "lanekeeper_lane_opens_total", { lane: "out1", reason: "decision" }), 1);
    assert.equal(sampleSum(after, "lanekeeper_lane_opens_total") - sampleSum(before, "lanekeeper_lane_opens_total"), 2);
    assert.equal(sampleSum(after, "lanekeeper_lane_faults_total"), 0);

    for (const service of ["enterNotify", "leaveNotify"]) {
      assert.equal(delta(after, "lanekeeper_platform_answers_total", { service, code: "200" }), 1, service);
      assert.equal(delta(after, "lanekeeper_platform_call_duration_seconds_count", { service, outcome: "ok" }), 1, service);
      assert.equal(delta(after, "lanekeeper_platform_call_duration_seconds_bucket", { service, outcome: "ok", le: "+Inf" }), 1, service);
      assert.ok(delta(after, "lanekeeper_platform_call_duration_seconds_sum", { service, outcome: "ok" }) > 0, service);
    }
    assert.equal(lot.emulator.received({ service: "preLeaveNotify" }).length, 0);
    assert.equal(sampleSum(after, "lanekeeper_platform_call_duration_seconds_count") - sampleSum(before, "lanekeeper_platform_call_duration_seconds_count"), 2, "no other call");

    assert.equal(delta(after, "lanekeeper_outbox_delivered_total"), 2);
    assert.equal(sampleValue(after, "lanekeeper_outbox_depth"), 0);
    assert.equal(sampleValue(after, "lanekeeper_outbox_parked"), 0);
    // The stay is written when the car is admitted and again when it leaves (at least).
    assert.ok(sampleSum(after, "lanekeeper_store_commit_duration_seconds_count", { document: "inpark", outcome: "ok" }) - commitsBefore >= 2);
    assert.ok(sampleValue(after, "process_resident_memory_bytes") > 0);
  } finally {
    await lot.stop();
  }
});

test("GET /metrics follows the read rule: with api.openReads never it needs the bearer token (header or access_token)", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.api.openReads = "never") });
  try {
    const refused = await fetch(`${lot.apiUrl}/metrics`);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "E_AUTH");
    const wrong = await fetch(`${lot.apiUrl}/metrics`, { headers: { authorization: "Bearer not-the-token-at-all" } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const x = await scrape(lot, { authorization: `Bearer ${lot.token}` });
    assert.equal(sampleValue(x, "lanekeeper_http_rejections_total", { route: "GET /metrics" }), 2, "both refusals counted");
    const query = await fetch(`${lot.apiUrl}/metrics?access_token=${encodeURIComponent(lot.token)}`);
    assert.equal(query.status, 200);
    await query.body?.cancel();
  } finally {
    await lot.stop();
  }
});
