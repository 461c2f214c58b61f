import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Clock } from "../../../src/kernel/clock.js";
import { FakeClock, flushMicrotasks } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { ClockSyncMonitor, checkClockSync, commandSource, timedatectlSource, timesyncdFlagSource, type ClockSyncSource, type SyncedState } from "../../../src/system/clock-sync.js";
import { clockSyncSourcesFromConfig, systemConfigSchema } from "../../../src/system/config.js";
import { tempDir } from "../../helpers/demo-config.js";

const sh = (script: string): string[] => ["sh", "-c", script];

test("timedatectl: yes / no / no systemd / not installed / garbage", async () => {
  const rows: Array<[string[], SyncedState, RegExp]> = [
    [sh("echo yes"), true, /NTPSynchronized=yes/],
    [sh("echo no"), false, /NTPSynchronized=no/],
    [sh("echo 'System has not been booted with systemd as init system (PID 1).' >&2; exit 1"), "unknown", /not been booted with systemd/],
    [["/nonexistent/timedatectl", "show"], "unknown", /not installed/],
    [sh("echo maybe"), "unknown", /unexpected answer "maybe"/],
  ];
  for (const [command, synced, detail] of rows) {
    const probe = await timedatectlSource({ command }).probe();
    assert.equal(probe.synced, synced, command.join(" "));
    assert.match(probe.detail ?? "", detail);
  }
});

test("timedatectl that hangs is cut off by its timeout and counts as unknown", async () => {
  const begun = performance.now();
  const probe = await timedatectlSource({ command: sh("sleep 5"), timeoutMs: 200 }).probe();
  assert.equal(probe.synced, "unknown");
  assert.ok(performance.now() - begun < 2000);
});

test("timesyncd flag file: absent directory unknown, directory without flag false, flag true", async () => {
  const dir = join(tempDir("lk-timesync-"), "timesync");
  assert.equal((await timesyncdFlagSource({ dir }).probe()).synced, "unknown");
  mkdirSync(dir);
  assert.equal((await timesyncdFlagSource({ dir }).probe()).synced, false);
  writeFileSync(join(dir, "synchronized"), "");
  assert.equal((await timesyncdFlagSource({ dir }).probe()).synced, true);
});

test("a command source answers with its exit status", async () => {
  assert.equal((await commandSource(sh("exit 0")).probe()).synced, true);
  assert.equal((await commandSource(sh("exit 1")).probe()).synced, false);
  assert.equal((await commandSource(sh("exit 3")).probe()).synced, "unknown");
  assert.equal((await commandSource(["/nonexistent/chronyc"]).probe()).synced, "unknown");
});

const fixed = (name: string, synced: SyncedState, detail = `${name} says ${String(synced)}`): ClockSyncSource => ({
  name,
  probe: async () => ({ synced, detail }),
});

test("the chain asks each source until one knows; all unknown gives every reason", async () => {
  const clock = new FakeClock();
  assert.deepEqual(await checkClockSync([fixed("a", "unknown"), fixed("b", false), fixed("c", true)], clock), {
    synced: false,
    source: "b",
    checkedAtMs: clock.now(),
    detail: "b says false",
  });
  const throwing: ClockSyncSource = { name: "t", probe: async () => Promise.reject(new Error("exploded")) };
  const none = await checkClockSync([throwing, fixed("a", "unknown", "no bus")], clock);
  assert.equal(none.synced, "unknown");
  assert.equal(none.source, "none");
  assert.equal(none.detail, "t: exploded; a: no bus");
  assert.equal((await checkClockSync([], clock)).detail, "no source configured");
});

/** A clock whose wall time can step while the monotonic clock does not (an NTP step). */
function steppableClock(): Clock & { fake: FakeClock; step(ms: number): void } {
  const fake = new FakeClock();
  let offsetMs = 0;
  return {
    fake,
    now: () => fake.now() + offsetMs,
    monotonicMs: () => fake.monotonicMs(),
    setTimeout: (callback, ms) => fake.setTimeout(callback, ms),
    clearTimeout: (handle) => fake.clearTimeout(handle),
    step(ms) {
      offsetMs += ms;
    },
  };
}

test("the monitor re-checks every 30 s until synced, then every 10 min, and reports changes", async () => {
  const clock = steppableClock();
  let answer: SyncedState = false;
  let probes = 0;
  const source: ClockSyncSource = { name: "fake", probe: async () => (probes++, { synced: answer }) };
  const monitor = new ClockSyncMonitor({ clock, log: silentLogger(), sources: [source] });
  const seen: SyncedState[] = [];
  monitor.onChange((status) => seen.push(status.synced));
  assert.equal(monitor.current().source, "pending");
  await monitor.start();
  await flushMicrotasks();
  assert.equal(probes, 1);
  assert.equal(monitor.current().synced, false);
  await clock.fake.advance(29_999);
  assert.equal(probes, 1);
  await clock.fake.advance(1);
  assert.equal(probes, 2);
  answer = true;
  await clock.fake.advance(30_000);
  assert.equal(probes, 3);
  assert.equal(monitor.current().synced, true);
  assert.equal(monitor.current().checkedAtMs, clock.now());
  await clock.fake.advance(599_999);
  assert.equal(probes, 3, "synced: next check only after 10 min");
  await clock.fake.advance(1);
  assert.equal(probes, 4);
  assert.deepEqual(seen, [false, false, true, true]);
  await monitor.stop();
  assert.equal(clock.fake.pendingTimers(), 0);
});

test("a wall-clock step between checks is counted and reported; drift below 2 s is not", async () => {
  const clock = steppableClock();
  const monitor = new ClockSyncMonitor({ clock, log: silentLogger(), sources: [fixed("fake", false)] });
  await monitor.start();
  await flushMicrotasks();
  clock.step(1500);
  await clock.fake.advance(30_000);
  assert.equal(monitor.current().jumps, 0);
  // NTP finally reaches the box: fake-hwclock's time was 3 h behind.
  clock.step(3 * 3_600_000);
  await clock.fake.advance(30_000);
  assert.equal(monitor.current().jumps, 1);
  assert.equal(monitor.current().lastJump?.deltaMs, 3 * 3_600_000);
  clock.step(-60_000);
  await monitor.check();
  assert.equal(monitor.current().jumps, 2);
  assert.equal(monitor.current().lastJump?.deltaMs, -60_000);
  await monitor.stop();
});

test("the system config section: defaults, a command source needs its command, off means no source", () => {
  const defaults = systemConfigSchema.parse(undefined);
  assert.equal(defaults.clockSync.source, "auto");
  assert.equal(defaults.clockSync.recheckUnsyncedS, 30);
  assert.deepEqual(
    clockSyncSourcesFromConfig(defaults.clockSync).map((s) => s.name),
    ["timedatectl", "timesyncd-flag"],
  );
  const bad = systemConfigSchema.safeParse({ clockSync: { source: "command" } });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error?.issues[0]?.path, ["clockSync", "command"]);
  const chrony = systemConfigSchema.parse({ clockSync: { source: "command", command: ["chronyc", "waitsync", "1"] } });
  assert.deepEqual(
    clockSyncSourcesFromConfig(chrony.clockSync).map((s) => s.name),
    ["chronyc"],
  );
  assert.deepEqual(clockSyncSourcesFromConfig(systemConfigSchema.parse({ clockSync: { source: "off" } }).clockSync), []);
  assert.equal(systemConfigSchema.safeParse({ watchdog: { maxLagMs: 10 } }).success, false);
  assert.equal(systemConfigSchema.safeParse({ bogus: 1 }).success, false);
});
