import { test } from "node:test";
import assert from "node:assert/strict";
import { laneSettingsFromConfig } from "../../../src/core/lane/settings.js";
import { testConfig } from "../../helpers/demo-config.js";

test("lane settings come from the validated config with the schema's defaults", () => {
  const config = testConfig();
  const entry = laneSettingsFromConfig(config.lanes[0]!);
  assert.deepEqual(entry, {
    laneId: "in1",
    direction: "in",
    detector: { type: "presence", minOnMs: 100, minOffMs: 300, pulseMeaning: "arrival-and-departure", pulseHoldMs: 5000, stuckOnLimitMs: 600_000 },
    barrier: { relayPulseMs: 500, travelTimeMs: 3000, travelTimeoutMs: 8000, recloseMs: 30_000, limitSwitches: { opened: false, closed: false } },
    plateWindowMs: 5000,
    dedupeWindowMs: 30_000,
    backoutGraceMs: 5000,
  });
  assert.equal(laneSettingsFromConfig(config.lanes[1]!).direction, "out");
});

test("wired limit switches switch the barrier to limit-switch mode", () => {
  const config = testConfig((raw) => {
    raw.lanes[0].inputs.barrierOpened = { line: 8, activeLow: true };
    raw.lanes[0].inputs.barrierClosed = { line: 7, activeLow: true };
    raw.lanes[0].detector = { type: "pulse", pulseMeaning: "arrival-only" };
    raw.lanes[0].timers = { backoutGraceMs: 2000 };
  });
  const entry = laneSettingsFromConfig(config.lanes[0]!);
  assert.deepEqual(entry.barrier.limitSwitches, { opened: true, closed: true });
  assert.equal(entry.detector.type, "pulse");
  assert.equal(entry.detector.pulseMeaning, "arrival-only");
  assert.equal(entry.backoutGraceMs, 2000);
});
