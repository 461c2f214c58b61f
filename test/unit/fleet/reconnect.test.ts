import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { backoffCeilingMs, backoffDelayMs } from "../../../src/kernel/backoff.js";
import { defaultBackoff } from "../../../src/fleet/backoff.js";
import { mqttConfigSchema } from "../../../src/fleet/config.js";
import { FleetLink } from "../../../src/fleet/fleet-link.js";
import { ScriptedClient } from "../../helpers/scripted-mqtt-client.js";

interface Harness {
  clock: FakeClock;
  link: FleetLink;
  attemptsAtMs: number[];
  clients: ScriptedClient[];
  /** What the next attempts do; the last entry repeats. */
  script: Array<"refuse" | "accept">;
  dir: string;
}

async function harness(random: () => number, options: { stableAfterMs?: number } = {}): Promise<Harness> {
  const clock = new FakeClock();
  const dir = await mkdtemp(join(tmpdir(), "fleet-reconnect-"));
  const attemptsAtMs: number[] = [];
  const clients: ScriptedClient[] = [];
  const h: Partial<Harness> = { clock, attemptsAtMs, clients, script: ["refuse"], dir };
  const link = new FleetLink({
    config: mqttConfigSchema.parse({ url: "mqtt://127.0.0.1:1", protocolVersion: 4 }),
    deviceId: "box-1",
    stateDir: dir,
    log: silentLogger(),
    clock,
    random,
    stableAfterMs: options.stableAfterMs ?? 60_000,
    connect: (_url, clientOptions) => {
      attemptsAtMs.push(clock.now());
      const client = new ScriptedClient(clientOptions);
      clients.push(client);
      const script = h.script!;
      const action = script.length > 1 ? script.shift()! : script[0]!;
      setImmediate(() => (action === "accept" ? client.accept() : client.refuse()));
      return client as unknown as MqttClient;
    },
  });
  h.link = link;
  return h as Harness;
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

test("backoff ceiling doubles from 1 s and is capped at 5 min", () => {
  const ceilings = Array.from({ length: 12 }, (_, i) => backoffCeilingMs(i + 1, defaultBackoff));
  assert.deepEqual(ceilings, [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000, 300_000]);
  assert.equal(backoffCeilingMs(0, defaultBackoff), 0);
  assert.equal(backoffCeilingMs(10_000, defaultBackoff), 300_000, "huge failure counts stay finite and capped");
});

test("full jitter: the delay is uniform in [0, ceiling], not clustered at the ceiling", () => {
  let seed = 42;
  const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const delays = Array.from({ length: 2000 }, () => backoffDelayMs(12, defaultBackoff, random));
  for (const delay of delays) assert.ok(delay >= 0 && delay <= 300_000, `delay ${delay} out of bounds`);
  const low = delays.filter((d) => d < 30_000).length;
  const high = delays.filter((d) => d > 270_000).length;
  // Each 10 % band should hold ~200 of 2000; lock-step reconnects would put them all in one.
  assert.ok(low > 120 && low < 280, `lowest band holds ${low}`);
  assert.ok(high > 120 && high < 280, `highest band holds ${high}`);
  assert.equal(
    backoffDelayMs(3, defaultBackoff, () => 0.999_999),
    3999,
  );
  assert.equal(
    backoffDelayMs(3, defaultBackoff, () => 0),
    0,
  );
  assert.equal(
    backoffDelayMs(3, defaultBackoff, () => Number.NaN),
    0,
    "a broken random source cannot make a negative or NaN delay",
  );
});

test("reconnect attempts on fake time follow the schedule: first at once, then jittered doubling up to the cap", async () => {
  const h = await harness(() => 0.5);
  try {
    await h.link.start();
    for (let i = 0; i < 13; i++) await h.clock.advance(400_000);
    const observed = gaps(h.attemptsAtMs).slice(0, 12);
    // random 0.5 → half of each ceiling.
    const expected = Array.from({ length: 12 }, (_, i) => backoffCeilingMs(i + 1, defaultBackoff) / 2);
    assert.deepEqual(observed, expected);
    assert.equal(h.link.state, "waiting");
    assert.equal(h.link.stats().connectAttempts, h.attemptsAtMs.length);
    assert.ok(
      h.clients.slice(0, -1).every((client) => client.ended),
      "every refused client is ended",
    );
    assert.equal(h.clients[0]!.options.reconnectPeriod, 0, "mqtt.js's fixed-period reconnect is off");
  } finally {
    await h.link.stop();
    await rm(h.dir, { recursive: true, force: true });
  }
});

test("jittered delays stay inside [0, ceiling] for every attempt", async () => {
  const draws = [0, 0.999, 0.25, 0.75, 0.1, 0.9, 0.5, 0.01, 0.99, 0.33, 0.66, 0.999, 0];
  let i = 0;
  const h = await harness(() => draws[i++ % draws.length]!);
  try {
    await h.link.start();
    for (let step = 0; step < 14; step++) await h.clock.advance(310_000);
    const observed = gaps(h.attemptsAtMs);
    assert.ok(observed.length >= 12, `only ${observed.length} reconnects`);
    observed.forEach((gap, n) => {
      const ceiling = backoffCeilingMs(n + 1, defaultBackoff);
      assert.ok(gap >= 0 && gap <= ceiling, `attempt ${n + 2}: gap ${gap} outside [0, ${ceiling}]`);
      assert.equal(gap, Math.floor(draws[n % draws.length]! * ceiling), `attempt ${n + 2} uses its own draw`);
    });
  } finally {
    await h.link.stop();
    await rm(h.dir, { recursive: true, force: true });
  }
});

test("the failure count resets only after the link was stable for stableAfterMs", async () => {
  const h = await harness(() => 0.999_999, { stableAfterMs: 60_000 });
  try {
    h.script = ["refuse", "refuse", "refuse", "accept", "accept", "refuse"];
    await h.link.start();
    await h.clock.advance(10_000); // attempts at 0, ~1 s, ~3 s, ~7 s (accepted)
    assert.equal(h.link.state, "connected");
    assert.equal(h.attemptsAtMs.length, 4);
    assert.deepEqual(gaps(h.attemptsAtMs), [999, 1999, 3999]);

    // Up for 59 s, then dropped: not stable, so the next ceiling keeps doubling (8 s).
    await h.clock.advance(59_000 - (h.clock.now() - h.attemptsAtMs[3]!));
    h.clients[3]!.drop();
    await h.clock.advance(0);
    const droppedAt = h.clock.now();
    await h.clock.advance(8000);
    assert.equal(h.attemptsAtMs.length, 5);
    assert.equal(h.attemptsAtMs[4]! - droppedAt, 7999);
    assert.equal(h.link.state, "connected");

    // Up for 61 s: stable; after the drop the ceiling is back to 1 s.
    await h.clock.advance(61_000);
    h.clients[4]!.drop();
    await h.clock.advance(0);
    const droppedAgainAt = h.clock.now();
    await h.clock.advance(1000);
    assert.equal(h.attemptsAtMs.length, 6);
    assert.equal(h.attemptsAtMs[5]! - droppedAgainAt, 999);
    assert.equal(h.link.stats().disconnects, 2);
  } finally {
    await h.link.stop();
    await rm(h.dir, { recursive: true, force: true });
  }
});

test("stop cancels the pending reconnect timer", async () => {
  const h = await harness(() => 0.5);
  try {
    await h.link.start();
    await h.clock.advance(0);
    assert.equal(h.link.state, "waiting");
    const attempts = h.attemptsAtMs.length;
    await h.link.stop();
    await h.clock.advance(600_000);
    assert.equal(h.attemptsAtMs.length, attempts);
    assert.equal(h.link.state, "stopped");
  } finally {
    await rm(h.dir, { recursive: true, force: true });
  }
});
