import iconv from "iconv-lite";
import { LineSplitter } from "../serial/line-splitter.js";
import type { CameraOptions } from "./config.js";
import { readPlate } from "../../core/plates/index.js";
import { parseColor, type PlateRead } from "./plate-read.js";

/**
 * The serial camera's line protocol: one read per line, laid
 * out by a configurable template such as "%PLATE%,%COLOR%,%CONFIDENCE%". Known fields are
 * %PLATE%, %COLOR% (or %COLOUR%), %CONFIDENCE%; any other %NAME% (a time, a lane number the
 * camera prints) matches anything and is ignored. Text between fields must match literally.
 */

export const cameraRejectReasons = ["tooLong", "binary", "encoding", "template", "plate", "color", "confidence"] as const;
export type CameraRejectReason = (typeof cameraRejectReasons)[number];

type Field = "plate" | "color" | "confidence" | "ignored";

export interface CompiledTemplate {
  readonly source: string;
  readonly regex: RegExp;
  readonly fields: readonly Field[];
  /** Literal pieces around the fields, for formatting: literals[i] precedes fields[i]. */
  readonly literals: readonly string[];
}

export function compileTemplate(template: string): CompiledTemplate {
  const tokens = template.split(/%([A-Za-z_]+)%/);
  const literals: string[] = [];
  const fields: Field[] = [];
  let pattern = "^";
  tokens.forEach((token, i) => {
    if (i % 2 === 0) {
      literals.push(token);
      pattern += token.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      return;
    }
    const name = token.toUpperCase();
    fields.push(name === "PLATE" ? "plate" : name === "COLOR" || name === "COLOUR" ? "color" : name === "CONFIDENCE" ? "confidence" : "ignored");
    pattern += "(.*?)";
  });
  pattern += "$";
  if (fields.filter((f) => f === "plate").length !== 1) throw new Error(`camera template "${template}" must contain %PLATE% exactly once`);
  return { source: template, regex: new RegExp(pattern, "u"), fields, literals };
}

export type CameraLineResult = { ok: true; read: PlateRead } | { ok: false; reason: CameraRejectReason; detail: string };

export interface CameraLineCounts {
  /** Lines seen (terminated), including rejected ones. */
  lines: number;
  reads: number;
  rejected: number;
  byReason: Record<CameraRejectReason, number>;
  /** Bytes thrown away with rejected lines. */
  droppedBytes: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Incremental parser for a camera's serial byte stream. Feed it chunks as they arrive; it
 * returns the reads and rejections each chunk completed. Garbage, over-long lines and binary
 * noise are rejected and counted; the stream never loses sync, because every line terminator
 * restarts parsing.
 */
export class CameraLineParser {
  private readonly template: CompiledTemplate;
  private readonly splitter: LineSplitter;
  private readonly counts: CameraLineCounts = {
    lines: 0,
    reads: 0,
    rejected: 0,
    byReason: { tooLong: 0, binary: 0, encoding: 0, template: 0, plate: 0, color: 0, confidence: 0 },
    droppedBytes: 0,
  };

  constructor(private readonly options: Pick<CameraOptions, "template" | "encoding" | "maxLineBytes">) {
    this.template = compileTemplate(options.template);
    this.splitter = new LineSplitter(options.maxLineBytes);
  }

  push(chunk: Uint8Array, atMs: number): CameraLineResult[] {
    const results: CameraLineResult[] = [];
    this.splitter.push(chunk, {
      line: (bytes) => results.push(this.count(this.parseLine(bytes, atMs), bytes.length)),
      overflow: (dropped) => results.push(this.count({ ok: false, reason: "tooLong", detail: `line of ${dropped} bytes exceeds ${this.options.maxLineBytes}` }, dropped)),
    });
    return results;
  }

