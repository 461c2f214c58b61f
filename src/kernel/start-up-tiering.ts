import { setFlagsFromString } from "node:v8";

/**
 * V8 hands a function to its optimising compiler (TurboFan) once the function has run a
 * budget of bytecode (`--interrupt-budget`). While the service starts, the code that runs
 * most is code that runs once: building the config's schemas at import, checking the config,
 * resolving paths. At V8's default budget about fifteen such functions were optimised on V8's
 * threads before the service was idle, for code never run again. So the service starts with
 * eight times the budget and goes back to V8's default once it is ready. A function gets its
 * budget when it first runs and again each time the budget is spent: code first run after the
 * ready line (most of what a car runs through) is optimised as before; code that also ran
 * during the start spends one eight-fold budget first, a few more cars.
 *
 * The default is V8 11.3's (Node 20). V8 offers no way to read a flag back, so on another V8
 * (whose default may differ) nothing is changed, nor when node was started with its own
 * `--interrupt-budget` (an operator's choice, and the benches' baseline).
 */
const V8_11_3_DEFAULT_BUDGET = 67_584;
const START_UP_BUDGET = 8 * V8_11_3_DEFAULT_BUDGET;

let deferred = false;

/** Raises the budget for the start; true when it did. Call before the service's modules load. */
export function deferOptimisingUntilReady(v8Version: string = process.versions.v8, execArgv: readonly string[] = process.execArgv): boolean {
  if (deferred || !v8Version.startsWith("11.3.") || execArgv.some((arg) => arg.startsWith("--interrupt-budget") || arg.startsWith("--interrupt_budget"))) return false;
  setFlagsFromString(`--interrupt-budget=${START_UP_BUDGET}`);
  deferred = true;
  return true;
}

/** Back to V8's default budget (once ready); a no-op when the start was not deferred. */
export function optimiseAsUsual(): void {
  if (!deferred) return;
  setFlagsFromString(`--interrupt-budget=${V8_11_3_DEFAULT_BUDGET}`);
  deferred = false;
}
