// Over 600 lines on purpose: a job's steps (validate, download, verify, install, switch, restart,
// health window, commit, rollback) share one durable state and one status stream; apart, each
// step would have to re-read and re-check what another just wrote.
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { systemClock, type Clock } from "../kernel/clock.js";
import { silentLogger, type Logger } from "../kernel/log.js";
import { checkCompatibility, parseManifest, sha256File, unpackBundle, verifyBundle, verifyTree, type VerifiedBundle } from "./bundle.js";
import { redactUrl } from "../kernel/redact-url.js";
import { sleep } from "../kernel/sleep.js";
import { downloadResumable, type DownloadOptions } from "./download.js";
import { renameDurable } from "./durable.js";
import { UpdateError, UpdateErrorCode, describeError } from "./errors.js";
import { normaliseHealth, type HealthProbe, type HealthResult } from "./health.js";
import { jobIdSchema, updateJobSchema, type JobStatus, type JobStep, type TerminalStatus, type UpdateJob } from "./job.js";
import type { TrustedKey } from "./keys.js";
import { MANIFEST_FILE, localArchitecture, type Architecture } from "./manifest.js";
import { planBoot, type BootPlan } from "./recovery.js";
import { isDirectory, pruneReleases, readCurrentTarget, releaseTarget, removeTempLeftovers, resolveTarget, sameTarget, switchCurrent } from "./releases.js";
import { HISTORY_LIMIT, UpdateStateFile, type ActiveJob, type ActiveStep, type FinishedJob, type UpdateState } from "./state.js";
import { compareVersions } from "./version.js";

/** Points where a test can stop the process (update-runner's pause hook). */
export type Checkpoint = "download" | "verify" | "unpack" | "switch" | "restart" | "health";

export interface UpdateAgentOptions {
  /** `<root>/current`, `releases/`, `staging/`, `update-state.json`. */
  root: string;
  /** The version of the code in this process. */
  runningVersion: string;
  /** Fixed keys, or a loader asked at every job (keys from the stick take effect without restart). */
  trustedKeys: readonly TrustedKey[] | (() => Promise<readonly TrustedKey[]>);
  /** Every status change; the App publishes it on `jobs/<jobId>/status`. Must not throw. */
  report: (status: JobStatus) => void;
  /** True when no lane has a vehicle mid-transaction. */
  lanesIdle?: () => boolean;
  /** Restarts the service; default runs `restartCommand`. */
  restart?: () => Promise<void>;
  restartCommand?: readonly string[];
  clock?: Clock;
  log?: Logger;
  /** Expected manifest name. */
  name?: string;
  /** Default: from `process.arch`. A bundle whose native files are for another machine is refused. */
  architecture?: Architecture;
  /** Default `process.versions.modules`: the ABI the bundle's native addons must be built for. */
  nodeModuleVersion?: string;
  keepReleases?: number;
  healthWindowMs?: number;
  healthPollMs?: number;
  /** Consecutive healthy probes needed to commit. */
  healthConsecutive?: number;
  healthBootAttempts?: number;
  maxRollbackBoots?: number;
  idleWaitMs?: number;
  idlePollMs?: number;
  download?: Pick<DownloadOptions, "attempts" | "retryDelayMs" | "maxRetryDelayMs" | "headersTimeoutMs" | "stallTimeoutMs" | "dispatcher" | "caFile">;
  /** fsync unpacked files (default true; tests on tmpfs may skip it). */
  fsync?: boolean;
  checkpoint?: (point: Checkpoint) => Promise<void> | void;
}

export type BootOutcome = { action: BootPlan["kind"]; status?: JobStatus };

const stepOf: Record<ActiveStep, JobStep> = {
  accepted: "validate",
  "waiting-idle": "wait-idle",
  downloading: "download",
  verifying: "verify",
  unpacking: "unpack",
  switching: "switch",
  restarting: "restart",
  "health-check": "health",
  "rolling-back": "rollback",
};

