import { z } from "zod";

/**
 * The rollout's bookkeeping as a pure machine: `step(state, event) → {state, actions}`. It never
 * reads the clock or the broker; the runner (rollout.ts) feeds it box presence, job statuses and
 * ticks, persists every new state durably and only then performs the actions. That order is
 * what makes `--resume` safe: a box is marked `sent` (with its job id) in the state file before
 * its job is published, so a console killed between the two never sends that box a second job.
 * Whether the job got out before the kill, the file cannot say; so a resumed console publishes
 * every still-open job again under the SAME id. A box that never received it runs it; a box
 * that did recognises the id (the fleet link remembers job ids durably, the update agent keeps
 * its job history) and does not run it twice.
 */

export const boxStates = ["pending", "sent", "succeeded", "failed", "rolled-back", "rejected", "skipped"] as const;
export type BoxState = (typeof boxStates)[number];
/** States that count against `--max-failed`. */
const failureStates: ReadonlySet<BoxState> = new Set(["failed", "rolled-back", "rejected"]);

const boxProgressSchema = z.strictObject({
  wave: z.int().min(0),
  state: z.enum(boxStates),
  jobId: z.string().optional(),
  sentAtMs: z.int().optional(),
  /** The box's boot counter and version when its job was sent (to read a restart from presence). */
  sentBoot: z.int().optional(),
  fromVersion: z.string().optional(),
  finishedAtMs: z.int().optional(),
  /** How the final state was learned: the box's job status, or read from its presence. */
  via: z.enum(["job-status", "presence", "timeout", "soak", "offline"]).optional(),
  detail: z.string().optional(),
});
export type BoxProgress = z.infer<typeof boxProgressSchema>;

export const rolloutStateSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,40}$/),
  createdAtMs: z.int(),
  /** The job every box gets (except its id and expiry). */
  bundle: z.strictObject({ version: z.string().min(1), url: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.int().min(1) }),
  /** `--serve`: the bundle file and address, so `--resume` serves it again. */
  serve: z.strictObject({ file: z.string().min(1), address: z.string().min(1) }).optional(),
  /** Device ids in rollout order. */
  targets: z.array(z.string().min(1)),
  /** Cumulative box counts: wave i covers targets[waveEnds[i-1] .. waveEnds[i]). */
  waveEnds: z.array(z.int().min(1)),
  maxFailed: z.int().min(0),
  soakMs: z.int().min(0),
  jobTimeoutMs: z.int().min(1),
  /** A box of the wave still offline this long after the wave started is skipped. */
  offlineWaitMs: z.int().min(0),
  /** A box online on the target version this long after its connect is taken as committed. */
  healthWindowMs: z.int().min(0),
  wave: z.int().min(0),
  waveStartedAtMs: z.int().optional(),
  phase: z.enum(["running", "soaking", "halting", "halted", "done"]),
  soakUntilMs: z.int().optional(),
  haltReason: z.string().optional(),
  boxes: z.record(z.string(), boxProgressSchema),
});
export type RolloutState = z.infer<typeof rolloutStateSchema>;

/** What the runner knows about a box from its retained `status`. */
export interface Presence {
  state: "online" | "offline" | "lost" | "updating";
  version: string;
  boot: number;
  /** The status payload's `ts` (for `online`: when the box connected). */
  tsMs: number;
}

export type RolloutEvent =
  | { kind: "tick"; nowMs: number }
  /** The first event of a console started with `--resume` (a fresh rollout has no open job). */
  | { kind: "resume"; nowMs: number }
  | { kind: "presence"; deviceId: string; presence: Presence; nowMs: number }
  | { kind: "job-status"; deviceId: string; jobId: string; status: string; detail?: string; nowMs: number };

export type RolloutAction =
  /** `repeat`: the box's job again, same id, after a resume (it may never have been published). */
  | { kind: "send-job"; deviceId: string; jobId: string; expiresAtMs: number; repeat?: true }
  | { kind: "wake-at"; atMs: number }
  | { kind: "box-finished"; deviceId: string; state: BoxState; detail: string }
  | { kind: "wave-started"; wave: number; size: number }
  | { kind: "finished"; phase: "done" | "halted"; reason?: string };

