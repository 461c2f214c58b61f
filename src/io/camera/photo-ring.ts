import { readdirSync, statSync, unlinkSync } from "node:fs";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { normalisePlate } from "../../core/plates/normalise.js";
import { silentLogger, type Logger } from "../../kernel/log.js";

/**
 * The last photos of each lane's camera, kept as a bounded ring of JPEG files under the box's
 * state directory (`<store.dir>/photos/<laneId>/`), never in the store: a photo helps the
 * attendant check a plate, it is not a record. Each lane keeps at most `perLane` photos and
 * `maxLaneBytes` bytes; the oldest go first. The file name carries what the ring needs after a
 * restart (`<atMs>-<seq>.<plate in hex>.jpg`), so the ring is rebuilt from the folder alone.
 */

export const photoRingConfigSchema = z.strictObject({
  /** Photos kept per lane (0: none are kept). */
  perLane: z.int().min(0).max(1000).default(20),
  /** One image's largest size in bytes; a larger one is refused before it is decoded. */
  maxImageBytes: z
    .int()
    .min(1024)
    .max(1024 * 1024)
    .default(1024 * 1024),
  /** All of one lane's photos together, in bytes. */
  maxLaneBytes: z
    .int()
    .min(64 * 1024)
    .max(1024 * 1024 * 1024)
    .default(16 * 1024 * 1024),
});
export type PhotoRingConfig = z.infer<typeof photoRingConfigSchema>;

export type PhotoRefusalCode = "E_PHOTO_NOT_TEXT" | "E_PHOTO_TOO_LARGE" | "E_PHOTO_BASE64" | "E_PHOTO_NOT_JPEG";
export type JpegDecodeResult = { ok: true; jpeg: Buffer } | { ok: false; code: PhotoRefusalCode; message: string };

/** Base64 characters that can hold `bytes` bytes, with room for MIME line breaks (CR LF every 76). */
function maxBase64Chars(bytes: number): number {
  const chars = Math.ceil(bytes / 3) * 4;
  return chars + Math.ceil(chars / 76) * 2 + 64;
}

const base64Body = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A base64 JPEG field of a camera push → its bytes. The text's length is checked before anything
 * is decoded (a body of one huge field costs no copy), then the alphabet, then the decoded size
 * and the JPEG markers (SOI at the start, EOI near the end).
 */
export function decodeJpegBase64(value: unknown, maxBytes: number): JpegDecodeResult {
  if (typeof value !== "string") return { ok: false, code: "E_PHOTO_NOT_TEXT", message: "the image field is not base64 text" };
  if (value.length > maxBase64Chars(maxBytes)) return { ok: false, code: "E_PHOTO_TOO_LARGE", message: `the image is over ${maxBytes} bytes` };
  const text = value.replace(/^data:image\/jpeg;base64,/, "").replace(/[\r\n]/g, "");
  if (text.length === 0 || text.length % 4 === 1 || !base64Body.test(text)) return { ok: false, code: "E_PHOTO_BASE64", message: "the image field is not valid base64" };
  const jpeg = Buffer.from(text, "base64");
  if (jpeg.length > maxBytes) return { ok: false, code: "E_PHOTO_TOO_LARGE", message: `the image is over ${maxBytes} bytes` };
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8 || jpeg[2] !== 0xff || !hasEndMarker(jpeg)) {
    return { ok: false, code: "E_PHOTO_NOT_JPEG", message: "the image is not a JPEG" };
  }
  return { ok: true, jpeg };
}

/** The EOI marker within the last 32 bytes (some cameras pad after it). */
function hasEndMarker(jpeg: Buffer): boolean {
  for (let i = jpeg.length - 2; i >= Math.max(2, jpeg.length - 32); i--) if (jpeg[i] === 0xff && jpeg[i + 1] === 0xd9) return true;
  return false;
}

export interface PhotoMeta {
  /** `<atMs>-<seq>`: unique on the lane, also across restarts. */
  id: string;
  laneId: string;
  /** When the box received the read (the read's own atMs). */
  atMs: number;
  /** The plate of the read ("" for a read without a plate). */
  plate: string;
  bytes: number;
}

export interface PhotoCounts {
  saved: number;
  evicted: number;
  refused: Record<PhotoRefusalCode, number>;
  writeFailed: number;
}

