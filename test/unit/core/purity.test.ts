/**
 * The lane core must stay pure (architecture §2): no IO modules, no clock, no timers, none of
 * the runtime packages. This reads the sources, so a forbidden import fails here with the file
 * and line instead of surfacing as flaky timing in a property test.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../../../src/core/", import.meta.url).pathname;
const folders = ["loops", "barrier", "lane", "plates"];
const forbidden: [RegExp, string][] = [
  [/from\s+["']node:/, "a node: module"],
  [/from\s+["'](fs|path|os|child_process|net|http|https|dgram|timers)["']/, "a Node IO module"],
  [/from\s+["'](onoff|serialport|mqtt|lowdb|node-cron|undici|pino|zod)(\/[^"']*)?["']/, "a runtime package"],
  [/\bDate\.now\s*\(/, "Date.now()"],
  [/\bnew Date\s*\(/, "new Date()"],
  [/\bperformance\.now\s*\(/, "performance.now()"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(/, "a timer"],
  [/\bprocess\./, "process"],
  [/\bMath\.random\s*\(/, "Math.random()"],
];

const files = folders.flatMap((folder) => readdirSync(join(root, folder)).filter((f) => f.endsWith(".ts")).map((f) => join(folder, f)));

test("the lane core has source files to check", () => {
  assert.ok(files.length >= 8, files.join(", "));
});

for (const file of files) {
  test(`src/core/${file} is pure`, () => {
    const lines = readFileSync(join(root, file), "utf8").split("\n");
    const found: string[] = [];
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, "");
      if (/^\s*(\*|\/\*)/.test(line)) return; // comments
      for (const [pattern, what] of forbidden) if (pattern.test(code)) found.push(`line ${i + 1}: ${what}: ${line.trim()}`);
    });
    // Type-only imports are erased; a value import from outside src/core is not allowed.
    for (const m of lines.join("\n").matchAll(/^import\s+(type\s+)?[^;]*?from\s+["']([^"']+)["']/gms)) {
      if (!m[1] && m[2]!.startsWith("../../")) found.push(`value import from outside the core: ${m[2]}`);
    }
    assert.deepEqual(found, []);
  });
}
