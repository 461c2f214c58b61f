import type { Clock } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import type { SerialLink, SerialLinkStatus } from "../serial/serial-link.js";
import type { SpacesSignOptions } from "./config.js";

/**
 * The remaining-spaces sign, 9600 8N1:
 *
 *     0x3A colour(1) count(LE16) info(1) sum8(1) 0x0A
 *
 * colour 00 green, 01 yellow, 02 red. The document does not say which bytes sum8 covers; we
 * sum colour, count and info (the bytes between the start and the checksum), modulo 256.
 */
export const spacesSignColors = ["green", "yellow", "red"] as const;
export type SpacesSignColor = (typeof spacesSignColors)[number];

export interface SpacesSignFrame {
  color: SpacesSignColor;
  count: number;
  info: number;
}

export function encodeSpacesSignFrame(frame: SpacesSignFrame): Buffer {
  const count = Math.max(0, Math.min(0xffff, Math.trunc(frame.count)));
  const out = Buffer.from([0x3a, spacesSignColors.indexOf(frame.color), count & 0xff, count >> 8, frame.info & 0xff, 0, 0x0a]);
  out[5] = (out[1]! + out[2]! + out[3]! + out[4]!) & 0xff;
  return out;
}

export type SpacesSignDecodeResult = { ok: true; frame: SpacesSignFrame } | { ok: false; message: string };

export function decodeSpacesSignFrame(bytes: Uint8Array): SpacesSignDecodeResult {
  if (bytes.length !== 7) return { ok: false, message: `a sign frame is 7 bytes, got ${bytes.length}` };
  if (bytes[0] !== 0x3a || bytes[6] !== 0x0a) return { ok: false, message: "missing 0x3A start or 0x0A end" };
  const sum = (bytes[1]! + bytes[2]! + bytes[3]! + bytes[4]!) & 0xff;
  if (sum !== bytes[5]) return { ok: false, message: `sum8 0x${bytes[5]!.toString(16)} should be 0x${sum.toString(16)}` };
  const color = spacesSignColors[bytes[1]!];
  if (!color) return { ok: false, message: `colour ${bytes[1]} is not 0-2` };
  return { ok: true, frame: { color, count: bytes[2]! | (bytes[3]! << 8), info: bytes[4]! } };
}

/** Colour for a free-space count: red when full, yellow at or below `lowSpaces`. */
export function spacesSignColorFor(freeSpaces: number, lowSpaces: number): SpacesSignColor {
  return freeSpaces <= 0 ? "red" : freeSpaces <= lowSpaces ? "yellow" : "green";
}

/**
 * Drives the remaining-spaces sign. Takes the absolute free count: absolute numbers, not
 * ±1 steps, which drift.
 */
export class SpacesSign {
  readonly name: string;
  private readonly log: Logger;
  private writes = 0;
  private writeErrors = 0;
  private last: { freeSpaces: number; color: SpacesSignColor; atMs: number } | undefined;

  constructor(
    readonly link: SerialLink,
    private readonly options: SpacesSignOptions,
    private readonly clock: Clock,
    log: Logger,
  ) {
    this.name = link.name;
    this.log = log.child({ device: link.name });
  }

  async start(): Promise<void> {
    await this.link.open();
  }

  async stop(): Promise<void> {
    await this.link.close();
  }

  /** Shows the free count; false when the link refused the write (counted and logged). */
  async show(freeSpaces: number): Promise<boolean> {
    const count = Math.max(0, Math.trunc(freeSpaces));
    const color = spacesSignColorFor(count, this.options.lowSpaces);
    try {
      await this.link.write(encodeSpacesSignFrame({ color, count, info: this.options.info }));
      this.writes++;
      this.last = { freeSpaces: count, color, atMs: this.clock.now() };
      return true;
    } catch (error) {
      this.writeErrors++;
      this.log.warn({ err: error }, "spaces sign write failed");
      return false;
    }
  }

  status(): { device: string; kind: "sign"; link: SerialLinkStatus; writes: number; writeErrors: number; last?: { freeSpaces: number; color: SpacesSignColor; atMs: number } } {
    const status: ReturnType<SpacesSign["status"]> = { device: this.name, kind: "sign", link: this.link.status(), writes: this.writes, writeErrors: this.writeErrors };
    if (this.last) status.last = { ...this.last };
    return status;
  }
}
