import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { deferOptimisingUntilReady } from "../../../src/kernel/start-up-tiering.js";

const probe = fileURLToPath(new URL("../../fixtures/startup/tiering-probe.ts", import.meta.url));

/** Runs the probe under `--trace-opt`: whether it deferred, and which of its functions V8 marked for TurboFan. */
function runProbe(extraFlags: string[] = []): { deferred: boolean; marked: string[] } {
  const run = spawnSync(process.execPath, ["--import", "tsx", "--trace-opt", ...extraFlags, probe], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  // The probe's result is on stderr, apart from V8's trace on stdout.
  const resultLine = run.stderr.split("\n").find((line) => line.startsWith("{"));
  assert.ok(resultLine, `the probe's result line; stderr:\n${run.stderr}`);
  const result = JSON.parse(resultLine) as { deferred: boolean };
  const marked = [...run.stdout.matchAll(/^\[marking \S+ <JSFunction (hotDuringStart|hotWhenReady) /gm)].map((m) => m[1]!);
  return { deferred: result.deferred, marked: [...new Set(marked)].sort() };
}

/** The V8 whose default budget the service knows (Node 20's); on another, the service changes nothing. */
const knownV8 = process.versions.v8.startsWith("11.3.");

test("while the start is deferred V8 leaves a hot function to the interpreter; after optimiseAsUsual an equally hot one is optimised", () => {
  const probed = runProbe();
  if (knownV8) {
    assert.equal(probed.deferred, true);
    assert.deepEqual(probed.marked, ["hotWhenReady"]);
  } else {
    // Another V8 (Node 22's 12.4 has no --interrupt-budget at all): nothing deferred, both optimised.
    assert.equal(probed.deferred, false, `V8 ${process.versions.v8} is left alone`);
    assert.deepEqual(probed.marked, ["hotDuringStart", "hotWhenReady"]);
  }
});

const controlSkip = knownV8 ? false : `V8 ${process.versions.v8} has no --interrupt-budget flag to start node with; the test above checks that this V8 is left alone`;

test("the control: with node's own --interrupt-budget nothing is deferred and both functions are optimised", { skip: controlSkip }, () => {
  const probed = runProbe(["--interrupt-budget=67584"]);
  assert.equal(probed.deferred, false);
  assert.deepEqual(probed.marked, ["hotDuringStart", "hotWhenReady"]);
});

test("another V8 (its default unknown) or an operator's --interrupt-budget: the flags are left alone", () => {
  assert.equal(deferOptimisingUntilReady("12.4.254.21-node.33", []), false);
  assert.equal(deferOptimisingUntilReady("11.3.244.8-node.38", ["--max-semi-space-size=1", "--interrupt-budget=100000"]), false);
  assert.equal(deferOptimisingUntilReady("11.3.244.8-node.38", ["--interrupt_budget=100000"]), false);
});
