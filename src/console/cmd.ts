import { parseArgs } from "node:util";
import { UsageError, type CliCommand, type OptionSpecs } from "../cli/command.js";
import { commandResultSchema, type CommandResult } from "../fleet/payloads.js";
import { isTopicLevel } from "../fleet/topics.js";
import { collectFleet, newId, parseDurationMs } from "./collect.js";
import { globMatcher, parsePayload, renderTable } from "./fleet-view.js";
import { BrokerSession, brokerArgOptions, brokerSettings, splitBoxTopic } from "./session.js";

/** One box's answer to a command, or why there is none. */
export interface CommandOutcome {
  deviceId: string;
  status: CommandResult["status"] | "timeout" | "not-sent";
  code?: string;
  detail: string;
  data?: unknown;
}

/**
 * Sends `cmd/<name>` with one id and an expiry to each box and waits for every `res/<name>`
 * carrying that id (docs/mqtt.md §5). The id is the same for all boxes: ids are unique per box.
 */
export async function sendCommand(
  session: BrokerSession,
  deviceIds: readonly string[],
  name: string,
  args: Record<string, unknown> | undefined,
  options: { expiresInMs: number; timeoutMs: number; id?: string },
): Promise<Map<string, CommandOutcome>> {
  const id = options.id ?? newId("op");
  const outcomes = new Map<string, CommandOutcome>();
  const waiting = new Set(deviceIds);
  let wake: () => void = () => undefined;
  const off = session.onMessage((message) => {
    const where = splitBoxTopic(session.settings.root, message.topic);
    if (!where || where.rest !== `res/${name}` || !waiting.has(where.deviceId)) return;
    const parsed = parsePayload(commandResultSchema, message.payload);
    if (!parsed.ok || parsed.value.id !== id) return;
    const result = parsed.value;
    const detail = result.status === "ok" ? JSON.stringify(result.data ?? null) : (result.error ?? result.status);
    outcomes.set(where.deviceId, { deviceId: where.deviceId, status: result.status, ...(result.code ? { code: result.code } : {}), detail, data: result.data });
    waiting.delete(where.deviceId);
    if (waiting.size === 0) wake();
  });
  try {
    await session.subscribe([session.everyBox(`res/${name}`)]);
    const expiresAt = Date.now() + options.expiresInMs;
    await Promise.all(
      deviceIds.map((deviceId) =>
        session.publish(session.topics(deviceId).command(name), { v: 1, id, expiresAt, ...(args !== undefined ? { args } : {}) }).catch((error: unknown) => {
          waiting.delete(deviceId);
          outcomes.set(deviceId, { deviceId, status: "not-sent", detail: (error as Error).message });
        }),
      ),
    );
    if (waiting.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.timeoutMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const deviceId of waiting) outcomes.set(deviceId, { deviceId, status: "timeout", detail: `no answer within ${options.timeoutMs} ms` });
    return outcomes;
  } finally {
    off();
  }
}

/** `k=v`: the value as JSON when it reads as JSON (`n=2`, `on=true`), else as text. */
export function parseCommandArgs(pairs: readonly string[]): Record<string, unknown> | undefined {
  if (pairs.length === 0) return undefined;
  const args: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--arg ${JSON.stringify(pair)}: key=value`);
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // plain text
    }
    args[key] = value;
  }
  return args;
}

const cmdOptions = {
  ...brokerArgOptions,
  arg: { type: "string", multiple: true, value: "<k=v>", describe: "a command argument; the value as JSON when it reads as JSON" },
  expires: { type: "string", value: "<dur>", describe: "a box drops the command after this", defaultText: "60s" },
  timeout: { type: "string", value: "<dur>", describe: "wait this long for the answers", defaultText: "15s" },
  json: { type: "boolean", describe: "one JSON object per box" },
} as const satisfies OptionSpecs;

export const fleetCmdCommand: CliCommand = {
  name: "fleet cmd",
  usage: "lanekeeper fleet cmd <glob> <name> [--arg k=v ...] [--expires 60s] [--timeout 15s] [--json] [broker options]",
  summary: "send a command to every online box matching <glob>, wait for each answer; exit 0 only if all succeeded",
  options: cmdOptions,
  notes: ["<glob>: device ids; <name>: the command (docs/mqtt.md lists them)."],
  examples: ["lanekeeper fleet cmd 'lot7-*' health-now", "lanekeeper fleet cmd lot7-in1 open --arg lane=in1 --arg reason=test"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: cmdOptions });
    const [glob, name] = positionals;
    if (!glob || !name || positionals.length > 2) throw new UsageError("fleet cmd takes a device glob and a command name");
    if (!isTopicLevel(name)) throw new UsageError(`command name ${JSON.stringify(name)} cannot be a topic level`);
    const args = parseCommandArgs(values.arg ?? []);
    const expiresInMs = parseDurationMs(values.expires ?? "60s", "--expires");
    const timeoutMs = parseDurationMs(values.timeout ?? "15s", "--timeout");
    const session = await BrokerSession.open(brokerSettings(values));
    try {
      const view = await collectFleet(session);
      const match = globMatcher(glob);
      const boxes = view.list().filter((b) => match(b.deviceId));
      if (boxes.length === 0) {
        console.error(`no box matches ${glob}`);
        return 1;
      }
      // A box that is not online would never get the command (clean sessions, docs/mqtt.md §3).
      const online = boxes.filter((b) => b.status?.state === "online").map((b) => b.deviceId);
      const outcomes = await sendCommand(session, online, name, args, { expiresInMs, timeoutMs });
      for (const box of boxes) {
        if (!outcomes.has(box.deviceId)) outcomes.set(box.deviceId, { deviceId: box.deviceId, status: "not-sent", detail: `box is ${box.status?.state ?? "unknown"}` });
      }
      const rows = boxes.map((b) => outcomes.get(b.deviceId)!);
      if (values.json) for (const row of rows) console.log(JSON.stringify(row));
      else
        console.log(
          renderTable(
            ["DEVICE", "STATUS", "CODE", "DETAIL"],
            rows.map((r) => [r.deviceId, r.status, r.code ?? "", r.detail.slice(0, 200)]),
          ),
        );
      return rows.every((r) => r.status === "ok") ? 0 : 1;
    } finally {
      await session.close();
    }
  },
};
