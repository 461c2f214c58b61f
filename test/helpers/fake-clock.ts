import type { Clock, TimerHandle } from "../../src/kernel/clock.js";

let nextTimerId = 1;

interface FakeTimer {
  id: number;
  dueMs: number;
  callback: () => void;
}

/**
 * A clock that moves only when told. `advance` fires due timers in order, letting promise
 * callbacks run between them so async chains triggered by a timer complete before the next.
 */
export class FakeClock implements Clock {
  private nowMs: number;
  private readonly startMs: number;
  private timers: FakeTimer[] = [];

  constructor(startMs = Date.UTC(2024, 0, 15, 2, 0, 0)) {
    this.nowMs = startMs;
    this.startMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  monotonicMs(): number {
    return this.nowMs - this.startMs;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { id: nextTimerId++, dueMs: this.nowMs + Math.max(0, ms), callback };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle.id);
  }

  pendingTimers(): number {
    return this.timers.length;
  }

  /** Jump the wall clock without firing timers (an NTP step). */
  jump(ms: number): void {
    this.nowMs += ms;
  }

  async advance(ms: number): Promise<void> {
    const target = this.nowMs + ms;
    for (;;) {
      await flushMicrotasks();
      const due = this.timers.filter((t) => t.dueMs <= target).sort((a, b) => a.dueMs - b.dueMs || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.nowMs = Math.max(this.nowMs, due.dueMs);
      due.callback();
    }
    this.nowMs = target;
    await flushMicrotasks();
  }
}

export async function flushMicrotasks(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
