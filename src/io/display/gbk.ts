import iconv from "iconv-lite";

/**
 * GBK text for the display and voice board. Node has no GBK encoder, so
 * iconv-lite does the table work; this module adds what the board needs: fitting a text into
 * a byte budget without ever splitting a double-byte character.
 */

export interface GbkText {
  bytes: Buffer;
  /** Characters dropped to fit the budget. */
  truncated: boolean;
  /** Characters GBK cannot express (emoji, rare CJK), sent as "?". */
  unencodable: number;
}

/** Encodes `text` into at most `maxBytes` bytes of GBK, cutting only between characters. */
export function fitGbk(text: string, maxBytes = Infinity): GbkText {
  const parts: Buffer[] = [];
  let size = 0;
  let unencodable = 0;
  let truncated = false;
  for (const char of text) {
    let encoded = iconv.encode(char, "gbk");
    if (encoded.length === 1 && encoded[0] === 0x3f && char !== "?") {
      unencodable++;
      encoded = Buffer.from("?");
    }
    if (size + encoded.length > maxBytes) {
      truncated = true;
      break;
    }
    parts.push(encoded);
    size += encoded.length;
  }
  return { bytes: Buffer.concat(parts, size), truncated, unencodable };
}

export function decodeGbk(bytes: Uint8Array): string {
  return iconv.decode(Buffer.from(bytes), "gbk");
}
