import { parseArgs } from "node:util";
import { UsageError, type CliCommand } from "../cli/command.js";
import { commandResultSchema, configReportedSchema, eventPayloadSchema, jobStatusPayloadSchema, statusPayloadSchema } from "../fleet/payloads.js";
import { globMatcher, localTime, parsePayload } from "./fleet-view.js";
import { BrokerSession, brokerArgOptions, brokerSettings, splitBoxTopic } from "./session.js";

/**
 * One readable line for a message a box published, or null for topics not shown (info,
 * health, lane state: `fleet ls` shows those). Retained presence replayed at subscribe time
 * is shown too, marked `(retained)`, so the operator starts from the current picture.
 */
export function watchLine(root: string, topic: string, payload: Buffer, retained: boolean, nowMs: number): string | null {
  const where = splitBoxTopic(root, topic);
  if (!where) return null;
  const { deviceId, rest } = where;
  const head = `${localTime(nowMs)} ${deviceId}`;
  const bad = (message: string): string => `${head} ${rest} E_CONSOLE_BAD_PAYLOAD ${message}`;
  if (rest === "status") {
    if (payload.length === 0) return null;
    const p = parsePayload(statusPayloadSchema, payload);
    return p.ok ? `${head} status ${p.value.state} ${p.value.version} boot ${p.value.boot} since ${localTime(p.value.ts)}${retained ? " (retained)" : ""}` : bad(p.message);
  }
  if (rest.startsWith("evt/")) {
    const p = parsePayload(eventPayloadSchema, payload);
    if (!p.ok) return bad(p.message);
    const { atMs: _at, seq: _seq, ...data } = p.value.data;
    const fields = Object.entries(data)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    return `${head} ${p.value.type} #${p.value.boot}.${p.value.seq} ${fields}`.trimEnd();
  }
  if (rest.startsWith("res/")) {
    const p = parsePayload(commandResultSchema, payload);
    // The stable code first (what an operator greps for), then the words.
    return p.ok
      ? `${head} ${rest} ${p.value.id ?? "-"} ${[p.value.status, p.value.code, p.value.error].filter((part) => part !== undefined && part !== "").join(" ")}`
      : bad(p.message);
  }
  if (rest === "cfg/reported") {
    const p = parsePayload(configReportedSchema, payload);
    if (!p.ok) return bad(p.message);
    const detail = typeof p.value.detail === "string" ? p.value.detail : p.value.detail.map((d) => `${d.path}: ${d.message}`).join("; ");
    return `${head} config v${p.value.version ?? "?"} ${p.value.status} ${detail}${retained ? " (retained)" : ""}`;
  }
  if (/^jobs\/[^/]+\/status$/.test(rest)) {
    const p = parsePayload(jobStatusPayloadSchema, payload);
    return p.ok
      ? `${head} job ${p.value.jobId} ${p.value.status}${p.value.step ? ` ${p.value.step}` : ""}${p.value.progress !== undefined ? ` ${Math.round(p.value.progress * 100)}%` : ""} ${p.value.detail ?? ""}`.trimEnd()
      : bad(p.message);
  }
  return null;
}

export const fleetWatchCommand: CliCommand = {
  name: "fleet watch",
  usage: "lanekeeper fleet watch [<glob>] [broker options]",
  summary: "live presence, events, command answers, config answers and job progress, one line each (Ctrl-C ends)",
  options: brokerArgOptions,
  notes: ["<glob>: device ids to watch (default *)."],
  examples: ["lanekeeper fleet watch 'lot7-*' --url mqtts://fleet.example:8883 --ca fleet-ca.pem"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: brokerArgOptions });
    if (positionals.length > 1) throw new UsageError("fleet watch takes at most one glob");
    const match = globMatcher(positionals[0] ?? "*");
    const session = await BrokerSession.open(brokerSettings(values));
    const root = session.settings.root;
    session.onMessage((message) => {
      const where = splitBoxTopic(root, message.topic);
      if (!where || !match(where.deviceId)) return;
      const line = watchLine(root, message.topic, message.payload, message.retain, Date.now());
      if (line !== null) process.stdout.write(`${line}\n`);
    });
    await session.subscribe(["status", "evt/+", "res/+", "cfg/reported", "jobs/+/status"].map((s) => session.everyBox(s)));
    await new Promise<void>((resolve) => {
      const stop = (): void => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await session.close();
    return 0;
  },
};
