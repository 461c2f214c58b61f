import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness } from "../helpers/lot-harness.js";
import { DemoTraffic, demoPlates } from "../../src/demo/traffic.js";

/*
 * The demo's traffic: one round shows every path — temporary and monthly
 * entries, a blacklisted car refused, an unlicensed car let in by the cloud, and exits paid
 * frictionless, by scanner and in cash — and stopping it is prompt (the service must be down
 * within 2 s of a signal).
 */

test("one round of demo traffic shows every path, and stopping it mid-round is prompt", async () => {
  const lot = await LotHarness.create();
  const traffic = new DemoTraffic(lot.app, lot.emulator, { pace: 0.2, pauseMs: 60_000 });
  try {
    await traffic.seed();
    traffic.start();
    const left = (plate: string) => lot.waitForEvent("vehicle-left", { plate }, 20_000);
    assert.equal((await lot.waitForEvent("entry-allowed", { plate: demoPlates.temporary }, 5000)).reason, "temporary");
    assert.equal((await lot.waitForEvent("entry-allowed", { plate: demoPlates.monthly }, 5000)).reason, "fixed");
    assert.equal((await lot.waitForEvent("entry-denied", { plate: demoPlates.blacklisted }, 5000)).reason, "blacklisted");
    await lot.waitForEvent("entry-allowed", { plate: demoPlates.unlicensed }, 8000);
    assert.equal((await left(demoPlates.frictionless)).path, "platform");
    assert.equal((await left(demoPlates.scanner)).path, "scanner");
    assert.equal((await left(demoPlates.cash)).path, "cash");
    assert.equal((await left(demoPlates.temporary)).path, "free");
    assert.equal((await left(demoPlates.monthly)).path, "free");
    await left(demoPlates.unlicensed);

    // The next round has begun (the pause is long): stop in the middle of it.
    const restarted = new DemoTraffic(lot.app, lot.emulator, { pace: 1 });
    restarted.start();
    await lot.until(() => lot.snapshot("in1").loopA, 3000, "the next car on loopA");
    const began = Date.now();
    await restarted.stop();
    await traffic.stop();
    const tookMs = Date.now() - began;
    assert.ok(tookMs < 500, `stopping the demo traffic took ${tookMs} ms`);
    const inputsAfter = JSON.stringify(lot.gpio.inputs());
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(JSON.stringify(lot.gpio.inputs()), inputsAfter, "a stopped demo drives nothing");
  } finally {
    await traffic.stop();
    await lot.stop();
  }
});
