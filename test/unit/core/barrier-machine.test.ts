import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defaultBarrierSettings,
  initBarrier,
  stepBarrier,
  type BarrierEffect,
  type BarrierInput,
  type BarrierPosition,
  type BarrierSettings,
  type BarrierState,
} from "../../../src/core/barrier/barrier-machine.js";

const T = 5_000_000;
const noLimits: BarrierSettings = { ...defaultBarrierSettings };
const limits: BarrierSettings = { ...defaultBarrierSettings, limitSwitches: { opened: true, closed: true } };

type In =
  | { open: string; at: number }
  | { close: string; at: number }
  | { withdraw: string; at: number }
  | { loopB: boolean; at: number }
  | { limit: "opened" | "closed"; level: 0 | 1; at: number }
  | { timer: "travel" | "reclose" | "stale"; at: number };

function toInput(state: BarrierState, i: In): BarrierInput {
  const atMs = T + i.at;
  if ("open" in i) return { kind: "open", reason: i.open, atMs };
  if ("close" in i) return { kind: "close", reason: i.close, atMs };
  if ("withdraw" in i) return { kind: "withdraw", reason: i.withdraw, atMs };
  if ("loopB" in i) return { kind: "loopB", occupied: i.loopB, atMs };
  if ("limit" in i) return { kind: "limit", which: i.limit, level: i.level, atMs };
  const id = i.timer === "travel" ? state.travelTimer : i.timer === "reclose" ? state.recloseTimer : "barrier/travel/0";
  assert.ok(id, `no ${i.timer} timer running`);
  return { kind: "timer", id, atMs };
}

function drive(settings: BarrierSettings, inputs: In[], state = initBarrier()): { state: BarrierState; effects: BarrierEffect[] } {
  let effects: BarrierEffect[] = [];
  for (const i of inputs) {
    const r = stepBarrier(state, toInput(state, i), settings);
    state = r.state;
    effects = r.effects;
  }
  return { state, effects };
}

const sig = (effects: BarrierEffect[]) =>
  effects.map((e) => (e.kind === "pulse" || e.kind === "release" ? `${e.kind}:${e.output}` : e.kind === "event" ? `event:${e.type}` : e.kind));

const setups: Record<string, { settings: BarrierSettings; inputs: In[] }> = {
  closed: { settings: noLimits, inputs: [] },
  opening: { settings: noLimits, inputs: [{ open: "allow", at: 0 }] },
  open: {
    settings: noLimits,
    inputs: [
      { open: "allow", at: 0 },
      { timer: "travel", at: 3000 },
    ],
  },
  closing: {
    settings: noLimits,
    inputs: [
      { open: "allow", at: 0 },
      { timer: "travel", at: 3000 },
      { close: "attendant", at: 4000 },
    ],
  },
  "closed (limits)": { settings: limits, inputs: [] },
  "opening (limits)": { settings: limits, inputs: [{ open: "allow", at: 0 }] },
  "open (limits)": {
    settings: limits,
    inputs: [
      { open: "allow", at: 0 },
      { limit: "opened", level: 1, at: 2500 },
    ],
  },
  "closing (limits)": {
    settings: limits,
    inputs: [
      { open: "allow", at: 0 },
      { limit: "opened", level: 1, at: 2500 },
      { close: "attendant", at: 4000 },
    ],
  },
  "fault (limits)": {
    settings: limits,
    inputs: [
      { open: "allow", at: 0 },
      { timer: "travel", at: 8000 },
    ],
  },
};

interface Row {
  from: keyof typeof setups;
  input: In;
  effects: string[];
  to: BarrierPosition;
  owed?: number;
  closePending?: string | null;
}

