import { spawn } from "node:child_process";
import type { Logger } from "../kernel/log.js";
import { systemClock, type Clock, type TimerHandle } from "../kernel/clock.js";

/**
 * The sd_notify protocol towards systemd (systemd/README.md "Readiness, watchdog, stopping"). Node cannot open AF_UNIX
 * datagram sockets, so every message is sent by spawning `systemd-notify`. Without
 * NOTIFY_SOCKET (not started by systemd: a laptop, a test, `lanekeeper demo`) every call is a
 * no-op.
 *
 * Attribution: systemd-notify first sends with its parent's PID (this process) in the
 * credentials, which the kernel only allows with CAP_SYS_ADMIN; otherwise the datagram is
 * attributed to the systemd-notify child. The unit therefore uses NotifyAccess=all, and
 * systemd-notify's BARRIER=1 round trip keeps the child alive until PID 1 has read the message
 * (see the comment in systemd/lanekeeper.service).
 */

export type NotifyOutcome = "sent" | "failed" | "disabled" | "skipped-rate" | "skipped-busy";

export interface NotifierOptions {
  log: Logger;
  clock?: Clock;
  /** The environment holding NOTIFY_SOCKET; read once, at construction. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The sender program. Default `systemd-notify` from PATH. */
  command?: string;
  /** Extra arguments before the fields (e.g. `--no-block`; not recommended, see above). */
  commandArgs?: readonly string[];
  /** Watchdog pings closer together than this are dropped. Default 1000 ms. */
  minWatchdogIntervalMs?: number;
  /** A sender still running after this is killed (its barrier wait is 5 s). Default 6000 ms. */
  sendTimeoutMs?: number;
}

export interface NotifierStats {
  sent: number;
  failed: number;
  skippedRate: number;
  skippedBusy: number;
  lastError: string | undefined;
}

/** Field names of the protocol (sd_notify(3)); values must not contain a newline. */
export type NotifyFields = Record<string, string | number>;

const MAX_STATUS_CHARS = 200;

export class SystemdNotifier {
  readonly socketPath: string | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly command: string;
  private readonly commandArgs: readonly string[];
  private readonly minWatchdogIntervalMs: number;
  private readonly sendTimeoutMs: number;
  private readonly childEnv: NodeJS.ProcessEnv;
  private lastWatchdogAtMs = Number.NEGATIVE_INFINITY;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private queue: Promise<unknown> = Promise.resolve();
  private readonly recentSenderPids: number[] = [];
  private warnedMissing = false;
  private readonly counters: NotifierStats = { sent: 0, failed: 0, skippedRate: 0, skippedBusy: 0, lastError: undefined };

  constructor(options: NotifierOptions) {
    const env = options.env ?? process.env;
    this.socketPath = env.NOTIFY_SOCKET || undefined;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.command = options.command ?? "systemd-notify";
    this.commandArgs = options.commandArgs ?? [];
    this.minWatchdogIntervalMs = options.minWatchdogIntervalMs ?? 1000;
    this.sendTimeoutMs = options.sendTimeoutMs ?? 6000;
    // The child sees only what it needs: the socket, and PATH to find the program.
    this.childEnv = { PATH: env.PATH ?? process.env.PATH ?? "/usr/bin:/bin", ...(this.socketPath ? { NOTIFY_SOCKET: this.socketPath } : {}) };
  }

  /** True when started by systemd with Type=notify (NOTIFY_SOCKET set). */
  get enabled(): boolean {
    return this.socketPath !== undefined;
  }

  /** READY=1 (with an optional STATUS): the lanes, the store and the local API are up. */
  ready(status?: string): Promise<NotifyOutcome> {
    return this.enqueue({ READY: 1, ...statusField(status) });
  }

  /** STOPPING=1: shutdown has begun (systemd stops expecting watchdog pings). */
  stopping(status?: string): Promise<NotifyOutcome> {
    return this.enqueue({ STOPPING: 1, ...statusField(status) });
  }

  /** STATUS=...: one line shown by `systemctl status lanekeeper`. */
  status(text: string): Promise<NotifyOutcome> {
    return this.enqueue(statusField(text));
  }

