import { parseArgs } from "node:util";
import { UsageError, type CliCommand, type OptionSpecs } from "../cli/command.js";
import { readJsonFile, validateConfig } from "../config/load.js";
import { configDesiredSchema, configReportedSchema, statusPayloadSchema, type ConfigDesired, type ConfigReported } from "../fleet/payloads.js";
import { isTopicLevel } from "../fleet/topics.js";
import { parseDurationMs } from "./collect.js";
import { parsePayload } from "./fleet-view.js";
import { BrokerSession, brokerArgOptions, brokerSettings } from "./session.js";

/** Keys whose values are secrets (platform.key, api.token, mqtt.password): never printed. */
const secretKey = /(key|token|password|secret)$/i;

export interface ConfigChange {
  path: string;
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

/** Every leaf that differs between two JSON documents, by path (`lanes[0].name`). */
export function diffJson(before: unknown, after: unknown, path = ""): ConfigChange[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => {
      const p = path === "" ? k : `${path}.${k}`;
      if (!(k in after)) return [{ path: p, kind: "removed" as const, before: before[k] }];
      if (!(k in before)) return [{ path: p, kind: "added" as const, after: after[k] }];
      return diffJson(before[k], after[k], p);
    });
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const out: ConfigChange[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      const p = `${path}[${i}]`;
      if (i >= after.length) out.push({ path: p, kind: "removed", before: before[i] });
      else if (i >= before.length) out.push({ path: p, kind: "added", after: after[i] });
      else out.push(...diffJson(before[i], after[i], p));
    }
    return out;
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path, kind: "changed", before, after }];
}

function shown(path: string, value: unknown): string {
  const last = path.split(/[.[]/).at(-1) ?? "";
  return secretKey.test(last) && value !== undefined ? "(hidden)" : JSON.stringify(value);
}

export function renderDiff(changes: readonly ConfigChange[]): string {
  return changes
    .map((c) =>
      c.kind === "added"
        ? `+ ${c.path}: ${shown(c.path, c.after)}`
        : c.kind === "removed"
          ? `- ${c.path}: ${shown(c.path, c.before)}`
          : `~ ${c.path}: ${shown(c.path, c.before)} → ${shown(c.path, c.after)}`,
    )
    .join("\n");
}

interface BoxConfigState {
  desired?: ConfigDesired;
  reported?: ConfigReported;
  configVersion?: number;
}

/** The retained `cfg/desired`, `cfg/reported` and `status` of one box. */
async function readBoxConfig(session: BrokerSession, deviceId: string, settleMs = 300): Promise<BoxConfigState> {
  const t = session.topics(deviceId);
  const state: BoxConfigState = {};
  const off = session.onMessage((m) => {
    if (m.topic === t.configDesired()) {
      const p = parsePayload(configDesiredSchema, m.payload);
      if (p.ok) state.desired = p.value;
    } else if (m.topic === t.configReported()) {
      const p = parsePayload(configReportedSchema, m.payload);
      if (p.ok) state.reported = p.value;
    } else if (m.topic === t.status()) {
      const p = parsePayload(statusPayloadSchema, m.payload);
      if (p.ok) state.configVersion = p.value.configVersion;
    }
  });
  await session.subscribe([t.configDesired(), t.configReported(), t.status()]);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  off();
  return state;
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  const read = await readJsonFile(file);
  if (!read.ok) throw new UsageError(read.problems.map((problem) => problem.message).join("; "));
  const raw = read.raw;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new UsageError(`${file}: a config document is a JSON object`);
  return raw as Record<string, unknown>;
}

const configOptions = {
  ...brokerArgOptions,
  timeout: { type: "string", value: "<dur>", describe: "push: wait this long for the box's answer", defaultText: "30s" },
  force: { type: "boolean", describe: "push a file that fails the check here, to see the box's own answer" },
} as const satisfies OptionSpecs;

export const fleetConfigCommand: CliCommand = {
  name: "fleet config",
  usage: "lanekeeper fleet config (diff|push) <deviceId> <file> [--timeout 30s] [--force] [broker options]",
  summary: "diff a config file against what the box was last given, or push it (cfg/desired) and wait for the box's answer",
  options: configOptions,
  notes: ["diff exits 0 when nothing differs, 1 otherwise; push exits 0 when the box applied the config."],
  examples: ["lanekeeper fleet config diff lot7-in1 lot7-in1.json", "lanekeeper fleet config push lot7-in1 lot7-in1.json --timeout 60s"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: configOptions });
    const [action, deviceId, file] = positionals;
    if ((action !== "diff" && action !== "push") || !deviceId || !file || positionals.length > 3) throw new UsageError("fleet config takes diff or push, a device id and a file");
    if (!isTopicLevel(deviceId)) throw new UsageError(`device id ${JSON.stringify(deviceId)} cannot be a topic level`);
    const document = await readConfigFile(file);
    const timeoutMs = parseDurationMs(values.timeout ?? "30s", "--timeout");
    const session = await BrokerSession.open(brokerSettings(values));
    try {
      const box = await readBoxConfig(session, deviceId);
      if (action === "diff") {
        const reported = box.reported ? `the box reports version ${box.reported.version ?? "?"} ${box.reported.status}` : "the box reported no pushed config";
        if (!box.desired) {
          console.log(`${deviceId}: no config was pushed to it (it runs its provisioned file); ${reported}`);
          console.log(renderDiff(diffJson({}, document)));
          return 1;
        }
        const changes = diffJson(box.desired.config, document);
        console.log(`${deviceId}: against pushed version ${box.desired.version}; ${reported}`);
        console.log(changes.length === 0 ? "no differences" : renderDiff(changes));
        return changes.length === 0 ? 0 : 1;
      }
      const local = validateConfig(document);
      if (!local.ok && !values.force) {
        console.error(`${file}: not pushed; the box would refuse it:`);
        for (const p of local.problems) console.error(`  ${p.path}: ${p.message}`);
        return 1;
      }
      // The version must grow with every push (docs/mqtt.md §6.3).
      const version = Math.max(box.desired?.version ?? 0, box.reported?.version ?? 0, box.configVersion ?? 0) + 1;
      const t = session.topics(deviceId);
      const answer = new Promise<ConfigReported | undefined>((resolve) => {
        const timer = setTimeout(() => {
          off();
          resolve(undefined);
        }, timeoutMs);
        const off = session.onMessage((m) => {
          if (m.topic !== t.configReported()) return;
          const p = parsePayload(configReportedSchema, m.payload);
          if (!p.ok || (p.value.version !== version && p.value.version !== null) || m.retain) return;
          clearTimeout(timer);
          off();
          resolve(p.value);
        });
      });
      await session.publish(t.configDesired(), { v: 1, version, config: document }, { retain: true });
      const reported = await answer;
      if (!reported) {
        console.error(`${deviceId}: pushed version ${version}; no answer within ${timeoutMs} ms (is the box online?)`);
        return 1;
      }
      if (reported.status === "applied") {
        console.log(`${deviceId}: version ${version} applied — ${typeof reported.detail === "string" ? reported.detail : ""}`.trimEnd());
        return 0;
      }
      console.error(`${deviceId}: version ${version} rejected:`);
      if (typeof reported.detail === "string") console.error(`  ${reported.detail}`);
      else for (const p of reported.detail) console.error(`  ${p.path}: ${p.message}`);
      return 1;
    } finally {
      await session.close();
    }
  },
};
