import type { Clock, TimerHandle } from "../kernel/clock.js";

/**
 * The history's daily job ("M H * * *": minute M of hour H, every day, UTC). Its own few lines
 * rather than a cron package: node-cron reads every time it matches through `Intl` (even for
 * UTC), which maps ICU's data into the process (6 MB of the box's memory) and costs a Pi about a
 * second of CPU when it loads, for a job that runs once a day at a fixed UTC time.
 *
 * The job wakes at least hourly and compares the wall clock with the due time, so a clock that
 * steps forward past the due time runs the job at the next wake-up (a catch-up, as cron would),
 * and one that steps back never leaves it waiting more than a day.
 */
const RECHECK_MS = 3_600_000;
const DAY_MS = 86_400_000;

export interface DailyTime {
  hour: number;
  minute: number;
}

/** Reads "M H * * *" (numbers only); anything else is undefined. */
export function parseDailyExpression(expression: string): DailyTime | undefined {
  const match = /^\s*(\d{1,2})\s+(\d{1,2})\s+\*\s+\*\s+\*\s*$/.exec(expression);
  if (!match) return undefined;
  const minute = Number(match[1]);
  const hour = Number(match[2]);
  return minute <= 59 && hour <= 23 ? { hour, minute } : undefined;
}

/** The first instant after `afterMs` at hh:mm:00.000 UTC. */
export function nextDailyRun(afterMs: number, at: DailyTime): number {
  const day = Math.floor(afterMs / DAY_MS) * DAY_MS;
  const today = day + at.hour * 3_600_000 + at.minute * 60_000;
  return today > afterMs ? today : today + DAY_MS;
}

/** Runs `run` every day at `at` (UTC) by `clock`; `stop()` clears its timer. */
export function scheduleDaily(clock: Clock, at: DailyTime, run: () => void): { stop(): void } {
  let due = nextDailyRun(clock.now(), at);
  let timer: TimerHandle | undefined;
  let stopped = false;
  const arm = (): void => {
    if (stopped) return;
    timer = clock.setTimeout(wake, Math.min(Math.max(0, due - clock.now()), RECHECK_MS));
  };
  const wake = (): void => {
    timer = undefined;
    const now = clock.now();
    if (now >= due) {
      due = nextDailyRun(now, at);
      run();
    } else if (due - now > DAY_MS) due = nextDailyRun(now, at); // the clock went back
    arm();
  };
  arm();
  return {
    stop() {
      stopped = true;
      if (timer) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
