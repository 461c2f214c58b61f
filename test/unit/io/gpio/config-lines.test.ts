/**
 * Bad GPIO configuration is a config error with a path, before any pin is touched; what gets past the config (a line the kernel refuses) is E_GPIO_EXPORT at start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../../../src/config/load.js";
import { gpioLinesFromConfig } from "../../../../src/io/gpio/lines.js";
import { demoRaw } from "../../../helpers/demo-config.js";

function problems(mutate: (raw: Record<string, any>) => void): { path: string; message: string }[] {
  const raw = demoRaw() as Record<string, any>;
  mutate(raw);
  const result = validateConfig(raw);
  return result.ok ? [] : result.problems;
}

test("one BCM line used twice is reported at the second use, naming the first", () => {
  const found = problems((raw) => {
    raw.lanes[1].outputs.relayStop.line = 17;
  });
  assert.deepEqual(found, [{ path: "lanes[1].outputs.relayStop.line", message: "GPIO line 17 is already used by lanes[0].inputs.loopA" }]);
});

test("an unknown logical input name is reported with its path", () => {
  const found = problems((raw) => {
    raw.lanes[0].inputs.loopC = { line: 4, activeLow: true };
  });
  assert.equal(found.length, 1);
  assert.equal(found[0]!.path, "lanes[0].inputs.loopC");
});

test("an output configured among the inputs is reported with its path", () => {
  const found = problems((raw) => {
    raw.lanes[0].inputs.relayOpen = { line: 4 };
  });
  assert.ok(
    found.some((p) => p.path === "lanes[0].inputs.relayOpen"),
    JSON.stringify(found),
  );
});

test("an input configured among the outputs is reported with its path", () => {
  const found = problems((raw) => {
    raw.lanes[0].outputs.loopB = { line: 4 };
  });
  assert.ok(
    found.some((p) => p.path === "lanes[0].outputs.loopB"),
    JSON.stringify(found),
  );
});

test("a BCM number outside the header range is reported with its path", () => {
  const found = problems((raw) => {
    raw.lanes[0].inputs.loopA.line = 529; // a sysfs number, not a BCM line
  });
  assert.ok(
    found.some((p) => p.path === "lanes[0].inputs.loopA.line"),
    JSON.stringify(found),
  );
});

test("the demo config yields one GPIO line spec per configured line, inputs and outputs apart", () => {
  const result = validateConfig(demoRaw());
  assert.ok(result.ok);
  const lines = gpioLinesFromConfig(result.config);
  assert.equal(lines.length, 12);
  assert.deepEqual(
    lines.find((l) => l.key === "out1.loopB"),
    { key: "out1.loopB", line: 24, direction: "in", activeLow: true },
  );
  assert.deepEqual(
    lines.find((l) => l.key === "in1.relayStop"),
    { key: "in1.relayStop", line: 13, direction: "out", activeLow: false },
  );
});
