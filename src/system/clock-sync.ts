import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../kernel/log.js";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";

/**
 * Whether the system clock is synchronised (systemd/README.md "Clock"). A Pi has no RTC: until NTP syncs,
 * the time is fake-hwclock's last save, TLS certificates look "not yet valid" and durations
 * across the eventual NTP step are nonsense. The runtime keeps working on an unsynchronised
 * clock; it reports the state in health and notices steps of the wall clock against the
 * monotonic one.
 */

export type SyncedState = boolean | "unknown";

export interface ClockSyncStatus {
  synced: SyncedState;
  /** The source that answered (`timedatectl`, `timesyncd-flag`, a command name), `none` or `pending`. */
  source: string;
  /** Epoch ms of the check (as the clock read then). */
  checkedAtMs: number;
  /** Why it is unknown, or what the source said. */
  detail?: string;
}

export interface ClockJump {
  /** Epoch ms (after the jump) when it was noticed. */
  atMs: number;
  /** Wall clock moved this much more than the monotonic clock (negative: backwards). */
  deltaMs: number;
}

export interface ClockSyncProbe {
  synced: SyncedState;
  detail?: string;
}

export interface ClockSyncSource {
  readonly name: string;
  probe(): Promise<ClockSyncProbe>;
}

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException;
}

function runCommand(argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.resolve({ code: null, stdout: "", stderr: "", error: Object.assign(new Error("empty command"), { code: "EINVAL" }) });
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } }, (error, stdout, stderr) => {
      if (!error) return resolve({ code: 0, stdout, stderr });
      const code = typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : null;
      resolve({ code, stdout, stderr, error: error as NodeJS.ErrnoException });
    });
  });
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 200) ?? "";
}

/**
 * `timedatectl show -p NTPSynchronized --value`: "yes" or "no" from systemd-timedated, which
 * reads the kernel's adjtimex state (STA_UNSYNC cleared by whichever NTP client runs:
 * timesyncd, chrony, ntpd). Unknown when there is no systemd or D-Bus (containers, laptops).
 */
export function timedatectlSource(options: { command?: readonly string[]; timeoutMs?: number } = {}): ClockSyncSource {
  const command = options.command ?? ["timedatectl", "show", "-p", "NTPSynchronized", "--value"];
  const timeoutMs = options.timeoutMs ?? 3000;
  return {
    name: "timedatectl",
    async probe() {
      const result = await runCommand(command, timeoutMs);
      if (result.error?.code === "ENOENT") return { synced: "unknown", detail: `${command[0]} not installed` };
      if (result.code !== 0) return { synced: "unknown", detail: firstLine(result.stderr) || `exit ${result.code ?? result.error?.code ?? "?"}` };
      const answer = result.stdout.trim();
      if (answer === "yes") return { synced: true, detail: "NTPSynchronized=yes" };
      if (answer === "no") return { synced: false, detail: "NTPSynchronized=no" };
      return { synced: "unknown", detail: `unexpected answer ${JSON.stringify(firstLine(answer))}` };
    },
  };
}

/**
 * systemd-timesyncd touches /run/systemd/timesync/synchronized on its first successful sync
 * (systemd ≥ 239). No process, no D-Bus: works inside the hardened unit. The directory without
 * the flag means timesyncd runs and has not synced yet; no directory means timesyncd is not the
 * NTP client here, so this source cannot tell.
 */
export function timesyncdFlagSource(options: { dir?: string } = {}): ClockSyncSource {
  const dir = options.dir ?? "/run/systemd/timesync";
  return {
    name: "timesyncd-flag",
    async probe() {
      try {
        await stat(join(dir, "synchronized"));
        return { synced: true, detail: `${join(dir, "synchronized")} present` };
      } catch {
        // fall through
      }
      try {
        await stat(dir);
        return { synced: false, detail: "timesyncd has not synchronised yet" };
      } catch {
        return { synced: "unknown", detail: `${dir} absent (timesyncd not in use)` };
      }
    },
  };
}

/**
 * Any program that answers with its exit status: 0 synchronised, 1 not, anything else unknown
 * (e.g. `chronyc waitsync 1 0.1`, or a site script reading adjtimex through another tool).
 */
export function commandSource(argv: readonly string[], options: { name?: string; timeoutMs?: number } = {}): ClockSyncSource {
  const timeoutMs = options.timeoutMs ?? 3000;
  return {
    name: options.name ?? argv[0] ?? "command",
    async probe() {
      const result = await runCommand(argv, timeoutMs);
      if (result.code === 0) return { synced: true, detail: firstLine(result.stdout) || "exit 0" };
      if (result.code === 1) return { synced: false, detail: firstLine(result.stdout) || firstLine(result.stderr) || "exit 1" };
      return {
        synced: "unknown",
        detail: result.error?.code === "ENOENT" ? `${argv[0]} not installed` : firstLine(result.stderr) || `exit ${result.code ?? result.error?.code ?? "?"}`,
      };
    },
  };
}

/** The default chain: timedatectl when it works, else timesyncd's flag file. */
export function defaultClockSyncSources(): ClockSyncSource[] {
  return [timedatectlSource(), timesyncdFlagSource()];
}

