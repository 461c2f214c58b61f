import { displayColors, type DisplayColor } from "./config.js";
import { decodeGbk, fitGbk } from "./gbk.js";
import { localDateTime } from "../../core/time/zone.js";

/**
 * The 0x64 frame family of the lane's LED and voice board (RS-485; frames checked against the board in
 * test/fixtures/display/verified-frames.json):
 *
 *     DA(1) VR(1)=0x64 PN(2)=0xFFFF CMD(1) DL(1) DATA(DL) CRC(2)
 *
 * CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) over DA..DATA, low byte first. Text
 * and voice are GBK.
 *
 * DATA layouts. Voice (0x30), time sync (0x05) and connect (0x00) are as the board's
 * document gives them. For text the board family differs between vendors; ours are:
 * - 0x62 one temporary line: `line(1, 0-based) colour(1) text(GBK, ≤ 32 bytes)`;
 * - 0x6E multi-line: `count(1)` then per line `colour(1) length(1) text(length)`,
 *   at most 4 lines of at most 32 bytes.
 * Colour codes: 0 board default, 1 red, 2 green, 3 yellow.
 */

export const FRAME_VERSION = 0x64;
export const CMD_CONNECT = 0x00;
export const CMD_TIME_SYNC = 0x05;
export const CMD_VOICE = 0x30;
export const CMD_LINE = 0x62;
export const CMD_LINES = 0x6e;
export const MAX_LINES = 4;
export const MAX_LINE_BYTES = 32;

export type DisplayErrorCode = "E_DISPLAY_TOO_LONG" | "E_DISPLAY_TOO_MANY_LINES" | "E_DISPLAY_BAD_FIELD";

export class DisplayError extends Error {
  constructor(
    readonly code: DisplayErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "DisplayError";
  }
}

/** CRC-16/MODBUS: reflected poly 0xA001, init 0xFFFF, no final xor. */
export function crc16Modbus(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= bytes[i]!;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

export interface RawFrame {
  address: number;
  /** PN; 0xFFFF in every frame the board's document shows. */
  packet: number;
  cmd: number;
  data: Buffer;
}

export function encodeFrame(frame: { address: number; cmd: number; data: Uint8Array; packet?: number }): Buffer {
  if (frame.data.length > 255) throw new DisplayError("E_DISPLAY_TOO_LONG", `frame data of ${frame.data.length} bytes exceeds 255`);
  const out = Buffer.alloc(8 + frame.data.length);
  out[0] = frame.address & 0xff;
  out[1] = FRAME_VERSION;
  out.writeUInt16LE(frame.packet ?? 0xffff, 2);
  out[4] = frame.cmd;
  out[5] = frame.data.length;
  out.set(frame.data, 6);
  out.writeUInt16LE(crc16Modbus(out, 6 + frame.data.length), 6 + frame.data.length);
  return out;
}

export type FrameDecodeResult = { ok: true; frame: RawFrame; length: number } | { ok: false; reason: "short" | "header" | "length" | "crc"; message: string };

/** Decodes one frame at the start of `bytes` (exact, for tests and replies). */
export function decodeFrame(bytes: Uint8Array): FrameDecodeResult {
  if (bytes.length < 8) return { ok: false, reason: "short", message: `${bytes.length} bytes is shorter than a frame` };
  if (bytes[1] !== FRAME_VERSION) return { ok: false, reason: "header", message: `VR is 0x${bytes[1]!.toString(16)}, not 0x64` };
  const dl = bytes[5]!;
  const total = 8 + dl;
  if (bytes.length < total) return { ok: false, reason: "length", message: `DL ${dl} needs ${total} bytes, have ${bytes.length}` };
  const crc = bytes[6 + dl]! | (bytes[7 + dl]! << 8);
  const expected = crc16Modbus(bytes, 6 + dl);
  if (crc !== expected) return { ok: false, reason: "crc", message: `CRC 0x${crc.toString(16)} should be 0x${expected.toString(16)}` };
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    ok: true,
    frame: { address: bytes[0]!, packet: view.readUInt16LE(2), cmd: bytes[4]!, data: Buffer.from(view.subarray(6, 6 + dl)) },
    length: total,
  };
}

