import { createHash, timingSafeEqual } from "node:crypto";
import iconv from "iconv-lite";
import { systemClock, type Clock } from "../../kernel/clock.js";
import { silentLogger, type Logger } from "../../kernel/log.js";
import { ApiError, type HttpServer } from "../../api/http-server.js";
import { isLoopback, parseJsonText } from "../../api/http-pipeline.js";
import { readPlate } from "../../core/plates/index.js";
import { colorFromCode, parseColor, type PlateRead } from "./plate-read.js";

/**
 * The camera HTTP push of Zhenshi/Vzenith cameras (sample bodies in test/fixtures/camera/): the camera POSTs
 * `{"AlarmInfoPlate": {..., "result": {"PlateResult": {...}}}}` to `/camera/<laneId>`.
 *
 * What the parser accepts, and why:
 * - numbers given as strings ("colorType": "1", "isoffline": "1", "plateid": "123"): firmware
 *   versions differ;
 * - `PlateResult` under `AlarmInfoPlate.result` (the documented place) or directly under
 *   `AlarmInfoPlate` (seen on older firmware);
 * - the base64 JPEG of a live read (`imageFile`, the full picture, else `imageFragmentFile`, the
 *   plate crop) goes to the lane's photo ring (photo-ring.ts), which checks its size before
 *   decoding it; a bad image is refused and counted there, and the read goes on without it;
 * - a `license` holding several plates joined by `|` (cross-border "three-region" vehicles:
 *   a mainland 粤Z plate plus a Hong Kong/Macau one): `plate` is the first part that starts
 *   with a Chinese character (the mainland plate), else the first valid part; the other valid
 *   parts go to `altPlates`; parts that are not plates are dropped;
 * - `"license": "_无_"` is a read without a plate (`noPlate: true`, `plate: ""`);
 * - the body is UTF-8 JSON, or GBK when it is not valid UTF-8 (the camera's charset setting);
 *   JSON nested deeper than 32 levels is refused before it is parsed (a real push has 5).
 */

/**
 * The JSON of a read is under 4 KiB; the rest is room for the optional base64 images (the
 * full picture, ~600 KB as a 1080p JPEG, is ~800 KB in base64, plus the plate crop).
 */
export const cameraPushBodyLimitBytes = 1536 * 1024;

export interface CameraDeviceInfo {
  serialno?: string;
  deviceName?: string;
  ipaddr?: string;
  channel?: number;
}

export type AlarmParseResult =
  | { ok: true; read: PlateRead; device: CameraDeviceInfo; /** The image field as sent (not decoded here), if any. */ image?: unknown }
  | { ok: false; code: "E_SHAPE" | "E_PLATE"; message: string };

type Json = Record<string, unknown>;

function asObject(value: unknown): Json | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Json) : undefined;
}

