import type { Clock } from "../kernel/clock.js";
import { ApiError, type HttpServer } from "../api/http-server.js";
import { buildAlarmInfoPlate, type CameraPushReceiver } from "./camera/http-push.js";
import { parseColor } from "./camera/plate-read.js";
import type { SerialCamera } from "./camera/serial-camera.js";
import type { LaneDisplay } from "./display/lane-display.js";
import type { SerialScanner } from "./scanner/serial-scanner.js";
import { SimSerialLink } from "./serial/sim-serial-link.js";

/**
 * The simulator's camera and scanner (sim mode only). They feed the SAME
 * code paths as the real devices: a serial camera gets the bytes its template would print,
 * pushed into its simulated link and through the line parser; an HTTP camera gets an
 * `AlarmInfoPlate` body through the push parser, de-duplication and counters; a scanner gets
 * the digits and CR LF through its parser.
 */
export type SimCameraFeed = { kind: "serial"; camera: SerialCamera; link: SimSerialLink } | { kind: "http"; receiver: CameraPushReceiver };

export interface SimScannerFeed {
  scanner: SerialScanner;
  link: SimSerialLink;
}

export interface SimCameraRequest {
  plate: string;
  color?: string | number;
  confidence?: number;
}

export type SimFeedResult = { delivered: true } | { delivered: false; status: number; code: string; reason: string };

/** The feed for a serial camera, when its link is simulated. */
export function simSerialCameraFeed(camera: SerialCamera): SimCameraFeed | undefined {
  return camera.link instanceof SimSerialLink ? { kind: "serial", camera, link: camera.link } : undefined;
}

export function simScannerFeed(scanner: SerialScanner): SimScannerFeed | undefined {
  return scanner.link instanceof SimSerialLink ? { scanner, link: scanner.link } : undefined;
}

let simPlateId = 0;

/** Validates a sim camera request body; throws ApiError 400 on bad input. */
export function parseSimCameraRequest(body: unknown): SimCameraRequest & { colorCode?: number } {
  const b = body && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  if (!b || typeof b.plate !== "string" || b.plate.length > 16) throw new ApiError(400, "E_PLATE", 'plate must be a string of at most 16 characters ("" or "_无_" for no plate)');
  const out: SimCameraRequest & { colorCode?: number } = { plate: b.plate };
  if (b.color !== undefined) {
    const color = parseColor(b.color);
    if (!color) throw new ApiError(400, "E_COLOR", "color must be a code 0-6 or a name (blue, 蓝...)");
    out.colorCode = color.colorCode;
  }
  if (b.confidence !== undefined) {
    if (typeof b.confidence !== "number" || !(b.confidence >= 0 && b.confidence <= 100)) throw new ApiError(400, "E_CONFIDENCE", "confidence must be a number 0-100");
    out.confidence = b.confidence;
  }
  return out;
}

/** Sends one simulated read down the camera's real path. */
export function feedSimCamera(feed: SimCameraFeed, laneId: string, request: SimCameraRequest & { colorCode?: number }, clock: Clock): SimFeedResult {
  const plate = request.plate === "_无_" ? "" : request.plate;
  if (feed.kind === "serial") {
    const before = feed.camera.status().reads;
    const fields: Parameters<SerialCamera["formatLine"]>[0] = { plate: plate === "" ? "_无_" : plate };
    if (request.colorCode !== undefined) fields.colorCode = request.colorCode;
    if (request.confidence !== undefined) fields.confidence = request.confidence;
    if (!feed.link.emit(feed.camera.formatLine(fields))) return { delivered: false, status: 409, code: "E_LINK_DOWN", reason: `camera link ${feed.link.name} is not up` };
    const status = feed.camera.status();
    if (status.reads > before) return { delivered: true };
    return { delivered: false, status: 422, code: "E_REJECTED", reason: `the camera line parser rejected the line (${status.lastRejection?.reason ?? "incomplete"})` };
  }
  const atMs = clock.now();
  const fields: Parameters<typeof buildAlarmInfoPlate>[0] = { plate, plateId: `sim${atMs}${String(++simPlateId).padStart(4, "0")}`, atMs };
  if (request.colorCode !== undefined) fields.colorCode = request.colorCode;
  if (request.confidence !== undefined) fields.confidence = request.confidence;
  // Through JSON, as the camera's body would arrive.
  const outcome = feed.receiver.receive(laneId, JSON.parse(JSON.stringify(buildAlarmInfoPlate(fields))));
  if (outcome.kind === "live") return { delivered: true };
  if (outcome.kind === "rejected") return { delivered: false, status: 422, code: outcome.code, reason: outcome.message };
  return { delivered: false, status: 409, code: "E_NOT_DELIVERED", reason: `read not delivered (${outcome.kind})` };
}