/**
 * Finds frames in a byte stream (the simulated board reading what the box wrote, the box
 * reading a board's replies). Bytes that are not a valid frame are skipped one at a time, so
 * a corrupted frame costs only itself.
 */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  readonly counts = { frames: 0, badFrames: 0, droppedBytes: 0 };

  push(chunk: Uint8Array): RawFrame[] {
    this.buffer = this.buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffer, chunk]);
    const frames: RawFrame[] = [];
    let at = 0;
    while (this.buffer.length - at >= 4) {
      const b = this.buffer;
      if (b[at + 1] !== FRAME_VERSION || b[at + 2] !== 0xff || b[at + 3] !== 0xff) {
        at++;
        this.counts.droppedBytes++;
        continue;
      }
      if (b.length - at < 6) break;
      const total = 8 + b[at + 5]!;
      if (b.length - at < total) break;
      const result = decodeFrame(b.subarray(at, at + total));
      if (result.ok) {
        frames.push(result.frame);
        this.counts.frames++;
        at += total;
      } else {
        this.counts.badFrames++;
        this.counts.droppedBytes++;
        at++;
      }
    }
    this.buffer = Buffer.from(this.buffer.subarray(at));
    return frames;
  }

  pending(): number {
    return this.buffer.length;
  }
}

// ---- commands ----

export interface DisplayLine {
  text: string;
  color?: DisplayColor;
}

export interface LocalTime {
  year: number;
  month: number;
  day: number;
  /** 1 = Sunday ... 7 = Saturday (the board's convention). */
  weekday: number;
  hour: number;
  minute: number;
  second: number;
}

export type DisplayCommand =
  | { cmd: "voice"; text: string; option?: number }
  | { cmd: "line"; line: number; text: string; color?: DisplayColor }
  | { cmd: "lines"; lines: DisplayLine[] }
  | { cmd: "time"; time: LocalTime }
  | { cmd: "connect"; data: string }
  | { cmd: "unknown"; code: number; data: Buffer };

function colorCode(color: DisplayColor | undefined): number {
  return color === undefined ? 0 : displayColors.indexOf(color) + 1;
}

function colorFromByte(code: number): DisplayColor | undefined {
  return code >= 1 && code <= displayColors.length ? displayColors[code - 1] : undefined;
}

export interface EncodeOptions {
  /** Overlong text: cut at a character boundary (default) or throw a DisplayError. */
  overflow?: "truncate" | "reject";
  lineBytes?: number;
}

export interface EncodedCommand {
  frame: Buffer;
  truncated: boolean;
  unencodable: number;
}

function fit(text: string, maxBytes: number, overflow: "truncate" | "reject", what: string): ReturnType<typeof fitGbk> {
  const fitted = fitGbk(text, maxBytes);
  if (fitted.truncated && overflow === "reject") throw new DisplayError("E_DISPLAY_TOO_LONG", `${what} does not fit in ${maxBytes} bytes of GBK`);
  return fitted;
}

