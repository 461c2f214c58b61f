import { readFile } from "node:fs/promises";
import type { Server } from "node:http";
import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { UsageError, type CliCommand, type OptionSpecs } from "../cli/command.js";
import { jobStatusPayloadSchema, statusPayloadSchema } from "../fleet/payloads.js";
import { writeFileDurable } from "../update/durable.js";
import { describeBundle, serveBundle } from "./bundle-source.js";
import { collectFleet, newId, parseDurationMs } from "./collect.js";
import { globMatcher, localTime, parsePayload, renderTable } from "./fleet-view.js";
import {
  failures,
  initialState,
  parseMaxFailed,
  parseWaves,
  rolloutStateSchema,
  step,
  tally,
  type Presence,
  type RolloutAction,
  type RolloutEvent,
  type RolloutState,
} from "./rollout-plan.js";
import { BrokerSession, brokerArgOptions, brokerSettings, splitBoxTopic } from "./session.js";

/**
 * The rollout runner: the thin edge around the pure planner (rollout-plan.ts). It turns broker
 * messages and timers into planner events, one at a time; writes every new state to the state
 * file durably **before** it performs the actions (publishing a job is one), and reports
 * progress: a bar on a terminal, JSON lines otherwise.
 */

export interface RolloutReport {
  /** One progress record (JSON lines mode) or a redraw of the bar. */
  action(action: RolloutAction | { kind: "job-sent"; deviceId: string; jobId: string; repeat?: true }, state: RolloutState): void;
  end(state: RolloutState): void;
}

export async function loadRolloutState(file: string): Promise<RolloutState> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new UsageError(`--resume ${file}: ${(error as Error).message}`);
  }
  const parsed = rolloutStateSchema.safeParse(raw);
  if (!parsed.success) throw new UsageError(`--resume ${file}: not a rollout state file (${parsed.error.issues[0]?.message ?? "invalid"})`);
  return parsed.data;
}