/** Sends one simulated scan down the scanner's real path. */
export function feedSimScanner(feed: SimScannerFeed, code: string): SimFeedResult {
  const before = feed.scanner.status().codes;
  if (!feed.link.emit(Buffer.from(`${code}\r\n`, "utf8"))) return { delivered: false, status: 409, code: "E_LINK_DOWN", reason: `scanner link ${feed.link.name} is not up` };
  const status = feed.scanner.status();
  if (status.codes > before) return { delivered: true };
  return { delivered: false, status: 422, code: "E_REJECTED", reason: `the scanner rejected the line (${status.lastRejection?.reason ?? "incomplete"})` };
}

export interface SimDeviceRoutesOptions {
  /** laneId → the lane's camera feed (simulated serial link or HTTP push receiver). */
  cameras: ReadonlyMap<string, SimCameraFeed>;
  /** laneId → the lane's scanner feed. */
  scanners: ReadonlyMap<string, SimScannerFeed>;
  /** laneId → the lane's display; with it, `GET /api/sim/displays` shows what drivers see. */
  displays?: ReadonlyMap<string, LaneDisplay>;
  clock: Clock;
}

/**
 * Registers `POST /api/sim/camera/:laneId` and `POST /api/sim/scanner/:laneId` (token
 * required), and `GET /api/sim/displays` (what each simulated board shows, newest last).
 */
export function registerSimDeviceRoutes(http: HttpServer, options: SimDeviceRoutesOptions): void {
  const answer = (result: SimFeedResult, send: (status: number, payload: unknown) => void): void => {
    if (result.delivered) send(200, { ok: true, delivered: true });
    else throw new ApiError(result.status, result.code, result.reason);
  };
  http.route(
    "POST",
    "/api/sim/camera/:laneId",
    async ({ params, json, send }) => {
      const laneId = params.laneId ?? "";
      const feed = options.cameras.get(laneId);
      if (!feed) throw new ApiError(404, "E_NO_SIM_CAMERA", `lane ${JSON.stringify(laneId.slice(0, 32))} has no simulated camera`);
      answer(feedSimCamera(feed, laneId, parseSimCameraRequest(await json()), options.clock), send);
    },
    { access: "token" },
  );
  http.route(
    "POST",
    "/api/sim/scanner/:laneId",
    async ({ params, json, send }) => {
      const laneId = params.laneId ?? "";
      const feed = options.scanners.get(laneId);
      if (!feed) throw new ApiError(404, "E_NO_SIM_SCANNER", `lane ${JSON.stringify(laneId.slice(0, 32))} has no simulated scanner`);
      const body = await json<{ code?: unknown }>();
      if (!body || typeof body.code !== "string" || body.code.length > 64 || /[\r\n]/.test(body.code)) {
        throw new ApiError(400, "E_CODE", "code must be one line of at most 64 characters");
      }
      answer(feedSimScanner(feed, body.code), send);
    },
    { access: "token" },
  );
  const displays = options.displays;
  if (displays) {
    http.route("GET", "/api/sim/displays", ({ url, send }) => {
      const limit = Math.min(200, Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20));
      const out: Record<string, unknown> = {};
      for (const [laneId, display] of displays) {
        out[laneId] = { device: display.name, current: display.board?.currentLines() ?? [], shown: display.shown().slice(-limit) };
      }
      send(200, { displays: out });
    });
  }
}
