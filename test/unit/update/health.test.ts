import { test } from "node:test";
import assert from "node:assert/strict";
import { createHealthProbe } from "../../../src/update/health.js";

test("healthy needs lanes up, store loaded and a configured link up", async () => {
  const yes = (): boolean => true;
  const no = (): boolean => false;
  assert.deepEqual(await createHealthProbe({ lanesUp: yes, storeLoaded: yes, platformReachable: no, mqttConnected: yes })(), { healthy: true });
  assert.deepEqual(await createHealthProbe({ lanesUp: yes, storeLoaded: yes })(), { healthy: true }, "no link configured: local checks only");
  const down = await createHealthProbe({ lanesUp: no, storeLoaded: yes, platformReachable: no, mqttConnected: no })();
  assert.equal(down.healthy, false);
  assert.match(down.reason ?? "", /lanes not up, platform unreachable and mqtt not connected/);
  const platformOnly = await createHealthProbe({ lanesUp: yes, storeLoaded: yes, platformReachable: no, mqttConnected: yes, requires: "platform" })();
  assert.match(platformOnly.reason ?? "", /platform unreachable/);
  const throwing = await createHealthProbe({
    lanesUp: yes,
    storeLoaded: () => {
      throw new Error("boom");
    },
    requires: "local",
  })();
  assert.deepEqual(throwing, { healthy: false, reason: "store not loaded" });
});