export interface RolloutPlanInput {
  id: string;
  createdAtMs: number;
  bundle: RolloutState["bundle"];
  targets: readonly string[];
  waves: readonly WaveSpec[];
  maxFailed: MaxFailed;
  soakMs: number;
  jobTimeoutMs: number;
  offlineWaitMs: number;
  healthWindowMs: number;
}

/** `10` boxes or `10%` of the targets. */
export type WaveSpec = { count: number } | { percent: number };
export type MaxFailed = { count: number } | { percent: number };

/** Parses `1,10%,50%,100%`. Each entry is a cumulative share of the targets. */
export function parseWaves(text: string): WaveSpec[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === "")) throw new RangeError(`--waves ${JSON.stringify(text)}: a comma-separated list such as 1,10%,50%,100%`);
  return parts.map((part) => parseShare(part, "--waves", false));
}

export function parseMaxFailed(text: string): MaxFailed {
  return parseShare(text.trim(), "--max-failed", true);
}

function parseShare(part: string, what: string, zeroOk: boolean): WaveSpec {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(part);
  if (percent) {
    const value = Number(percent[1]);
    if (value > 100 || (!zeroOk && value <= 0)) throw new RangeError(`${what} ${part}: a percentage must be in ${zeroOk ? "0" : "(0"}…100]`);
    return { percent: value };
  }
  if (!/^\d+$/.test(part)) throw new RangeError(`${what} ${JSON.stringify(part)}: a number of boxes or a percentage (e.g. 10%)`);
  const count = Number(part);
  if (!zeroOk && count === 0) throw new RangeError(`${what} 0: a wave needs at least one box`);
  return { count };
}

/**
 * Cumulative wave ends for `total` boxes: each at least one more than the previous, the last
 * always `total` (a list that stops short gets a final wave with the rest).
 */
export function waveEnds(waves: readonly WaveSpec[], total: number): number[] {
  const ends: number[] = [];
  for (const wave of waves) {
    const raw = "count" in wave ? wave.count : Math.ceil((wave.percent / 100) * total - 1e-9);
    const end = Math.min(total, Math.max(1, raw));
    if (end > (ends.at(-1) ?? 0)) ends.push(end);
  }
  if (total > 0 && (ends.at(-1) ?? 0) < total) ends.push(total);
  return ends;
}

export function maxFailedCount(max: MaxFailed, total: number): number {
  return "count" in max ? max.count : Math.floor((max.percent / 100) * total + 1e-9);
}

export function initialState(input: RolloutPlanInput): RolloutState {
  const ends = waveEnds(input.waves, input.targets.length);
  const boxes: Record<string, BoxProgress> = {};
  input.targets.forEach((deviceId, index) => {
    boxes[deviceId] = { wave: ends.findIndex((end) => index < end), state: "pending" };
  });
  return {
    v: 1,
    id: input.id,
    createdAtMs: input.createdAtMs,
    bundle: input.bundle,
    targets: [...input.targets],
    waveEnds: ends,
    maxFailed: maxFailedCount(input.maxFailed, input.targets.length),
    soakMs: input.soakMs,
    jobTimeoutMs: input.jobTimeoutMs,
    offlineWaitMs: input.offlineWaitMs,
    healthWindowMs: input.healthWindowMs,
    wave: 0,
    phase: input.targets.length === 0 ? "done" : "running",
    boxes,
  };
}

/** The job id of a box: the rollout id and the box's place in the target list (≤ 64 characters). */
export function jobIdFor(state: RolloutState, deviceId: string): string {
  return `${state.id}-${state.targets.indexOf(deviceId)}`;
}

export function failures(state: RolloutState): number {
  return Object.values(state.boxes).filter((b) => failureStates.has(b.state)).length;
}

export function inFlight(state: RolloutState): number {
  return Object.values(state.boxes).filter((b) => b.state === "sent").length;
}

export function waveMembers(state: RolloutState, wave: number): string[] {
  return state.targets.slice(wave === 0 ? 0 : (state.waveEnds[wave - 1] ?? 0), state.waveEnds[wave] ?? 0);
}