/** What the lanes ask of the ring: the photo of a read. */
export interface PhotoLookup {
  /** The newest photo on the lane of this plate taken at most `windowMs` before `atMs` (and not after it by more than 5 s). */
  forRead(laneId: string, plate: string, atMs: number): PhotoMeta | undefined;
}

interface Entry extends PhotoMeta {
  file: string;
  /** The file is on disk once this settles (a read asked for at once waits for it). */
  written: Promise<boolean>;
}

const fileName = /^(\d{1,16})-(\d{1,9})\.([0-9a-f]{0,64})\.jpg$/;
export const photoIdPattern = /^\d{1,16}-\d{1,9}$/;

/** How far back a read's photo is looked for: a car waits at most this long between read and decision. */
const READ_WINDOW_MS = 10 * 60_000;

export class PhotoRing implements PhotoLookup {
  private readonly lanes = new Map<string, Entry[]>();
  private readonly counts = new Map<string, PhotoCounts>();
  private seq = 0;
  private readonly log: Logger;
  /** File writes and deletions still running. */
  private readonly pending = new Set<Promise<unknown>>();
  /** Each lane's folder, made once (off the push's turn) rather than at every image. */
  private readonly madeDirs = new Map<string, Promise<unknown>>();

  /** Rebuilds each lane's ring from its folder (synchronously: a few dozen names per lane). */
  constructor(
    private readonly dir: string,
    laneIds: readonly string[],
    private readonly config: PhotoRingConfig,
    log: Logger = silentLogger(),
  ) {
    this.log = log.child({ sub: "photos" });
    for (const laneId of laneIds) {
      this.lanes.set(laneId, this.load(laneId));
      this.counts.set(laneId, { saved: 0, evicted: 0, refused: { E_PHOTO_NOT_TEXT: 0, E_PHOTO_TOO_LARGE: 0, E_PHOTO_BASE64: 0, E_PHOTO_NOT_JPEG: 0 }, writeFailed: 0 });
      this.trim(laneId);
    }
  }

  private laneDir(laneId: string): string {
    return join(this.dir, laneId);
  }

  private load(laneId: string): Entry[] {
    const dir = this.laneDir(laneId);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const entries: Entry[] = [];
    for (const name of names) {
      const match = fileName.exec(name);
      const file = join(dir, name);
      if (!match) {
        // A write cut short by a power cut (its temporary file), or a stranger: not a photo.
        if (name.startsWith(".tmp-")) unlinkQuietly(file);
        continue;
      }
      const seq = Number(match[2]);
      this.seq = Math.max(this.seq, seq);
      let bytes: number;
      try {
        bytes = statSync(file).size;
      } catch {
        continue;
      }
      entries.push({
        id: `${match[1]}-${match[2]}`,
        laneId,
        atMs: Number(match[1]),
        plate: Buffer.from(match[3]!, "hex").toString("utf8"),
        bytes,
        file,
        written: Promise.resolve(true),
      });
    }
    return entries.sort((a, b) => a.atMs - b.atMs || Number(a.id.split("-")[1]) - Number(b.id.split("-")[1]));
  }

  /**
   * Takes a camera push's image field for a read: refused (counted and logged, the read goes on)
   * or written to the lane's ring, the oldest photos evicted past the bounds.
   */
  take(laneId: string, plate: string, atMs: number, field: unknown): { ok: true; photo: PhotoMeta } | { ok: false; code: PhotoRefusalCode | "E_PHOTO_LANE" } {
    const ring = this.lanes.get(laneId);
    const counts = this.counts.get(laneId);
    if (!ring || !counts) return { ok: false, code: "E_PHOTO_LANE" };
    const decoded = decodeJpegBase64(field, this.config.maxImageBytes);
    if (!decoded.ok) {
      counts.refused[decoded.code]++;
      this.log.warn({ laneId, plate, code: decoded.code, reason: decoded.message }, "camera image refused; the read goes on without it");
      return { ok: false, code: decoded.code };
    }
    if (this.config.perLane === 0) return { ok: false, code: "E_PHOTO_LANE" };
    const seq = ++this.seq;
    const id = `${atMs}-${seq}`;
    const file = join(this.laneDir(laneId), `${id}.${Buffer.from(plate, "utf8").toString("hex").slice(0, 64)}.jpg`);
    const entry: Entry = { id, laneId, atMs, plate, bytes: decoded.jpeg.length, file, written: this.track(this.write(file, decoded.jpeg)) };
    void entry.written.then((ok) => {
      if (ok) return;
      counts.writeFailed++;
      const at = ring.indexOf(entry);
      if (at >= 0) ring.splice(at, 1);
    });
    ring.push(entry);
    counts.saved++;
    this.trim(laneId);
    return { ok: true, photo: publicMeta(entry) };
  }