/** Runs a rollout to its end (done or halted) from `state`, persisting it in `stateFile`. */
export async function runRollout(
  session: BrokerSession,
  initial: RolloutState,
  stateFile: string,
  report: RolloutReport,
  options: { resumed?: boolean; killAfterSends?: number } = {},
): Promise<RolloutState> {
  let state = initial;
  const presence = new Map<string, Presence>();
  const queue: RolloutEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let timerAtMs = Infinity;
  let busy = false;
  let finished: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let failure: Error | undefined;
  let published = 0;

  const schedule = (atMs: number): void => {
    if (atMs >= timerAtMs) return;
    if (timer) clearTimeout(timer);
    timerAtMs = atMs;
    timer = setTimeout(
      () => {
        timer = undefined;
        timerAtMs = Infinity;
        push({ kind: "tick", nowMs: Date.now() });
      },
      Math.max(0, atMs - Date.now()),
    );
  };

  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      while (queue.length > 0) {
        const event = queue.shift()!;
        const next = step(state, event, (deviceId) => presence.get(deviceId));
        if (JSON.stringify(next.state) !== JSON.stringify(state)) await writeFileDurable(stateFile, `${JSON.stringify(next.state, null, 1)}\n`);
        state = next.state;
        for (const action of next.actions) await perform(action);
      }
    } catch (error) {
      failure = error as Error;
      finished?.();
    } finally {
      busy = false;
    }
  };

  const push = (event: RolloutEvent): void => {
    queue.push(event);
    void pump();
  };

  const perform = async (action: RolloutAction): Promise<void> => {
    if (action.kind === "send-job") {
      const { bundle } = state;
      const job = { v: 1, type: "update", version: bundle.version, url: bundle.url, sha256: bundle.sha256, size: bundle.size, expiresAt: action.expiresAtMs };
      // The crash window `--resume` must close: recorded as sent, not yet published.
      if (options.killAfterSends !== undefined && published >= options.killAfterSends) process.kill(process.pid, "SIGKILL");
      try {
        await session.publish(session.topics(action.deviceId).job(action.jobId), job);
        published += 1;
        report.action({ kind: "job-sent", deviceId: action.deviceId, jobId: action.jobId, ...(action.repeat ? { repeat: true as const } : {}) }, state);
      } catch (error) {
        // Recorded as sent already: only a resume publishes it again (same id); else it times out.
        report.action({ kind: "box-finished", deviceId: action.deviceId, state: "sent", detail: `publish failed: ${(error as Error).message}` }, state);
      }
      return;
    }
    if (action.kind === "wake-at") {
      schedule(action.atMs);
      return;
    }
    report.action(action, state);
    if (action.kind === "finished") finished?.();
  };

  const root = session.settings.root;
  const off = session.onMessage((message) => {
    const where = splitBoxTopic(root, message.topic);
    if (!where || !(where.deviceId in state.boxes)) return;
    const nowMs = Date.now();
    if (where.rest === "status") {
      const parsed = parsePayload(statusPayloadSchema, message.payload);
      if (!parsed.ok) return;
      const p: Presence = { state: parsed.value.state, version: parsed.value.version, boot: parsed.value.boot, tsMs: parsed.value.ts };
      presence.set(where.deviceId, p);
      push({ kind: "presence", deviceId: where.deviceId, presence: p, nowMs });
      return;
    }
    const job = /^jobs\/([^/]+)\/status$/.exec(where.rest);
    if (job) {
      const parsed = parsePayload(jobStatusPayloadSchema, message.payload);
      if (!parsed.ok) return;
      push({
        kind: "job-status",
        deviceId: where.deviceId,
        jobId: parsed.value.jobId,
        status: parsed.value.status,
        ...(parsed.value.detail ? { detail: parsed.value.detail } : {}),
        nowMs,
      });
    }
  });
  try {
    await session.subscribe([session.everyBox("status"), session.everyBox("jobs/+/status")]);
    // Let the retained presence arrive before the first decision (who is online).
    await new Promise((resolve) => setTimeout(resolve, 300));
    push({ kind: options.resumed ? "resume" : "tick", nowMs: Date.now() });
    await done;
    if (failure) throw failure;
    return state;
  } finally {
    off();
    if (timer) clearTimeout(timer);
  }
}

/** The bar on a terminal; one JSON object per line otherwise (for logs and scripts). */
export function makeReport(tty: boolean, write: (text: string) => void): RolloutReport {
  if (!tty) {
    return {
      action: (action) => write(`${JSON.stringify({ ts: Date.now(), ...action })}\n`),
      end: () => undefined,
    };
  }
  let lastBar = "";
  const bar = (state: RolloutState): string => {
    const counts = tally(state);
    const total = state.targets.length;
    const finished = total - counts.pending - counts.sent;
    const width = 30;
    const filled = total === 0 ? width : Math.round((finished / total) * width);
    return (
      `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${finished}/${total} wave ${state.wave + 1}/${state.waveEnds.length} ${state.phase}` +
      ` · ok ${counts.succeeded} · failed ${counts.failed + counts["rolled-back"] + counts.rejected} · in flight ${counts.sent} · skipped ${counts.skipped}`
    );
  };
  return {
    action: (action, state) => {
      const line = bar(state);
      if (action.kind === "box-finished" && action.state !== "succeeded") write(`\r\x1b[2K${localTime(Date.now())} ${action.deviceId} ${action.state}: ${action.detail}\n`);
      if (action.kind === "finished" || line !== lastBar || action.kind === "box-finished") write(`\r\x1b[2K${line}`);
      lastBar = line;
    },
    end: () => write("\n"),
  };
}