/** Asks each source in turn; the first that knows (true or false) answers. */
export async function checkClockSync(sources: readonly ClockSyncSource[], clock: Pick<Clock, "now">): Promise<ClockSyncStatus> {
  const unknowns: string[] = [];
  for (const source of sources) {
    let probe: ClockSyncProbe;
    try {
      probe = await source.probe();
    } catch (error) {
      probe = { synced: "unknown", detail: (error as Error).message };
    }
    if (probe.synced !== "unknown") {
      return { synced: probe.synced, source: source.name, checkedAtMs: clock.now(), ...(probe.detail ? { detail: probe.detail } : {}) };
    }
    unknowns.push(`${source.name}: ${probe.detail ?? "unknown"}`);
  }
  return { synced: "unknown", source: "none", checkedAtMs: clock.now(), detail: unknowns.join("; ") || "no source configured" };
}

export interface ClockSyncMonitorOptions {
  clock: Clock;
  log: Logger;
  sources?: readonly ClockSyncSource[];
  /** Re-check period while not (known to be) synchronised. Default 30 s. */
  recheckUnsyncedMs?: number;
  /** Re-check period once synchronised. Default 10 min. */
  recheckSyncedMs?: number;
  /** A difference between wall and monotonic progress above this counts as a jump. Default 2 s. */
  jumpThresholdMs?: number;
}

export interface ClockSyncHealth extends ClockSyncStatus {
  jumps: number;
  lastJump: ClockJump | undefined;
}

/** Checks periodically, logs changes and wall-clock steps; `current()` feeds health. */
export class ClockSyncMonitor implements Component {
  readonly name = "clock-sync";
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly sources: readonly ClockSyncSource[];
  private readonly recheckUnsyncedMs: number;
  private readonly recheckSyncedMs: number;
  private readonly jumpThresholdMs: number;
  private state: ClockSyncStatus;
  private timer: TimerHandle | undefined;
  private running = false;
  private checking: Promise<ClockSyncStatus> | undefined;
  private lastWallMs: number | undefined;
  private lastMonoMs: number | undefined;
  private jumpCount = 0;
  private lastJump: ClockJump | undefined;
  private readonly listeners = new Set<(status: ClockSyncStatus) => void>();

  constructor(options: ClockSyncMonitorOptions) {
    this.clock = options.clock;
    this.log = options.log;
    this.sources = options.sources ?? defaultClockSyncSources();
    this.recheckUnsyncedMs = options.recheckUnsyncedMs ?? 30_000;
    this.recheckSyncedMs = options.recheckSyncedMs ?? 600_000;
    this.jumpThresholdMs = options.jumpThresholdMs ?? 2000;
    this.state = { synced: "unknown", source: "pending", checkedAtMs: this.clock.now(), detail: "not checked yet" };
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    // Not awaited: a hanging timedatectl must not delay the lanes (it has its own timeout).
    void this.checkAndSchedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // Only waiting for a check in flight to end; a failing check logs itself (tick).
    await this.checking?.catch(() => undefined);
  }

  current(): ClockSyncHealth {
    return { ...this.state, jumps: this.jumpCount, lastJump: this.lastJump };
  }

  /** Called with every new status (after each check). Returns an unsubscribe function. */
  onChange(listener: (status: ClockSyncStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Checks now (concurrent callers share one check). */
  check(): Promise<ClockSyncStatus> {
    this.checking ??= this.runCheck().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async runCheck(): Promise<ClockSyncStatus> {
    this.noticeJump();
    const previous = this.state;
    const next = await checkClockSync(this.sources, this.clock);
    this.state = next;
    if (next.synced !== previous.synced || previous.source === "pending") {
      const fields = { synced: next.synced, source: next.source, detail: next.detail };
      if (next.synced === true) this.log.info(fields, "system clock synchronised");
      else
        this.log.warn(fields, next.synced === false ? "system clock NOT synchronised (TLS may fail, stays are clamped)" : "cannot tell whether the system clock is synchronised");
    }
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (error) {
        this.log.warn({ err: error }, "clock-sync listener failed");
      }
    }
    return next;
  }

  private noticeJump(): void {
    const wallMs = this.clock.now();
    const monoMs = this.clock.monotonicMs();
    if (this.lastWallMs !== undefined && this.lastMonoMs !== undefined) {
      const deltaMs = wallMs - this.lastWallMs - (monoMs - this.lastMonoMs);
      if (Math.abs(deltaMs) > this.jumpThresholdMs) {
        this.jumpCount++;
        this.lastJump = { atMs: wallMs, deltaMs: Math.round(deltaMs) };
        this.log.warn({ deltaMs: Math.round(deltaMs) }, "system clock stepped");
      }
    }
    this.lastWallMs = wallMs;
    this.lastMonoMs = monoMs;
  }

  private async checkAndSchedule(): Promise<void> {
    try {
      await this.check();
    } catch (error) {
      this.log.warn({ err: error }, "clock sync check failed");
    }
    if (!this.running) return;
    const delayMs = this.state.synced === true ? this.recheckSyncedMs : this.recheckUnsyncedMs;
    this.timer = this.clock.setTimeout(() => void this.checkAndSchedule(), delayMs);
  }
}
