import { createHash, timingSafeEqual } from "node:crypto";

/** One top-level parameter as it contributes to the signature: its name and its text. */
export interface SignField {
  readonly name: string;
  /** The value's text: a string's decoded value, a number's raw text, bizContent's JSON text. */
  readonly value: string;
}

export interface SignResult {
  /** 32 upper-case hex characters. */
  readonly sign: string;
  /** The exact string that was hashed, including `&key=<key>`. Never log it unmasked. */
  readonly signTemp: string;
  /** `StringTemp`: the sorted `name=value` pairs, without the key. */
  readonly stringTemp: string;
}

/**
 * The platform's signing rule (docs/protocol.md §2): every top-level parameter except `sign`,
 * empty values dropped, names sorted by code unit (case-sensitive), joined as `k=v` with `&`,
 * then `&key=<key>`, MD5 over the UTF-8 bytes, upper-case hex.
 *
 * `excludeName` is the name the envelope's sign travelled under; receivers match field names
 * case-insensitively (docs/protocol.md §2, receiving), so that may be `Sign` rather than `sign`.
 */
export function computeSign(fields: Iterable<SignField>, key: string, excludeName = "sign"): SignResult {
  const kept = [...fields].filter((f) => f.name !== excludeName && f.value !== "");
  kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const stringTemp = kept.map((f) => `${f.name}=${f.value}`).join("&");
  const signTemp = `${stringTemp}&key=${key}`;
  return { sign: md5UpperHex(signTemp), signTemp, stringTemp };
}

export function md5UpperHex(text: string): string {
  return createHash("md5").update(text, "utf8").digest("hex").toUpperCase();
}

/**
 * Compares a received sign with the expected one: case-insensitive (the document demands
 * upper case on sending, we accept lower case on receipt, docs/protocol.md §2), in constant time.
 */
export function signsEqual(received: string, expected: string): boolean {
  const a = Buffer.from(received.toUpperCase(), "utf8");
  const b = Buffer.from(expected.toUpperCase(), "utf8");
  if (a.length !== b.length) {
    // Spend the same time as a real comparison so the length is not a timing oracle.
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** The signTemp with the secret replaced, fit for a terminal or a log (`&key=HIDDEN`). */
export function maskSignTemp(signTemp: string, key: string): string {
  const suffix = `&key=${key}`;
  return signTemp.endsWith(suffix) ? `${signTemp.slice(0, -suffix.length)}&key=HIDDEN` : signTemp.replaceAll(key, "HIDDEN");
}
