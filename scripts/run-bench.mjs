#!/usr/bin/env node
// Runs every bench/*.bench.ts in turn (one at a time: they measure) and passes their JSON
// lines through. `npm run bench -- fees` runs only the benches whose name contains "fees".
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

// A bench whose header says "runs with the unit's node options" measures in-process what the
// box does, so it runs under the same V8 flags as systemd/lanekeeper.service (its 1 MB young
// generation changes latencies and throughput).
const unitEnv = Object.fromEntries([...readFileSync("systemd/lanekeeper.service", "utf8").matchAll(/^Environment=([A-Z_][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1], m[2]]));
const unitNodeOptions = (unitEnv.NODE_OPTIONS ?? "").split(/\s+/).filter(Boolean);

const filter = process.argv[2];
const benches = readdirSync("bench")
  .filter((f) => f.endsWith(".bench.ts") && (!filter || f.includes(filter)))
  .sort();
let failed = 0;
for (const file of benches) {
  const flags = readFileSync(`bench/${file}`, "utf8").includes("runs with the unit's node options") ? unitNodeOptions : [];
  // The unit's other variables (MALLOC_ARENA_MAX, …) too; its node options are the flags above.
  const unitVariables = Object.fromEntries(Object.entries(unitEnv).filter(([name]) => name !== "NODE_OPTIONS"));
  const env = flags.length > 0 ? { ...process.env, ...unitVariables } : process.env;
  const result = spawnSync(process.execPath, [...flags, "--import", "tsx", "--expose-gc", `bench/${file}`], { stdio: "inherit", env });
  if (result.status !== 0) {
    failed++;
    console.log(JSON.stringify({ figure: "bench-failed", bench: file, status: result.status }));
  }
}
process.exit(failed ? 1 : 0);
