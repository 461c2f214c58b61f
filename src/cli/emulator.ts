import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createLogger } from "../kernel/log.js";
import { platformConfigSchema, type PlatformConfig } from "../platform/config.js";
import { demoCredentials, emulatorOptionsFromConfig, postEnvelope, startEmulator, type EmulatorOptions } from "../platform/emulator/emulator.js";
import { encodeEnvelope, timestampText } from "../platform/envelope.js";
import { problemsFromIssues } from "../config/load.js";
import { UsageError, type CliCommand } from "./command.js";

interface PlatformSection {
  platform: PlatformConfig | undefined;
  timeZone: string | undefined;
}

/** Reads only the platform section (and the lot's zone) of a config file: the emulator needs no more. */
async function readPlatformSection(file: string): Promise<PlatformSection | string[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    return [`cannot read ${file}: ${(error as Error).message}`];
  }
  const doc = (raw ?? {}) as { platform?: unknown; lot?: { timeZone?: unknown } };
  if (doc.platform === undefined) return [`${file} has no platform section`];
  const parsed = platformConfigSchema.safeParse(doc.platform);
  if (!parsed.success) return problemsFromIssues(parsed.error.issues).map((p) => `platform.${p.path}: ${p.message}`);
  return { platform: parsed.data, timeZone: typeof doc.lot?.timeZone === "string" ? doc.lot.timeZone : undefined };
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port ${text} is not a port number`);
  return port;
}

async function runStandalone(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: "string", short: "p" },
      host: { type: "string" },
      config: { type: "string", short: "c" },
      frictionless: { type: "string" },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  let section: PlatformSection = { platform: undefined, timeZone: undefined };
  if (values.config) {
    const read = await readPlatformSection(values.config);
    if (Array.isArray(read)) {
      for (const line of read) console.error(line);
      return 1;
    }
    section = read;
  }
  const p = section.platform;
  const log = createLogger({ level: (process.env.LANEKEEPER_LOG_LEVEL as "info" | undefined) ?? "info" });
  const extraPlates =
    values.frictionless
      ?.split(",")
      .map((plate) => plate.trim())
      .filter(Boolean) ?? [];
  const port = parsePort(values.port);
  const base = p
    ? emulatorOptionsFromConfig(p, { log, ...(section.timeZone ? { timeZone: section.timeZone } : {}) })
    : ({ port: 8090, host: "127.0.0.1", pid: demoCredentials.pid, key: demoCredentials.key, log } satisfies EmulatorOptions);
  const emulator = await startEmulator({
    ...base,
    ...(port !== undefined ? { port } : {}),
    ...(values.host !== undefined ? { host: values.host } : {}),
    frictionlessPlates: [...(base.frictionlessPlates ?? []), ...extraPlates],
  });
  console.log(`platform emulator listening on ${emulator.url} (pid ${p?.pid ?? demoCredentials.pid}); control API under ${emulator.url}_emulator/`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await emulator.stop();
  return 0;
}

async function runCall(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      to: { type: "string" },
      biz: { type: "string" },
      pid: { type: "string" },
      key: { type: "string" },
      config: { type: "string", short: "c" },
      "biz-as-string": { type: "boolean" },
      "deadline-ms": { type: "string" },
    },
  });
  const serviceName = positionals[0];
  if (!serviceName || positionals.length > 1) throw new UsageError("emulator call takes one serviceName");
  if (!values.to) throw new UsageError("--to <box url> is required (e.g. http://127.0.0.1:8080/platform)");
  if (!values.biz) throw new UsageError("--biz <json> (or --biz @file) is required");
  let bizText = values.biz;
  if (bizText.startsWith("@")) bizText = await readFile(bizText.slice(1), "utf8");
  let biz: unknown;
  try {
    biz = JSON.parse(bizText);
  } catch {
    throw new UsageError("--biz is not JSON");
  }
  if (!biz || typeof biz !== "object" || Array.isArray(biz)) throw new UsageError("--biz must be a JSON object");
  let platform: PlatformConfig | undefined;
  if (values.config) {
    const read = await readPlatformSection(values.config);
    if (Array.isArray(read)) {
      for (const line of read) console.error(line);
      return 1;
    }
    platform = read.platform;
  }
  const deadlineMs = values["deadline-ms"] === undefined ? 10_000 : Number(values["deadline-ms"]);
  if (!Number.isInteger(deadlineMs) || deadlineMs <= 0) throw new UsageError("--deadline-ms must be a positive integer");
  const encoded = encodeEnvelope({
    pid: values.pid ?? platform?.pid ?? demoCredentials.pid,
    key: values.key ?? platform?.key ?? demoCredentials.key,
    serviceName,
    timestamp: timestampText(Date.now()),
    biz: biz as Record<string, unknown>,
    bizContentForm: values["biz-as-string"] ? "string" : "object",
  });
  let answer;
  try {
    answer = await postEnvelope(values.to, encoded.bodyText, encoded.sign, { deadlineMs });
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).name;
    console.error(`no answer from ${values.to}: ${code} ${(error as Error).message}`);
    return 1;
  }
  console.log(`HTTP ${answer.status}`);
  console.log(answer.body === undefined ? answer.bodyText : JSON.stringify(answer.body, null, 2));
  const code = (answer.body as { code?: unknown } | undefined)?.code;
  return code === 200 || code === "200" ? 0 : 1;
}

export const emulatorCommand: CliCommand = {
  name: "emulator",
  usage: "lanekeeper emulator [--port N] [--config <file>] | emulator call <service> --to <url> --biz <json>",
  summary: "run the platform emulator (the cloud side), or send a signed section-4 request to a box",
  async run(argv) {
    if (argv[0] === "call") return runCall(argv.slice(1));
    return runStandalone(argv);
  },
};
