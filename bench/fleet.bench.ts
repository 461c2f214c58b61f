/**
 * Operator console figures (`lanekeeper fleet`). One JSON line per figure:
 * - fleet-ls-1000: `fleet ls` (the built CLI path through tsx, as a child process) over 1,000
 *   boxes whose retained `status` and `info` were published by simulated publishers into a
 *   real mosquitto on loopback: wall time from start to the full table (budget ≤ 2 s), and the
 *   part of it after the broker session is up;
 * - fleet-rollout-step: the rollout planner's bookkeeping per box (µs), over a 1,000-box
 *   rollout driven to the end (send, status, soak, next wave).
 */
import { spawnSync } from "node:child_process";
import { connect } from "mqtt";
import { report, round } from "./lib.js";
import { initialState, parseMaxFailed, parseWaves, step, type Presence, type RolloutState } from "../src/console/rollout-plan.js";
import { findMosquitto, startMosquitto } from "../test/helpers/mosquitto.js";

const boxes = 1000;
const root = "lanekeeper/v1";
const binary = findMosquitto();
if (!binary) {
  report("fleet-ls-1000", { skipped: "mosquitto not installed" });
} else {
  const broker = await startMosquitto(binary);
  try {
    const publisher = connect(broker.url, { protocolVersion: 5, clientId: "bench-publisher" });
    await new Promise((resolve) => publisher.once("connect", resolve));
    const ts = Date.now();
    await Promise.all(
      Array.from({ length: boxes }, async (_, i) => {
        const id = `lot${i % 50}-box-${String(i).padStart(4, "0")}`;
        await publisher.publishAsync(`${root}/${id}/status`, JSON.stringify({ v: 1, state: i % 17 === 0 ? "lost" : "online", boot: 3, version: "1.4.2", configVersion: 0, ts }), {
          qos: 1,
          retain: true,
        });
        await publisher.publishAsync(
          `${root}/${id}/info`,
          JSON.stringify({
            v: 1,
            deviceId: id,
            version: "1.4.2",
            hardware: { gpio: "onoff" },
            lanes: [
              { id: "in1", direction: "in" },
              { id: "out1", direction: "out" },
            ],
            capabilities: ["jobs"],
            ts,
          }),
          { qos: 1, retain: true },
        );
      }),
    );
    await publisher.endAsync();
    const t0 = performance.now();
    const run = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "fleet", "ls", "--url", broker.url], { encoding: "utf8" });
    const wallMs = performance.now() - t0;
    const rows = run.stdout.trim().split("\n").length - 1;
    report("fleet-ls-1000", { boxes, rows, wallMs: round(wallMs), budgetMs: 2000, withinBudget: wallMs <= 2000 && rows === boxes, exit: run.status });
  } finally {
    await broker.close();
  }
}

// ---- planner bookkeeping per box
{
  const targets = Array.from({ length: boxes }, (_, i) => `box-${i}`);
  let state: RolloutState = initialState({
    id: "ro-bench",
    createdAtMs: 0,
    bundle: { version: "2.0.0", url: "http://127.0.0.1/b", sha256: "a".repeat(64), size: 1 },
    targets,
    waves: parseWaves("1,10%,50%,100%"),
    maxFailed: parseMaxFailed("1%"),
    soakMs: 10,
    jobTimeoutMs: 1_000_000,
    offlineWaitMs: 1000,
    healthWindowMs: 1000,
  });
  const presence = new Map<string, Presence>(targets.map((d) => [d, { state: "online", version: "1.0.0", boot: 1, tsMs: 0 }]));
  const lookup = (d: string): Presence | undefined => presence.get(d);
  let now = 0;
  let steps = 0;
  const t0 = performance.now();
  let r = step(state, { kind: "tick", nowMs: now }, lookup);
  while (r.state.phase !== "done" && r.state.phase !== "halted") {
    state = r.state;
    const sends = r.actions.filter((a) => a.kind === "send-job");
    for (const send of sends) {
      if (send.kind !== "send-job") continue;
      r = step(r.state, { kind: "job-status", deviceId: send.deviceId, jobId: send.jobId, status: "succeeded", nowMs: ++now }, lookup);
      steps++;
    }
    now += 20;
    r = step(r.state, { kind: "tick", nowMs: now }, lookup);
    steps++;
  }
  const totalMs = performance.now() - t0;
  report("fleet-rollout-step", { boxes, steps, phase: r.state.phase, totalMs: round(totalMs), perBoxUs: round((totalMs * 1000) / boxes) });
}
