#!/usr/bin/env node
// Runs every test file under the given folders (default: test/) with node's test runner and
// tsx, then prints one closing line that CI reads: "N passed, N failed, N skipped".
import { spawn } from "node:child_process";
import { readdirSync, statSync, readFileSync, mkdirSync, renameSync } from "node:fs";
import { join, relative } from "node:path";

const roots = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const files = [];
function walk(path) {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) walk(join(path, name));
  } else if (/\.test\.ts$/.test(path)) {
    files.push(relative(process.cwd(), path));
  }
}
for (const root of roots.length ? roots : ["test"]) walk(root);
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}

mkdirSync("test-artifacts", { recursive: true });
// Each run writes its own TAP file (two runs at once must not count each other's results);
// the last finished run's is kept as results.tap.
const tapFile = `test-artifacts/results-${process.pid}.tap`;
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-concurrency=2",
    "--test-timeout=120000",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=tap",
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { stdio: "inherit", env: { ...process.env, LANEKEEPER_TEST: "1" } },
);
child.on("exit", (code, signal) => {
  let passed = 0,
    failed = 0,
    skipped = 0,
    todo = 0;
  try {
    const tap = readFileSync(tapFile, "utf8");
    const count = (name) => Number([...tap.matchAll(new RegExp(`^# ${name} (\\d+)$`, "gm"))].at(-1)?.[1] ?? 0);
    passed = count("pass");
    failed = count("fail");
    skipped = count("skipped");
    todo = count("todo");
    renameSync(tapFile, "test-artifacts/results.tap");
  } catch {
    failed = 1;
  }
  if (signal || (code !== 0 && failed === 0)) failed = Math.max(failed, 1);
  console.log(`${passed} passed, ${failed} failed, ${skipped + todo} skipped`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