/** Failures that mean the staged file is not the bundle we want: it is deleted. */
const badBundleCodes = new Set<string>([
  UpdateErrorCode.Hash,
  UpdateErrorCode.Size,
  UpdateErrorCode.BundleFormat,
  UpdateErrorCode.ManifestInvalid,
  UpdateErrorCode.Signature,
  UpdateErrorCode.UnknownKey,
  UpdateErrorCode.FileHash,
  UpdateErrorCode.FileMissing,
  UpdateErrorCode.FileExtra,
  UpdateErrorCode.UnsafePath,
  UpdateErrorCode.Incompatible,
  UpdateErrorCode.WrongArchitecture,
]);

/**
 * The update agent: runs one update job at a time through
 * download → verify → unpack → switch → restart, and at the next boot through the health
 * window to commit or rollback. Each step is recorded in update-state.json before it starts,
 * so `resumeAfterBoot` can bring any interrupted job to a definite end.
 */
export class UpdateAgent {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly stateFile: UpdateStateFile;
  private state: UpdateState | undefined;
  private loading: Promise<UpdateState> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private running: { jobId: string } | undefined;
  private readonly lastStatus = new Map<string, JobStatus>();
  /** Terminal outcomes since start, by status (for /api/status and the fleet health message). */
  private readonly counts: Record<string, number> = {};
  private readonly abort = new AbortController();
  private readonly architecture: Architecture | undefined;

  constructor(private readonly options: UpdateAgentOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger();
    this.stateFile = new UpdateStateFile(join(options.root, "update-state.json"), this.log);
    this.architecture = options.architecture ?? localArchitecture();
  }

  get runningVersion(): string {
    return this.options.runningVersion;
  }

  /** True while a job is running or recorded as unfinished (fleet status "updating"). */
  isBusy(): boolean {
    return this.running !== undefined || (this.state?.active ?? null) !== null;
  }

  /** For /api/status and the fleet health message. */
  snapshot(): {
    runningVersion: string;
    active: { jobId: string; step: ActiveStep; version: string; fromVersion: string } | null;
    last: FinishedJob | null;
    counts: Record<string, number>;
  } {
    const active = this.state?.active ?? null;
    return {
      runningVersion: this.options.runningVersion,
      counts: { ...this.counts },
      active: active ? { jobId: active.jobId, step: active.step, version: active.job.version, fromVersion: active.fromVersion } : null,
      last: this.state?.history.at(-1) ?? null,
    };
  }

  /** The last status sent for a job in this process (re-publish after an MQTT reconnect). */
  statusOf(jobId: string): JobStatus | undefined {
    return this.lastStatus.get(jobId);
  }

  /**
   * Publishes again the last known status of a job this box accepted before (a console resuming
   * a rollout repeats jobs under the same id). Never starts anything; a job the box no longer
   * remembers (pruned history) is left unanswered, and the console settles it from `status`.
   */
  async reportAgain(jobId: string): Promise<JobStatus | undefined> {
    const last = this.lastStatus.get(jobId);
    if (last) return this.send({ ...last });
    let state;
    try {
      state = await this.loadState();
    } catch (error) {
      this.log.warn({ err: error, jobId }, "update state unreadable; a repeated job's status cannot be published again");
      return undefined;
    }
    const finished = state.history.find((h) => h.jobId === jobId);
    if (finished) return this.sendFinished(finished);
    if (state.active?.jobId === jobId) return this.send(this.activeStatus(state.active, 0));
    this.log.info({ jobId }, "repeated job is not in this box's history; nothing to report again");
    return undefined;
  }

  /** Stops waiting and downloading; the job stays recorded and resumes at the next boot. */
  stop(): void {
    this.abort.abort();
  }

  // -------------------------------------------------------------------------------------------
  // A job arrives

