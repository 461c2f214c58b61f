import { App } from "./app.js";
import { createLogger, type Logger } from "../kernel/log.js";
import { loadConfigFile, problemLines } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { createSystemIntegration } from "../system/integration.js";
import { systemClock } from "../kernel/clock.js";
import type { UpdateAgent } from "../update/agent.js";
import type { FleetLink } from "../fleet/index.js";
import { VERSION } from "../version.js";
import { ProvisionStatus } from "../provision/last-report.js";
import { preloadUndici } from "../platform/undici-core.js";
import { zoneOffsetMs } from "../core/time/zone.js";
import { adoptSystemZone } from "../config/time-zone.js";
import { optimiseAsUsual } from "../kernel/start-up-tiering.js";

/** The process is gone this long after the stop signal at the latest (the promise is 2 s). */
const EXIT_BOUND_MS = 1950;

export interface RunOptions {
  configPath: string;
  /** Called after start, before signals are awaited (the demo starts its emulator here). */
  onStarted?: (app: App) => Promise<void> | void;
  beforeStop?: () => Promise<void>;
  /**
   * Called after the config is loaded, before the app is built (the demo starts its emulator);
   * a config it returns is the one the app is built with.
   */
  beforeStart?: (config: Config) => Promise<Config | void>;
  afterStop?: () => Promise<void>;
  transformConfig?: (config: Config) => Config;
}

/**
 * Runs the box until SIGTERM/SIGINT: load and check the config (nothing starts on a bad
 * one), start everything, stop within 2 s on a signal with every output safe. An uncaught
 * error drives the outputs safe first, then logs and exits non-zero.
 */
export async function runService(options: RunOptions): Promise<number> {
  const loaded = await loadConfigFile(options.configPath);
  if (!loaded.ok) {
    console.error(`${options.configPath}: ${loaded.problems.length} problem(s); nothing started`);
    for (const line of problemLines(loaded.problems)) console.error(line);
    return 1;
  }
  let config = options.transformConfig ? options.transformConfig(loaded.config) : loaded.config;
  // JSON for journald; human lines, on the lot's clock, when a person runs it at a terminal.
  // The clock's offsets are the fees': the zone's tzdata rules (read here before the first line;
  // App logs it when they cannot be), else Intl.
  const timeZone = config.lot.timeZone;
  adoptSystemZone(timeZone);
  const log = createLogger({ level: config.log.level, format: "auto", timeZone, zoneOffsetMs: (ms) => zoneOffsetMs(ms, timeZone) });
  try {
    config = (await options.beforeStart?.(config)) ?? config;
  } catch (error) {
    console.error(`cannot start: ${(error as Error).message}`);
    return 1;
  }
  // systemd: watchdog pings from this event loop, READY once lanes, store and API are up.
  const system = createSystemIntegration({ log: log.child({ sub: "system" }), clock: systemClock, config: config.system });
  let app: App;
  // The remote-update agent, built with the fleet link (at start, only on a box with MQTT).
  let update: UpdateAgent | undefined;
  try {
    app = new App({
      config,
      log,
      fleet: {
        configPath: options.configPath,
        // Exiting is the restart: systemd's Restart=always starts the new config or version.
        restart: (reason) => {
          log.warn({ reason }, "restart requested");
          process.kill(process.pid, "SIGTERM");
        },
        setLogLevel: (level) => {
          log.level = level;
        },
        clockSynced: () => {
          const synced = system.health().clock.synced;
          return synced === "unknown" ? null : synced;
        },
        onCreated: async (fleet) => {
          update = await createUpdate(app, fleet, log);
        },
      },
    });
  } catch (error) {
    log.fatal({ err: error }, "cannot build the app");
    await options.afterStop?.().catch((stopError: unknown) => log.error({ err: stopError }, "after-stop hook failed"));
    return 1;
  }
  installCrashHandlers(app, log);

  // Signals are handled from before the start, so a stop request during start-up is honoured
  // as soon as the start has finished instead of killing the process with relays mid-pulse.
  let signalled: string | undefined;
  let onSignal: (signal: string) => void = (signal) => (signalled = signal);
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));

  app.addStatus("system", () => system.health());
  app.addStatus("clock", () => system.health().clock);
  // The last USB stick's outcome, kept on the box beside the config (the stick may have been
  // read-only or pulled before its report was written).
  const provision = new ProvisionStatus(options.configPath);
  await provision.refresh();
  app.addStatus("provision", () => provision.snapshot());
  try {
    await system.start();
    await app.start();
  } catch (error) {
    log.fatal({ err: error }, "start failed");
    // Release what did start; the start error above stays the one that decides the exit code.
    await app.stop().catch((stopError: unknown) => log.error({ err: stopError }, "stop after a failed start failed"));
    await system.stop().catch((stopError: unknown) => log.error({ err: stopError }, "system stop after a failed start failed"));
    await options.afterStop?.().catch((stopError: unknown) => log.error({ err: stopError }, "after-stop hook failed"));
    return 1;
  }
  const { host, port } = app.http.address();
  log.info({ url: `http://${host}:${port}`, lanes: config.lanes.map((l) => l.id) }, "ready");
  console.log(`lanekeeper ready: local API on http://${host}:${port} (GET /healthz, GET /api/status)`);
  await system.ready(`${config.lanes.length} lane(s) up, API on ${host}:${port}`);
  // The start's run-once code is behind us: V8's default optimising budget from here on.
  optimiseAsUsual();
  // undici's modules load now that the lanes are up, before the first car needs a platform
  // call (they stay off the start-up path; the first call would load them otherwise).
  if (config.platform.enabled) setImmediate(preloadUndici);
  // Every boot: a release switched by an update proves itself healthy here, or is rolled back.
  if (update) {
    const { createHealthProbe } = await import("../update/health.js");
    void update
      .resumeAfterBoot(
        createHealthProbe({
          lanesUp: () => app.isReady(),
          storeLoaded: () => app.store.status().alarms.length === 0,
          ...(config.platform.enabled ? { platformReachable: () => app.outbox.status().link === "up" } : {}),
          ...(app.fleet ? { mqttConnected: () => app.fleet!.state === "connected" } : {}),
          requires: config.update.healthRequires,
        }),
      )
      .catch((error: unknown) => log.error({ err: error }, "update boot check failed"));
  }
  await options.onStarted?.(app);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      const signalledAtMs = performance.now();
      log.info({ signal }, "stopping");
      // Hard bound: whatever hangs, the process is gone within 2 s with outputs safe.
      const hard = setTimeout(() => {
        app.gpio.allOutputsSafe();
        log.error("stop took longer than 2 s; exiting");
        process.exit(1);
      }, 1900);
      hard.unref();
      void (async () => {
        await options.beforeStop?.().catch((error: unknown) => log.warn({ err: error }, "before-stop hook failed"));
        await system.stopping();
        update?.stop();
        await app.stop();
        await system.stop();
        await options.afterStop?.().catch((error: unknown) => log.warn({ err: error }, "after-stop hook failed"));
        const outputs = app.simGpio?.outputs();
        log.info({ outputs }, "stopped; outputs safe");
        clearTimeout(hard);
        // Nothing of the box runs after "stopped"; a socket or timer a library still holds
        // must not keep the process past the 2 s the service promises (unref: a process
        // whose loop drains first exits at once).
        setTimeout(() => process.exit(0), Math.max(0, EXIT_BOUND_MS - (performance.now() - signalledAtMs))).unref();
        resolve(0);
      })();
    };
    onSignal = stop;
    if (signalled) stop(signalled);
  });
}

