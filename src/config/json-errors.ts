/**
 * JSON syntax errors an installer can act on: `file:line:column: what is wrong`.
 *
 * JSON.parse says where it stopped only sometimes, and differently per Node version: Node 20
 * gives "… in JSON at position 42" for most errors but `Unexpected token 'x', "…" is not valid
 * JSON` (no position) for a stray character, Node 22 adds "(line 3 column 7)". So when
 * JSON.parse refuses a text, a small scanner walks it once more to find the first character
 * that cannot continue a valid document, and says what was expected there. The scanner runs
 * only on failure (JSON.parse stays the parser) and is iterative (no stack for deep nesting).
 */

export interface JsonSyntaxProblem {
  /** UTF-16 offset of the first character that cannot continue a valid document (text length: it ended early). */
  offset: number;
  /** 1-based line; lines end at \n (a \r before it is part of the break). */
  line: number;
  /** 1-based column in characters (code points), as editors count them. */
  column: number;
  reason: string;
}

export type JsonParse = { ok: true; value: unknown } | { ok: false; problem: JsonSyntaxProblem };

/** Parses `text`; on a syntax error, where and why. */
export function parseJsonText(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    const found = findJsonSyntaxError(text);
    // The scanner and JSON.parse accept the same language; if they ever disagree, the
    // position JSON.parse gave (when it gave one) is the best left.
    const offset = found?.offset ?? offsetFromMessage(text, (error as Error).message) ?? text.length;
    const reason = found?.reason ?? shortMessage((error as Error).message);
    return { ok: false, problem: { offset, ...lineColumn(text, offset), reason } };
  }
}

/** `file:line:column: reason` — the form compilers use, so editors and terminals can jump to it. */
export function formatJsonProblem(file: string, problem: JsonSyntaxProblem): string {
  return `${file}:${problem.line}:${problem.column}: ${problem.reason}`;
}

/** The 1-based line and column of a UTF-16 offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf("\n") + 1;
  let line = 1;
  for (let i = before.indexOf("\n"); i !== -1; i = before.indexOf("\n", i + 1)) line++;
  // Code points, not UTF-16 units: a plate like 粤B·12345 is one column per character.
  return { line, column: [...before.slice(lineStart)].length + 1 };
}

/**
 * The offset in JSON.parse's own message: "at position N" (Node 20 and 22) or "(line L column
 * C)" (Node 22). Undefined when the message has neither.
 */
export function offsetFromMessage(text: string, message: string): number | undefined {
  const position = /at position (\d+)/.exec(message);
  if (position) return Math.min(Number(position[1]), text.length);
  const lineCol = /\(line (\d+) column (\d+)\)/.exec(message);
  if (!lineCol) return undefined;
  let offset = 0;
  for (let line = 1; line < Number(lineCol[1]); line++) {
    const next = text.indexOf("\n", offset);
    if (next === -1) return text.length;
    offset = next + 1;
  }
  return Math.min(offset + Number(lineCol[2]) - 1, text.length);
}

/** JSON.parse's message without the position and the echo of the text. */
function shortMessage(message: string): string {
  return message
    .replace(/ in JSON at position \d+.*$/s, "")
    .replace(/, (?:\.\.\.)?".*" is not valid JSON$/s, "")
    .trim();
}

type Expect = "value" | "valueOrClose" | "key" | "keyOrClose" | "colon" | "commaOrClose" | "end";

const isWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

function shown(text: string, offset: number): string {
  const char = String.fromCodePoint(text.codePointAt(offset)!);
  // Printable characters as they are; a control character as its escape ('\n', '\u0001').
  return `'${char >= " " ? char : JSON.stringify(char).slice(1, -1)}'`;
}