/** Encodes a command as a frame for the board at `address`. */
export function encodeCommand(address: number, command: DisplayCommand, options: EncodeOptions = {}): EncodedCommand {
  const overflow = options.overflow ?? "truncate";
  const lineBytes = Math.min(options.lineBytes ?? MAX_LINE_BYTES, MAX_LINE_BYTES);
  switch (command.cmd) {
    case "voice": {
      const text = fit(command.text, 254, overflow, "voice text");
      const data = Buffer.concat([Buffer.from([command.option ?? 0x01]), text.bytes]);
      return { frame: encodeFrame({ address, cmd: CMD_VOICE, data }), truncated: text.truncated, unencodable: text.unencodable };
    }
    case "line": {
      if (!Number.isInteger(command.line) || command.line < 0 || command.line >= MAX_LINES) {
        throw new DisplayError("E_DISPLAY_BAD_FIELD", `line ${command.line} is not 0-${MAX_LINES - 1}`);
      }
      const text = fit(command.text, lineBytes, overflow, `line ${command.line}`);
      const data = Buffer.concat([Buffer.from([command.line, colorCode(command.color)]), text.bytes]);
      return { frame: encodeFrame({ address, cmd: CMD_LINE, data }), truncated: text.truncated, unencodable: text.unencodable };
    }
    case "lines": {
      let lines = command.lines;
      let truncated = false;
      if (lines.length > MAX_LINES) {
        if (overflow === "reject") throw new DisplayError("E_DISPLAY_TOO_MANY_LINES", `${lines.length} lines; the board shows at most ${MAX_LINES}`);
        lines = lines.slice(0, MAX_LINES);
        truncated = true;
      }
      let unencodable = 0;
      const parts: Buffer[] = [Buffer.from([lines.length])];
      lines.forEach((line, i) => {
        const text = fit(line.text, lineBytes, overflow, `line ${i}`);
        truncated ||= text.truncated;
        unencodable += text.unencodable;
        parts.push(Buffer.from([colorCode(line.color), text.bytes.length]), text.bytes);
      });
      return { frame: encodeFrame({ address, cmd: CMD_LINES, data: Buffer.concat(parts) }), truncated, unencodable };
    }
    case "time": {
      const t = command.time;
      const data = Buffer.alloc(8);
      data.writeUInt16LE(t.year, 0);
      data.set([t.month, t.day, t.weekday, t.hour, t.minute, t.second], 2);
      return { frame: encodeFrame({ address, cmd: CMD_TIME_SYNC, data }), truncated: false, unencodable: 0 };
    }
    case "connect": {
      const data = Buffer.from(command.data, "latin1");
      return { frame: encodeFrame({ address, cmd: CMD_CONNECT, data }), truncated: false, unencodable: 0 };
    }
    case "unknown":
      return { frame: encodeFrame({ address, cmd: command.code, data: command.data }), truncated: false, unencodable: 0 };
  }
}

/** Reads a decoded frame's DATA back into a command (the simulated board, tests). */
export function interpretFrame(frame: RawFrame): DisplayCommand {
  const d = frame.data;
  const unknown = (): DisplayCommand => ({ cmd: "unknown", code: frame.cmd, data: d });
  switch (frame.cmd) {
    case CMD_VOICE:
      if (d.length < 1) return unknown();
      return { cmd: "voice", option: d[0]!, text: decodeGbk(d.subarray(1)) };
    case CMD_LINE: {
      if (d.length < 2) return unknown();
      const color = colorFromByte(d[1]!);
      return color ? { cmd: "line", line: d[0]!, color, text: decodeGbk(d.subarray(2)) } : { cmd: "line", line: d[0]!, text: decodeGbk(d.subarray(2)) };
    }
    case CMD_LINES: {
      if (d.length < 1) return unknown();
      const count = d[0]!;
      const lines: DisplayLine[] = [];
      let at = 1;
      for (let i = 0; i < count; i++) {
        if (at + 2 > d.length) return unknown();
        const color = colorFromByte(d[at]!);
        const length = d[at + 1]!;
        if (at + 2 + length > d.length) return unknown();
        const text = decodeGbk(d.subarray(at + 2, at + 2 + length));
        lines.push(color ? { text, color } : { text });
        at += 2 + length;
      }
      return at === d.length ? { cmd: "lines", lines } : unknown();
    }
    case CMD_TIME_SYNC:
      if (d.length !== 8) return unknown();
      return { cmd: "time", time: { year: d.readUInt16LE(0), month: d[2]!, day: d[3]!, weekday: d[4]!, hour: d[5]!, minute: d[6]!, second: d[7]! } };
    case CMD_CONNECT:
      return { cmd: "connect", data: d.toString("latin1") };
    default:
      return unknown();
  }
}

/** The lot's local wall-clock time for the board's clock (0x05), from epoch ms. */
export function localTime(atMs: number, timeZone: string): LocalTime {
  const t = localDateTime(atMs, timeZone);
  return { ...t, weekday: new Date(Date.UTC(t.year, t.month - 1, t.day)).getUTCDay() + 1 };
}