  private track<T>(task: Promise<T>): Promise<T> {
    this.pending.add(task);
    void task.finally(() => this.pending.delete(task));
    return task;
  }

  private async write(file: string, jpeg: Buffer): Promise<boolean> {
    const dir = join(file, "..");
    const tmp = join(dir, `.tmp-${file.split("/").pop()!}`);
    try {
      let made = this.madeDirs.get(dir);
      if (!made) this.madeDirs.set(dir, (made = mkdir(dir, { recursive: true })));
      await made;
      await writeFile(tmp, jpeg);
      await rename(tmp, file);
      return true;
    } catch (error) {
      // The folder is made again at the next image (it may be what went missing).
      this.madeDirs.delete(dir);
      this.log.warn({ err: error, file }, "camera image not written");
      // The temporary file may not exist (the write failed before it); the failure is logged above.
      await unlink(tmp).catch(() => undefined);
      return false;
    }
  }

  /** Evicts the oldest photos of the lane past its count and byte bounds. */
  private trim(laneId: string): void {
    const ring = this.lanes.get(laneId)!;
    let bytes = ring.reduce((sum, e) => sum + e.bytes, 0);
    while (ring.length > 0 && (ring.length > this.config.perLane || bytes > this.config.maxLaneBytes)) {
      const oldest = ring.shift()!;
      bytes -= oldest.bytes;
      const counts = this.counts.get(laneId);
      if (counts) counts.evicted++;
      // After its write: an unlink that overtook the write would leave the file behind.
      void this.track(oldest.written.then((ok) => (ok ? unlink(oldest.file).catch(() => undefined) : undefined)));
    }
  }

  latest(laneId: string): PhotoMeta | undefined {
    const ring = this.lanes.get(laneId);
    const last = ring?.[ring.length - 1];
    return last ? publicMeta(last) : undefined;
  }

  byId(laneId: string, id: string): PhotoMeta | undefined {
    const found = this.lanes.get(laneId)?.find((e) => e.id === id);
    return found ? publicMeta(found) : undefined;
  }

  list(laneId: string): PhotoMeta[] {
    return (this.lanes.get(laneId) ?? []).map(publicMeta);
  }

  forRead(laneId: string, plate: string, atMs: number): PhotoMeta | undefined {
    const wanted = normalisePlate(plate);
    const ring = this.lanes.get(laneId) ?? [];
    for (let i = ring.length - 1; i >= 0; i--) {
      const entry = ring[i]!;
      if (entry.atMs > atMs + 5000) continue;
      if (entry.atMs < atMs - READ_WINDOW_MS) break;
      if (normalisePlate(entry.plate) === wanted) return publicMeta(entry);
    }
    return undefined;
  }

  /** The JPEG bytes of a photo still in the ring, or undefined (evicted, or its write failed). */
  async read(laneId: string, id: string): Promise<Buffer | undefined> {
    const entry = this.lanes.get(laneId)?.find((e) => e.id === id);
    if (!entry || !(await entry.written)) return undefined;
    // Evicted between the lookup and the read: the caller answers "no such photo".
    return readFile(entry.file).catch(() => undefined);
  }

  status(): Record<string, PhotoCounts & { kept: number; bytes: number }> {
    const out: Record<string, PhotoCounts & { kept: number; bytes: number }> = {};
    for (const [laneId, counts] of this.counts) {
      const ring = this.lanes.get(laneId) ?? [];
      out[laneId] = { ...counts, refused: { ...counts.refused }, kept: ring.length, bytes: ring.reduce((sum, e) => sum + e.bytes, 0) };
    }
    return out;
  }

  /** Every write and eviction started so far has finished (tests, and a stop that wants the files complete). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

function publicMeta(entry: Entry): PhotoMeta {
  return { id: entry.id, laneId: entry.laneId, atMs: entry.atMs, plate: entry.plate, bytes: entry.bytes };
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Gone already.
  }
}