/** The first syntax error of `text` per RFC 8259, or undefined when it is one valid document. */
export function findJsonSyntaxError(text: string): { offset: number; reason: string } | undefined {
  const n = text.length;
  const stack: Array<0x7b | 0x5b> = [];
  let i = 0;
  let expect: Expect = "value";
  const fail = (offset: number, reason: string): { offset: number; reason: string } => ({ offset, reason: offset >= n ? `unexpected end of input: ${reason}` : reason });
  const afterValue = (): Expect => (stack.length === 0 ? "end" : "commaOrClose");
  // Windows editors save one; JSON.parse refuses it with a puzzling "Unexpected token".
  if (text.charCodeAt(0) === 0xfeff) return fail(0, "the file starts with a byte order mark (BOM); save it as UTF-8 without BOM");

  // Each scanner returns the error, or undefined having moved `i` past what it read.
  const scanString = (): { offset: number; reason: string } | undefined => {
    i++; // the opening quote
    for (;;) {
      if (i >= n) return fail(n, "unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return fail(i, `control character ${shown(text, i)} in a string (write it as an escape, e.g. \\n)`);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      i++;
      if (i >= n) return fail(n, "unterminated string");
      const e = text.charCodeAt(i);
      if (e === 0x75) {
        for (let k = 1; k <= 4; k++) {
          if (i + k >= n) return fail(n, "unterminated \\u escape");
          if (!isHex(text.charCodeAt(i + k))) return fail(i + k, "a \\u escape takes four hex digits");
        }
        i += 5;
      } else if ('"\\/bfnrt'.includes(text[i]!)) i++;
      else return fail(i, `bad escape \\${text[i]} in a string`);
    }
  };
  const scanNumber = (): { offset: number; reason: string } | undefined => {
    if (text.charCodeAt(i) === 0x2d) i++;
    if (i >= n || !isDigit(text.charCodeAt(i))) return fail(i, "a digit after the minus sign");
    if (text.charCodeAt(i) === 0x30) {
      i++;
      if (i < n && isDigit(text.charCodeAt(i))) return fail(i, "a number cannot start with 0 followed by digits");
    } else while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i < n && text.charCodeAt(i) === 0x2e) {
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) return fail(i, "a digit after the decimal point");
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    if (i < n && (text.charCodeAt(i) === 0x65 || text.charCodeAt(i) === 0x45)) {
      i++;
      if (i < n && (text.charCodeAt(i) === 0x2b || text.charCodeAt(i) === 0x2d)) i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) return fail(i, "a digit in the exponent");
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    return undefined;
  };
  const scanWord = (word: string): { offset: number; reason: string } | undefined => {
    for (let k = 0; k < word.length; k++) {
      if (i + k >= n) return fail(n, `expected ${word}`);
      if (text[i + k] !== word[k]) return fail(i + k, `unexpected ${shown(text, i + k)} (expected ${word})`);
    }
    i += word.length;
    return undefined;
  };

  for (;;) {
    while (i < n && isWhitespace(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (expect === "end") return undefined;
      const open = stack.at(-1);
      return fail(n, open === undefined ? "no JSON value" : `${open === 0x7b ? "an object" : "an array"} is not closed`);
    }
    const c = text.charCodeAt(i);
    let error: { offset: number; reason: string } | undefined;
    if (expect === "end") return fail(i, `unexpected ${shown(text, i)} after the end of the JSON value`);
    if (expect === "colon") {
      if (c !== 0x3a) return fail(i, `expected ':' after a property name, found ${shown(text, i)}`);
      i++;
      expect = "value";
      continue;
    }
    if (expect === "commaOrClose") {
      const objectOpen = stack.at(-1) === 0x7b;
      if (c === 0x2c) {
        i++;
        expect = objectOpen ? "key" : "value";
      } else if (c === (objectOpen ? 0x7d : 0x5d)) {
        i++;
        stack.pop();
        expect = afterValue();
      } else return fail(i, `expected ',' or '${objectOpen ? "}" : "]"}' after ${objectOpen ? "a property value" : "an array element"}, found ${shown(text, i)}`);
      continue;
    }
    if (expect === "keyOrClose" || expect === "key") {
      if (c === 0x7d && expect === "keyOrClose") {
        i++;
        stack.pop();
        expect = afterValue();
        continue;
      }
      if (c !== 0x22) return fail(i, `expected a property name in double quotes, found ${shown(text, i)}${c === 0x7d ? " (a comma before '}' is not allowed)" : ""}`);
      error = scanString();
      if (error) return error;
      expect = "colon";
      continue;
    }
    // A value (or, right after '[', the array's end).
    if (c === 0x5d && expect === "valueOrClose") {
      i++;
      stack.pop();
      expect = afterValue();
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      stack.push(c);
      i++;
      expect = c === 0x7b ? "keyOrClose" : "valueOrClose";
      continue;
    }
    if (c === 0x22) error = scanString();
    else if (c === 0x2d || isDigit(c)) error = scanNumber();
    else if (c === 0x74) error = scanWord("true");
    else if (c === 0x66) error = scanWord("false");
    else if (c === 0x6e) error = scanWord("null");
    else return fail(i, `unexpected ${shown(text, i)} where a value was expected${c === 0x5d ? " (a comma before ']' is not allowed)" : ""}`);
    if (error) return error;
    expect = afterValue();
  }
}
