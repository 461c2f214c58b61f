import { parseArgs } from "node:util";
import { UsageError, type CliCommand, type OptionSpecs } from "../cli/command.js";
import { healthPayloadSchema } from "../fleet/payloads.js";
import { sendCommand } from "./cmd.js";
import { collectFleet, parseDurationMs } from "./collect.js";
import { lsRow, renderLs, type FleetView } from "./fleet-view.js";
import { BrokerSession, brokerArgOptions, brokerSettings } from "./session.js";

/**
 * `--probe` asks every online box for a fresh health report (`cmd/health-now`), so outbox,
 * platform link and health age are filled in without waiting a health interval.
 */
export async function probeHealth(session: BrokerSession, view: FleetView, deviceIds: readonly string[], timeoutMs: number): Promise<void> {
  const outcomes = await sendCommand(session, deviceIds, "health-now", undefined, { expiresInMs: timeoutMs, timeoutMs });
  const nowMs = Date.now();
  for (const outcome of outcomes.values()) {
    const box = view.boxes.get(outcome.deviceId);
    const parsed = healthPayloadSchema.safeParse(outcome.data);
    if (box && outcome.status === "ok" && parsed.success) {
      box.health = parsed.data;
      box.healthSeenAtMs = nowMs;
    }
  }
}

const lsOptions = {
  ...brokerArgOptions,
  filter: { type: "string", value: "<glob>", describe: "only device ids matching this", defaultText: "*" },
  json: { type: "boolean", describe: "one JSON object per box" },
  probe: { type: "boolean", describe: "ask online boxes for a health report now" },
  wait: { type: "string", value: "<dur>", describe: "listen this long for health reports, e.g. 10s" },
} as const satisfies OptionSpecs;

export const fleetLsCommand: CliCommand = {
  name: "fleet ls",
  usage: "lanekeeper fleet ls [--filter <glob>] [--json] [--probe] [--wait <dur>] [broker options]",
  summary: "every box from its retained status and info and its last health: version, state and since when, outbox, platform link, lanes",
  options: lsOptions,
  notes: ["<glob>: device ids to show, like --filter."],
  examples: ["LANEKEEPER_FLEET_URL=mqtts://fleet.example:8883 lanekeeper fleet ls 'lot7-*' --probe"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: lsOptions });
    if (positionals.length > 1) throw new UsageError("fleet ls takes at most one glob");
    const filter = values.filter ?? positionals[0];
    const waitMs = values.wait === undefined ? undefined : parseDurationMs(values.wait, "--wait");
    const session = await BrokerSession.open(brokerSettings(values));
    try {
      const view = await collectFleet(session, { health: true, ...(waitMs !== undefined ? { settleMs: waitMs, maxWaitMs: waitMs + 10_000 } : {}) });
      const boxes = view.list(filter);
      if (values.probe) {
        await probeHealth(
          session,
          view,
          boxes.filter((b) => b.status?.state === "online").map((b) => b.deviceId),
          5000,
        );
      }
      const nowMs = Date.now();
      const rows = boxes.map((b) => lsRow(b, nowMs));
      if (values.json) for (const row of rows) console.log(JSON.stringify(row));
      else console.log(rows.length === 0 ? "no boxes" : renderLs(rows));
      if (view.badPayloads > 0) console.error(`${view.badPayloads} payload(s) did not match the contract (E_CONSOLE_BAD_PAYLOAD)`);
      return 0;
    } finally {
      await session.close();
    }
  },
};
