/**
 * Timers as data, shared by every machine in src/core (docs/architecture.md "Layers": "a timer is an
 * effect whose expiry comes back as an input"). The effect runner keeps one real timer per id; a
 * `startTimer` for an id that is already running replaces it. Machines put a sequence number
 * in each id, so an expiry that raced a cancel (delivered after `cancelTimer`) no longer
 * matches the machine's state and is ignored: the machines never trust the runner's timing.
 */
export interface StartTimer {
  kind: "startTimer";
  id: string;
  ms: number;
}

export interface CancelTimer {
  kind: "cancelTimer";
  id: string;
}

export type TimerEffect = StartTimer | CancelTimer;

/** The input the runner feeds back when a timer expires. */
export interface TimerInput {
  kind: "timer";
  id: string;
  atMs: number;
}

export const startTimer = (id: string, ms: number): StartTimer => ({ kind: "startTimer", id, ms: Math.max(0, ms) });
export const cancelTimer = (id: string): CancelTimer => ({ kind: "cancelTimer", id });