/** The remote-update agent, when the box has a fleet link to receive jobs on. */
async function createUpdate(app: App, fleet: FleetLink, log: Logger): Promise<UpdateAgent | undefined> {
  const { config } = app;
  if (!config.update.enabled) return undefined;
  const [{ UpdateAgent }, { agentOptionsFromConfig }, { toFleetJobStatus }] = await Promise.all([
    import("../update/agent.js"),
    import("../update/setup.js"),
    import("../update/job.js"),
  ]);
  const updateLog = log.child({ sub: "update" });
  const agent = new UpdateAgent({
    ...agentOptionsFromConfig(config.update, updateLog),
    runningVersion: VERSION,
    clock: app.clock,
    log: updateLog,
    report: (status) => void fleet.publishJobStatus(status.jobId, toFleetJobStatus(status)),
    lanesIdle: () => app.lanes.lanesIdle(),
  });
  // Not awaited: a job runs for minutes; its steps are reported on jobs/<id>/status.
  fleet.onJob((jobId, job, { repeat }) => {
    if (repeat) void agent.reportAgain(jobId);
    else void agent.handleJob(jobId, job);
  });
  app.addStatus("update", () => agent.snapshot());
  return agent;
}

function installCrashHandlers(app: App, log: Logger): void {
  const crash = (kind: string) => (error: unknown) => {
    try {
      app.gpio.allOutputsSafe();
    } finally {
      log.fatal({ err: error, kind }, "crashed; outputs driven safe");
      process.exit(70);
    }
  };
  process.on("uncaughtException", crash("uncaughtException"));
  process.on("unhandledRejection", crash("unhandledRejection"));
}
