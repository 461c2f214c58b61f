import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultLoopSettings, initLoop, stepLoop, type LoopEffect, type LoopInput, type LoopSettings, type LoopState } from "../../../src/core/loops/loop-filter.js";

const T = 1_000_000;
const presence: LoopSettings = { ...defaultLoopSettings };
const pulseBoth: LoopSettings = { ...defaultLoopSettings, type: "pulse", pulseMeaning: "arrival-and-departure" };
const pulseArrival: LoopSettings = { ...defaultLoopSettings, type: "pulse", pulseMeaning: "arrival-only", pulseHoldMs: 4000 };

type Step = { edge: 0 | 1; at: number } | { timer: "debounce" | "stuck" | "hold" | "stale"; at: number };

function toInput(state: LoopState, step: Step): LoopInput {
  if ("edge" in step) return { kind: "edge", level: step.edge, atMs: T + step.at };
  const id = step.timer === "debounce" ? state.debounceTimer : step.timer === "stuck" ? state.stuckTimer : step.timer === "hold" ? state.holdTimer : "loopA/debounce/0";
  assert.ok(id, `no ${step.timer} timer running at ${step.at}`);
  return { kind: "timer", id, atMs: T + step.at };
}

function run(settings: LoopSettings, steps: Step[]): { state: LoopState; last: LoopEffect[] } {
  let state = initLoop("loopA");
  let last: LoopEffect[] = [];
  for (const step of steps) {
    const result = stepLoop(state, toInput(state, step), settings);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}

const kinds = (effects: LoopEffect[]) => effects.map((e) => (e.kind === "presence" ? `presence:${e.occupied}` : e.kind));

// Named starting states of a presence detector, each reached by real inputs.
const states: Record<string, Step[]> = {
  idle: [],
  risingPending: [{ edge: 1, at: 0 }],
  occupied: [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
  ],
  fallingPending: [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
    { edge: 0, at: 5000 },
  ],
  fault: [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
    { timer: "stuck", at: 600_000 },
  ],
};

interface Row {
  from: keyof typeof states;
  input: Step;
  effects: string[];
  occupied: boolean;
  contact: 0 | 1;
  fault?: boolean;
}

// Every (state × input) of the presence detector, including the rows that must not move.
const rows: Row[] = [
  { from: "idle", input: { edge: 1, at: 10 }, effects: ["startTimer"], occupied: false, contact: 0 },
  { from: "idle", input: { edge: 0, at: 10 }, effects: [], occupied: false, contact: 0 },
  { from: "idle", input: { timer: "stale", at: 10 }, effects: [], occupied: false, contact: 0 },
  { from: "risingPending", input: { timer: "debounce", at: 100 }, effects: ["startTimer", "presence:true"], occupied: true, contact: 1 },
  { from: "risingPending", input: { edge: 0, at: 50 }, effects: ["cancelTimer"], occupied: false, contact: 0 },
  { from: "risingPending", input: { edge: 1, at: 50 }, effects: [], occupied: false, contact: 0 },
  { from: "risingPending", input: { timer: "stale", at: 50 }, effects: [], occupied: false, contact: 0 },
  { from: "occupied", input: { edge: 0, at: 5000 }, effects: ["startTimer"], occupied: true, contact: 1 },
  { from: "occupied", input: { edge: 1, at: 5000 }, effects: [], occupied: true, contact: 1 },
  { from: "occupied", input: { timer: "stale", at: 5000 }, effects: [], occupied: true, contact: 1 },
  { from: "occupied", input: { timer: "stuck", at: 600_000 }, effects: ["detectorFault"], occupied: true, contact: 1, fault: true },
  { from: "fallingPending", input: { timer: "debounce", at: 5300 }, effects: ["cancelTimer", "presence:false"], occupied: false, contact: 0 },
  { from: "fallingPending", input: { edge: 1, at: 5200 }, effects: ["cancelTimer"], occupied: true, contact: 1 },
  { from: "fallingPending", input: { edge: 0, at: 5200 }, effects: [], occupied: true, contact: 1 },
  { from: "fault", input: { edge: 0, at: 700_000 }, effects: ["startTimer"], occupied: true, contact: 1, fault: true },
  { from: "fault", input: { edge: 1, at: 700_000 }, effects: [], occupied: true, contact: 1, fault: true },
  { from: "fault", input: { timer: "stale", at: 700_000 }, effects: [], occupied: true, contact: 1, fault: true },
];

for (const row of rows) {
  const label = "edge" in row.input ? `edge ${row.input.edge}` : `timer ${row.input.timer}`;
  test(`presence detector: ${row.from} + ${label} → ${row.effects.join(", ") || "nothing"}`, () => {
    const { state } = run(presence, states[row.from]!);
    const result = stepLoop(state, toInput(state, row.input), presence);
    assert.deepEqual(kinds(result.effects), row.effects);
    assert.equal(result.state.occupied, row.occupied);
    assert.equal(result.state.contact, row.contact);
    assert.equal(result.state.fault, row.fault ?? false);
  });
}

test("presence: confirmation time and raw edge time are both reported", () => {
  const { last } = run(presence, [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
  ]);
  const p = last.find((e) => e.kind === "presence");
  assert.deepEqual(p, { kind: "presence", loop: "loopA", occupied: true, atMs: T + 100, edgeAtMs: T });
});

test("a stuck-on fault is reported once, keeps the loop occupied, and clears when the contact drops", () => {
  let { state } = run(presence, states.fault!);
  assert.equal(state.occupied, true);
  const drop = stepLoop(state, { kind: "edge", level: 0, atMs: T + 700_000 }, presence);
  state = drop.state;
  const recovered = stepLoop(state, { kind: "timer", id: state.debounceTimer!, atMs: T + 700_300 }, presence);
  assert.deepEqual(kinds(recovered.effects), ["detectorRecovered", "presence:false"]);
  const rec = recovered.effects.find((e) => e.kind === "detectorRecovered");
  assert.equal(rec && "heldMs" in rec ? rec.heldMs : -1, 700_000);
  assert.equal(recovered.state.fault, false);
});

test("the stuck timer counts from the raw rise, not from the confirmation", () => {
  const { last } = run(presence, [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
  ]);
  const start = last.find((e) => e.kind === "startTimer");
  assert.equal(start && "ms" in start ? start.ms : -1, 600_000 - 100);
});

test("minOnMs 0 confirms on the edge itself", () => {
  const { last, state } = run({ ...presence, minOnMs: 0 }, [{ edge: 1, at: 0 }]);
  assert.deepEqual(kinds(last), ["startTimer", "presence:true"]);
  assert.equal(state.debounceTimer, null);
});

test("pulse detector, arrival-and-departure: a 150 ms pulse toggles presence, the next one clears it", () => {
  let { state, last } = run(pulseBoth, [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
  ]);
  assert.deepEqual(kinds(last), ["startTimer", "presence:true"]);
  ({ state, last } = stepAll(state, pulseBoth, [
    { edge: 0, at: 150 },
    { timer: "debounce", at: 450 },
  ]));
  assert.deepEqual(kinds(last), ["cancelTimer"], "the end of a pulse means nothing by itself");
  assert.equal(state.occupied, true);
  ({ state, last } = stepAll(state, pulseBoth, [
    { edge: 1, at: 8000 },
    { timer: "debounce", at: 8100 },
  ]));
  assert.deepEqual(kinds(last), ["startTimer", "presence:false"]);
});

test("pulse detector: a 50 ms glitch is not a pulse", () => {
  const { state } = run(pulseBoth, [
    { edge: 1, at: 0 },
    { edge: 0, at: 50 },
  ]);
  assert.equal(state.occupied, false);
  assert.equal(state.debounceTimer, null);
});

test("pulse detector, arrival-only: presence holds pulseHoldMs after the last pulse", () => {
  let { state, last } = run(pulseArrival, [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
  ]);
  assert.deepEqual(kinds(last), ["startTimer", "startTimer", "presence:true"]);
  const firstHold = state.holdTimer;
  ({ state, last } = stepAll(state, pulseArrival, [
    { edge: 0, at: 150 },
    { timer: "debounce", at: 450 },
    { edge: 1, at: 2000 },
    { timer: "debounce", at: 2100 },
  ]));
  assert.deepEqual(kinds(last), ["startTimer", "cancelTimer", "startTimer"], "a second pulse restarts the hold");
  assert.notEqual(state.holdTimer, firstHold);
  // The old hold timer, delivered late, is ignored.
  const stale = stepLoop(state, { kind: "timer", id: firstHold!, atMs: T + 4100 }, pulseArrival);
  assert.deepEqual(stale.effects, []);
  ({ state, last } = stepAll(state, pulseArrival, [
    { edge: 0, at: 2150 },
    { timer: "debounce", at: 2450 },
    { timer: "hold", at: 6100 },
  ]));
  assert.deepEqual(kinds(last), ["presence:false"]);
});

test("pulse detector: a contact stuck on is a fault that forces presence, then resyncs to free", () => {
  let { state, last } = run(pulseBoth, [
    { edge: 1, at: 0 },
    { timer: "debounce", at: 100 },
  ]);
  ({ state, last } = stepAll(state, pulseBoth, [
    { edge: 0, at: 150 },
    { timer: "debounce", at: 450 },
  ])); // arrival
  ({ state, last } = stepAll(state, pulseBoth, [
    { edge: 1, at: 9000 },
    { timer: "debounce", at: 9100 },
  ])); // departure
  assert.equal(state.occupied, false);
  ({ state, last } = stepAll(state, pulseBoth, [{ timer: "stuck", at: 609_000 }]));
  assert.deepEqual(kinds(last), ["detectorFault", "presence:true"]);
  ({ state, last } = stepAll(state, pulseBoth, [
    { edge: 0, at: 700_000 },
    { timer: "debounce", at: 700_300 },
  ]));
  assert.deepEqual(kinds(last), ["detectorRecovered", "presence:false"]);
});

test("a level that is not 0 or 1 is ignored and the state is kept", () => {
  const state = initLoop("loopB");
  const result = stepLoop(state, { kind: "edge", level: 7 as 0, atMs: T }, presence);
  assert.equal(result.state, state);
  assert.deepEqual(result.effects, []);
});

function stepAll(state: LoopState, settings: LoopSettings, steps: Step[]): { state: LoopState; last: LoopEffect[] } {
  let last: LoopEffect[] = [];
  for (const step of steps) {
    const result = stepLoop(state, toInput(state, step), settings);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}
