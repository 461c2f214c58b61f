/**
 * Plate text normalisation (architecture §3.3, domain.md §3). Pure and deterministic.
 *
 * Cameras, scanners, operators and the platform write the same plate in different ways:
 * "粤B·12345", "粤B 12345", "粤b12345", full-width "粤Ｂ１２３４５" from GBK input methods.
 * Every comparison in the runtime is made on the normalised form:
 *   - full-width ASCII (U+FF01..U+FF5E) → half-width, ideographic space → space;
 *   - upper case (Latin letters only; Chinese characters have no case);
 *   - separators removed: spaces, middle dots (· • ・ ･), dots, hyphens, underscores, slashes;
 *   - Chinese characters (province 粤 京 …, suffixes 学 警 港 澳 挂 领 使) are kept as they are.
 */

/** Characters that only separate groups of a plate. */
const SEPARATORS = /[\s\u00B7\u2022\u30FB\uFF65\u2027\u2219.\-_/\\|]+/gu;

/** What cameras send when they saw no plate (Zhenshi "_无_", domain.md §3). */
const NO_PLATE = new Set(["", "无", "无牌", "无车牌", "未识别", "NONE", "UNKNOWN"]);

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

export function normalisePlate(raw: string): string {
  return toHalfWidth(raw).toUpperCase().replace(SEPARATORS, "");
}

/** True when the normalised text stands for "no plate read" rather than a plate. */
export function isNoPlate(normalised: string): boolean {
  return NO_PLATE.has(normalised);
}

/** A Chinese character (the province prefix or a special-use suffix). */
export function isHanChar(ch: string): boolean {
  return /\p{Script=Han}/u.test(ch);
}
