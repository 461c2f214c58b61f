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

export interface LoggerOptions {
  level?: Level | "silent";
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

/**
 * One structured logger for the process: JSON lines on stdout for journald, one child per
 * subsystem (`log.child({ sub: "lane" })`). Secrets are censored by path.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LANEKEEPER_LOG_LEVEL as Level | undefined) ?? "info";
  return pino(
    {
      level,
      base: options.base ?? { app: "lanekeeper" },
      redact: { paths: redactedPaths, censor: "HIDDEN" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that drops everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