  /**
   * WATCHDOG=1, rate-limited: a ping closer than `minWatchdogIntervalMs` to the previous one is
   * dropped, and so is one while a sender is still running (a hung systemd-notify must not pile
   * up processes; the next tick tries again).
   */
  watchdog(): Promise<NotifyOutcome> {
    if (!this.enabled) return Promise.resolve("disabled");
    const nowMs = this.clock.monotonicMs();
    if (nowMs - this.lastWatchdogAtMs < this.minWatchdogIntervalMs) {
      this.counters.skippedRate++;
      return Promise.resolve("skipped-rate");
    }
    if (this.inFlight > 0) {
      this.counters.skippedBusy++;
      return Promise.resolve("skipped-busy");
    }
    this.lastWatchdogAtMs = nowMs;
    return this.send({ WATCHDOG: 1 });
  }

  /** Any other fields (EXTEND_TIMEOUT_USEC, ERRNO...), queued in order with ready/stopping. */
  notify(fields: NotifyFields): Promise<NotifyOutcome> {
    return this.enqueue(fields);
  }

  stats(): NotifierStats {
    return { ...this.counters };
  }

  /** PIDs of the last senders spawned (newest last): tests check the datagram attribution. */
  senderPids(): readonly number[] {
    return [...this.recentSenderPids];
  }

  /** Resolves once no sender is running and nothing is queued. */
  async idle(): Promise<void> {
    // Only waiting: each send's outcome went to the caller that asked for it.
    await this.queue.catch(() => undefined);
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(fields: NotifyFields): Promise<NotifyOutcome> {
    if (!this.enabled) return Promise.resolve("disabled");
    const next = this.queue.then(() => this.send(fields));
    // The caller gets `next` and its error; the chain only keeps the order.
    this.queue = next.catch(() => undefined);
    return next;
  }

  private send(fields: NotifyFields): Promise<NotifyOutcome> {
    const args = [...this.commandArgs, ...Object.entries(fields).map(([key, value]) => `${key}=${oneLine(String(value))}`)];
    if (args.length === this.commandArgs.length) return Promise.resolve("sent");
    this.inFlight++;
    return new Promise<NotifyOutcome>((resolve) => {
      let stderr = "";
      let settled = false;
      let timer: TimerHandle | undefined;
      const finish = (outcome: NotifyOutcome, error?: string): void => {
        if (settled) return;
        settled = true;
        if (timer) this.clock.clearTimeout(timer);
        if (outcome === "sent") this.counters.sent++;
        else {
          this.counters.failed++;
          this.counters.lastError = error;
          this.reportFailure(fields, error ?? "unknown error");
        }
        this.inFlight--;
        if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        resolve(outcome);
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(this.command, args, { env: this.childEnv, stdio: ["ignore", "ignore", "pipe"] });
      } catch (error) {
        finish("failed", (error as Error).message);
        return;
      }
      if (child.pid !== undefined) {
        this.recentSenderPids.push(child.pid);
        if (this.recentSenderPids.length > 32) this.recentSenderPids.shift();
      }
      timer = this.clock.setTimeout(() => {
        child.kill("SIGKILL");
        finish("failed", `${this.command} did not finish within ${this.sendTimeoutMs} ms`);
      }, this.sendTimeoutMs);
      child.stderr?.on("data", (chunk: Buffer) => {
        if (stderr.length < 500) stderr += chunk.toString();
      });
      child.on("error", (error: NodeJS.ErrnoException) => {
        finish("failed", error.code === "ENOENT" ? `${this.command} not found (install systemd's tools)` : error.message);
      });
      child.on("close", (code, signal) => {
        if (code === 0) finish("sent");
        else finish("failed", `${this.command} exited ${code ?? signal}: ${stderr.trim()}`);
      });
    });
  }

  private reportFailure(fields: NotifyFields, error: string): void {
    const what = Object.keys(fields).join(",");
    // A missing program fails every ping; say it once, loudly, then stay quiet.
    if (/not found/.test(error)) {
      if (this.warnedMissing) return;
      this.warnedMissing = true;
      this.log.error({ fields: what, err: error }, "cannot notify systemd; the watchdog will restart the service");
      return;
    }
    this.log.warn({ fields: what, err: error }, "systemd notification failed");
  }
}

function statusField(status: string | undefined): NotifyFields {
  return status === undefined ? {} : { STATUS: status.slice(0, MAX_STATUS_CHARS) };
}

/** A newline would start a new field in the datagram. */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, " ");
}
