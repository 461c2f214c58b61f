import { z } from "zod";
import type { FleetLink } from "./fleet-link.js";

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevelName = (typeof logLevels)[number];

/**
 * Callbacks for the generic commands (docs/mqtt.md §5). Commands whose callback is absent are not
 * registered, so a backend gets `unknown command` instead of a command that does nothing.
 */
export interface BuiltinCommandHooks {
  /** `set-log-level {level}`: e.g. `(level) => { rootLogger.level = level }`. */
  setLogLevel?: (level: LogLevelName) => void | Promise<void>;
  /** `retry-parked-outbox {key?}`: re-queues parked outbox entries; resolves with what it did. */
  retryParkedOutbox?: (args: { key?: string | undefined }) => Promise<unknown>;
  /** `resync-lists {list?}`: pulls lists from the platform where an interface allows. */
  resyncLists?: (args: { list?: string | undefined }) => Promise<unknown>;
  /**
   * `restart {reason?}`: called after the `ok` answer has been handed to the broker, so the
   * backend hears "restarting" before the box goes away (systemd brings it back).
   */
  restart?: (args: { reason?: string | undefined }) => void | Promise<void>;
}

/** How many events `last-events` returns at most, and by default. */
export const lastEventsMax = 200;
export const lastEventsDefault = 20;

/**
 * Registers the generic commands on a link: `health-now` and `last-events` always (the link
 * has what they need), `set-log-level`, `retry-parked-outbox`, `resync-lists` and `restart`
 * when their callback is given. Lane commands (`open`, `close`) are registered by the
 * integrator with `requiresExpiresAt: true` and `laneCommandArgsSchema`.
 */
export function registerBuiltinCommands(link: FleetLink, hooks: BuiltinCommandHooks = {}): string[] {
  const names: string[] = [];

  link.registerCommand("health-now", z.strictObject({}), async () => {
    // Published on `health` as usual and returned in the answer, so the caller needs no
    // subscription to see it.
    return await link.publishHealth();
  });
  names.push("health-now");

  link.registerCommand("last-events", z.strictObject({ n: z.int().min(1).max(lastEventsMax).optional(), type: z.string().min(1).max(64).optional() }), async (args) => {
    const all = link.lastEvents(lastEventsMax);
    const filtered = args.type === undefined ? all : all.filter((event) => event.type === args.type);
    return { events: filtered.slice(-(args.n ?? lastEventsDefault)) };
  });
  names.push("last-events");

  const { setLogLevel, retryParkedOutbox, resyncLists, restart } = hooks;
  if (setLogLevel) {
    link.registerCommand("set-log-level", z.strictObject({ level: z.enum(logLevels) }), async (args) => {
      await setLogLevel(args.level);
      return { level: args.level };
    });
    names.push("set-log-level");
  }
  if (retryParkedOutbox) {
    link.registerCommand("retry-parked-outbox", z.strictObject({ key: z.string().min(1).max(200).optional() }), (args) => retryParkedOutbox(args));
    names.push("retry-parked-outbox");
  }
  if (resyncLists) {
    link.registerCommand("resync-lists", z.strictObject({ list: z.string().min(1).max(64).optional() }), (args) => resyncLists(args));
    names.push("resync-lists");
  }
  if (restart) {
    link.registerCommand(
      "restart",
      z.strictObject({ reason: z.string().max(200).optional() }),
      async (args, ctx) => {
        ctx.afterResponse(() => restart(args));
        return { restarting: true };
      },
      // A restart queued behind an outage must not fire hours later either.
      { requiresExpiresAt: true },
    );
    names.push("restart");
  }
  return names;
}