/** A number, or a string holding one ("95", "1.5"); anything else is undefined. */
function num(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

function str(value: unknown, maxLength = 64): string | undefined {
  const text = typeof value === "number" && Number.isFinite(value) ? String(value) : typeof value === "string" ? value.trim() : undefined;
  return text && text.length <= maxLength ? text : undefined;
}

/** Parses an `AlarmInfoPlate` body into a read (laneId not set: the URL says the lane). */
export function parseAlarmInfoPlate(body: unknown, receivedAtMs: number): AlarmParseResult {
  const root = asObject(asObject(body)?.AlarmInfoPlate);
  if (!root) return { ok: false, code: "E_SHAPE", message: "no AlarmInfoPlate object" };
  const result = asObject(asObject(root.result)?.PlateResult) ?? asObject(root.PlateResult);
  if (!result) return { ok: false, code: "E_SHAPE", message: "no AlarmInfoPlate.result.PlateResult object" };
  if (typeof result.license !== "string") return { ok: false, code: "E_SHAPE", message: "PlateResult.license is missing or not text" };

  const parts = result.license
    .split("|")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  const plates: string[] = [];
  let noPlate = false;
  for (const part of parts) {
    const parsed = readPlate(part);
    if (!parsed.ok) continue;
    if (parsed.noPlate) noPlate = true;
    else plates.push(parsed.plate);
  }
  if (plates.length === 0 && !noPlate) return { ok: false, code: "E_PLATE", message: `license ${JSON.stringify(result.license.slice(0, 40))} holds no plate` };

  const read: PlateRead = { plate: "", atMs: receivedAtMs, source: "http" };
  if (plates.length > 0) {
    const primary = plates.find((p) => /^\p{Script=Han}/u.test(p)) ?? plates[0]!;
    read.plate = primary;
    const others = plates.filter((p) => p !== primary);
    if (others.length > 0) read.altPlates = others;
  } else {
    read.noPlate = true;
  }

  const colorCode = num(result.colorType);
  if (colorCode !== undefined && Number.isInteger(colorCode)) {
    read.colorCode = colorCode;
    read.color = colorFromCode(colorCode);
  } else {
    const named = parseColor(result.color);
    if (named) {
      read.colorCode = named.colorCode;
      read.color = named.color;
    }
  }
  const confidence = num(result.confidence);
  if (confidence !== undefined && confidence >= 0 && confidence <= 100) read.confidence = confidence;
  const plateId = str(result.plateid);
  if (plateId !== undefined) read.plateId = plateId;
  const triggerType = num(result.triggerType);
  if (triggerType !== undefined) read.triggerType = triggerType;
  const plateType = num(result.type);
  if (plateType !== undefined) read.plateType = plateType;
  const offline = result.isoffline;
  if (offline === true || num(offline) === 1) read.offline = true;
  const timeval = asObject(asObject(result.timeStamp)?.Timeval);
  const sec = num(timeval?.sec);
  if (sec !== undefined && sec > 0) read.cameraAtMs = Math.round(sec * 1000 + (num(timeval?.usec) ?? 0) / 1000);

  const device: CameraDeviceInfo = {};
  const serialno = str(root.serialno);
  if (serialno !== undefined) device.serialno = serialno;
  const deviceName = str(root.deviceName);
  if (deviceName !== undefined) device.deviceName = deviceName;
  const ipaddr = str(root.ipaddr);
  if (ipaddr !== undefined) device.ipaddr = ipaddr;
  const channel = num(root.channel);
  if (channel !== undefined) device.channel = channel;
  const image = result.imageFile ?? result.imageFragmentFile;
  return { ok: true, read, device, ...(image === undefined || image === "" ? {} : { image }) };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Body bytes → JSON value: UTF-8, or GBK when the bytes are not UTF-8. Throws ApiError
 * E_JSON on bad JSON and E_JSON_DEPTH on nesting too deep. The depth is checked on the decoded
 * text: in GBK a character's second byte may be `[`, `{` or a backslash.
 */
export function decodePushBody(raw: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    text = iconv.decode(raw, "gbk");
  }
  return parseJsonText(text.replace(/^\uFEFF/, ""));
}

export interface AlarmBodyFields {
  plate: string;
  colorCode?: number;
  confidence?: number;
  plateId: string | number;
  atMs: number;
  triggerType?: number;
  offline?: boolean;
  /** The picture as base64 JPEG (`imageFile`). */
  imageFile?: string;
}

/** Builds the body a Vzenith camera posts for a read (simulator, tests). */
export function buildAlarmInfoPlate(fields: AlarmBodyFields): Record<string, unknown> {
  return {
    AlarmInfoPlate: {
      channel: 0,
      deviceName: "sim-camera",
      ipaddr: "127.0.0.1",
      serialno: "sim-0000000001",
      result: {
        PlateResult: {
          license: fields.plate === "" ? "_无_" : fields.plate,
          colorType: fields.colorCode ?? 0,
          type: fields.plate === "" ? 31 : 1,
          confidence: fields.confidence ?? 95,
          plateid: fields.plateId,
          triggerType: fields.triggerType ?? 8,
          isoffline: fields.offline ? 1 : 0,
          timeStamp: { Timeval: { sec: Math.floor(fields.atMs / 1000), usec: (fields.atMs % 1000) * 1000 } },
          ...(fields.imageFile === undefined ? {} : { imageFile: fields.imageFile, imageFileLen: Math.floor((fields.imageFile.length * 3) / 4) }),
        },
      },
    },
  };
}

// ---- receiving ----

export interface LanePushCounts {
  /** Live reads delivered to the lane. */
  live: number;
  /** Offline-queue reads recorded as history. */
  history: number;
  /** Re-sends of a read already received (same plateid). */
  duplicates: number;
  noPlate: number;
  rejected: { auth: number; tooLarge: number; badBody: number; badRead: number };
  lastAtMs: number | null;
}

/** Per-lane counters of the camera push, for /api/status. */
export class CameraPushCounters {
  private readonly lanes = new Map<string, LanePushCounts>();
  /** Requests naming a lane this box does not have (one total: lane names are untrusted). */
  unknownLane = 0;

  lane(laneId: string): LanePushCounts {
    let counts = this.lanes.get(laneId);
    if (!counts) {
      counts = { live: 0, history: 0, duplicates: 0, noPlate: 0, rejected: { auth: 0, tooLarge: 0, badBody: 0, badRead: 0 }, lastAtMs: null };
      this.lanes.set(laneId, counts);
    }
    return counts;
  }

  status(): { lanes: Record<string, LanePushCounts>; unknownLane: number } {
    const lanes: Record<string, LanePushCounts> = {};
    for (const [id, c] of this.lanes) lanes[id] = { ...c, rejected: { ...c.rejected } };
    return { lanes, unknownLane: this.unknownLane };
  }
}

export type PushOutcome =
  | { kind: "live"; read: PlateRead }
  | { kind: "history"; read: PlateRead }
  | { kind: "duplicate"; plateId: string }
  | { kind: "rejected"; code: string; message: string }
  | { kind: "unknownLane" };

export interface CameraPushOptions {
  lanes: readonly string[];
  /**
   * Shared secret: `?key=` in the URL or the `x-camera-key` header. Without one, pushes are
   * accepted from the box itself (loopback) only and refused from elsewhere with 403
   * E_CAMERA_KEY_REQUIRED: a camera on the LAN needs a key.
   */
  cameraKey?: string;
  onRead(laneId: string, read: PlateRead): void;
  /** Offline-queue reads: history, never a car at the lane now. */
  onHistory?(laneId: string, read: PlateRead): void;
  counters?: CameraPushCounters;
  clock?: Clock;
  log?: Logger;
  /** `"no"`: the box drives its own barrier relay, so the camera must not; `"ok"` lets the camera pulse its relay. */
  replyInfo?: "no" | "ok";
  /** Remembered plateids per lane for de-duplication. */
  dedupeCapacity?: number;
  /** Where a live read's image goes (the lanes' photo ring); without one images are dropped. */
  photos?: { take(laneId: string, plate: string, atMs: number, field: unknown): unknown };
}

/**
 * Turns camera push bodies into reads for a lane: de-duplicates re-sends by `plateid`
 * (bounded memory per lane), routes offline-queue reads to history, counts everything.
 * The HTTP route and the simulator both call `receive`.
 */
export class CameraPushReceiver {
  readonly counters: CameraPushCounters;
  private readonly lanes: ReadonlySet<string>;
  private readonly seen = new Map<string, Map<string, true>>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly dedupeCapacity: number;

  constructor(private readonly options: CameraPushOptions) {
    this.lanes = new Set(options.lanes);
    this.counters = options.counters ?? new CameraPushCounters();
    this.clock = options.clock ?? systemClock;
    this.log = (options.log ?? silentLogger()).child({ sub: "camera-push" });
    this.dedupeCapacity = options.dedupeCapacity ?? 1024;
    for (const lane of options.lanes) this.counters.lane(lane);
  }

  hasLane(laneId: string): boolean {
    return this.lanes.has(laneId);
  }

  receive(laneId: string, body: unknown): PushOutcome {
    if (!this.lanes.has(laneId)) {
      this.counters.unknownLane++;
      return { kind: "unknownLane" };
    }
    const counts = this.counters.lane(laneId);
    const atMs = this.clock.now();
    const parsed = parseAlarmInfoPlate(body, atMs);
    if (!parsed.ok) {
      counts.rejected.badRead++;
      this.log.warn({ laneId, code: parsed.code, reason: parsed.message }, "camera push rejected");
      return { kind: "rejected", code: parsed.code, message: parsed.message };
    }
    const read: PlateRead = { ...parsed.read, laneId };
    counts.lastAtMs = atMs;
    if (read.plateId !== undefined) {
      // plateid restarts when a camera is reset; the camera's timestamp keeps two reads with
      // the same id apart, while a re-send carries both unchanged.
      const key = `${read.plateId}@${read.cameraAtMs ?? ""}`;
      if (this.remember(laneId, key)) {
        counts.duplicates++;
        this.log.debug({ laneId, plateId: read.plateId }, "camera re-sent a read; ignored");
        return { kind: "duplicate", plateId: read.plateId };
      }
    }
    if (read.noPlate) counts.noPlate++;
    if (read.offline) {
      counts.history++;
      this.log.info({ laneId, plate: read.plate, plateId: read.plateId, cameraAtMs: read.cameraAtMs, ...parsed.device }, "offline camera read recorded as history");
      this.call(() => this.options.onHistory?.(laneId, read));
      return { kind: "history", read };
    }
    counts.live++;
    // The photo first, so the lane's decision finds it.
    if (parsed.image !== undefined) this.call(() => this.options.photos?.take(laneId, read.plate, read.atMs, parsed.image));
    this.call(() => this.options.onRead(laneId, read));
    return { kind: "live", read };
  }

  status(): ReturnType<CameraPushCounters["status"]> {
    return this.counters.status();
  }

  /** Returns true when `key` was already seen for the lane; remembers it either way. */
  private remember(laneId: string, key: string): boolean {
    let seen = this.seen.get(laneId);
    if (!seen) this.seen.set(laneId, (seen = new Map()));
    if (seen.has(key)) {
      seen.delete(key);
      seen.set(key, true);
      return true;
    }
    seen.set(key, true);
    if (seen.size > this.dedupeCapacity) seen.delete(seen.keys().next().value!);
    return false;
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.log.error({ err: error }, "camera read listener failed");
    }
  }
}