const at = 20_000; // well after any pulse of the setups ended
const rows: Row[] = [
  // closed
  { from: "closed", input: { open: "allow", at }, effects: ["pulse:relayOpen", "event:barrierOpening", "startTimer"], to: "opening", owed: 1 },
  { from: "closed", input: { close: "attendant", at }, effects: [], to: "closed" },
  { from: "closed", input: { withdraw: "backedOut", at }, effects: [], to: "closed", owed: 0 },
  { from: "closed", input: { loopB: true, at }, effects: [], to: "closed" },
  { from: "closed", input: { loopB: false, at }, effects: [], to: "closed" },
  { from: "closed", input: { limit: "opened", level: 1, at }, effects: [], to: "closed" },
  { from: "closed", input: { timer: "stale", at }, effects: [], to: "closed" },
  { from: "closed (limits)", input: { limit: "opened", level: 1, at }, effects: ["event:barrierOpened", "startTimer"], to: "open", owed: 0 },
  { from: "closed (limits)", input: { limit: "closed", level: 1, at }, effects: [], to: "closed" },
  { from: "closed (limits)", input: { limit: "opened", level: 0, at }, effects: [], to: "closed" },
  // opening
  { from: "opening", input: { open: "second", at: 1000 }, effects: [], to: "opening", owed: 2 },
  { from: "opening", input: { close: "attendant", at: 1000 }, effects: ["event:closeDeferred"], to: "opening", owed: 0, closePending: "attendant" },
  { from: "opening", input: { withdraw: "backedOut", at: 1000 }, effects: [], to: "opening", owed: 0, closePending: "backedOut" },
  { from: "opening", input: { loopB: true, at: 1000 }, effects: [], to: "opening", owed: 1 },
  { from: "opening", input: { loopB: false, at: 1000 }, effects: [], to: "opening", owed: 1 },
  { from: "opening", input: { timer: "travel", at: 3000 }, effects: ["event:barrierOpened", "startTimer"], to: "open", owed: 1 },
  { from: "opening", input: { timer: "stale", at: 3000 }, effects: [], to: "opening" },
  { from: "opening", input: { limit: "opened", level: 1, at: 1000 }, effects: [], to: "opening" },
  { from: "opening (limits)", input: { limit: "opened", level: 1, at: 2000 }, effects: ["cancelTimer", "event:barrierOpened", "startTimer"], to: "open" },
  { from: "opening (limits)", input: { timer: "travel", at: 8000 }, effects: ["pulse:relayStop", "event:barrierFault"], to: "fault" },
  { from: "opening (limits)", input: { limit: "closed", level: 1, at: 2000 }, effects: ["cancelTimer", "event:barrierClosed"], to: "closed", owed: 0 },
  // open
  { from: "open", input: { open: "second", at: 4000 }, effects: ["cancelTimer", "startTimer"], to: "open", owed: 2 },
  { from: "open", input: { close: "attendant", at: 4000 }, effects: ["cancelTimer", "pulse:relayClose", "event:barrierClosing", "startTimer"], to: "closing", owed: 0 },
  { from: "open", input: { withdraw: "backedOut", at: 4000 }, effects: ["cancelTimer", "pulse:relayClose", "event:barrierClosing", "startTimer"], to: "closing", owed: 0 },
  { from: "open", input: { loopB: true, at: 4000 }, effects: ["cancelTimer"], to: "open", owed: 1 },
  { from: "open", input: { loopB: false, at: 4000 }, effects: [], to: "open", owed: 1 },
  { from: "open", input: { timer: "reclose", at: 33_000 }, effects: ["pulse:relayClose", "event:barrierClosing", "startTimer"], to: "closing", owed: 0 },
  { from: "open", input: { timer: "stale", at: 4000 }, effects: [], to: "open" },
  { from: "open", input: { limit: "closed", level: 1, at: 4000 }, effects: [], to: "open" },
  { from: "open (limits)", input: { limit: "closed", level: 1, at: 4000 }, effects: ["cancelTimer", "event:barrierClosed"], to: "closed", owed: 0 },
  { from: "open (limits)", input: { limit: "opened", level: 1, at: 4000 }, effects: [], to: "open" },
  // closing
  { from: "closing", input: { open: "allow", at: 5000 }, effects: ["cancelTimer", "pulse:relayOpen", "event:barrierReopened", "startTimer"], to: "opening", owed: 1 },
  { from: "closing", input: { close: "attendant", at: 5000 }, effects: [], to: "closing" },
  { from: "closing", input: { withdraw: "backedOut", at: 5000 }, effects: [], to: "closing", owed: 0 },
  { from: "closing", input: { loopB: true, at: 5000 }, effects: ["cancelTimer", "pulse:relayOpen", "event:barrierReopened", "startTimer"], to: "opening", owed: 0 },
  { from: "closing", input: { loopB: true, at: 4200 }, effects: ["cancelTimer", "release:relayClose", "pulse:relayOpen", "event:barrierReopened", "startTimer"], to: "opening" },
  { from: "closing", input: { loopB: false, at: 5000 }, effects: [], to: "closing" },
  { from: "closing", input: { timer: "travel", at: 7000 }, effects: ["event:barrierClosed"], to: "closed" },
  { from: "closing", input: { timer: "stale", at: 5000 }, effects: [], to: "closing" },
  { from: "closing (limits)", input: { limit: "closed", level: 1, at: 6000 }, effects: ["cancelTimer", "event:barrierClosed"], to: "closed" },
  { from: "closing (limits)", input: { timer: "travel", at: 12_000 }, effects: ["pulse:relayStop", "event:barrierFault"], to: "fault" },
  { from: "closing (limits)", input: { limit: "opened", level: 1, at: 6000 }, effects: ["cancelTimer", "event:barrierOpened", "startTimer"], to: "open", owed: 0 },
  // fault
  { from: "fault (limits)", input: { open: "manual", at }, effects: ["pulse:relayOpen", "event:barrierOpening", "startTimer"], to: "opening", owed: 2 },
  { from: "fault (limits)", input: { close: "attendant", at }, effects: ["pulse:relayClose", "event:barrierClosing", "startTimer"], to: "closing", owed: 0 },
  { from: "fault (limits)", input: { withdraw: "backedOut", at }, effects: [], to: "fault", owed: 0 },
  { from: "fault (limits)", input: { loopB: true, at }, effects: [], to: "fault" },
  { from: "fault (limits)", input: { loopB: false, at }, effects: [], to: "fault" },
  { from: "fault (limits)", input: { timer: "stale", at }, effects: [], to: "fault" },
  { from: "fault (limits)", input: { limit: "opened", level: 1, at }, effects: ["event:barrierOpened", "startTimer"], to: "open" },
  { from: "fault (limits)", input: { limit: "closed", level: 1, at }, effects: ["event:barrierClosed"], to: "closed" },
  { from: "fault (limits)", input: { limit: "closed", level: 0, at }, effects: [], to: "fault" },
];

