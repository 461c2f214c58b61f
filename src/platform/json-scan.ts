import { PlatformError, PlatformErrorCode } from "./errors.js";

export type JsonKind = "string" | "number" | "object" | "array" | "true" | "false" | "null";

/** One top-level member of a JSON object, with the exact text of its value as received. */
export interface TopLevelMember {
  /** The decoded member name. */
  readonly name: string;
  /** The value's text exactly as it stands in the body (a string keeps its quotes). */
  readonly raw: string;
  readonly kind: JsonKind;
  /** The decoded value. */
  readonly value: unknown;
  /** Offsets of `raw` in the scanned text (UTF-16 code units). */
  readonly start: number;
  readonly end: number;
}

const whitespace = new Set([" ", "\t", "\n", "\r"]);

/**
 * Lists the members of a top-level JSON object together with the raw text span of each value.
 *
 * Why: the signature covers bizContent "exactly as transmitted" (platform-api.md §4.1), and
 * re-serialising a parsed object can reorder keys or change number text (`200.00` → `200`),
 * so the verifier needs the substring the sender signed (§4.4). Syntax is validated by
 * JSON.parse first; the walk below then only has to find boundaries in valid JSON.
 */
export function scanTopLevelMembers(text: string): TopLevelMember[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PlatformError(PlatformErrorCode.BadJson, `body is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new PlatformError(PlatformErrorCode.BadJson, "body is valid JSON but not a JSON object");
  }
  const members: TopLevelMember[] = [];
  let i = skipWhitespace(text, 0);
  // JSON.parse accepted it and it is an object, so the first significant character is `{`.
  i = skipWhitespace(text, i + 1);
  if (text[i] === "}") return members;
  for (;;) {
    const nameEnd = skipString(text, i);
    const name = JSON.parse(text.slice(i, nameEnd)) as string;
    i = skipWhitespace(text, nameEnd);
    i = skipWhitespace(text, i + 1); // the colon
    const start = i;
    const end = skipValue(text, i);
    const raw = text.slice(start, end);
    members.push({ name, raw, kind: kindOf(raw), value: JSON.parse(raw), start, end });
    i = skipWhitespace(text, end);
    if (text[i] === "}") return members;
    i = skipWhitespace(text, i + 1); // the comma
  }
}

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && whitespace.has(text[i]!)) i++;
  return i;
}

/** `i` is at an opening quote; returns the index after the closing quote. */
function skipString(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const c = text[j];
    if (c === undefined) return j;
    if (c === "\\") j += 2;
    else if (c === '"') return j + 1;
    else j++;
  }
}

function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const d = text[j];
      if (d === '"') {
        j = skipString(text, j);
        continue;
      }
      if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    return j;
  }
  let j = i;
  while (j < text.length && !whitespace.has(text[j]!) && text[j] !== "," && text[j] !== "}" && text[j] !== "]") j++;
  return j;
}

function kindOf(raw: string): JsonKind {
  const c = raw[0];
  if (c === '"') return "string";
  if (c === "{") return "object";
  if (c === "[") return "array";
  if (raw === "true") return "true";
  if (raw === "false") return "false";
  if (raw === "null") return "null";
  return "number";
}
