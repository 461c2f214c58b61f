import { z } from "zod";
import { formatWireTime, parseWireTime } from "../core/time/wire-time.js";
import { localDateTime } from "../core/time/zone.js";
import { PLATFORM_TEXT_MAX } from "../store/records.js";

/**
 * Wire conventions of the platform protocol (docs/protocol.md §2 and §3): date-times as
 * `YYYY-MM-DD HH:mm:ss` in the lot's zone, fees in integer fen, fixed-car money in yuan, and
 * lenient readers for what the cloud sends (numbers as strings, names in any case).
 */

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

// One implementation of the lot's wall-clock time for the whole box (src/core/time).
export { formatWireTime, parseWireTime };

/** The compact form record numbers use: `YYYYMMDDHHmmssSSS` in `timeZone`. */
export function compactWireTime(ms: number, timeZone: string): string {
  const t = localDateTime(ms, timeZone);
  return `${pad(t.year, 4)}${pad(t.month)}${pad(t.day)}${pad(t.hour)}${pad(t.minute)}${pad(t.second)}${pad(((ms % 1000) + 1000) % 1000, 3)}`;
}

/** Yuan (a double on the wire, 4.11) → integer fen inside. */
export function yuanToFen(yuan: number): number {
  // Shift the decimal point in the text, not in binary: 1.005 * 100 is 100.49999…
  const text = String(yuan);
  return text.includes("e") ? Math.round(yuan * 100) : Math.round(Number(`${text}e2`));
}

/** Integer fen → yuan as a JSON number (`20050` → `200.5`). */
export function fenToYuan(fen: number): number {
  return fen / 100;
}

/** Integer fen → yuan text with two decimals, as 4.4's `price` ("200.50"). */
export function fenToYuanText(fen: number): string {
  return (fen / 100).toFixed(2);
}

/** Masks a payment credential for logs: first 4 and last 4 characters (3.3 sweepAuthCode). */
export function maskSecret(value: string): string {
  if (value.length <= 8) return "*".repeat(value.length);
  return `${value.slice(0, 4)}${"*".repeat(value.length - 8)}${value.slice(-4)}`;
}

// ---- lenient readers for section-4 bizContent (docs/protocol.md §2, "Receiving (lenient)") ----

const numericText = /^\s*-?\d+(\.\d+)?\s*$/;

const toNumber = (v: unknown): unknown => (typeof v === "string" && numericText.test(v) ? Number(v) : v);
const blankToUndefined = (v: unknown): unknown => (v === "" || v === null ? undefined : v);

// Each wire type names itself in its errors: a field of the wrong type reads "<field> must be
// an integer", never "is required" (readBiz says "is required" only for an absent field).
const intError = (issue: { code: string }): string =>
  issue.code === "too_big" || issue.code === "too_small" ? "must be an integer within ±9007199254740991" : "must be an integer";
const numberError = "must be a number";
const stringError = "must be a string";

/** An integer; a numeric string is coerced (the document's own examples send `"page":"1"`). */
export const wInt = () => z.preprocess(toNumber, z.int({ error: intError }));
/** An optional integer; `""` and null count as absent. */
export const wIntOpt = () => z.preprocess((v) => toNumber(blankToUndefined(v)), z.int({ error: intError }).optional());
/** A number (money as a double); numeric strings are coerced. */
export const wNum = () => z.preprocess(toNumber, z.number({ error: numberError }));
export const wNumOpt = () => z.preprocess((v) => toNumber(blankToUndefined(v)), z.number({ error: numberError }).optional());
/**
 * Any text the box takes: over a declared length is only a warning (see declaredLengthWarnings),
 * but past what the box keeps whole (PLATFORM_TEXT_MAX) it is refused, never cut.
 */
const wireText = () => z.string({ error: stringError }).max(PLATFORM_TEXT_MAX, `must be at most ${PLATFORM_TEXT_MAX} characters`);
/** A string; a number is taken as its text (`"channelid": 2`). */
export const wStr = () => z.preprocess((v) => (typeof v === "number" ? String(v) : v), wireText());
/** A required non-empty string. */
export const wStrReq = () => z.preprocess((v) => (typeof v === "number" ? String(v) : v), wireText().trim().min(1, "must not be empty"));
export const wStrOpt = () => z.preprocess((v) => (typeof v === "number" ? String(v) : v === null ? undefined : v), wireText().optional());

const canonicalKey = (name: string): string => name.toLowerCase().replace(/_/g, "");

/**
 * Renames received keys to the schema's spelling when they match case-insensitively and
 * ignoring underscores: `channelId` → `channelid`, `pay_scene` → `payScene` (both occur in
 * the document). The first spelling wins; unknown keys pass through untouched.
 */
export function normalizeKeys(input: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const wanted = new Map(names.map((name) => [canonicalKey(name), name]));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const target = wanted.get(canonicalKey(key)) ?? key;
    if (target === "__proto__") continue;
    if (!Object.hasOwn(out, target)) out[target] = value;
  }
  return out;
}

export interface BizProblem {
  path: string;
  message: string;
}

/** Parses bizContent leniently against a schema; returns every problem at once. */
export function readBiz<S extends z.ZodObject>(schema: S, biz: Record<string, unknown>): { ok: true; value: z.infer<S> } | { ok: false; problems: BizProblem[] } {
  const normalized = normalizeKeys(biz, Object.keys(schema.shape));
  const result = schema.safeParse(normalized);
  if (result.success) return { ok: true, value: result.data };
  // One problem per field, the first: zod goes on checking a value of the wrong type (an array
  // given for a required string is also "empty"), and the type is what the sender must fix.
  const problems = new Map<string, BizProblem>();
  for (const issue of result.error.issues) {
    const path = issue.path.map(String).join(".") || "(bizContent)";
    if (!problems.has(path)) problems.set(path, { path, message: problemMessage(issue, valueAt(normalized, issue.path)) });
  }
  return { ok: false, problems: [...problems.values()] };
}

const typeNames: Readonly<Record<string, string>> = {
  int: "an integer",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  array: "an array",
  object: "an object",
};

/**
 * "is required" only when the field is absent (missing, null or ""); a value of the wrong type
 * says which type it must be. zod's own issues carry no input (it is not reported by default),
 * so the value is looked up in what was parsed.
 */
function problemMessage(issue: z.core.$ZodIssue, value: unknown): string {
  const absent = value === undefined || value === null || value === "";
  if (issue.code === "invalid_type") {
    if (absent) return "is required";
    // A wire helper's own text ("must be an integer") wins over zod's generic one.
    if (!issue.message.startsWith("Invalid input")) return issue.message;
    return `must be ${typeNames[issue.expected] ?? issue.expected}`;
  }
  if (issue.code === "invalid_value") {
    if (absent) return "is required";
    const shown = issue.values.map((v) => (typeof v === "string" ? JSON.stringify(v) : String(v)));
    return `must be ${shown.length === 1 ? shown[0] : `one of ${shown.join(", ")}`}`;
  }
  return issue.message;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Declared String(n) lengths exceeded: warn, never reject (the document's own examples exceed them). */
export function overLength(value: Record<string, unknown>, limits: Readonly<Record<string, number>>): string[] {
  const warnings: string[] = [];
  for (const [name, max] of Object.entries(limits)) {
    const v = value[name];
    if (typeof v === "string" && [...v].length > max) warnings.push(`${name} has ${[...v].length} characters (declared ${max})`);
  }
  return warnings;
}