/** The step function. `online` tells which boxes are online now (the runner's presence map). */
export function step(prev: RolloutState, event: RolloutEvent, online: (deviceId: string) => Presence | undefined): { state: RolloutState; actions: RolloutAction[] } {
  const state: RolloutState = structuredClone(prev);
  const actions: RolloutAction[] = [];
  if (state.phase === "done" || state.phase === "halted") return { state, actions };
  const now = event.nowMs;

  const finish = (deviceId: string, to: BoxState, via: NonNullable<BoxProgress["via"]>, detail: string): void => {
    const box = state.boxes[deviceId];
    if (!box) return;
    box.state = to;
    box.via = via;
    box.detail = detail.slice(0, 500);
    box.finishedAtMs = now;
    actions.push({ kind: "box-finished", deviceId, state: to, detail: box.detail });
  };

  if (event.kind === "job-status") {
    const box = state.boxes[event.deviceId];
    // Only this rollout's job for this box counts; a status of another job is not ours.
    if (box && box.jobId === event.jobId) {
      const final = finalState(event.status);
      const detail = event.detail ?? event.status;
      if (final && box.state === "sent") finish(event.deviceId, final, "job-status", detail);
      // A success read from presence is corrected by the box's own word that it rolled back.
      else if (final && final !== "succeeded" && box.state === "succeeded" && box.via === "presence") finish(event.deviceId, final, "job-status", detail);
    }
  }

  // Presence says what a job's status may not have (the console was down when it was sent):
  // a restart onto the new version that lasted the health window, or back onto the old one.
  for (const [deviceId, box] of Object.entries(state.boxes)) {
    const p = online(deviceId);
    if (!p || box.state !== "sent" || p.state !== "online" || box.sentBoot === undefined || p.boot <= box.sentBoot) continue;
    if (p.version === state.bundle.version && now >= p.tsMs + state.healthWindowMs) {
      finish(deviceId, "succeeded", "presence", `online on ${p.version} for its health window (boot ${p.boot})`);
    } else if (p.version !== state.bundle.version && p.version === box.fromVersion) {
      finish(deviceId, "rolled-back", "presence", `restarted and came back on ${p.version} (boot ${p.boot})`);
    }
  }
  if (event.kind === "presence" && state.phase === "soaking") {
    // Soak: a box this rollout updated must stay online on the new version.
    const box = state.boxes[event.deviceId];
    const p = event.presence;
    if (box?.state === "succeeded" && (p.state === "lost" || (p.state === "online" && p.version !== state.bundle.version))) {
      finish(event.deviceId, "failed", "soak", p.state === "lost" ? "lost during the soak" : `back on ${p.version} during the soak`);
    }
  }

  if (event.kind === "resume" && state.phase === "running") {
    // Still open after presence had its say: maybe never published. Same id, so never twice;
    // its time limit starts again, as a box that never got it has not begun. A halting
    // rollout sends nothing, not even this: such a box ends by its time limit.
    for (const deviceId of state.targets) {
      const box = state.boxes[deviceId];
      if (box?.state !== "sent" || box.jobId === undefined) continue;
      box.sentAtMs = now;
      actions.push({ kind: "send-job", deviceId, jobId: box.jobId, expiresAtMs: now + state.jobTimeoutMs, repeat: true });
    }
  }

  // Jobs without a final word within their time limit are failures (the box may be dead).
  for (const [deviceId, box] of Object.entries(state.boxes)) {
    if (box.state === "sent" && box.sentAtMs !== undefined && now >= box.sentAtMs + state.jobTimeoutMs) {
      finish(deviceId, "failed", "timeout", `no final job status within ${state.jobTimeoutMs} ms`);
    }
  }

  if (failures(state) > state.maxFailed && (state.phase === "running" || state.phase === "soaking")) {
    state.phase = "halting";
    state.haltReason = `${failures(state)} failed, more than the ${state.maxFailed} allowed`;
    delete state.soakUntilMs;
  }

  advance(state, now, online, actions);
  return { state, actions };
}

