import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import type { App } from "./app.js";
import { FleetLink, registerBuiltinCommands, laneCommandArgsSchema, type HealthInput } from "../fleet/index.js";
import { validateConfig } from "../config/load.js";
import { publishShiftReports } from "../fleet/extensions/shift-reports.js";
import { writeFileDurable } from "../update/durable.js";
import { VERSION } from "../version.js";

export interface FleetWiringOptions {
  /** The config file a pushed config replaces (kept as `.prev`); none: pushes are refused. */
  configPath?: string | undefined;
  /** Restarts the service (the process exits; systemd's Restart=always brings it back). */
  restart: (reason: string) => void;
  /** Changes the log level at run time. */
  setLogLevel: (level: string) => void;
  /** The clock-sync state for health (null when unknown). */
  clockSynced?: () => boolean | null;
  /**
   * Called with the link once it is built, before it connects: the service adds its update
   * agent here (loaded only on a box with a fleet), so no job can arrive before its handler.
   */
  onCreated?: (fleet: FleetLink) => Promise<void>;
}

/**
 * Connects the App to the fleet over MQTT (docs/mqtt.md): events and lane state up,
 * attendant-style commands and config pushes down, and section-4 platform requests for boxes
 * behind NAT answered by the same handler as HTTP.
 */
export function createFleet(app: App, options: FleetWiringOptions): FleetLink | undefined {
  const { config, log, clock } = app;
  if (!config.mqtt?.enabled) return undefined;
  const fleet = new FleetLink({
    config: config.mqtt,
    deviceId: config.deviceId,
    stateDir: join(config.store.dir, "fleet"),
    log: log.child({ sub: "mqtt" }),
    clock,
    version: VERSION,
    healthSource: () => health(app, options),
  });

  registerBuiltinCommands(fleet, {
    setLogLevel: (level) => options.setLogLevel(level),
    retryParkedOutbox: async (args) => ({ retried: await app.outbox.retryParked(args.key ?? "all") }),
    restart: (args) => options.restart(args.reason ?? "fleet command"),
  });
  for (const command of ["open", "close"] as const) {
    fleet.registerCommand(
      command,
      laneCommandArgsSchema,
      async (args) => {
        const result = app.lanes.command(args.laneId, command, args.operator ?? "fleet", args.reason ?? `fleet ${command}`);
        if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
        return { detail: result.detail };
      },
      // A barrier command must never run late: expiresAt is mandatory (docs/mqtt.md §5.4).
      { requiresExpiresAt: true },
    );
  }

  fleet.onConfigDesired(async (version, raw) => {
    const result = validateConfig(raw);
    if (!result.ok) return { status: "rejected", detail: result.problems };
    if (!options.configPath) return { status: "rejected", detail: "this box runs without a config file path; push refused" };
    // Applied atomically: the old file is kept as .prev, the new one written temp → fsync → rename.
    await copyFile(options.configPath, `${options.configPath}.prev`).catch(() => undefined);
    await writeFileDurable(options.configPath, `${JSON.stringify(raw, null, 2)}\n`, { mode: 0o600 });
    log.info({ version }, "config push applied; restarting");
    clock.setTimeout(() => options.restart(`config version ${version}`), 500);
    return { status: "applied", detail: `version ${version} written; restarting` };
  });

  fleet.onPlatformRequest(async (text) => (await app.openInterface.handle(text, { transport: "mqtt" })).body);
  // Every ended shift's report, through the event spool (evt/shift-report).
  publishShiftReports(fleet, app.shifts, log.child({ sub: "mqtt" }));

  app.bus.on((event) => {
    if (event.type === "presence") return;
    // The bus's own seq counts unpublished events too; the link numbers what it publishes.
    const { type, seq: _busSeq, ...data } = event;
    fleet.publishEvent(type, data);
  });
  // Retained; the link re-sends it after every reconnect.
  fleet.publishInfo({
    hardware: { gpio: config.hardware.gpio, arch: process.arch, node: process.version },
    lanes: config.lanes.map((lane) => ({ id: lane.id, direction: lane.direction, ...(lane.name ? { name: lane.name } : {}) })),
    capabilities: [],
  });
  let laneStateTimer: ReturnType<typeof clock.setTimeout> | undefined;
  app.bus.onChange(() => {
    if (laneStateTimer) return;
    // Coalesced: a chattering loop must not flood the broker with retained state.
    laneStateTimer = clock.setTimeout(() => {
      laneStateTimer = undefined;
      for (const lane of app.lanes.status()) {
        const loops = lane.loops as Record<string, boolean>;
        fleet.publishLaneState(String(lane.id), {
          barrier: String(lane.barrier),
          loops,
          pending: (lane.vehicle as Record<string, unknown> | null) ?? null,
        });
      }
    }, 250);
  });
  app.addStatus("mqtt", () => fleet.stats());
  return fleet;
}

export function health(app: App, options: FleetWiringOptions): HealthInput {
  const outbox = app.outbox.status();
  const store = app.store.status();
  return {
    outbox: {
      depth: outbox.depth,
      oldestAgeS: outbox.oldestAgeMs > 0 ? Math.round(outbox.oldestAgeMs / 1000) : null,
      parked: outbox.parked,
      retrying: outbox.retrying,
      lastCode: outbox.lastRefusal?.code ?? null,
      // The platform's text may be long; the health report stays small.
      platformMsg: outbox.lastRefusal ? outbox.lastRefusal.platformMsg.slice(0, 500) : null,
    },
    links: { platform: outbox.link === "up" ? "up" : "down" },
    clockSynced: options.clockSynced?.() ?? null,
    storeWarnings: store.warnings.map((w) => JSON.stringify(w)),
  };
}
