import { pino, type Logger, type DestinationStream, type Level } from "pino";

export type { Logger };

/** Paths whose values never reach a log line (zigbee2mqtt prints HIDDEN; so do we). */
export const redactedPaths = [
  "key",
  "password",
  "token",
  "sweepAuthCode",
  "*.key",
  "*.password",
  "*.token",
  "*.sweepAuthCode",
  "config.platform.key",
  "config.mqtt.password",
  "config.api.token",
];

/**
 * `json`: one JSON object per line, for journald and log shippers. `human`: one readable line
 * per entry with the time on the lot's clock, for a person at a terminal. `auto`: human when
 * stdout is a terminal, else JSON; LK_LOG_FORMAT=json|human overrides it.
 */
export type LogFormat = "json" | "human";

export interface LoggerOptions {
  level?: Level | "silent";
  destination?: DestinationStream;
  base?: Record<string, unknown>;
  format?: LogFormat | "auto";
  /** IANA zone of the human format's times (the lot's); default the system's. */
  timeZone?: string;
  /**
   * The UTC offset of that zone at an instant (local = UTC + offset). Given, the human format
   * reads its clock from it instead of building an Intl formatter (the service hands in the
   * offsets it read from tzdata, so ICU's zone data is never mapped for the log).
   */
  zoneOffsetMs?: (ms: number) => number;
}

/** The clock of the human format: an IANA zone read through Intl, or a zone's offset at an instant. */
export type LogClock = string | ((ms: number) => number);

/** The format `auto` resolves to, and the mistake in LK_LOG_FORMAT if there is one. */
export function resolveLogFormat(env: NodeJS.ProcessEnv, stdoutIsTty: boolean): { format: LogFormat; invalid?: string } {
  const forced = env.LK_LOG_FORMAT;
  if (forced === "json" || forced === "human") return { format: forced };
  const fallback: LogFormat = stdoutIsTty ? "human" : "json";
  return forced === undefined || forced === "" ? { format: fallback } : { format: fallback, invalid: forced };
}

/**
 * One structured logger for the process: JSON lines on stdout for journald (or human lines,
 * see LogFormat), one child per subsystem (`log.child({ sub: "lane" })`). Secrets are
 * censored by path before either format sees them.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LANEKEEPER_LOG_LEVEL as Level | undefined) ?? "info";
  const resolved = options.format === "auto" ? resolveLogFormat(process.env, process.stdout.isTTY === true) : { format: options.format ?? "json" };
  const out = options.destination ?? pino.destination({ dest: 1, sync: true });
  const log = pino(
    {
      level,
      base: options.base ?? { app: "lanekeeper" },
      redact: { paths: redactedPaths, censor: "HIDDEN" },
      timestamp: () => `,"time":"${isoTimestamp(Date.now())}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    resolved.format === "human" ? humanDestination(out, options.zoneOffsetMs ?? options.timeZone) : out,
  );
  if ("invalid" in resolved) log.warn({ code: "E_LOG_FORMAT", value: resolved.invalid }, `LK_LOG_FORMAT is json or human; using ${resolved.format}`);
  return log;
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/**
 * `2024-05-06T08:00:00.000Z`, as pino's isoTime writes, for years 0..9999. Built from the UTC
 * getters because Date#toISOString makes V8 set up its local-time-zone cache, which maps
 * ICU's zone data (about 0.6 MB) in a process that otherwise never needs it.
 */
