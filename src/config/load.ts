import { readFile } from "node:fs/promises";
import { problemsFromIssues, type ConfigProblem } from "../core/validation/problems.js";
import { configSchema, type Config } from "./schema.js";
import { migrateConfig } from "./migrate.js";
import { crossCheckConfig } from "./cross-check.js";
import { formatJsonProblem, parseJsonText } from "./json-errors.js";

// The problem shape and its path formatting are pure and live in the core (the tariff
// validator reports through them too); re-exported here for the config layer's callers.
export { formatPath, problemsFromIssues, type ConfigProblem } from "../core/validation/problems.js";

export type ConfigResult = { ok: true; config: Config; migratedFrom?: number } | { ok: false; problems: ConfigProblem[] };

/** Validates an already parsed document (file contents, an MQTT config push, a USB stick). */
export function validateConfig(raw: unknown): ConfigResult {
  const migrated = migrateConfig(raw);
  if (!migrated.ok) return { ok: false, problems: [{ path: "version", message: migrated.message }] };
  // jitless: zod compiles an object schema's fast path on its first parse, which for a
  // document checked once per start (or per push) costs twice the plain walk: about 50 ms of
  // the start-up's CPU on the box.
  const result = configSchema.safeParse(migrated.raw, { jitless: true });
  const problems = [...(result.success ? [] : problemsFromIssues(result.error.issues)), ...crossCheckConfig(migrated.raw)];
  if (!result.success || problems.length > 0) return { ok: false, problems };
  return migrated.migratedFrom === undefined ? { ok: true, config: result.data } : { ok: true, config: result.data, migratedFrom: migrated.migratedFrom };
}

/**
 * Reads and parses a JSON file; a missing, unreadable or non-JSON file is one plain problem (a
 * syntax error with its line and column).
 */
export async function readJsonFile(file: string): Promise<{ ok: true; raw: unknown } | { ok: false; problems: ConfigProblem[] }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : String(error);
    return { ok: false, problems: [{ path: "(root)", message: `cannot read ${file}: ${why}` }] };
  }
  const parsed = parseJsonText(text);
  if (parsed.ok) return { ok: true, raw: parsed.value };
  return { ok: false, problems: [{ path: "(root)", message: formatJsonProblem(file, parsed.problem) }] };
}

/**
 * The lines a command prints for a file's problems: `path: message` each, and a problem of the
 * whole file (unreadable, not JSON: `file:line:column: …`) as its message alone.
 */
export function problemLines(problems: readonly ConfigProblem[]): string[] {
  return problems.map((problem) => (problem.path === "(root)" ? `  ${problem.message}` : `  ${problem.path}: ${problem.message}`));
}

export async function loadConfigFile(file: string): Promise<ConfigResult> {
  const read = await readJsonFile(file);
  return read.ok ? validateConfig(read.raw) : read;
}

const secretKeys = new Set(["key", "password", "token", "cameraKey", "keyFile"]);

/** A deep copy with every secret replaced, for logs, dumps and reports. */
export function redactConfig<T>(value: T): T {
  return redactValue(value, "") as T;
}

function redactValue(value: unknown, key: string): unknown {
  if (Array.isArray(value)) return value.map((item) => redactValue(item, ""));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k);
    return out;
  }
  if (secretKeys.has(key) && typeof value === "string" && value !== "" && key !== "keyFile") return "HIDDEN";
  return value;
}
