// A stand-in for the lanekeeper process in power-cut tests: one run of the update agent in a
// real child process that the test can SIGKILL at a chosen step.
//
//   node --import tsx test/helpers/update-runner.ts --root <dir> --trusted <pub.pem>
//        (--job-id <id> --job <json> | --boot) [--health healthy|unhealthy]
//
// The running version is read from <root>/current/manifest.json, exactly as a process started
// from the `current` link would know its version. LANEKEEPER_UPDATE_PAUSE_AT=<checkpoint>
// makes the runner print "PAUSED <checkpoint>" and hang there, so the kill lands on that step.
// The restart callback prints "RESTART" and exits, as systemd would end the process.
// Output, one per line: "STATUS <json>", "PAUSED <point>", "RESTART", "DONE <json>".
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { UpdateAgent, type Checkpoint } from "../../src/update/agent.js";
import { loadTrustedKeyFile } from "../../src/update/keys.js";

const { values } = parseArgs({
  options: {
    root: { type: "string" },
    trusted: { type: "string" },
    "job-id": { type: "string" },
    job: { type: "string" },
    boot: { type: "boolean" },
    health: { type: "string", default: "healthy" },
    "health-window-ms": { type: "string", default: "3000" },
  },
});
if (!values.root || !values.trusted) {
  console.error("--root and --trusted are required");
  process.exit(2);
}
const root = values.root;
const manifest = JSON.parse(await readFile(join(root, "current", "manifest.json"), "utf8")) as { version: string };
const pauseAt = process.env.LANEKEEPER_UPDATE_PAUSE_AT as Checkpoint | undefined;
const line = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

const agent = new UpdateAgent({
  root,
  runningVersion: manifest.version,
  trustedKeys: [await loadTrustedKeyFile(values.trusted)],
  report: (status) => line(`STATUS ${JSON.stringify(status)}`),
  restart: async () => {
    line("RESTART");
    process.exit(0);
  },
  healthWindowMs: Number(values["health-window-ms"]),
  healthPollMs: 20,
  healthConsecutive: 2,
  fsync: true,
  download: { retryDelayMs: 20, attempts: 3 },
  checkpoint: async (point) => {
    if (point !== pauseAt) return;
    line(`PAUSED ${point}`);
    setInterval(() => undefined, 60_000);
    await new Promise(() => undefined);
  },
});

const healthy = values.health === "healthy";
const outcome = values.boot
  ? await agent.resumeAfterBoot(() => (healthy ? { healthy: true } : { healthy: false, reason: "lanes not up" }))
  : await agent.handleJob(values["job-id"] ?? "job-1", JSON.parse(values.job ?? "{}"));
line(`DONE ${JSON.stringify(outcome)}`);
