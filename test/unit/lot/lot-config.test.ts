import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../../src/config/load.js";
import { demoRaw } from "../../helpers/demo-config.js";

test("lot.share is off by default and has its defaults", () => {
  const result = validateConfig(demoRaw());
  assert.ok(result.ok);
  assert.deepEqual(result.config.lot.share, {
    enabled: false,
    leftExpiryS: 86_400,
    quietMs: 300,
    startWaitMs: 2000,
    forwardWaitMs: 2000,
    provisionalWaitMs: 300_000,
    provisionalHoldS: 86_400,
    clockSkewMs: 600_000,
    entryReportWaitS: 1800,
  });
});

test("lot.share on needs a broker: its own, or the box's mqtt section", () => {
  const none = demoRaw() as Record<string, any>;
  none.lot.share = { enabled: true };
  const refused = validateConfig(none);
  assert.ok(!refused.ok);
  assert.ok(refused.problems.some((p) => p.path === "lot.share.mqtt" && /no broker/.test(p.message)));

  const own = demoRaw() as Record<string, any>;
  own.lot.share = { enabled: true, mqtt: { url: "mqtt://lot-broker:1883", protocolVersion: 4 } };
  const accepted = validateConfig(own);
  assert.ok(accepted.ok);
  assert.equal(accepted.config.lot.share.mqtt?.topicRoot, "lanekeeper/v1");

  const fleet = demoRaw() as Record<string, any>;
  fleet.lot.share = { enabled: true };
  fleet.mqtt = { url: "mqtt://fleet:1883" };
  assert.ok(validateConfig(fleet).ok);

  const typo = demoRaw() as Record<string, any>;
  typo.lot.share = { enable: true };
  assert.ok(!validateConfig(typo).ok, "an unknown key is refused");
});
