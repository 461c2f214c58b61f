/** The lane core's public surface (see src/core/README.md). */
export * from "./lane.js";
export * from "./lane-machine.js";
export * from "./settings.js";
export type { BarrierPosition, PulseEffect, ReleaseEffect, RelayOutput } from "../barrier/barrier-machine.js";
export type { StartTimer, CancelTimer, TimerEffect, TimerInput } from "../loops/timers.js";
export * from "./io-names.js";