function keyDigest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Registers `POST /camera/:laneId`. Every answer, errors included, has
 * the protocol's shape with `"content": "retransfer_stop"` (some models re-send forever
 * without it); errors add an `error` member the camera ignores.
 */
export function registerCameraPushRoute(http: HttpServer, options: CameraPushOptions): CameraPushReceiver {
  const receiver = new CameraPushReceiver(options);
  const reply = { Response_AlarmInfoPlate: { info: options.replyInfo ?? "no", content: "retransfer_stop" } };
  const expectedKey = options.cameraKey ? keyDigest(options.cameraKey) : undefined;
  const routeName = "POST /camera/:laneId";
  const log = (options.log ?? silentLogger()).child({ sub: "camera-push" });

  http.route(
    "POST",
    "/camera/:laneId",
    async (ctx) => {
      const laneId = ctx.params.laneId ?? "";
      const refuse = (status: number, code: string, message: string): void => {
        http.countRejection(routeName);
        ctx.send(status, { ...reply, error: { code, message } });
      };
      if (!receiver.hasLane(laneId)) {
        receiver.counters.unknownLane++;
        ctx.req.resume();
        log.warn({ laneId: laneId.slice(0, 32) }, "camera push for an unknown lane");
        return refuse(404, "E_UNKNOWN_LANE", `no lane ${JSON.stringify(laneId.slice(0, 32))} on this box`);
      }
      const counts = receiver.counters.lane(laneId);
      if (!expectedKey && !isLoopback(ctx.req.socket.remoteAddress)) {
        counts.rejected.auth++;
        ctx.req.resume();
        log.warn({ laneId, remote: ctx.req.socket.remoteAddress }, "camera push from the network while no camera key is set");
        return refuse(403, "E_CAMERA_KEY_REQUIRED", "this box takes camera pushes from the network only with a camera key (api.cameraKey)");
      }
      if (expectedKey) {
        const presented = ctx.url.searchParams.get("key") ?? headerValue(ctx.req.headers["x-camera-key"]) ?? "";
        if (!timingSafeEqual(keyDigest(presented), expectedKey)) {
          counts.rejected.auth++;
          ctx.req.resume();
          log.warn({ laneId, keyPresented: presented !== "" }, "camera push with a wrong key");
          return refuse(401, "E_CAMERA_KEY", "camera key missing or wrong");
        }
      }
      let body: unknown;
      try {
        body = decodePushBody(await ctx.body());
      } catch (error) {
        if (error instanceof ApiError && (error.status === 413 || error.status === 503)) {
          if (error.status === 413) counts.rejected.tooLarge++;
          log.warn({ laneId, code: error.code, reason: error.message }, "camera push refused");
          return refuse(error.status, error.code, error.message);
        }
        counts.rejected.badBody++;
        const code = error instanceof ApiError ? error.code : "E_JSON";
        const message = error instanceof ApiError ? error.message : "body is not valid JSON";
        log.warn({ laneId, code }, "camera push body is not usable JSON");
        return refuse(400, code, message);
      }
      const outcome = receiver.receive(laneId, body);
      if (outcome.kind === "rejected") return refuse(400, outcome.code, outcome.message);
      ctx.send(200, reply);
    },
    { bodyLimitBytes: cameraPushBodyLimitBytes, access: "open" },
  );
  return receiver;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
