import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { LoopWatchdog, eventLoopDelayProbe, watchdogFromEnv, type LagProbe } from "../../../src/system/watchdog.js";
import { createSystemIntegration } from "../../../src/system/integration.js";

test("watchdogFromEnv reads WATCHDOG_USEC and honours WATCHDOG_PID like sd_watchdog_enabled", () => {
  const rows: Array<[NodeJS.ProcessEnv, ReturnType<typeof watchdogFromEnv>]> = [
    [{}, { enabled: false, reason: "WATCHDOG_USEC not set" }],
    [{ WATCHDOG_USEC: "" }, { enabled: false, reason: "WATCHDOG_USEC not set" }],
    [{ WATCHDOG_USEC: "20000000" }, { enabled: true, timeoutMs: 20_000 }],
    [
      { WATCHDOG_USEC: "20000000", WATCHDOG_PID: "100" },
      { enabled: true, timeoutMs: 20_000 },
    ],
    [
      { WATCHDOG_USEC: "20000000", WATCHDOG_PID: "101" },
      { enabled: false, reason: "WATCHDOG_PID=101 is another process (this is 100)" },
    ],
    [{ WATCHDOG_USEC: "-5" }, { enabled: false, reason: "WATCHDOG_USEC=-5 is not a positive integer" }],
    [{ WATCHDOG_USEC: "abc" }, { enabled: false, reason: "WATCHDOG_USEC=abc is not a positive integer" }],
    [{ WATCHDOG_USEC: "1500" }, { enabled: true, timeoutMs: 1.5 }],
  ];
  for (const [env, expected] of rows) assert.deepEqual(watchdogFromEnv(env, 100), expected, JSON.stringify(env));
});

/** A probe the test sets by hand: the worst loop delay of the current window. */
function manualProbe(): LagProbe & { lagMs: number; started: boolean } {
  return {
    lagMs: 0,
    started: false,
    start() {
      this.started = true;
    },
    stop() {
      this.started = false;
    },
    takeMaxMs() {
      const lag = this.lagMs;
      this.lagMs = 0;
      return lag;
    },
  };
}

function setup(options: { timeoutMs?: number; maxLagMs?: number } = {}) {
  const clock = new FakeClock();
  const probe = manualProbe();
  const pings: number[] = [];
  const watchdog = new LoopWatchdog({
    ping: () => pings.push(clock.monotonicMs()),
    clock,
    log: silentLogger(),
    timeoutMs: options.timeoutMs ?? 20_000,
    ...(options.maxLagMs !== undefined ? { maxLagMs: options.maxLagMs } : {}),
    probe,
  });
  return { clock, probe, pings, watchdog };
}

test("pings at once, then every WatchdogSec/2 while the loop is healthy", async () => {
  const { clock, pings, watchdog, probe } = setup();
  await watchdog.start();
  assert.equal(probe.started, true);
  assert.deepEqual(pings, [0]);
  await clock.advance(9_999);
  assert.deepEqual(pings, [0]);
  await clock.advance(1);
  assert.deepEqual(pings, [0, 10_000]);
  await clock.advance(30_000);
  assert.deepEqual(pings, [0, 10_000, 20_000, 30_000, 40_000]);
  assert.equal(watchdog.stats().intervalMs, 10_000);
  assert.equal(watchdog.stats().maxLagMs, 5_000);
  await watchdog.stop();
  assert.equal(probe.started, false);
  await clock.advance(60_000);
  assert.equal(pings.length, 5, "no pings after stop");
  assert.equal(clock.pendingTimers(), 0);
});

test("a window with loop lag above the threshold withholds the ping; pings resume when healthy", async () => {
  const { clock, pings, watchdog, probe } = setup({ maxLagMs: 1000 });
  await watchdog.start();
  probe.lagMs = 1500;
  await clock.advance(10_000);
  probe.lagMs = 4000;
  await clock.advance(10_000);
  assert.deepEqual(pings, [0], "two windows in a row lagged: systemd (20 s) will restart us");
  assert.equal(watchdog.stats().skippedLag, 2);
  assert.equal(watchdog.stats().skippedInARow, 2);
  assert.equal(watchdog.stats().lastLagMs, 4000);
  probe.lagMs = 1000; // at the threshold, not above it
  await clock.advance(10_000);
  assert.deepEqual(pings, [0, 30_000]);
  assert.equal(watchdog.stats().skippedInARow, 0);
});

test("a tick that itself runs late (timer drift) counts as lag", async () => {
  const { clock, pings, watchdog } = setup({ maxLagMs: 1000 });
  await watchdog.start();
  // The loop was stuck: the wall and monotonic clock moved 3 s with no timer able to run.
  clock.jump(13_000);
  await clock.advance(0);
  assert.deepEqual(pings, [0], "the late tick saw 3 s of drift and withheld the ping");
  await clock.advance(10_000);
  assert.deepEqual(pings, [0, 23_000]);
});

test("the default threshold is a quarter of the timeout, at most 5 s", () => {
  const short = new LoopWatchdog({ ping: () => undefined, clock: new FakeClock(), log: silentLogger(), timeoutMs: 2000, probe: manualProbe() });
  assert.equal(short.stats().maxLagMs, 500);
  assert.equal(short.stats().intervalMs, 1000);
  const long = new LoopWatchdog({ ping: () => undefined, clock: new FakeClock(), log: silentLogger(), timeoutMs: 120_000, probe: manualProbe() });
  assert.equal(long.stats().maxLagMs, 5000);
});

test("a throwing or rejecting ping does not stop the watchdog", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const watchdog = new LoopWatchdog({
    ping: () => {
      calls++;
      if (calls % 2 === 1) throw new Error("boom");
      return Promise.reject(new Error("async boom"));
    },
    clock,
    log: silentLogger(),
    timeoutMs: 2000,
    probe: manualProbe(),
  });
  await watchdog.start();
  await clock.advance(3000);
  assert.equal(calls, 4);
  await watchdog.stop();
});

test("the event-loop delay probe sees a synchronous block", async () => {
  const probe = eventLoopDelayProbe(10);
  probe.start();
  await new Promise((resolve) => setTimeout(resolve, 30));
  probe.takeMaxMs();
  const until = performance.now() + 120;
  while (performance.now() < until) {
    // block the loop
  }
  await new Promise((resolve) => setTimeout(resolve, 30));
  const lag = probe.takeMaxMs();
  probe.stop();
  assert.ok(lag >= 80, `saw ${lag} ms`);
  assert.ok(lag < 1000, `saw ${lag} ms`);
});

test("no watchdog without WATCHDOG_USEC, or without NOTIFY_SOCKET; health says why", () => {
  const noUsec = createSystemIntegration({ log: silentLogger(), clock: new FakeClock(), env: { NOTIFY_SOCKET: "/x" }, clockSyncSources: [] });
  assert.equal(noUsec.watchdog, undefined);
  assert.deepEqual(noUsec.health().systemd.watchdog, { enabled: false, reason: "WATCHDOG_USEC not set" });
  const noSocket = createSystemIntegration({ log: silentLogger(), clock: new FakeClock(), env: { WATCHDOG_USEC: "20000000" }, clockSyncSources: [] });
  assert.equal(noSocket.watchdog, undefined);
  assert.deepEqual(noSocket.health().systemd.watchdog, { enabled: false, reason: "NOTIFY_SOCKET not set" });
  assert.equal(noSocket.health().systemd.notify, false);
});
