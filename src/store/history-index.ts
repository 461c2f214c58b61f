import { crc32 } from "node:zlib";
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/*
 * The plate index of the history: which lines of a segment carry a plate, so a plate query
 * reads those lines instead of the segment.
 *
 * Kept with the history, as a sidecar per sealed segment (`history-YYYYMMDD-NNNN.idx`,
 * written when the segment is sealed, pruned with it) and in memory for the open segment.
 * It is derived data: a sidecar is never trusted blindly. It names the segment size it
 * covers and the CRC-32 of the segment's last 4 KiB, and ends with a CRC-32 of itself; one
 * that is missing, torn, stale or of another segment is rebuilt from the segment, and until
 * then that segment is scanned. So a sidecar needs no fsync: a power cut can cost a rebuild,
 * never a wrong answer.
 *
 * Sidecar layout (little-endian u32s):
 *   0  magic "LKHI"      4  format version (1)    8  segment bytes covered
 *   12 CRC-32 of the segment's last min(4096, size) bytes
 *   16 bucket count B (a power of two)           20 entry count N        24, 28 zero
 *   32 bucket starts: B + 1 entry indexes (bucket b is entries [start[b], start[b+1]))
 *   then N entries of 12 bytes: plate hash, line offset, line length (with its "\n"),
 *        grouped by bucket (hash & (B - 1)), by offset within a bucket
 *   last 4 bytes: CRC-32 of everything before them
 * A plate's hash is FNV-1a over its UTF-16 code units; lines of other plates that share a
 * hash are told apart by reading them (the query parses every line it returns anyway).
 */

const MAGIC = 0x49484b4c; // "LKHI" read as a little-endian u32
const FORMAT_VERSION = 1;
const HEADER_BYTES = 32;
const ENTRY_BYTES = 12;
const TAIL_SAMPLE_BYTES = 4096;
/** Offsets are u32: a larger segment is not indexed (it is scanned). */
export const MAX_INDEXED_SEGMENT_BYTES = 0xffff_ffff;
/** Lines parsed between two turns of the event loop while building from a segment. */
const LINES_PER_TURN = 2000;
const READ_CHUNK_BYTES = 1024 * 1024;

