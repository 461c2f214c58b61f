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
 * The deepest nesting of arrays and objects any JSON this project receives may have. The
 * deepest real body (a camera push: AlarmInfoPlate.result.PlateResult.timeStamp.Timeval) is 5
 * levels; 32 leaves room for firmware additions.
 */
export const maxJsonDepth = 32;

/**
 * exceedsJsonDepth's count over bytes as they arrive, so a read can stop at the first byte too deep
 * instead of buffering and decoding a megabyte first. Exact for UTF-8 (no byte of a multibyte
 * character is below 0x80). A GBK body (some cameras) may have a backslash byte as the second
 * half of a character; the count can then drift, which is why the decoded text is checked
 * again with exceedsJsonDepth before it is parsed.
 */
export class JsonDepthGauge {
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(readonly maxDepth: number = maxJsonDepth) {}

  /** Feeds the next bytes; false once the nesting has gone deeper than `maxDepth`. */
  push(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
      } else if (c === 0x22) {
        this.inString = true;
      } else if (c === 0x5b || c === 0x7b) {
        if (++this.depth > this.maxDepth) return false;
      } else if (c === 0x5d || c === 0x7d) {
        this.depth--;
      }
    }
    return true;
  }
}

/**
 * Whether `text` nests `[` and `{` (outside strings) deeper than `maxDepth`: a single linear
 * pass that stops at the first level too deep.
 *
 * Why before JSON.parse: V8 parses `[[[[…` in time and stack that grow with the depth, and a
 * single 1 MB body of brackets held the event loop for ~400 ms, so the health check, the
 * lanes and every other request waited. This scan costs a few milliseconds per megabyte and
 * never allocates. It does not validate: JSON.parse still does that for text that passes.
 */
export function exceedsJsonDepth(text: string, maxDepth: number = maxJsonDepth): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped, whatever it is
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Lists the members of a top-level JSON object together with the raw text span of each value.
 *
 * Why: the signature covers bizContent "exactly as transmitted" (docs/protocol.md §2), and
 * re-serialising a parsed object can reorder keys or change number text (`200.00` → `200`),
 * so the verifier needs the substring the sender signed. Syntax is validated by
 * JSON.parse first; the walk below then only has to find boundaries in valid JSON.
 */
export function scanTopLevelMembers(text: string): TopLevelMember[] {
  if (exceedsJsonDepth(text, maxJsonDepth)) {
    throw new PlatformError(PlatformErrorCode.BadJson, `body is not valid JSON: nested deeper than ${maxJsonDepth} levels`);
  }
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