function advance(state: RolloutState, now: number, online: (deviceId: string) => Presence | undefined, actions: RolloutAction[]): void {
  // Bounded: every pass either sends, finishes or moves to the next wave.
  for (let guard = 0; guard < state.waveEnds.length + 2; guard++) {
    if (state.phase === "halting") {
      // Nothing more is sent; jobs already out still get their final state.
      for (const box of Object.values(state.boxes)) {
        if (box.state === "pending" && box.wave <= state.wave) {
          box.state = "skipped";
          box.detail = "not sent: the rollout halted";
          box.via = "offline";
        }
      }
      if (inFlight(state) === 0) {
        state.phase = "halted";
        actions.push({ kind: "finished", phase: "halted", ...(state.haltReason ? { reason: state.haltReason } : {}) });
      } else {
        wakeForTimeouts(state, actions, online);
      }
      return;
    }
    if (state.phase === "soaking") {
      if (state.soakUntilMs !== undefined && now < state.soakUntilMs) {
        actions.push({ kind: "wake-at", atMs: state.soakUntilMs });
        return;
      }
      delete state.soakUntilMs;
      if (state.wave + 1 >= state.waveEnds.length) {
        state.phase = "done";
        actions.push({ kind: "finished", phase: "done" });
        return;
      }
      state.wave += 1;
      state.phase = "running";
      delete state.waveStartedAtMs;
    }
    // running
    const members = waveMembers(state, state.wave);
    if (state.waveStartedAtMs === undefined) {
      state.waveStartedAtMs = now;
      actions.push({ kind: "wave-started", wave: state.wave, size: members.length });
    }
    for (const deviceId of members) {
      const box = state.boxes[deviceId];
      if (!box || box.state !== "pending") continue;
      const presence = online(deviceId);
      if (presence?.state === "online") {
        // A box already on the target version needs no job.
        if (presence.version === state.bundle.version) {
          box.state = "succeeded";
          box.via = "presence";
          box.detail = `already on ${presence.version}`;
          box.finishedAtMs = now;
          actions.push({ kind: "box-finished", deviceId, state: "succeeded", detail: box.detail });
          continue;
        }
        box.state = "sent";
        box.jobId = jobIdFor(state, deviceId);
        box.sentAtMs = now;
        box.sentBoot = presence.boot;
        box.fromVersion = presence.version;
        actions.push({ kind: "send-job", deviceId, jobId: box.jobId, expiresAtMs: now + state.jobTimeoutMs });
      } else if (now >= state.waveStartedAtMs + state.offlineWaitMs) {
        box.state = "skipped";
        box.via = "offline";
        box.detail = `offline for ${state.offlineWaitMs} ms after its wave started; keeps its version`;
        box.finishedAtMs = now;
        actions.push({ kind: "box-finished", deviceId, state: "skipped", detail: box.detail });
      }
    }
    const open = members.filter((d) => {
      const s = state.boxes[d]?.state;
      return s === "pending" || s === "sent";
    });
    if (open.length > 0) {
      wakeForTimeouts(state, actions, online);
      const waiting = members.some((d) => state.boxes[d]?.state === "pending");
      if (waiting) actions.push({ kind: "wake-at", atMs: state.waveStartedAtMs + state.offlineWaitMs });
      return;
    }
    // The wave is complete and within the threshold: soak.
    state.phase = "soaking";
    state.soakUntilMs = now + state.soakMs;
  }
}

function wakeForTimeouts(state: RolloutState, actions: RolloutAction[], online: (deviceId: string) => Presence | undefined): void {
  const times: number[] = [];
  for (const [deviceId, box] of Object.entries(state.boxes)) {
    if (box.state !== "sent" || box.sentAtMs === undefined) continue;
    times.push(box.sentAtMs + state.jobTimeoutMs);
    const p = online(deviceId);
    if (p?.state === "online" && p.version === state.bundle.version) times.push(p.tsMs + state.healthWindowMs);
  }
  const next = times.sort((a, b) => a - b)[0];
  if (next !== undefined) actions.push({ kind: "wake-at", atMs: next });
}

function finalState(status: string): BoxState | undefined {
  switch (status) {
    case "succeeded":
      return "succeeded";
    case "failed":
      return "failed";
    case "rolled-back":
      return "rolled-back";
    case "rejected":
      return "rejected";
    default:
      return undefined;
  }
}

/** Counts by state, for the progress line and the summary. */
export function tally(state: RolloutState): Record<BoxState, number> {
  const counts = Object.fromEntries(boxStates.map((s) => [s, 0])) as Record<BoxState, number>;
  for (const box of Object.values(state.boxes)) counts[box.state] += 1;
  return counts;
}
