import { test } from "node:test";
import assert from "node:assert/strict";
import { planBoot, type BootFacts } from "../../../src/update/recovery.js";
import type { ActiveJob, ActiveStep } from "../../../src/update/state.js";

// Table of boot situations (power-cut safety, systemd/README.md "Boot guard"): every row ends in a definite plan.

const NOW = Date.UTC(2025, 0, 1);

function active(step: ActiveStep, extra: Partial<ActiveJob> = {}): ActiveJob {
  return {
    jobId: "j1",
    job: { v: 1, version: "0.2.0", url: "http://x/b.tar", sha256: "a".repeat(64), size: 10, expiresAt: NOW + 60_000, allowDowngrade: false },
    step,
    fromVersion: "0.1.0",
    previousTarget: "releases/0.1.0",
    healthBoots: 0,
    rollbackBoots: 0,
    startedAt: NOW,
    updatedAt: NOW,
    ...extra,
  };
}

function facts(running: string, current: "new" | "old", extra: Partial<BootFacts> = {}): BootFacts {
  return { runningVersion: running, currentIsNew: current === "new", currentIsPrevious: current === "old", nowMs: NOW, healthBootAttempts: 1, maxRollbackBoots: 3, ...extra };
}

test("no job recorded: nothing to do", () => {
  assert.deepEqual(planBoot(null, facts("0.1.0", "old")), { kind: "nothing" });
});

test("interrupted before the switch: resume on the old version, or end it if it expired", () => {
  for (const step of ["accepted", "waiting-idle", "downloading", "verifying", "unpacking", "switching"] as const) {
    assert.equal(planBoot(active(step), facts("0.1.0", "old")).kind, "resume", step);
    const expired = planBoot(active(step), facts("0.1.0", "old", { nowMs: NOW + 120_000 }));
    assert.equal(expired.kind, "finish", step);
    assert.equal(expired.kind === "finish" && expired.code, "E_JOB_EXPIRED");
    assert.equal(expired.kind === "finish" && expired.switchBack, false, "nothing to switch back before the switch");
  }
});

test("after the switch: the new version runs its health window; an interrupted window rolls back", () => {
  assert.equal(planBoot(active("switching"), facts("0.2.0", "new")).kind, "health-check");
  assert.equal(planBoot(active("restarting"), facts("0.2.0", "new")).kind, "health-check");
  assert.equal(planBoot(active("health-check", { healthBoots: 0 }), facts("0.2.0", "new")).kind, "health-check");
  const again = planBoot(active("health-check", { healthBoots: 1 }), facts("0.2.0", "new"));
  assert.equal(again.kind, "rollback");
  assert.match(again.kind === "rollback" ? again.reason : "", /stopped before its health window ended/);
  assert.equal(planBoot(active("health-check", { healthBoots: 1 }), facts("0.2.0", "new", { healthBootAttempts: 2 })).kind, "health-check");
});

test("a link switched but the old code running finishes the switch (restart), it does not loop", () => {
  assert.equal(planBoot(active("switching"), facts("0.1.0", "new")).kind, "resume");
  const restarted = planBoot(active("restarting"), facts("0.1.0", "old"));
  assert.equal(restarted.kind === "finish" && restarted.status, "failed");
  assert.equal(restarted.kind === "finish" && restarted.switchBack, true);
});

test("rolling back: the old version ends the job; the new one retries, then gives up", () => {
  const done = planBoot(active("rolling-back", { code: "E_UNHEALTHY", reason: "lanes not up" }), facts("0.1.0", "old"));
  assert.deepEqual(done, { kind: "finish", status: "rolled-back", code: "E_UNHEALTHY", reason: "lanes not up", switchBack: false });
  assert.equal(planBoot(active("rolling-back", { rollbackBoots: 1 }), facts("0.2.0", "new")).kind, "retry-rollback");
  const stuck = planBoot(active("rolling-back", { rollbackBoots: 3 }), facts("0.2.0", "new"));
  assert.equal(stuck.kind === "finish" && stuck.code, "E_ROLLBACK");
  const backInWindow = planBoot(active("health-check", { healthBoots: 1 }), facts("0.1.0", "old"));
  assert.equal(backInWindow.kind === "finish" && backInWindow.status, "rolled-back");
});

test("a box that comes up on some third version abandons the job without touching the links", () => {
  for (const step of ["downloading", "switching", "restarting", "health-check"] as const) {
    const plan = planBoot(active(step), facts("0.0.5", "old"));
    assert.equal(plan.kind, "finish", step);
    assert.equal(plan.kind === "finish" && plan.switchBack, false, step);
    assert.equal(plan.kind === "finish" && plan.code, "E_INTERRUPTED", step);
  }
});

test("the boot guard's mark: the old version ends the job rolled back with the guard's reason", () => {
  const marked = active("rolling-back", {
    code: "E_BOOT_FAILED",
    reason: "new version failed to start 3 times",
    bootGuard: { failedBoots: 3, maxBoots: 3, at: NOW },
  });
  const done = planBoot(marked, facts("0.1.0", "old"));
  assert.deepEqual(done, {
    kind: "finish",
    status: "rolled-back",
    code: "E_BOOT_FAILED",
    reason: "new version failed to start 3 times; the boot guard switched back from 0.2.0 to 0.1.0",
    switchBack: false,
  });
  // The guard marked the job but the power went before it switched the link: the old code can
  // only be running if something else switched; the agent still ends the job and puts it right.
  const notSwitched = planBoot(marked, facts("0.1.0", "new"));
  assert.equal(notSwitched.kind === "finish" && notSwitched.switchBack, true);
  assert.equal(notSwitched.kind === "finish" && notSwitched.code, "E_BOOT_FAILED");
  // The new release somehow running with the mark (the switch did not take): the agent retries
  // the rollback itself, and gives up after its bound like any other rollback.
  assert.equal(planBoot(marked, facts("0.2.0", "new")).kind, "retry-rollback");
  const stuck = planBoot({ ...marked, rollbackBoots: 3 }, facts("0.2.0", "new"));
  assert.equal(stuck.kind === "finish" && stuck.code, "E_ROLLBACK");
  // Without the mark the same step keeps the agent's own code and reason.
  const own = planBoot(active("rolling-back", { code: "E_UNHEALTHY", reason: "lanes not up" }), facts("0.1.0", "old"));
  assert.equal(own.kind === "finish" && own.code, "E_UNHEALTHY");
});
