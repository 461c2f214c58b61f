import type { Logger } from "../kernel/log.js";
import type { Clock } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import { SystemdNotifier, type NotifierStats } from "./notify.js";
import { LoopWatchdog, watchdogFromEnv, type LagProbe, type WatchdogStats } from "./watchdog.js";
import { ClockSyncMonitor, type ClockSyncHealth, type ClockSyncSource } from "./clock-sync.js";
import { clockSyncSourcesFromConfig, systemConfigSchema, type SystemConfig } from "./config.js";

/**
 * Everything the process does for systemd, in one component for the composition root:
 *
 *   const system = createSystemIntegration({ log: log.child({ sub: "system" }), clock });
 *   await system.start();            // watchdog pings begin (before the app)
 *   await app.start();
 *   await system.ready("2 lanes up, API on 127.0.0.1:8080"); // then the clock checks
 *   app.addStatus("system", () => system.health());
 *   ... on SIGTERM: await system.stopping(); await app.stop(); await system.stop();
 *
 * None of these calls throw; without NOTIFY_SOCKET / WATCHDOG_USEC they are no-ops.
 */

export interface SystemIntegrationOptions {
  log: Logger;
  clock: Clock;
  /** The `system` config section; defaults apply when absent. */
  config?: SystemConfig;
  /** Where NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID come from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** This process's PID, compared with WATCHDOG_PID. Default process.pid. */
  pid?: number;
  /** Default `systemd-notify`. */
  notifyCommand?: string;
  /** Replaces the configured clock-sync sources (tests). */
  clockSyncSources?: readonly ClockSyncSource[];
  /** Replaces the event-loop delay probe (tests). */
  lagProbe?: LagProbe;
  /**
   * Remove NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from `env` once read, as
   * sd_notify(unset_environment=1) does, so that child processes (an update helper, a
   * selftest) cannot send READY or pings in this service's name: with NotifyAccess=all systemd
   * would accept them. Default true when `env` is process.env.
   */
  unsetEnvironment?: boolean;
}

export interface SystemHealth {
  systemd: {
    notify: boolean;
    notifications: NotifierStats;
    watchdog: WatchdogStats | { enabled: false; reason: string };
  };
  clock: ClockSyncHealth;
}

export interface SystemIntegration extends Component {
  readonly notifier: SystemdNotifier;
  readonly watchdog: LoopWatchdog | undefined;
  readonly clockSync: ClockSyncMonitor;
  /** READY=1 plus a status line. Call once the lanes, the store and the local API are up. */
  ready(status?: string): Promise<void>;
  /** STOPPING=1: call first thing on SIGTERM. */
  stopping(status?: string): Promise<void>;
  /** A status line for `systemctl status`. */
  status(text: string): Promise<void>;
  health(): SystemHealth;
}

export function createSystemIntegration(options: SystemIntegrationOptions): SystemIntegration {
  const env = options.env ?? process.env;
  const config = options.config ?? systemConfigSchema.parse(undefined);
  const log = options.log;
  const watchdogEnv = watchdogFromEnv(env, options.pid ?? process.pid);
  const intervalMs = watchdogEnv.enabled ? watchdogEnv.timeoutMs / 2 : Number.POSITIVE_INFINITY;

  const notifier = new SystemdNotifier({
    log,
    clock: options.clock,
    env,
    ...(options.notifyCommand ? { command: options.notifyCommand } : {}),
    // Never let the rate limit eat the watchdog's own pings.
    minWatchdogIntervalMs: Math.min(1000, intervalMs / 2),
  });
  if (options.unsetEnvironment ?? env === process.env) {
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
  }

  const watchdog =
    watchdogEnv.enabled && notifier.enabled
      ? new LoopWatchdog({
          ping: () => notifier.watchdog(),
          clock: options.clock,
          log,
          timeoutMs: watchdogEnv.timeoutMs,
          ...(config.watchdog.maxLagMs !== undefined ? { maxLagMs: config.watchdog.maxLagMs } : {}),
          ...(options.lagProbe ? { probe: options.lagProbe } : {}),
        })
      : undefined;
  const watchdogOff = watchdogEnv.enabled ? { enabled: false as const, reason: "NOTIFY_SOCKET not set" } : watchdogEnv;

  const clockSync = new ClockSyncMonitor({
    clock: options.clock,
    log,
    sources: options.clockSyncSources ?? clockSyncSourcesFromConfig(config.clockSync),
    recheckUnsyncedMs: config.clockSync.recheckUnsyncedS * 1000,
    recheckSyncedMs: config.clockSync.recheckSyncedS * 1000,
  });

  let started = false;
  return {
    name: "system",
    notifier,
    watchdog,
    clockSync,
    async start() {
      if (started) return;
      started = true;
      if (!notifier.enabled) log.debug("not started by systemd (no NOTIFY_SOCKET); notifications off");
      await watchdog?.start();
    },
    async stop() {
      started = false;
      await watchdog?.stop();
      await clockSync.stop();
      await notifier.idle();
    },
    async ready(status) {
      await notifier.ready(status ?? "ready");
      // The first clock check spawns a process (timedatectl): it runs once the lanes are up,
      // not on the way there. Until then the clock reads "not checked yet".
      if (started) await clockSync.start();
    },
    async stopping(status) {
      // No more pings once stopping: systemd no longer expects them, and a stop that hangs is
      // bounded by TimeoutStopSec, not by the watchdog.
      await watchdog?.stop();
      await notifier.stopping(status ?? "stopping");
    },
    async status(text) {
      await notifier.status(text);
    },
    health() {
      return {
        systemd: {
          notify: notifier.enabled,
          notifications: notifier.stats(),
          watchdog: watchdog ? watchdog.stats() : watchdogOff,
        },
        clock: clockSync.current(),
      };
    },
  };
}