export function plateHash(plate: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < plate.length; i++) {
    hash ^= plate.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** history-20260610-0001.jsonl → history-20260610-0001.idx */
export function sidecarName(segment: string): string {
  return segment.replace(/\.jsonl$/, ".idx");
}

/** The plate of a history line as its text says it (what a scan would compare), if any. */
export function plateOfLine(text: string): string | undefined {
  try {
    const plate = (JSON.parse(text) as { plate?: unknown } | null)?.plate;
    return typeof plate === "string" ? plate : undefined;
  } catch {
    return undefined;
  }
}

/** Index entries of one segment in a growable typed array (12 bytes a line, off the JS heap). */
export class IndexEntries {
  private data = new Uint32Array(3 * 256);
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(hash: number, offset: number, length: number): void {
    if (3 * (this.n + 1) > this.data.length) {
      const grown = new Uint32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[3 * this.n] = hash;
    this.data[3 * this.n + 1] = offset;
    this.data[3 * this.n + 2] = length;
    this.n++;
  }

  /** Lines of `hash` as [offset, length], newest (highest offset) first. */
  lookup(hash: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = this.n - 1; i >= 0; i--) if (this.data[3 * i] === hash) out.push([this.data[3 * i + 1]!, this.data[3 * i + 2]!]);
    out.sort((a, b) => b[0] - a[0]);
    return out;
  }

  /** Every entry in offset order. */
  *entries(): Generator<[number, number, number]> {
    const order = Array.from({ length: this.n }, (_, i) => i).sort((a, b) => this.data[3 * a + 1]! - this.data[3 * b + 1]!);
    for (const i of order) yield [this.data[3 * i]!, this.data[3 * i + 1]!, this.data[3 * i + 2]!];
  }
}

/**
 * Indexes the lines of `[fromByte, toByte)` of a segment (a line is what ends in "\n", or
 * the rest of the range: the same rows a scan splits the text into). Reads in 1 MiB pieces
 * and lets the event loop run between batches of lines, so a rebuild in the background
 * neither holds the lanes nor the whole segment in memory. False when `stop` cut it short.
 */
export async function indexSegmentRange(handle: FileHandle, fromByte: number, toByte: number, into: IndexEntries, stop: () => boolean = () => false): Promise<boolean> {
  let position = fromByte;
  // The bytes of a line not finished by the last piece, and where they start in the file.
  let pending: Buffer = Buffer.alloc(0);
  let pendingStart = fromByte;
  let sinceTurn = 0;
  const addLine = (text: Buffer, start: number, end: number, length: number): void => {
    const plate = plateOfLine(text.toString("utf8", start, end));
    if (plate !== undefined) into.add(plateHash(plate), pendingStart + start, length);
  };
  while (position < toByte) {
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, toByte - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) break; // shorter than it was: index what is there
    position += bytesRead;
    const text = pending.length > 0 ? Buffer.concat([pending, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
    let lineStart = 0;
    for (let newline = text.indexOf(0x0a); newline !== -1; newline = text.indexOf(0x0a, lineStart)) {
      addLine(text, lineStart, newline, newline + 1 - lineStart);
      lineStart = newline + 1;
      if (++sinceTurn >= LINES_PER_TURN) {
        sinceTurn = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (stop()) return false;
      }
    }
    // A copy, so the piece it came from can go.
    pending = Buffer.from(text.subarray(lineStart));
    pendingStart += lineStart;
  }
  // The rest without a newline is a row of its own, as it is for a scan.
  if (pending.length > 0) addLine(pending, 0, pending.length, pending.length);
  return true;
}

/** CRC-32 of the last min(4096, size) bytes of the segment: ties a sidecar to its segment. */
export async function segmentTailCrc(handle: FileHandle, sizeBytes: number): Promise<number> {
  const length = Math.min(TAIL_SAMPLE_BYTES, sizeBytes);
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, sizeBytes - length);
  return crc32(buffer.subarray(0, bytesRead));
}

export function encodeSidecar(entries: IndexEntries, segmentBytes: number, tailCrc: number): Buffer {
  let buckets = 16;
  while (buckets < entries.count / 8 && buckets < 1 << 16) buckets *= 2;
  const counts = new Uint32Array(buckets + 1);
  for (const [hash] of entries.entries()) counts[(hash & (buckets - 1)) + 1]!++;
  for (let b = 1; b <= buckets; b++) counts[b]! += counts[b - 1]!;
  const out = Buffer.alloc(HEADER_BYTES + 4 * (buckets + 1) + ENTRY_BYTES * entries.count + 4);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(FORMAT_VERSION, 4);
  out.writeUInt32LE(segmentBytes, 8);
  out.writeUInt32LE(tailCrc, 12);
  out.writeUInt32LE(buckets, 16);
  out.writeUInt32LE(entries.count, 20);
  for (let b = 0; b <= buckets; b++) out.writeUInt32LE(counts[b]!, HEADER_BYTES + 4 * b);
  const entriesAt = HEADER_BYTES + 4 * (buckets + 1);
  const next = counts.slice(0, buckets);
  // entries() is in offset order, so each bucket fills in offset order.
  for (const [hash, offset, length] of entries.entries()) {
    const at = entriesAt + ENTRY_BYTES * next[hash & (buckets - 1)]!++;
    out.writeUInt32LE(hash, at);
    out.writeUInt32LE(offset, at + 4);
    out.writeUInt32LE(length, at + 8);
  }
  out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

/** Writes a sidecar next to its segment: temp file, then rename (see the top comment on fsync). */
export async function writeSidecar(segmentPath: string, content: Buffer): Promise<void> {
  const path = join(dirname(segmentPath), sidecarName(basename(segmentPath)));
  const tmp = join(dirname(segmentPath), `.${basename(path)}.tmp`);
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    // Best-effort cleanup: the error below is the one that matters.
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

export interface SidecarHeader {
  segmentBytes: number;
  tailCrc: number;
  buckets: number;
  entries: number;
}

export function parseHeader(buffer: Buffer, fileBytes: number): SidecarHeader | undefined {
  if (buffer.length < HEADER_BYTES || buffer.readUInt32LE(0) !== MAGIC || buffer.readUInt32LE(4) !== FORMAT_VERSION) return undefined;
  const header = { segmentBytes: buffer.readUInt32LE(8), tailCrc: buffer.readUInt32LE(12), buckets: buffer.readUInt32LE(16), entries: buffer.readUInt32LE(20) };
  const powerOfTwo = header.buckets > 0 && (header.buckets & (header.buckets - 1)) === 0;
  if (!powerOfTwo || fileBytes !== HEADER_BYTES + 4 * (header.buckets + 1) + ENTRY_BYTES * header.entries + 4) return undefined;
  return header;
}

/**
 * Checks a whole sidecar (its content as read) against its segment: size, tail CRC, own
 * CRC, bucket table. Undefined when it is not to be trusted.
 */
export async function validateSidecar(content: Buffer, segment: { handle: FileHandle; sizeBytes: number }): Promise<SidecarHeader | undefined> {
  const header = parseHeader(content, content.length);
  if (!header || header.segmentBytes !== segment.sizeBytes) return undefined;
  if (crc32(content.subarray(0, content.length - 4)) !== content.readUInt32LE(content.length - 4)) return undefined;
  let previous = 0;
  for (let b = 0; b <= header.buckets; b++) {
    const start = content.readUInt32LE(HEADER_BYTES + 4 * b);
    if (start < previous || start > header.entries || (b === 0 && start !== 0) || (b === header.buckets && start !== header.entries)) return undefined;
    previous = start;
  }
  if ((await segmentTailCrc(segment.handle, segment.sizeBytes)) !== header.tailCrc) return undefined;
  return header;
}

/** Lines of `hash` in a validated sidecar, as [offset, length], newest first. */
export async function lookupSidecar(sidecar: FileHandle, header: SidecarHeader, hash: number): Promise<Array<[number, number]>> {
  const bucket = hash & (header.buckets - 1);
  const slot = Buffer.alloc(8);
  await sidecar.read(slot, 0, 8, HEADER_BYTES + 4 * bucket);
  const start = slot.readUInt32LE(0);
  const end = slot.readUInt32LE(4);
  if (end <= start) return [];
  const entries = Buffer.alloc(ENTRY_BYTES * (end - start));
  await sidecar.read(entries, 0, entries.length, HEADER_BYTES + 4 * (header.buckets + 1) + ENTRY_BYTES * start);
  const out: Array<[number, number]> = [];
  for (let at = entries.length - ENTRY_BYTES; at >= 0; at -= ENTRY_BYTES) {
    if (entries.readUInt32LE(at) === hash) out.push([entries.readUInt32LE(at + 4), entries.readUInt32LE(at + 8)]);
  }
  return out;
}

/** Identity of a file, for "was it validated already" (a rename gives a new inode). */
export async function fileIdentity(file: FileHandle | string): Promise<string> {
  const s = typeof file === "string" ? await stat(file, { bigint: true }) : await file.stat({ bigint: true });
  return `${s.ino}:${s.size}:${s.mtimeNs}`;
}