export function renderSummary(state: RolloutState): string {
  const rows = state.targets.map((deviceId) => {
    const box = state.boxes[deviceId]!;
    return [deviceId, String(box.wave + 1), box.state, box.fromVersion ?? "", box.via ?? "", (box.detail ?? "").slice(0, 160)];
  });
  const counts = tally(state);
  const outcome =
    state.phase === "halted"
      ? `HALTED: ${state.haltReason ?? ""}; boxes not reached keep their version`
      : state.phase === "done"
        ? `DONE: ${counts.succeeded} on ${state.bundle.version}`
        : `STOPPED in wave ${state.wave + 1} (${state.phase}); continue with --resume`;
  return `${renderTable(["DEVICE", "WAVE", "STATE", "FROM", "VIA", "DETAIL"], rows)}\n${outcome}; ${failures(state)} failed (allowed ${state.maxFailed}), ${counts.skipped} skipped`;
}

const rolloutOptions = {
  ...brokerArgOptions,
  to: { type: "string", value: "<glob>", describe: "device ids to update; required for a new rollout" },
  url: { type: "string", multiple: true, value: "<url>", describe: "the broker (mqtt[s]://), and where boxes download the bundle (http[s]://)" },
  "bundle-url": { type: "string", value: "<url>", describe: "where boxes download the bundle, said explicitly" },
  serve: { type: "string", value: "<host:port>", describe: "serve the bundle from this machine instead of a download URL" },
  waves: { type: "string", value: "<list>", describe: "wave sizes, counts or percentages", defaultText: "1,10%,50%,100%" },
  "max-failed": { type: "string", value: "<N|P%>", describe: "failed, rejected or rolled-back jobs allowed before the rollout halts", defaultText: "0" },
  soak: { type: "string", value: "<dur>", describe: "wait after each wave before the next", defaultText: "5m" },
  "job-timeout": { type: "string", value: "<dur>", describe: "a job without a final state this long counts as failed", defaultText: "30m" },
  "offline-wait": { type: "string", value: "<dur>", describe: "wait this long for an offline box to come back", defaultText: "10m" },
  "health-window": {
    type: "string",
    value: "<dur>",
    describe: "a box seen online on the new version this long counts as committed when its own status was missed",
    defaultText: "5m",
  },
  state: { type: "string", value: "<file>", describe: "the rollout's state, written before every job is sent", defaultText: "rollout-<id>.json" },
  resume: { type: "string", value: "<state file>", describe: "continue a stopped rollout" },
  json: { type: "boolean", describe: "one JSON line per action, even on a terminal (the default when piped)" },
} as const satisfies OptionSpecs;

