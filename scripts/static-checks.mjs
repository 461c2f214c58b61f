#!/usr/bin/env node
// The static checks of `npm test`, two at a time (the machine this runs on has 2 cores and the
// type check and ESLint are the two slow ones): the type check beside ESLint, then Prettier
// beside knip. Each check's output is printed whole when it ends; any failure exits 1 before
// the suites run.
import { spawn } from "node:child_process";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function run(script) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(npm, ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (out += chunk));
    child.on("close", (code) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${code === 0 ? "ok" : "FAILED"} ${script} (${seconds} s)\n${out}`);
      resolve(code === 0);
    });
  });
}

let ok = true;
for (const pair of [
  ["typecheck", "lint"],
  ["format:check", "knip"],
]) {
  const results = await Promise.all(pair.map(run));
  if (results.includes(false)) {
    ok = false;
    break;
  }
}
process.exit(ok ? 0 : 1);
