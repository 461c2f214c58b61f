import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../../helpers/demo-config.js";

/**
 * `systemd-analyze security --offline=yes` rates each unit's exposure from its file alone
 * (0 = locked down, 10 = everything allowed). The controller must stay at 3.5 or better and the
 * root-run provisioning unit at 5.0 or better; a later edit that loosens either fails here.
 * What the analyser cannot see (that GPIO, serial, the watchdog and the network still work under
 * these settings) is in systemd/README.md, "Hardening".
 */

const root = fileURLToPath(new URL("../../..", import.meta.url));
const analyzer = spawnSync("systemd-analyze", ["security", "--help"], { encoding: "utf8" });
const skip =
  analyzer.status !== 0
    ? "systemd-analyze is not installed (package systemd)"
    : !analyzer.stdout.includes("--offline")
      ? "this systemd-analyze has no --offline (systemd < 250)"
      : false;

const limits = [
  { file: "systemd/lanekeeper.service", max: 3.5 },
  { file: "systemd/lanekeeper-provision@.service", max: 5.0 },
];

/** The overall exposure the analyser prints for one unit file, and whether --threshold passed. */
function exposure(path: string, threshold: number): { level: number; passed: boolean; output: string } {
  const result = spawnSync("systemd-analyze", ["security", "--offline=yes", `--threshold=${Math.round(threshold * 10)}`, "--no-pager", path], {
    encoding: "utf8",
    env: { ...process.env, SYSTEMD_COLORS: "0" },
  });
  const output = result.stdout + result.stderr;
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(output);
  assert.ok(match, `no exposure figure in:\n${output}`);
  return { level: Number(match[1]), passed: result.status === 0, output };
}

for (const { file, max } of limits) {
  test(`${file}: exposure at most ${max}`, { skip }, () => {
    const { level, passed, output } = exposure(join(root, file), max);
    assert.ok(level <= max, `exposure ${level} > ${max}:\n${output}`);
    assert.equal(passed, true, "--threshold agrees");
  });
}

test("the check can fail: the controller without its hardening lines is rated far worse", { skip }, () => {
  const hardening =
    /^(CapabilityBoundingSet|SystemCallFilter|SystemCallArchitectures|DevicePolicy|DeviceAllow|IPAddressDeny|IPAddressAllow|ProtectKernelTunables|ProtectClock|ProtectProc|RemoveIPC|KeyringMode)=.*$/gm;
  const loose = readFileSync(join(root, "systemd/lanekeeper.service"), "utf8").replace(hardening, "");
  const path = join(tempDir("lk-security-"), "lanekeeper.service");
  writeFileSync(path, loose);
  const { level, passed } = exposure(path, 3.5);
  assert.ok(level > 3.5, `without the hardening the unit still rates ${level}`);
  assert.equal(passed, false);
});
