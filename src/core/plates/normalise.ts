/**
 * Plate text normalisation: the one place the runtime decides what a plate text means. Pure and
 * deterministic. Every path a plate arrives by uses it — the camera's serial line and HTTP push
 * (`readPlate`), the platform's section-4 requests and the local API (`plateKey`), the store's
 * plate indexes (`plateKey`) and the lane machines (`normalisePlate`, `isNoPlate`) — so the same
 * text is the same plate wherever it came from.
 *
 * Cameras, scanners, operators and the platform write the same plate in different ways:
 * "粤B·12345", "粤B 12345", "粤b12345", full-width "粤Ｂ１２３４５" from GBK input methods.
 * Every comparison in the runtime is made on the normalised form:
 *   - full-width ASCII (U+FF01..U+FF5E) → half-width, ideographic space → space;
 *   - upper case (Latin letters only; Chinese characters have no case);
 *   - separators removed: spaces, middle dots (· • ・ ･), dots, hyphens, underscores, slashes,
 *     bars and NULs (serial cameras pad fixed-width fields with NUL);
 *   - Chinese characters (province 粤 京 …, suffixes 学 警 港 澳 挂 领 使) are kept as they are.
 */

/** Characters that only separate groups of a plate (or pad it). */
const SEPARATORS = /[\s\u0000\u00B7\u2022\u30FB\uFF65\u2027\u2219.\-_/\\|]+/gu;

/**
 * Texts that stand for "a vehicle, but no plate read", in normalised form. One set for every
 * path, the union of what each of them used to recognise:
 *   - "" (an empty or blank field) and "无" (Zhenshi/Vzenith cameras print "_无_");
 *   - "无牌", "无牌车", "无车牌": other cameras and operators' spelling of "unlicensed";
 *   - "未识别" ("not recognised"), "NONE", "UNKNOWN": recognisers that print a word instead.
 * None of them can be a plate: a plate has a serial with at least one digit.
 */
export const NO_PLATE_TEXTS: ReadonlySet<string> = new Set(["", "无", "无牌", "无牌车", "无车牌", "未识别", "NONE", "UNKNOWN"]);

export function toHalfWidth(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code >= 0xff01 && code <= 0xff5e) out += String.fromCodePoint(code - 0xfee0);
    else if (code === 0x3000) out += " ";
    else out += ch;
  }
  return out;
}

/** The normalised plate text (idempotent). */
export function normalisePlate(raw: string): string {
  return toHalfWidth(raw).toUpperCase().replace(SEPARATORS, "");
}

/** True when the normalised text stands for "no plate read" rather than a plate. */
export function isNoPlate(normalised: string): boolean {
  return NO_PLATE_TEXTS.has(normalised);
}

/**
 * The key two plate texts are compared by (lookups by plate in the store, the platform's
 * requests, the local API's search): the normalised plate, "" for a no-plate text, and without
 * the `无` an unlicensed car's virtual plate may carry. The platform sends a virtual plate with
 * or without that prefix (protocol 4.1, 4.3) and the box stores it as it came, so both forms
 * must find the same stay. No real plate starts with 无 (it is no province), so dropping it
 * never merges two real plates. Idempotent.
 */
export function plateKey(raw: string): string {
  const normalised = normalisePlate(raw);
  if (isNoPlate(normalised)) return "";
  const key = normalised.replace(/^\u65E0+/u, ""); // leading 无 (escaped: the bundle keeps its code ASCII);
  return isNoPlate(key) ? "" : key;
}

/** Two plate texts name the same plate (see `plateKey`). */
export function samePlate(a: string, b: string): boolean {
  return plateKey(a) === plateKey(b);
}

/**
 * A search by part of a plate (the local API, the store's and the platform's list filters):
 * a blank query matches everything, a no-plate text matches only records without a plate, and
 * anything else matches plates whose key contains the query's key.
 */
export function plateMatchesSearch(plate: string, query: string | undefined): boolean {
  if (query === undefined || normalisePlate(query) === "") return true;
  const wanted = plateKey(query);
  return wanted === "" ? plateKey(plate) === "" : plateKey(plate).includes(wanted);
}

/** A plate text from a device, checked: a plate, a no-plate read, or not a plate at all. */
export type PlateText = { ok: true; plate: string; noPlate: boolean } | { ok: false; reason: string };

/**
 * Reads a plate text a device printed (camera line, camera push). A plate is 3-10 characters
 * of Han, A-Z and 0-9 once normalised, with at least one digit (every mainland, Hong Kong and
 * Macau serial has one; words do not) and at most three Han characters (province, suffixes
 * such as 港/澳/学/警/挂/使). A blank field is refused rather than read as "no plate": the
 * camera prints a marker for a plate-less car, so a blank is a garbled line.
 */
export function readPlate(raw: string): PlateText {
  const plate = normalisePlate(raw);
  if (plate === "") return { ok: false, reason: "empty" };
  if (isNoPlate(plate)) return { ok: true, plate: "", noPlate: true };
  if (!/^[\p{Script=Han}A-Z0-9]{3,10}$/u.test(plate)) return { ok: false, reason: "not a plate" };
  const han = plate.match(/\p{Script=Han}/gu)?.length ?? 0;
  if (han > 3) return { ok: false, reason: "too many Chinese characters for a plate" };
  if (!/[0-9]/.test(plate)) return { ok: false, reason: "no digit" };
  return { ok: true, plate, noPlate: false };
}

/** A Chinese character (the province prefix or a special-use suffix). */
export function isHanChar(ch: string): boolean {
  return /\p{Script=Han}/u.test(ch);
}