  /** Parses one complete line (without its terminator). */
  parseLine(bytes: Buffer, atMs: number): CameraLineResult {
    for (const byte of bytes) {
      // Control bytes never occur in a printed read: this is line noise or a binary protocol.
      if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) return { ok: false, reason: "binary", detail: `control byte 0x${byte.toString(16).padStart(2, "0")}` };
    }
    let text: string;
    if (this.options.encoding === "utf8") {
      try {
        text = utf8.decode(bytes);
      } catch {
        return { ok: false, reason: "encoding", detail: "not valid UTF-8" };
      }
    } else {
      text = iconv.decode(bytes, "gbk");
      if (text.includes("\uFFFD")) return { ok: false, reason: "encoding", detail: "not valid GBK" };
    }
    const match = this.template.regex.exec(text.trim());
    if (!match) return { ok: false, reason: "template", detail: `does not match "${this.template.source}": ${sample(text)}` };
    const read: PlateRead = { plate: "", atMs, source: "serial" };
    for (let i = 0; i < this.template.fields.length; i++) {
      const value = (match[i + 1] ?? "").trim();
      switch (this.template.fields[i]) {
        case "plate": {
          const plate = readPlate(value);
          if (!plate.ok) return { ok: false, reason: "plate", detail: `${plate.reason}: ${sample(value)}` };
          read.plate = plate.plate;
          if (plate.noPlate) read.noPlate = true;
          break;
        }
        case "color": {
          if (value === "") break;
          const color = parseColor(value);
          if (!color) return { ok: false, reason: "color", detail: `unknown colour ${sample(value)}` };
          read.color = color.color;
          read.colorCode = color.colorCode;
          break;
        }
        case "confidence": {
          if (value === "") break;
          const confidence = /^\d{1,3}(\.\d+)?$/.test(value) ? Number(value) : NaN;
          if (!(confidence >= 0 && confidence <= 100)) return { ok: false, reason: "confidence", detail: `confidence ${sample(value)} is not 0-100` };
          read.confidence = confidence;
          break;
        }
        default:
          break;
      }
    }
    return { ok: true, read };
  }

  stats(): CameraLineCounts {
    return { ...this.counts, byReason: { ...this.counts.byReason } };
  }

  private count(result: CameraLineResult, bytes: number): CameraLineResult {
    this.counts.lines++;
    if (result.ok) this.counts.reads++;
    else {
      this.counts.rejected++;
      this.counts.byReason[result.reason]++;
      this.counts.droppedBytes += bytes;
    }
    return result;
  }
}

export interface CameraLineFields {
  plate: string;
  /** Printed as the Chinese colour word the camera would print (蓝, 黄...). */
  colorCode?: number;
  confidence?: number;
}

const colorPrint = ["未知", "蓝", "黄", "白", "黑", "绿", "黄绿"];

/**
 * Formats a read the way a camera with this template prints it (the simulator feeds these
 * bytes into the same parser as a real camera's).
 */
export function formatCameraLine(options: Pick<CameraOptions, "template" | "encoding" | "lineEnding">, fields: CameraLineFields): Buffer {
  const template = compileTemplate(options.template);
  let text = "";
  template.fields.forEach((field, i) => {
    text += template.literals[i] ?? "";
    if (field === "plate") text += fields.plate;
    else if (field === "color" && fields.colorCode !== undefined) text += colorPrint[fields.colorCode] ?? "";
    else if (field === "confidence" && fields.confidence !== undefined) text += String(fields.confidence);
  });
  text += template.literals[template.fields.length] ?? "";
  const ending = options.lineEnding === "crlf" ? "\r\n" : options.lineEnding === "lf" ? "\n" : "\r";
  return options.encoding === "utf8" ? Buffer.from(text + ending, "utf8") : Buffer.concat([iconv.encode(text, "gbk"), Buffer.from(ending, "latin1")]);
}

/** A short printable excerpt of a rejected value for the log (never the whole line). */
function sample(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return JSON.stringify(clean.length > 40 ? `${clean.slice(0, 40)}…` : clean);
}