export function isoTimestamp(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** A logger that drops everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * The human format as a pino destination: synchronous and in-process (a worker-thread
 * transport such as pino-pretty's would cost start-up time and memory on the box), fed the
 * JSON line pino already built, so redaction and serializers apply as for journald.
 */
function humanDestination(out: DestinationStream, clock: LogClock | undefined): DestinationStream {
  const zone = clock ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  return { write: (line: string) => out.write(`${formatHumanLine(line, zone)}\n`) };
}

// Fields the line's head already shows, or that say nothing at a terminal.
const shownInHead = new Set(["time", "level", "msg", "sub", "laneId", "app", "pid", "hostname"]);

// One formatter per zone: building an Intl.DateTimeFormat costs far more than using one.
const clockFormats = new Map<string, Intl.DateTimeFormat>();

/** `HH:MM:SS.mmm` of instant `ms` on the wall clock of `clock`; throws for a time out of Date's range. */
function wallClock(ms: number, clock: LogClock): string {
  const millis = String(((ms % 1000) + 1000) % 1000).padStart(3, "0");
  if (typeof clock === "function") {
    const local = new Date(ms + clock(ms));
    if (Number.isNaN(local.getTime())) throw new RangeError(`${ms} is not a time`);
    return `${pad(local.getUTCHours(), 2)}:${pad(local.getUTCMinutes(), 2)}:${pad(local.getUTCSeconds(), 2)}.${millis}`;
  }
  const timeZone = clock;
  let format = clockFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    clockFormats.set(timeZone, format);
  }
  const parts = format.formatToParts(ms);
  const part = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? "--";
  return `${part("hour")}:${part("minute")}:${part("second")}.${millis}`;
}

// Control characters, those JSON.stringify leaves as they are included: DEL, the C1 set (0x9b
// is a terminal's CSI) and the Unicode line separators.
const controls = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function escapeControls(text: string): string {
  return text.replace(controls, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** JSON text with every control character escaped: one entry stays one line, and no escape sequence reaches the terminal. */
function quoted(value: unknown): string {
  return escapeControls(JSON.stringify(value) ?? String(value));
}

const plain = /^[^\s"=\u0000-\u001f\u007f-\u009f\u2028\u2029]+$/;

/** A field's value: bare when unambiguous, else quoted (spaces, quotes, control characters). */
function fieldText(value: unknown): string {
  return typeof value === "string" && plain.test(value) ? value : quoted(value);
}

/** Text as it is unless it holds a control character; then quoted. */
function inline(text: string): string {
  return /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(text) ? quoted(text) : text;
}

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL sub lane: message key=value …` with the time on
 * the lot's clock; an error's stack follows on indented lines. A line that is not a JSON
 * object (never from pino) is passed through as it is.
 */
export function formatHumanLine(jsonLine: string, clock: LogClock): string {
  let entry: unknown;
  try {
    entry = JSON.parse(jsonLine);
  } catch {
    return jsonLine.trimEnd();
  }
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) return jsonLine.trimEnd();
  const record = entry as Record<string, unknown>;
  const ms = typeof record.time === "string" ? Date.parse(record.time) : typeof record.time === "number" ? record.time : Number.NaN;
  let time = "--:--:--.---";
  try {
    time = wallClock(ms, clock);
  } catch {
    // Not a time the clock can place (out of Date's range): the line is printed without one
    // rather than a log call throwing.
  }
  const level = inline(typeof record.level === "string" ? record.level : String(record.level ?? ""))
    .toUpperCase()
    .padEnd(5);
  const where = [
    typeof record.sub === "string" ? inline(record.sub) : undefined,
    record.laneId === undefined ? undefined : `${record.sub === "lane" ? "" : "lane "}${fieldText(record.laneId)}`,
  ]
    .filter((part) => part !== undefined)
    .join(" ");
  const message = typeof record.msg === "string" ? inline(record.msg) : record.msg === undefined ? "" : fieldText(record.msg);
  const fields: string[] = [];
  let stack: string | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (shownInHead.has(key) || (key === "type" && value === record.msg)) continue;
    if (key === "err" && value !== null && typeof value === "object") {
      const err = value as { type?: unknown; message?: unknown; code?: unknown; stack?: unknown };
      fields.push(`err=${fieldText(`${typeof err.type === "string" ? `${err.type}: ` : ""}${String(err.message ?? "")}`)}`);
      if (err.code !== undefined) fields.push(`errCode=${fieldText(err.code)}`);
      if (typeof err.stack === "string") stack = err.stack;
      continue;
    }
    fields.push(`${inline(key)}=${fieldText(value)}`);
  }
  const head = `${time} ${level} ${where}${where === "" ? "" : ": "}${message}`.trimEnd();
  const body = fields.length === 0 ? head : `${head} ${fields.join(" ")}`;
  // The stack's first line repeats the message; the frames are what a developer needs.
  const frames = stack
    ?.split("\n")
    .slice(1)
    .map((frame) => `    ${escapeControls(frame.trim())}`);
  return frames && frames.length > 0 ? `${body}\n${frames.join("\n")}` : body;
}
