import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { DIGEST_CASES, billDigest } from "./bill-digest.js";

/**
 * Bills must not depend on the host's own time zone (a box left on UTC, a laptop in Europe):
 * the engine reads wall clocks only through Intl with the lot's zone. Under TZ=America/New_York
 * (DST) and TZ=Asia/Kolkata (a half-hour offset) a child process runs the worked-example,
 * doc-example and property suites, and compares a digest of thousands of bills with this
 * process's (host-tz-child.ts).
 */

const hostZones: Array<{ tz: string; offsetMinutes: number }> = [
  { tz: "America/New_York", offsetMinutes: 300 },
  { tz: "Asia/Kolkata", offsetMinutes: -330 },
];

function runChild(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // NODE_TEST_CONTEXT (set by a parent test runner) would make the child report in the
  // runner's binary protocol instead of printing TAP.
  const { NODE_TEST_CONTEXT: _ignored, ...base } = process.env;
  const child = spawn(process.execPath, ["--import", "tsx", "--test-reporter=tap", fileURLToPath(new URL("host-tz-child.ts", import.meta.url))], {
    env: { ...base, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
}

test("the same bills and the same suite results under other host time zones", async () => {
  const digest = billDigest(DIGEST_CASES);
  const runs = await Promise.all(
    hostZones.map(({ tz, offsetMinutes }) => runChild({ TZ: tz, LANEKEEPER_BILL_DIGEST: digest, LANEKEEPER_EXPECTED_OFFSET_MINUTES: String(offsetMinutes) })),
  );
  runs.forEach((result, i) => {
    const { tz } = hostZones[i]!;
    const passed = Number(/^# pass (\d+)$/m.exec(result.stdout)?.[1] ?? 0);
    const failed = Number(/^# fail (\d+)$/m.exec(result.stdout)?.[1] ?? -1);
    const failures = result.stdout
      .split("\n")
      .filter((line) => /^\s*not ok/.test(line))
      .join("\n");
    assert.equal(result.code, 0, `TZ=${tz} failed:\n${failures}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`);
    assert.equal(failed, 0, `TZ=${tz}`);
    // The two checks of host-tz-child.ts plus every test of the three suites.
    assert.ok(passed >= 26, `only ${passed} tests passed under TZ=${tz}`);
  });
});