for (const row of rows) {
  const what = Object.entries(row.input)
    .filter(([k]) => k !== "at")
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
  test(`barrier: ${row.from} + ${what} @${row.input.at} → ${row.to} [${row.effects.join(", ") || "no effects"}]`, () => {
    const setup = setups[row.from]!;
    const { state } = drive(setup.settings, setup.inputs);
    const result = stepBarrier(state, toInput(state, row.input), setup.settings);
    assert.deepEqual(sig(result.effects), row.effects);
    assert.equal(result.state.position, row.to);
    if (row.owed !== undefined) assert.equal(result.state.passagesOwed, row.owed);
    if (row.closePending !== undefined) assert.equal(result.state.closePending, row.closePending);
  });
}

test("every pulse carries the reason and the configured width", () => {
  const settings = { ...noLimits, relayPulseMs: 300 };
  const { effects } = drive(settings, [{ open: "monthly", at: 0 }]);
  assert.deepEqual(
    effects.find((e) => e.kind === "pulse"),
    { kind: "pulse", output: "relayOpen", ms: 300, reason: "monthly" },
  );
});

test("a close asked while loopB is occupied waits for the loop to clear, then closes", () => {
  let { state, effects } = drive(noLimits, [
    { open: "allow", at: 0 },
    { timer: "travel", at: 3000 },
    { loopB: true, at: 4000 },
    { close: "attendant", at: 4500 },
  ]);
  assert.deepEqual(sig(effects), ["event:closeDeferred"]);
  assert.equal(state.position, "open");
  ({ state, effects } = drive(noLimits, [{ loopB: false, at: 6000 }], state));
  assert.deepEqual(sig(effects), ["pulse:relayClose", "event:barrierClosing", "startTimer"]);
  const pulse = effects.find((e) => e.kind === "pulse");
  assert.equal(pulse?.kind === "pulse" ? pulse.reason : undefined, "attendant");
});

