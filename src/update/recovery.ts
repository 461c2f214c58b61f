import { UpdateErrorCode } from "./errors.js";
import type { ActiveJob } from "./state.js";

/**
 * What to do with an update that was in progress when the process last stopped (a crash, a
 * power cut, or the restart the update itself asked for). Pure: the agent gathers the facts
 * (which version is running, where `current` points) and carries out the plan. Every branch ends
 * in a definite state: resumed, health-checked, rolled back, or finished as failed.
 */
export interface BootFacts {
  runningVersion: string;
  /** `current` points at the job's new release. */
  currentIsNew: boolean;
  /** `current` points at the release recorded before the switch. */
  currentIsPrevious: boolean;
  nowMs: number;
  /** Boots of the new version allowed inside the health window (an unfinished window counts). */
  healthBootAttempts: number;
  /** Restarts issued for one rollback before giving up on it. */
  maxRollbackBoots: number;
}

export type BootPlan =
  | { kind: "nothing" }
  | { kind: "resume" }
  | { kind: "health-check" }
  | { kind: "rollback"; code: string; reason: string }
  | { kind: "retry-rollback" }
  | { kind: "finish"; status: "failed" | "rolled-back"; code: string; reason: string; switchBack: boolean };

const beforeSwitch = new Set(["accepted", "waiting-idle", "downloading", "verifying", "unpacking"]);

export function planBoot(active: ActiveJob | null, facts: BootFacts): BootPlan {
  if (!active) return { kind: "nothing" };
  const onNew = facts.runningVersion === active.job.version;
  const onOld = facts.runningVersion === active.fromVersion;
  const elsewhere = (): BootPlan => ({
    kind: "finish",
    status: "failed",
    code: UpdateErrorCode.Interrupted,
    reason: `the box came back on version ${facts.runningVersion} during step ${active.step}; job abandoned`,
    switchBack: false,
  });

  if (beforeSwitch.has(active.step) || active.step === "switching") {
    // Nothing before the switch touched the running release: carry on where the job stood,
    // unless it expired meanwhile (then it ends, and the box stays as it is).
    if (onOld && !facts.currentIsNew) {
      if (facts.nowMs > active.job.expiresAt) {
        return { kind: "finish", status: "failed", code: UpdateErrorCode.JobExpired, reason: `the job expired while the box was down (at step ${active.step})`, switchBack: false };
      }
      return { kind: "resume" };
    }
    // The link was switched and the new version is running (power cut after the rename).
    if (active.step === "switching" && onNew) return { kind: "health-check" };
    // The link points at the new release but the old code runs: finish the switch by restarting.
    if (active.step === "switching" && onOld) return { kind: "resume" };
    return elsewhere();
  }

  switch (active.step) {
    case "restarting":
      if (onNew) return { kind: "health-check" };
      if (onOld) {
        return {
          kind: "finish",
          status: "failed",
          code: UpdateErrorCode.Restart,
          reason: "the restart brought back the previous version; the new one never ran",
          switchBack: true,
        };
      }
      return elsewhere();
    case "health-check":
      if (onNew) {
        if (active.healthBoots >= facts.healthBootAttempts) {
          return {
            kind: "rollback",
            code: UpdateErrorCode.Unhealthy,
            reason: `version ${active.job.version} stopped before its health window ended (boot ${active.healthBoots + 1})`,
          };
        }
        return { kind: "health-check" };
      }
      if (onOld) {
        return {
          kind: "finish",
          status: "rolled-back",
          code: UpdateErrorCode.Unhealthy,
          reason: "the box came back on the previous version during the health window",
          switchBack: true,
        };
      }
      return elsewhere();
    case "rolling-back":
      if (onOld && active.bootGuard) {
        // The boot guard (scripts/boot-guard.sh) switched back before this process started:
        // the new release died at start, before its own agent could report anything.
        return {
          kind: "finish",
          status: "rolled-back",
          code: UpdateErrorCode.BootFailed,
          reason: `new version failed to start ${active.bootGuard.failedBoots} times; the boot guard switched back from ${active.job.version} to ${active.fromVersion}`,
          switchBack: !facts.currentIsPrevious,
        };
      }
      if (onOld) {
        return {
          kind: "finish",
          status: "rolled-back",
          code: active.code ?? UpdateErrorCode.Unhealthy,
          reason: active.reason ?? "rolled back",
          switchBack: !facts.currentIsPrevious,
        };
      }
      if (active.rollbackBoots >= facts.maxRollbackBoots) {
        return {
          kind: "finish",
          status: "failed",
          code: UpdateErrorCode.Rollback,
          reason: `${active.reason ?? "rollback"}; the rollback did not take effect after ${active.rollbackBoots} restart(s), staying on ${facts.runningVersion}`,
          switchBack: false,
        };
      }
      return { kind: "retry-rollback" };
    default:
      return elsewhere();
  }
}
