/**
 * The core must stay pure: no IO modules, no clock, no timers, and no import that leaves
 * src/core — not the config layer, not the app, not even a type (the config imports the core,
 * never the reverse). This reads the sources of every folder of src/core, so a forbidden import
 * fails here with the file and line instead of surfacing as flaky timing in a property test.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const root = resolve(new URL("../../../src/core/", import.meta.url).pathname);

/**
 * npm packages the core may import, and where. Each is pure (no IO, no clock): zod describes
 * the tariff and stay documents and their problems. The lane machines need none.
 */
const allowedPackages: Readonly<Record<string, readonly string[]>> = {
  zod: ["fees", "validation"],
};

const forbidden: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bDate\.now\s*\(/, "Date.now()"],
  // new Date(ms) is a pure conversion; only the argument-less form reads the clock.
  [/\bnew Date\s*\(\s*\)/, "new Date()"],
  [/\bnew Date\b(?!\s*\()/, "new Date"],
  [/\bperformance\.now\s*\(/, "performance.now()"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(/, "a timer"],
  [/\bprocess\./, "process"],
  [/\bMath\.random\s*\(/, "Math.random()"],
  [/\brequire\s*\(/, "require()"],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [relative(root, path)] : [];
  });
}

/** Blank out comments, keeping line numbers (a comment may show an import as an example). */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, " ")).replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** Every module a file imports or re-exports, type-only ones included, with its line. */
function specifiers(code: string): Array<{ spec: string; line: number }> {
  const found: Array<{ spec: string; line: number }> = [];
  const patterns = [/\b(?:import|export)\s+(?:type\s+)?[^;]*?\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g];
  for (const pattern of patterns) {
    for (const m of code.matchAll(pattern)) found.push({ spec: m[1]!, line: code.slice(0, m.index).split("\n").length });
  }
  return found;
}

/** What is wrong with one core file (`file` relative to src/core); [] when it is pure. */
export function impurities(file: string, source: string): string[] {
  const folder = file.split(sep)[0]!;
  const code = stripComments(source);
  const found: string[] = [];
  code.split("\n").forEach((line, i) => {
    for (const [pattern, what] of forbidden) if (pattern.test(line)) found.push(`line ${i + 1}: ${what}: ${line.trim()}`);
  });
  for (const { spec, line } of specifiers(code)) {
    if (spec.startsWith(".")) {
      const target = resolve(dirname(join(root, file)), spec);
      if (target !== root && !target.startsWith(root + sep)) found.push(`line ${line}: import from outside src/core: ${spec}`);
    } else {
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
      if (!allowedPackages[name]?.includes(folder)) found.push(`line ${line}: ${spec.startsWith("node:") ? "a Node module" : "a package not allowed here"}: ${spec}`);
    }
  }
  return found;
}

const files = sourceFiles(root);

test("every folder of src/core is checked", () => {
  const folders = new Set(files.map((f) => f.split(sep)[0]));
  const onDisk = readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  for (const folder of ["loops", "barrier", "lane", "plates", "fees", "time", "validation", ...onDisk]) assert.ok(folders.has(folder), `no sources found in ${folder}`);
  assert.ok(files.length >= 20, files.join(", "));
});

test("the checker catches what it must (so a pass means something)", () => {
  const cases: Array<[string, string]> = [
    ["fees/x.ts", 'import { problemsFromIssues } from "../../config/load.js";'],
    ["lane/x.ts", 'import type { LaneConfig } from "../../config/schema.js";'],
    ["lane/x.ts", 'export { thing } from "../../kernel/clock.js";'],
    ["lane/x.ts", 'const m = await import("../../kernel/log.js");'],
    ["time/x.ts", 'import { readFile } from "node:fs/promises";'],
    ["time/x.ts", 'import * as fs from "fs";'],
    ["lane/x.ts", 'import { z } from "zod";'],
    ["plates/x.ts", 'import pino from "pino";'],
    ["time/x.ts", "export const now = () => Date.now();"],
    ["time/x.ts", "const d = new Date();"],
    ["loops/x.ts", "setTimeout(() => undefined, 5);"],
    ["loops/x.ts", "const r = Math.random();"],
    ["loops/x.ts", "const tz = process.env.TZ;"],
  ];
  for (const [file, source] of cases) assert.notDeepEqual(impurities(file, source), [], `${file}: ${source}`);
  // And what it must let through: core-internal imports, allowed packages, comments, new Date(ms).
  assert.deepEqual(impurities("fees/x.ts", 'import { z } from "zod";\nimport { DAY_MS } from "../time/zone.js";'), []);
  assert.deepEqual(impurities("lane/x.ts", '/**\n * import { x } from "../../config/schema.js";\n */\n// Date.now() is never read here\nconst d = new Date(ms);'), []);
});

for (const file of files) {
  test(`src/core/${file} is pure`, () => {
    assert.deepEqual(impurities(file, readFileSync(join(root, file), "utf8")), []);
  });
}
