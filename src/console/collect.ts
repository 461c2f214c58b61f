import { UsageError } from "../cli/command.js";
import { FleetView } from "./fleet-view.js";
import { splitBoxTopic, type BrokerSession } from "./session.js";

/**
 * Reads the fleet's retained presence (`status`, `info`) and whatever `health` arrives, until
 * the broker has been quiet for `settleMs`. MQTT has no "end of retained messages" marker; a
 * broker hands the stored ones over right behind the SUBACK, so a short silence means done.
 */
export async function collectFleet(session: BrokerSession, options: { settleMs?: number; maxWaitMs?: number; health?: boolean; now?: () => number } = {}): Promise<FleetView> {
  const view = new FleetView();
  const now = options.now ?? Date.now;
  const settleMs = options.settleMs ?? 250;
  const maxWaitMs = options.maxWaitMs ?? 10_000;
  let lastAtMs = performance.now();
  const off = session.onMessage((message) => {
    const where = splitBoxTopic(session.settings.root, message.topic);
    if (!where) return;
    view.apply(where.deviceId, where.rest, message.payload, now());
    lastAtMs = performance.now();
  });
  const filters = [session.everyBox("status"), session.everyBox("info")];
  if (options.health) filters.push(session.everyBox("health"));
  try {
    await session.subscribe(filters);
    const startedMs = performance.now();
    lastAtMs = performance.now();
    for (;;) {
      const t = performance.now();
      if (t - lastAtMs >= settleMs || t - startedMs >= maxWaitMs) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, settleMs)));
    }
    return view;
  } finally {
    off();
    // mqtt.js does not send a SUBSCRIBE again for a filter it holds, so the broker would not
    // replay the retained presence to a later reader (the rollout runner) on this session.
    await session.client.unsubscribeAsync(filters).catch(() => undefined);
  }
}

/** `500ms`, `30s`, `5m`, `2h`; a bare number is seconds. */
export function parseDurationMs(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${what} ${JSON.stringify(text)}: a duration such as 500ms, 30s, 5m or 1h`);
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return Math.round(value * factor);
}

/** A short id for commands and rollouts: time-ordered, unique enough per operator. */
export function newId(prefix: string, nowMs: number = Date.now()): string {
  return `${prefix}-${nowMs.toString(36)}-${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, "0")}`;
}