  /**
   * Handles a job from `jobs/<jobId>`. Resolves with the last status sent: terminal for a
   * rejected, failed or no-op job; "in-progress" at step "restart" when the restart was
   * requested (the process is about to be replaced).
   */
  async handleJob(jobId: string, payload: unknown): Promise<JobStatus> {
    try {
      return await this.acceptJob(jobId, payload);
    } catch (error) {
      // Only IO trouble with the state file gets here; the job cannot be tracked, so it ends.
      this.log.error({ err: error, jobId }, "update job could not be handled");
      return this.send({ jobId, status: "failed", step: "validate", code: UpdateErrorCode.Interrupted, reason: `cannot handle the job: ${(error as Error).message}` });
    }
  }

  private async acceptJob(jobId: string, payload: unknown): Promise<JobStatus> {
    const state = await this.loadState();
    const from = this.options.runningVersion;
    const id = jobIdSchema.safeParse(jobId);
    if (!id.success)
      return this.send({ jobId, status: "rejected", step: "validate", code: UpdateErrorCode.JobInvalid, reason: `job id ${id.error.issues[0]?.message ?? "is invalid"}` });

    // Everything up to `this.running = ...` is synchronous so two deliveries cannot both start.
    if (this.running) {
      const last = this.lastStatus.get(jobId);
      if (this.running.jobId === jobId && last) return this.send({ ...last });
      return this.send({ jobId, status: "rejected", step: "validate", code: UpdateErrorCode.Busy, reason: `update job ${this.running.jobId} is in progress` });
    }
    const finished = state.history.find((h) => h.jobId === jobId);
    if (finished) return this.sendFinished(finished);
    if (state.active) {
      if (state.active.jobId === jobId) return this.send(this.activeStatus(state.active, 0));
      return this.send({ jobId, status: "rejected", step: "validate", code: UpdateErrorCode.Busy, reason: `update job ${state.active.jobId} is unfinished` });
    }

    const parsed = updateJobSchema.safeParse(payload);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`).join("; ");
      return this.reject(jobId, undefined, UpdateErrorCode.JobInvalid, `invalid job: ${reason}`);
    }
    const job = parsed.data;
    const now = this.clock.now();
    if (now > job.expiresAt) return this.reject(jobId, job.version, UpdateErrorCode.JobExpired, `job expired at ${new Date(job.expiresAt).toISOString()}`);
    const order = compareVersions(job.version, from);
    if (order === 0) {
      const reason = `version ${job.version} is already running; nothing to do`;
      await this.record({ jobId, version: job.version, fromVersion: from, status: "succeeded", reason, finishedAt: now });
      return this.send({ jobId, status: "succeeded", step: "validate", progress: 1, version: job.version, reason });
    }
    if (order < 0 && !job.allowDowngrade) {
      return this.reject(jobId, job.version, UpdateErrorCode.Downgrade, `version ${job.version} is older than the running ${from}; set allowDowngrade to install it`);
    }

    this.running = { jobId };
    const active: ActiveJob = {
      jobId,
      job,
      step: "accepted",
      fromVersion: from,
      previousTarget: null,
      healthBoots: 0,
      rollbackBoots: 0,
      startedAt: now,
      updatedAt: now,
    };
    state.active = active;
    try {
      await this.save();
    } catch (error) {
      this.running = undefined;
      state.active = null;
      return this.send({
        jobId,
        status: "failed",
        step: "validate",
        version: job.version,
        code: UpdateErrorCode.Interrupted,
        reason: `cannot record the job: ${(error as Error).message}`,
      });
    }
    this.log.info({ jobId, version: job.version, from, url: redactUrl(job.url), size: job.size }, "update job accepted");
    this.send({ jobId, status: "in-progress", step: "validate", progress: 1, version: job.version });
    return this.runPipeline(active);
  }

  // -------------------------------------------------------------------------------------------
  // Boot

  /**
   * Called once at boot by the (possibly new) process. Finishes whatever job update-state.json
   * says was in progress: resumes an interrupted download/unpack, runs the health window of a
   * freshly switched version and commits it, or rolls back and restarts. Do not await it before
   * the box is started: the health window needs the box running.
   */
  async resumeAfterBoot(probe: HealthProbe): Promise<BootOutcome> {
    const state = await this.loadState();
    if (this.running) return { action: "nothing" };
    const removed = await removeTempLeftovers(this.options.root);
    if (removed.length > 0) this.log.info({ removed }, "removed leftovers of interrupted work");
    const active = state.active;
    if (!active || this.running) return { action: "nothing" };
    const root = this.options.root;
    const currentTarget = await readCurrentTarget(root);
    const plan = planBoot(active, {
      runningVersion: this.options.runningVersion,
      currentIsNew: sameTarget(root, currentTarget, releaseTarget(active.job.version)),
      currentIsPrevious: sameTarget(root, currentTarget, active.previousTarget),
      nowMs: this.clock.now(),
      healthBootAttempts: this.options.healthBootAttempts ?? 1,
      maxRollbackBoots: this.options.maxRollbackBoots ?? 3,
    });
    this.log.info({ jobId: active.jobId, step: active.step, plan: plan.kind, running: this.options.runningVersion }, "update recovery at boot");
    this.running = { jobId: active.jobId };
    try {
      switch (plan.kind) {
        case "nothing":
          return { action: plan.kind };
        case "resume":
          this.send({ ...this.activeStatus(active, 0), reason: `resumed after a restart at step ${active.step}` });
          return { action: plan.kind, status: await this.runPipeline(active) };
        case "health-check":
          return { action: plan.kind, status: await this.healthWindow(active, probe) };
        case "rollback":
          return { action: plan.kind, status: await this.rollback(active, plan.code, plan.reason) };
        case "retry-rollback":
          return { action: plan.kind, status: await this.rollback(active, active.code ?? UpdateErrorCode.Unhealthy, active.reason ?? "rollback") };
        case "finish": {
          if (plan.switchBack && active.previousTarget && (await isDirectory(resolveTarget(root, active.previousTarget)))) {
            if (!sameTarget(root, currentTarget, active.previousTarget)) await switchCurrent(root, active.previousTarget);
          }
          return { action: plan.kind, status: await this.finish(active, plan.status, stepOf[active.step], plan.code, plan.reason) };
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The install pipeline (idempotent: a resumed job skips work already done)

  private async runPipeline(active: ActiveJob): Promise<JobStatus> {
    this.running = { jobId: active.jobId };
    const job = active.job;
    try {
      await this.removeOtherStaging(job.version);
      await removeTempLeftovers(this.options.root);

      await this.setStep(active, "waiting-idle");
      await this.waitForIdle(active);
      this.send(this.activeStatus(active, 1));

      const verified = await this.downloadAndVerify(active);

      await this.setStep(active, "unpacking");
      this.send(this.activeStatus(active, 0));
      await this.unpack(active, verified);
      this.send(this.activeStatus(active, 1));

      // A car may have arrived during the download; the switch and restart must wait for it.
      await this.waitForIdle(active);

      const root = this.options.root;
      const target = releaseTarget(job.version);
      if (active.previousTarget === null) {
        const current = await readCurrentTarget(root);
        if (current !== null && !sameTarget(root, current, target)) active.previousTarget = current;
      }
      await this.setStep(active, "switching");
      this.send(this.activeStatus(active, 0));
      await switchCurrent(root, target, () => this.checkpoint("switch"));

      await this.setStep(active, "restarting");
      await this.checkpoint("restart");
      this.send({ ...this.activeStatus(active, 0), reason: `switched to ${job.version}; restarting` });
      try {
        await this.restart();
      } catch (error) {
        // The new release never ran: put the link back so the next start is the old version.
        if (active.previousTarget) await switchCurrent(root, active.previousTarget);
        throw new UpdateError(UpdateErrorCode.Restart, `restart failed: ${(error as Error).message}`);
      }
      return this.send({ ...this.activeStatus(active, 1), reason: "restart requested" });
    } catch (error) {
      return this.failActive(active, error);
    } finally {
      this.running = undefined;
    }
  }

  private async downloadAndVerify(active: ActiveJob): Promise<VerifiedBundle> {
    const job = active.job;
    const staged = this.stagingFile(job.version);
    await mkdir(join(this.options.root, "staging"), { recursive: true });
    await this.claimStaging(job);
    let freshRetry = false;
    for (;;) {
      await this.setStep(active, "downloading");
      this.send(this.activeStatus(active, 0));
      let lastSent = { progress: 0, atMs: this.clock.monotonicMs() };
      let paused = false;
      const result = await downloadResumable({
        url: job.url,
        file: staged,
        size: job.size,
        clock: this.clock,
        log: this.log,
        signal: this.abort.signal,
        ...this.options.download,
        onProgress: (bytes, total) => {
          const progress = bytes / total;
          const nowMs = this.clock.monotonicMs();
          if (progress - lastSent.progress >= 0.05 || nowMs - lastSent.atMs >= 2000) {
            lastSent = { progress, atMs: nowMs };
            this.send(this.activeStatus(active, progress));
          }
        },
        onChunk: async () => {
          if (paused) return;
          paused = true;
          await this.checkpoint("download");
        },
      });
      this.log.info({ ...result, size: job.size }, "download complete");
      this.send(this.activeStatus(active, 1));

      await this.setStep(active, "verifying");
      this.send(this.activeStatus(active, 0));
      const size = (await stat(staged)).size;
      if (size !== job.size) {
        await this.deleteStaging(job.version);
        throw new UpdateError(UpdateErrorCode.Size, `downloaded ${size} bytes, the job says ${job.size}`);
      }
      const sha = await sha256File(staged);
      if (sha !== job.sha256) {
        await this.deleteStaging(job.version);
        const resumed = result.resumedFrom > 0 || result.requests > 1;
        // A resumed file may hold a stale or torn prefix (power cut, changed server file): try
        // once from scratch before blaming the bundle.
        if (resumed && !freshRetry) {
          freshRetry = true;
          this.log.warn({ sha, expected: job.sha256 }, "hash mismatch after a resumed download; downloading again from scratch");
          await this.claimStaging(job);
          continue;
        }
        throw new UpdateError(UpdateErrorCode.Hash, `sha256 of the download is ${sha}, the job says ${job.sha256}`);
      }
      await this.checkpoint("verify");
      const verified = await verifyBundle(staged, await this.trustedKeys());
      // Before anything is unpacked: a wrong-architecture addon only fails after the switch.
      checkCompatibility(
        verified.manifest,
        {
          name: this.options.name ?? "lanekeeper",
          version: job.version,
          runningVersion: active.fromVersion,
          architecture: this.architecture,
          nodeModuleVersion: this.options.nodeModuleVersion ?? process.versions.modules,
        },
        verified.native,
      );
      this.send({ ...this.activeStatus(active, 1), reason: `signed by ${verified.key.id}; ${verified.fileCount} files verified` });
      return verified;
    }
  }

  private async unpack(active: ActiveJob, verified: VerifiedBundle): Promise<void> {
    const root = this.options.root;
    const version = active.job.version;
    const dest = resolveTarget(root, releaseTarget(version));
    await mkdir(join(root, "releases"), { recursive: true });
    if (await isDirectory(dest)) {
      if (await this.releaseMatches(dest, verified)) {
        this.log.info({ dest }, "release already unpacked and intact; reusing it");
        return;
      }
      const current = await readCurrentTarget(root);
      if (sameTarget(root, current, releaseTarget(version)) || sameTarget(root, active.previousTarget, releaseTarget(version))) {
        throw new UpdateError(UpdateErrorCode.Unpack, `${dest} is in use and does not match the bundle; refusing to replace it`);
      }
      await rm(dest, { recursive: true, force: true });
    }
    const temp = join(root, "releases", `.tmp-${version}-${process.pid}`);
    await rm(temp, { recursive: true, force: true });
    await unpackBundle(this.stagingFile(version), verified, temp, { fsync: this.options.fsync ?? true });
    await this.checkpoint("unpack");
    await renameDurable(temp, dest);
  }

  private async releaseMatches(dir: string, verified: VerifiedBundle): Promise<boolean> {
    try {
      const bytes = await readFile(join(dir, MANIFEST_FILE));
      if (!bytes.equals(verified.manifestBytes)) return false;
      await verifyTree(dir, parseManifest(bytes));
      return true;
    } catch {
      return false;
    }
  }

  private async waitForIdle(active: ActiveJob): Promise<void> {
    const lanesIdle = this.options.lanesIdle;
    if (!lanesIdle || lanesIdle()) return;
    const waitMs = this.options.idleWaitMs ?? 600_000;
    const pollMs = this.options.idlePollMs ?? 1000;
    const started = this.clock.monotonicMs();
    this.send({ ...this.activeStatus(active, 0), step: "wait-idle", reason: "waiting for the lanes to be idle" });
    for (;;) {
      const elapsed = this.clock.monotonicMs() - started;
      if (elapsed >= waitMs) {
        throw new UpdateError(UpdateErrorCode.LanesBusy, `lanes busy: a vehicle transaction was still open after ${Math.round(waitMs / 1000)} s`);
      }
      await sleep(this.clock, Math.min(pollMs, waitMs - elapsed), this.abort.signal);
      if (this.abort.signal.aborted) throw new UpdateError(UpdateErrorCode.Aborted, "stopped while waiting for the lanes");
      if (lanesIdle()) return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Health window, commit, rollback

  private async healthWindow(active: ActiveJob, probe: HealthProbe): Promise<JobStatus> {
    active.healthBoots += 1;
    await this.setStep(active, "health-check");
    const windowMs = this.options.healthWindowMs ?? 120_000;
    const pollMs = this.options.healthPollMs ?? 2000;
    const needed = this.options.healthConsecutive ?? 3;
    this.send({ ...this.activeStatus(active, 0), reason: `version ${active.job.version} started; health window ${Math.round(windowMs / 1000)} s` });
    const started = this.clock.monotonicMs();
    let consecutive = 0;
    let lastReason = "no health report yet";
    let first = true;
    let lastHealthy: boolean | undefined;
    for (;;) {
      let result: HealthResult;
      try {
        result = normaliseHealth(await probe());
      } catch (error) {
        result = { healthy: false, reason: `health probe failed: ${(error as Error).message}` };
      }
      if (first) {
        first = false;
        await this.checkpoint("health");
      }
      if (result.healthy) consecutive++;
      else {
        consecutive = 0;
        lastReason = result.reason ?? "unhealthy";
      }
      const elapsed = this.clock.monotonicMs() - started;
      if (consecutive >= needed) return this.commit(active);
      if (elapsed >= windowMs) {
        return this.rollback(active, UpdateErrorCode.Unhealthy, `version ${active.job.version} did not report healthy within ${Math.round(windowMs / 1000)} s: ${lastReason}`);
      }
      if (lastHealthy !== result.healthy) {
        lastHealthy = result.healthy;
        this.send({ ...this.activeStatus(active, elapsed / windowMs), ...(result.healthy ? {} : { reason: lastReason }) });
      }
      if (this.abort.signal.aborted) return this.activeStatus(active, elapsed / windowMs);
      await sleep(this.clock, Math.min(pollMs, windowMs - elapsed), this.abort.signal);
    }
  }

  private async commit(active: ActiveJob): Promise<JobStatus> {
    const status = await this.finish(active, "succeeded", "commit", undefined, `version ${active.job.version} is healthy; update committed`);
    try {
      const protect = [releaseTarget(active.job.version), ...(active.previousTarget ? [active.previousTarget] : [])];
      const current = await readCurrentTarget(this.options.root);
      if (current) protect.push(current);
      const removed = await pruneReleases(this.options.root, this.options.keepReleases ?? 3, protect);
      if (removed.length > 0) this.log.info({ removed }, "pruned old releases");
      await this.deleteStaging(active.job.version);
    } catch (error) {
      this.log.warn({ err: error }, "cleanup after commit failed");
    }
    return status;
  }

  private async rollback(active: ActiveJob, code: string, reason: string): Promise<JobStatus> {
    const root = this.options.root;
    const previous = active.previousTarget;
    if (!previous || !(await isDirectory(resolveTarget(root, previous)))) {
      return this.finish(active, "failed", "rollback", UpdateErrorCode.Rollback, `${reason}; cannot roll back: no previous release on disk`);
    }
    active.code = code;
    active.reason = reason;
    active.rollbackBoots += 1;
    await this.setStep(active, "rolling-back");
    this.log.warn({ jobId: active.jobId, reason, to: previous }, "rolling back");
    this.send({ ...this.activeStatus(active, 0), code, reason });
    await switchCurrent(root, previous);
    try {
      await this.restart();
    } catch (error) {
      // The link already points back; the next start (whoever triggers it) finishes the rollback.
      this.log.error({ err: error }, "restart for the rollback failed");
      return this.send({ ...this.activeStatus(active, 0.5), code, reason: `${reason}; restart failed: ${(error as Error).message}` });
    }
    return this.send({ ...this.activeStatus(active, 1), code, reason });
  }

  private async failActive(active: ActiveJob, error: unknown): Promise<JobStatus> {
    const { code, reason } = describeError(error, UpdateErrorCode.Interrupted);
    if (code === UpdateErrorCode.Aborted) {
      // The process is stopping: leave the job recorded; the next boot resumes it.
      this.log.info({ jobId: active.jobId, step: active.step }, "update paused by shutdown");
      return this.activeStatus(active, 0);
    }
    this.log.error({ jobId: active.jobId, step: active.step, code, reason }, "update job failed");
    await removeTempLeftovers(this.options.root).catch(() => []);
    if (badBundleCodes.has(code)) await this.deleteStaging(active.job.version);
    return this.finish(active, "failed", stepOf[active.step], code, reason);
  }

  // -------------------------------------------------------------------------------------------
  // State and status

  private async finish(active: ActiveJob, status: TerminalStatus, step: JobStep, code: string | undefined, reason: string): Promise<JobStatus> {
    const state = await this.loadState();
    const now = this.clock.now();
    const record: FinishedJob = { jobId: active.jobId, version: active.job.version, fromVersion: active.fromVersion, status, reason, finishedAt: now };
    if (code !== undefined) record.code = code;
    if (state.active?.jobId === active.jobId) state.active = null;
    await this.record(record);
    return this.send({
      jobId: active.jobId,
      status,
      step,
      progress: 1,
      version: active.job.version,
      fromVersion: active.fromVersion,
      ...(code !== undefined ? { code } : {}),
      reason,
    });
  }

  private async reject(jobId: string, version: string | undefined, code: string, reason: string): Promise<JobStatus> {
    const record: FinishedJob = { jobId, fromVersion: this.options.runningVersion, status: "rejected", code, reason, finishedAt: this.clock.now() };
    if (version !== undefined) record.version = version;
    await this.record(record);
    return this.send({ jobId, status: "rejected", step: "validate", code, reason, ...(version !== undefined ? { version } : {}) });
  }

  private async record(finished: FinishedJob): Promise<void> {
    const state = await this.loadState();
    state.history = [...state.history.filter((h) => h.jobId !== finished.jobId), finished].slice(-HISTORY_LIMIT);
    await this.save();
  }

  private sendFinished(finished: FinishedJob): JobStatus {
    return this.send({
      jobId: finished.jobId,
      status: finished.status,
      step: finished.status === "succeeded" ? "commit" : finished.status === "rolled-back" ? "rollback" : "validate",
      progress: 1,
      fromVersion: finished.fromVersion,
      ...(finished.version !== undefined ? { version: finished.version } : {}),
      ...(finished.code !== undefined ? { code: finished.code } : {}),
      ...(finished.reason !== undefined ? { reason: finished.reason } : {}),
    });
  }

  private activeStatus(active: ActiveJob, progress: number): JobStatus {
    return {
      v: 1,
      jobId: active.jobId,
      status: "in-progress",
      step: stepOf[active.step],
      progress: Math.max(0, Math.min(1, progress)),
      version: active.job.version,
      fromVersion: active.fromVersion,
      ts: this.clock.now(),
    };
  }

  private send(partial: Partial<JobStatus> & Pick<JobStatus, "jobId" | "status" | "step">): JobStatus {
    const status: JobStatus = {
      v: 1,
      progress: partial.status === "in-progress" ? 0 : 1,
      fromVersion: this.options.runningVersion,
      ...partial,
      ts: this.clock.now(),
    };
    this.lastStatus.set(status.jobId, status);
    if (status.status !== "in-progress") this.counts[status.status] = (this.counts[status.status] ?? 0) + 1;
    try {
      this.options.report(status);
    } catch (error) {
      this.log.warn({ err: error, jobId: status.jobId }, "job status report failed");
    }
    return status;
  }

  private async setStep(active: ActiveJob, step: ActiveStep): Promise<void> {
    active.step = step;
    active.updatedAt = this.clock.now();
    const state = await this.loadState();
    state.active = active;
    await this.save();
  }

  private async loadState(): Promise<UpdateState> {
    if (this.state) return this.state;
    this.loading ??= (async () => {
      // No mkdir here: a box (or a laptop in demo mode) without <root> simply has no update state.
      const loaded = await this.stateFile.load();
      this.state = loaded;
      return loaded;
    })();
    return this.loading;
  }

  /** Saves are chained and each writes the state as it is when its turn comes (never stale). */
  private save(): Promise<void> {
    const next = this.saving.then(async () => {
      if (!this.state) return;
      await mkdir(this.options.root, { recursive: true });
      await this.stateFile.save(this.state);
    });
    // A marker for the next save to queue behind; this save's failure reaches its caller through `next`.
    this.saving = next.catch(() => undefined);
    return next;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private async trustedKeys(): Promise<readonly TrustedKey[]> {
    const keys = this.options.trustedKeys;
    return typeof keys === "function" ? keys() : keys;
  }

  private async checkpoint(point: Checkpoint): Promise<void> {
    await this.options.checkpoint?.(point);
  }

  private stagingFile(version: string): string {
    return join(this.options.root, "staging", `${version}.tar`);
  }

  /**
   * The staging file belongs to one bundle (one sha256, recorded beside it). A partial file of
   * another bundle with the same version must not be resumed into this one.
   */
  private async claimStaging(job: UpdateJob): Promise<void> {
    const marker = `${this.stagingFile(job.version)}.sha256`;
    let owner = "";
    try {
      owner = (await readFile(marker, "utf8")).trim();
    } catch {
      // no marker: no partial of ours
    }
    if (owner !== job.sha256) {
      await rm(this.stagingFile(job.version), { force: true });
      await writeFile(marker, `${job.sha256}\n`);
    }
  }

  private async deleteStaging(version: string): Promise<void> {
    await rm(this.stagingFile(version), { force: true });
    await rm(`${this.stagingFile(version)}.sha256`, { force: true });
  }

  private async removeOtherStaging(version: string): Promise<void> {
    const dir = join(this.options.root, "staging");
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name !== `${version}.tar` && name !== `${version}.tar.sha256`) await rm(join(dir, name), { force: true, recursive: true });
    }
  }

  private async restart(): Promise<void> {
    if (this.options.restart) return this.options.restart();
    const [command, ...args] = this.options.restartCommand ?? ["systemctl", "--no-block", "restart", "lanekeeper"];
    if (!command) throw new UpdateError(UpdateErrorCode.Restart, "no restart command configured");
    await new Promise<void>((resolve, reject) => {
      execFile(command, args, { timeout: 30_000 }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`${[command, ...args].join(" ")}: ${stderr.trim() || error.message}`));
        else resolve();
      });
    });
  }
}