test("anti-tailgate: closes as soon as loopB clears after the passage", () => {
  const { state, effects } = drive(noLimits, [
    { open: "allow", at: 0 },
    { timer: "travel", at: 3000 },
    { loopB: true, at: 5000 },
    { loopB: false, at: 7000 },
  ]);
  assert.deepEqual(sig(effects), ["pulse:relayClose", "event:barrierClosing", "startTimer"]);
  assert.equal(state.position, "closing");
});

test("two allowed cars: the arm stays up after the first passage and closes after the second", () => {
  let { state, effects } = drive(noLimits, [
    { open: "car1", at: 0 },
    { timer: "travel", at: 3000 },
    { open: "car2", at: 4000 },
    { loopB: true, at: 5000 },
    { loopB: false, at: 7000 },
  ]);
  assert.equal(state.position, "open");
  assert.equal(state.passagesOwed, 1);
  assert.deepEqual(sig(effects), ["startTimer"], "reclose re-armed for the second car");
  ({ state, effects } = drive(
    noLimits,
    [
      { loopB: true, at: 9000 },
      { loopB: false, at: 11_000 },
    ],
    state,
  ));
  assert.equal(state.position, "closing");
});

test("a car that drives through while the arm is still rising: closes once the arm is up", () => {
  let { state, effects } = drive(noLimits, [
    { open: "allow", at: 0 },
    { loopB: true, at: 1500 },
    { loopB: false, at: 2500 },
  ]);
  assert.equal(state.closePending, "passage");
  ({ state, effects } = drive(noLimits, [{ timer: "travel", at: 3000 }], state));
  assert.deepEqual(sig(effects), ["event:barrierOpened", "pulse:relayClose", "event:barrierClosing", "startTimer"]);
});

test("after an anti-smash re-open the arm closes when the loop clears", () => {
  let { state } = drive(noLimits, [
    { open: "allow", at: 0 },
    { timer: "travel", at: 3000 },
    { close: "attendant", at: 4000 },
    { loopB: true, at: 4800 },
  ]);
  assert.equal(state.position, "opening");
  let effects: BarrierEffect[];
  ({ state, effects } = drive(noLimits, [{ timer: "travel", at: 7800 }], state));
  assert.deepEqual(sig(effects), ["event:barrierOpened"], "loop still occupied: no close, no reclose timer");
  ({ state, effects } = drive(noLimits, [{ loopB: false, at: 9000 }], state));
  assert.deepEqual(sig(effects), ["pulse:relayClose", "event:barrierClosing", "startTimer"]);
});

test("a travel timeout is one fault event, no retry; later timers do nothing", () => {
  const { state, effects } = drive(limits, [
    { open: "allow", at: 0 },
    { timer: "travel", at: 8000 },
  ]);
  assert.equal(effects.filter((e) => e.kind === "event" && e.type === "barrierFault").length, 1);
  assert.equal(state.travelTimer, null);
  assert.equal(state.recloseTimer, null);
});

test("an open right after a close releases the close pulse first (outputs never overlap)", () => {
  const { effects } = drive(noLimits, [
    { open: "a", at: 0 },
    { timer: "travel", at: 3000 },
    { close: "attendant", at: 4000 },
    { open: "b", at: 4100 },
  ]);
  assert.deepEqual(sig(effects), ["cancelTimer", "release:relayClose", "pulse:relayOpen", "event:barrierReopened", "startTimer"]);
});

test("the input state is never mutated", () => {
  const { state } = drive(noLimits, [{ open: "a", at: 0 }]);
  const frozen = JSON.stringify(state);
  stepBarrier(state, { kind: "loopB", occupied: true, atMs: T + 100 }, noLimits);
  stepBarrier(state, { kind: "close", reason: "x", atMs: T + 100 }, noLimits);
  assert.equal(JSON.stringify(state), frozen);
});
