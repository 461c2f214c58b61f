import { parseArgs } from "node:util";
import { createLogger } from "../kernel/log.js";
import { platformConfigSchema, type PlatformConfig } from "../platform/config.js";
import { demoCredentials, emulatorOptionsFromConfig, postEnvelope, startEmulator, type EmulatorOptions } from "../platform/emulator/emulator.js";
import { encodeEnvelope, timestampText } from "../platform/envelope.js";
import { problemsFromIssues, readJsonFile } from "../config/load.js";
import { formatJsonProblem, parseJsonText } from "../config/json-errors.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

interface PlatformSection {
  platform: PlatformConfig | undefined;
  timeZone: string | undefined;
}

/** Reads only the platform section (and the lot's zone) of a config file: the emulator needs no more. */
async function readPlatformSection(file: string): Promise<PlatformSection | string[]> {
  const read = await readJsonFile(file);
  if (!read.ok) return read.problems.map((problem) => problem.message);
  const doc = (read.raw ?? {}) as { platform?: unknown; lot?: { timeZone?: unknown } };
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

const standaloneOptions = {
  port: { type: "string", short: "p", value: "<N>", describe: "TCP port (0: any free port)", defaultText: "the config's platform.emulator.port, else 8090" },
  host: { type: "string", value: "<address>", describe: "address to listen on", defaultText: "the config's platform.emulator.host, else 127.0.0.1" },
  config: { type: "string", short: "c", value: "<file>", describe: "a box config: its platform pid, key and emulator section", defaultText: "the demo credentials" },
  frictionless: { type: "string", value: "<plate,...>", describe: "plates the emulator pays for at the exit (frictionless payment)" },
} as const satisfies OptionSpecs;

const callOptions = {
  to: { type: "string", value: "<box url>", describe: "the box's section-4 endpoint, e.g. http://127.0.0.1:8080/platform; required" },
  biz: { type: "string", value: "<json>|@<file>", describe: "the request's bizContent object; required" },
  pid: { type: "string", value: "<pid>", describe: "platform id to sign as", defaultText: "the config's platform.pid, else the demo pid" },
  key: { type: "string", value: "<key>", describe: "signing key", defaultText: "the config's platform.key, else the demo key" },
  config: { type: "string", short: "c", value: "<file>", describe: "a box config to take pid and key from" },
  "biz-as-string": { type: "boolean", describe: "send bizContent as a JSON string instead of an object" },
  "deadline-ms": { type: "string", value: "<ms>", describe: "give up waiting for the answer after this long", defaultText: "10000" },
} as const satisfies OptionSpecs;

async function runStandalone(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: standaloneOptions });
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
  const log = createLogger({
    level: (process.env.LANEKEEPER_LOG_LEVEL as "info" | undefined) ?? "info",
    format: "auto",
    ...(section.timeZone ? { timeZone: section.timeZone } : {}),
  });
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
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: callOptions });
  const serviceName = positionals[0];
  if (!serviceName || positionals.length > 1) throw new UsageError("emulator call takes one serviceName");
  if (!values.to) throw new UsageError("--to <box url> is required (e.g. http://127.0.0.1:8080/platform)");
  if (!values.biz) throw new UsageError("--biz <json> (or --biz @file) is required");
  let biz: unknown;
  if (values.biz.startsWith("@")) {
    const read = await readJsonFile(values.biz.slice(1));
    if (!read.ok) throw new UsageError(`--biz ${read.problems.map((problem) => problem.message).join("; ")}`);
    biz = read.raw;
  } else {
    const parsed = parseJsonText(values.biz);
    if (!parsed.ok) throw new UsageError(`--biz is not JSON: ${formatJsonProblem("--biz", parsed.problem)}`);
    biz = parsed.value;
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
  usage: "lanekeeper emulator [--port N] [--host <address>] [--config <file>] [--frictionless <plate,...>]",
  summary: "run the platform emulator (the cloud side) until Ctrl-C or SIGTERM",
  options: standaloneOptions,
  notes: [
    "GET /_emulator/received lists what boxes reported; `lanekeeper emulator call` sends a section-4 request to a box.",
    "LANEKEEPER_LOG_LEVEL sets the log level (default info).",
  ],
  examples: ["lanekeeper emulator --port 8090", "lanekeeper emulator --config /etc/lanekeeper/lanekeeper.json --port 0"],
  async run(argv) {
    return runStandalone(argv);
  },
};

export const emulatorCallCommand: CliCommand = {
  name: "emulator call",
  usage: "lanekeeper emulator call <serviceName> --to <box url> --biz <json>|@<file> [--config <file>] [--pid <pid>] [--key <key>] [--biz-as-string] [--deadline-ms N]",
  summary: "send one signed section-4 request to a box as the platform would, and print its answer",
  options: callOptions,
  notes: ["Exit 0 when the box answers code 200, 1 otherwise."],
  examples: [`lanekeeper emulator call queryFreeSpace --to http://127.0.0.1:8080/platform --biz '{"parkCode":"TEST/1P1"}'`],
  async run(argv) {
    return runCall(argv);
  },
};