export const fleetRolloutCommand: CliCommand = {
  name: "fleet rollout",
  usage:
    "lanekeeper fleet rollout <bundle> --to <glob> (--url <download url> | --serve <host:port>) [--waves 1,10%,50%,100%] [--max-failed N|P%] " +
    "[--soak 5m] [--job-timeout 30m] [--offline-wait 10m] [--health-window 5m] [--state <file>] [--json] [broker options]\n" +
    "  lanekeeper fleet rollout --resume <state file> [--serve <host:port>] [broker options]",
  summary: "update boxes in waves; each wave waits for every job's final state and the soak; too many failures halt it; resumable",
  options: rolloutOptions,
  notes: [
    "--url is given twice: the broker's mqtt[s]:// URL and the bundle's http[s]:// download URL, told apart by the scheme.",
    "--resume continues from the state file: a job still open is published again under its same id (a box runs a job id once).",
  ],
  examples: [
    "lanekeeper fleet rollout lanekeeper-0.2.0-arm64.tar.gz --to 'lot7-*' --serve 0.0.0.0:8099 --waves 1,50%,100% --max-failed 1",
    "lanekeeper fleet rollout --resume rollout-ro-1a2b3c.json",
  ],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: rolloutOptions });
    let state: RolloutState;
    let stateFile: string;
    let server: Server | undefined;
    // --url names the broker for every fleet subcommand; here it may also name the download,
    // told apart by the scheme (or say it with --bundle-url).
    const brokerValues = { ...values, url: values.url?.find((u) => !/^https?:/.test(u)) };
    const downloadUrl = values["bundle-url"] ?? values.url?.find((u) => /^https?:/.test(u));
    if (values.resume) {
      if (positionals.length > 0) throw new UsageError("--resume takes the state file only");
      stateFile = resolvePath(values.resume);
      state = await loadRolloutState(stateFile);
      const serveAt = values.serve ?? state.serve?.address;
      if (state.serve && serveAt) {
        const served = await serveBundle(state.serve.file, serveAt);
        server = served.server;
        // Jobs not yet sent get the new address; jobs sent keep theirs.
        state.bundle.url = served.url;
      }
    } else {
      const bundle = positionals[0];
      if (!bundle || positionals.length > 1) throw new UsageError("fleet rollout takes one bundle file");
      if (!values.to) throw new UsageError("name the boxes with --to <glob>");
      if ((downloadUrl === undefined) === (values.serve === undefined)) throw new UsageError("say where boxes download the bundle: --url <url> or --serve <host:port>");
      const waves = parseWithUsage(() => parseWaves(values.waves ?? "1,10%,50%,100%"));
      const maxFailed = parseWithUsage(() => parseMaxFailed(values["max-failed"] ?? "0"));
      const described = await describeBundle(bundle);
      let url = downloadUrl;
      if (values.serve) {
        const served = await serveBundle(bundle, values.serve);
        server = served.server;
        url = served.url;
      }
      const id = newId("ro");
      stateFile = resolvePath(values.state ?? `rollout-${id}.json`);
      state = initialState({
        id,
        createdAtMs: Date.now(),
        bundle: { ...described, url: url! },
        targets: [],
        waves,
        maxFailed,
        soakMs: parseDurationMs(values.soak ?? "5m", "--soak"),
        jobTimeoutMs: parseDurationMs(values["job-timeout"] ?? "30m", "--job-timeout"),
        offlineWaitMs: parseDurationMs(values["offline-wait"] ?? "10m", "--offline-wait"),
        healthWindowMs: parseDurationMs(values["health-window"] ?? "5m", "--health-window"),
      });
      if (values.serve) state.serve = { file: resolvePath(bundle), address: values.serve };
    }
    const session = await BrokerSession.open(brokerSettings(brokerValues));
    try {
      if (!values.resume) {
        const view = await collectFleet(session);
        const match = globMatcher(values.to!);
        const targets = view
          .list()
          .filter((b) => match(b.deviceId) && b.status !== undefined)
          .map((b) => b.deviceId);
        if (targets.length === 0) {
          console.error(`no box matches ${values.to}`);
          return 1;
        }
        state = initialState({
          id: state.id,
          createdAtMs: state.createdAtMs,
          bundle: state.bundle,
          targets,
          waves: parseWaves(values.waves ?? "1,10%,50%,100%"),
          maxFailed: parseMaxFailed(values["max-failed"] ?? "0"),
          soakMs: state.soakMs,
          jobTimeoutMs: state.jobTimeoutMs,
          offlineWaitMs: state.offlineWaitMs,
          healthWindowMs: state.healthWindowMs,
        });
        if (values.serve) state.serve = { file: resolvePath(positionals[0]!), address: values.serve };
        await writeFileDurable(stateFile, `${JSON.stringify(state, null, 1)}\n`);
        process.stderr.write(`rollout ${state.id}: ${targets.length} boxes to ${state.bundle.version} in ${state.waveEnds.length} waves; state in ${stateFile}\n`);
      }
      const tty = !values.json && process.stdout.isTTY === true;
      const report = makeReport(tty, (text) => process.stdout.write(text));
      // A test hook: die (SIGKILL) right before publishing the job after this many.
      const killAfter = process.env.LK_TEST_KILL_AFTER_SENT;
      const killAfterSends = killAfter !== undefined && /^\d+$/.test(killAfter) ? Number(killAfter) : undefined;
      const end = await runRollout(session, state, stateFile, report, { resumed: values.resume !== undefined, ...(killAfterSends !== undefined ? { killAfterSends } : {}) });
      report.end(end);
      process.stderr.write(`${renderSummary(end)}\n`);
      return end.phase === "done" && failures(end) === 0 ? 0 : 1;
    } finally {
      await session.close();
      server?.closeAllConnections();
      server?.close();
    }
  },
};

function parseWithUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
