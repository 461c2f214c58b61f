import { test } from "node:test";
import assert from "node:assert/strict";
import { Lifecycle, type Component } from "../../../src/kernel/lifecycle.js";
import { silentLogger } from "../../../src/kernel/log.js";

function recorder(events: string[], name: string, behaviour: { failStart?: boolean; hangStop?: boolean } = {}): Component {
  return {
    name,
    async start() {
      events.push(`start ${name}`);
      if (behaviour.failStart) throw new Error(`${name} cannot start`);
    },
    async stop() {
      events.push(`stop ${name}`);
      if (behaviour.hangStop) await new Promise(() => undefined);
    },
  };
}

test("components start in order and stop in reverse order", async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(silentLogger());
  for (const name of ["gpio", "store", "http"]) lifecycle.add(recorder(events, name));
  await lifecycle.start();
  await lifecycle.stop();
  assert.deepEqual(events, ["start gpio", "start store", "start http", "stop http", "stop store", "stop gpio"]);
});

test("a failing start stops what already started and rethrows", async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(silentLogger());
  lifecycle.add(recorder(events, "gpio"));
  lifecycle.add(recorder(events, "store", { failStart: true }));
  lifecycle.add(recorder(events, "http"));
  await assert.rejects(lifecycle.start(), /store cannot start/);
  assert.deepEqual(events, ["start gpio", "start store", "stop gpio"]);
});

test("a stop that hangs is abandoned after its timeout and the rest still stop", async () => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(silentLogger(), { stopTimeoutMs: 100 });
  lifecycle.add(recorder(events, "gpio"));
  lifecycle.add(recorder(events, "mqtt", { hangStop: true }));
  await lifecycle.start();
  const begun = performance.now();
  await lifecycle.stop();
  const took = performance.now() - begun;
  assert.deepEqual(events, ["start gpio", "start mqtt", "stop mqtt", "stop gpio"]);
  assert.ok(took >= 90 && took < 1000, `stop took ${took} ms`);
});
