import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Clock, TimerHandle } from "../../../src/kernel/clock.js";
import { nextDailyRun, parseDailyExpression, scheduleDaily } from "../../../src/store/daily-job.js";

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 10, 12, 0, 0);

/**
 * Timers on a monotonic clock and a wall clock that NTP can step, as on the box (node's timers
 * do not move when the wall clock is stepped; the shared FakeClock's do).
 */
class SteppableClock implements Clock {
  private mono = 0;
  private wallOffset = T0;
  private timers: Array<{ id: number; dueMono: number; callback: () => void }> = [];
  private nextId = 1;
  now(): number {
    return this.mono + this.wallOffset;
  }
  monotonicMs(): number {
    return this.mono;
  }
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.push({ id, dueMono: this.mono + Math.max(0, ms), callback });
    return { id };
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle.id);
  }
  pendingTimers(): number {
    return this.timers.length;
  }
  step(ms: number): void {
    this.wallOffset += ms;
  }
  advance(ms: number): void {
    const target = this.mono + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.dueMono <= target).sort((a, b) => a.dueMono - b.dueMono)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.mono = due.dueMono;
      due.callback();
    }
    this.mono = target;
  }
}

test("property: the next run is the first hh:mm UTC after the instant, less than a day away", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), (after, hour, minute) => {
      const next = nextDailyRun(after, { hour, minute });
      assert.ok(next > after && next - after <= DAY);
      const at = new Date(next);
      assert.deepEqual([at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds(), at.getUTCMilliseconds()], [hour, minute, 0, 0]);
    }),
  );
});

test("property: only `M H * * *` with a real minute and hour is read; any other text is refused", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), (minute, hour) => {
      const parsed = parseDailyExpression(`${minute} ${hour} * * *`);
      assert.deepEqual(parsed, minute <= 59 && hour <= 23 ? { hour, minute } : undefined);
    }),
  );
  fc.assert(
    fc.property(fc.string(), (text) => {
      const parsed = parseDailyExpression(text);
      if (parsed) assert.match(text, /^\s*\d{1,2}\s+\d{1,2}\s+\*\s+\*\s+\*\s*$/);
    }),
  );
  for (const text of ["*/5 * * * *", "23 3 * * 1", "23 3 1 * *", "60 3 * * *", "23 24 * * *", "", "23 3"]) assert.equal(parseDailyExpression(text), undefined, text);
});

test("runs at hh:mm UTC every day; a clock stepped forward past the time catches up within the hour; one stepped back waits less than a day", () => {
  const clock = new SteppableClock();
  const runs: number[] = [];
  const job = scheduleDaily(clock, { hour: 3, minute: 23 }, () => runs.push(clock.now()));
  clock.advance(15 * HOUR + 22 * 60_000);
  assert.deepEqual(runs, []);
  clock.advance(60_000);
  assert.deepEqual(runs, [Date.UTC(2026, 5, 11, 3, 23)]);
  clock.advance(DAY);
  assert.equal(runs.length, 2);
  // NTP steps the wall clock forward 30 h: the missed run happens at the next hourly wake-up.
  clock.step(30 * HOUR);
  clock.advance(HOUR);
  assert.equal(runs.length, 3, "caught up");
  // ...and back three days: the next run is the coming 03:23 of the new date, not three days on.
  clock.step(-3 * DAY);
  const steppedBackAt = clock.now();
  clock.advance(DAY + HOUR);
  assert.equal(runs.length, 4);
  assert.ok(runs[3]! - steppedBackAt <= DAY + HOUR, `ran ${(runs[3]! - steppedBackAt) / HOUR} h after the step back`);
  job.stop();
  assert.equal(clock.pendingTimers(), 0);
  clock.advance(2 * DAY);
  assert.equal(runs.length, 4, "nothing runs after stop()");
});
