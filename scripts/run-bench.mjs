#!/usr/bin/env node
// Runs every bench/*.bench.ts in turn (one at a time: they measure) and passes their JSON
// lines through. `npm run bench -- fees` runs only the benches whose name contains "fees".
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const filter = process.argv[2];
const benches = readdirSync("bench")
  .filter((f) => f.endsWith(".bench.ts") && (!filter || f.includes(filter)))
  .sort();
let failed = 0;
for (const file of benches) {
  const result = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", `bench/${file}`], { stdio: "inherit" });
  if (result.status !== 0) {
    failed++;
    console.log(JSON.stringify({ figure: "bench-failed", bench: file, status: result.status }));
  }
}
process.exit(failed ? 1 : 0);
