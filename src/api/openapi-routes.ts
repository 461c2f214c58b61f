import { z } from "zod";
import type { Access } from "./http-server.js";
import { commandSchema, correctPlateSchema, refundedSchema } from "./lane-routes.js";
import { endShiftSchema, startShiftSchema } from "./shift-routes.js";
import { finishedStaySchema, inParkRecordSchema } from "../store/records.js";
import { refundEntrySchema } from "../lanes/refunds.js";

/**
 * What every route of the local API takes and answers, as zod schemas: the source of
 * `/api/openapi.json` (openapi-document.ts) and of the test that real answers match it.
 * Request bodies reuse the schemas the routes parse with; answers are described here, the
 * fields a client relies on typed and large sections (the status, a shift report) open to
 * fields added later.
 */

/** Every error the API answers, whatever the route (the README's table of refusals). */
export const errorSchema = z.strictObject({
  error: z.strictObject({
    code: z.string().regex(/^E_[A-Z0-9_]+$/, "a stable E_ code"),
    message: z.string().min(1),
  }),
});

export interface ResponseDoc {
  description: string;
  /** The JSON answer; absent with `contentType` for another media type (a range such as `text/*` allowed). */
  json?: z.ZodType;
  contentType?: string;
  /** An event stream's frames: the JSON each `data` line holds. */
  eventData?: z.ZodType;
}

export interface RouteDoc {
  method: "GET" | "POST";
  /** The pattern as registered (`:name` parameters). */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** By status; every route also answers the shared `Error` on refusals. */
  responses: Record<number, ResponseDoc>;
  /** Registered only with simulated hardware (`hardware.gpio: "sim"`). */
  simOnly?: boolean;
}

const epochMs = z.number().int().describe("epoch milliseconds");
const fen = z.number().int().describe("money in fen (1/100 yuan)");
const ok = z.literal(true);
const epochQuery = z
  .string()
  .regex(/^-?\d+$/)
  .describe("epoch milliseconds");

const photoRef = z.strictObject({ id: z.string(), laneId: z.string(), atMs: epochMs, url: z.string().describe("GET it for the JPEG") });
/** The booth's exit card of a car waiting at an exit (src/lanes/exit-card.ts). */
const exitCard = z.strictObject({
  recordNo: z.string().optional(),
  enterAtMs: epochMs.optional(),
  stayMs: z.number().int().min(0).optional(),
  entryLaneId: z.string().optional(),
  entryLaneName: z.string().optional(),
  entryDeviceId: z.string().optional().describe("the other box of the lot the car entered by; its entry photo is kept there"),
  bill: z
    .strictObject({
      payableFen: fen,
      discountFen: fen,
      prepaidFen: fen,
      dueFen: fen,
      discounts: z.array(z.strictObject({ coupon: z.looseObject({ kind: z.string() }), discountFen: fen, applied: z.boolean(), note: z.string().optional() })),
    })
    .optional(),
  payBy: z.array(z.enum(["platform", "scanner", "cash"])),
  photos: z.strictObject({ camera: z.enum(["http", "serial"]), exit: photoRef.nullable(), entry: photoRef.nullable() }),
  readPlate: z.string().optional().describe("the plate the camera read, when an attendant corrected it"),
});
const laneVehicle = z.looseObject({ plate: z.string(), readPlate: z.string().optional(), card: exitCard.optional() });
const laneStatus = z.looseObject({ id: z.string(), direction: z.enum(["in", "out"]), vehicle: laneVehicle.nullable().optional() });
const statusSchema = z.looseObject({
  deviceId: z.string(),
  version: z.string(),
  uptimeS: z.number().int(),
  gpio: z.string(),
  sim: z.boolean(),
  lot: z.looseObject({ parkCode: z.string(), timeZone: z.string(), totalSpaces: z.number().int(), freeSpaces: z.number().int(), inPark: z.number().int() }),
  lanes: z.array(laneStatus),
  outbox: z.looseObject({ depth: z.number().int(), parked: z.number().int() }),
  httpRejections: z.record(z.string(), z.number().int()),
});

const shiftTotals = z.looseObject({ cashCount: z.number().int(), cashFen: fen, releases: z.number().int(), opens: z.number().int(), drawerFen: fen });
const shiftHeader = z.looseObject({
  id: z.string(),
  operator: z.string(),
  startedAtMs: epochMs,
  endedAtMs: epochMs,
  totals: shiftTotals,
  published: z.boolean(),
});
const openShift = z.looseObject({ id: z.string(), operator: z.string(), startedAtMs: epochMs });
const fenTotal = { count: z.number().int(), totalFen: fen };
const shiftReport = z.looseObject({
  v: z.literal(1),
  shiftId: z.string(),
  deviceId: z.string(),
  lot: z.looseObject({ name: z.string(), parkCode: z.string(), timeZone: z.string() }),
  operator: z.string(),
  startedAtMs: epochMs,
  endedAtMs: epochMs.nullable(),
  asOfMs: epochMs,
  cash: z.looseObject({ ...fenTotal, lanes: z.array(z.looseObject({ laneId: z.string(), ...fenTotal })), items: z.array(z.looseObject({})) }),
  releases: z.looseObject({ count: z.number().int(), dueFen: fen, items: z.array(z.looseObject({})) }),
  opens: z.looseObject({ count: z.number().int(), items: z.array(z.looseObject({})) }),
  refunds: z.looseObject({ found: z.looseObject(fenTotal), carried: z.looseObject(fenTotal), owedAtEnd: z.looseObject(fenTotal), refundedInShift: z.looseObject(fenTotal) }),
  drawerFen: fen,
});

const refundTotals = z.looseObject({ owedCount: z.number().int(), owedFen: fen });
const outboxStatus = z.looseObject({ depth: z.number().int(), parked: z.number().int(), retrying: z.number().int(), delivered: z.number().int(), link: z.enum(["up", "probing"]) });
const outboxEntry = z.looseObject({ key: z.string(), recordNo: z.string(), kind: z.string(), service: z.string(), attempts: z.number().int() });
const lotBox = z.looseObject({ deviceId: z.string(), online: z.boolean() });

const cameraReply = z.looseObject({
  Response_AlarmInfoPlate: z.strictObject({ info: z.string(), content: z.literal("retransfer_stop") }),
  error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
});
const envelopeBody = z.looseObject({ code: z.number().int(), msg: z.string() });

/** Answers' parts named in the document's components (the rest is inlined where used). */
export const sharedSchemas: Readonly<Record<string, z.ZodType>> = {
  Error: errorSchema,
  Status: statusSchema,
  OpenShift: openShift,
  ShiftHeader: shiftHeader,
  ShiftReport: shiftReport,
  InParkRecord: inParkRecordSchema,
  FinishedStay: finishedStaySchema,
  RefundEntry: refundEntrySchema,
  ExitCard: exitCard,
  CameraReply: cameraReply,
  PlatformAnswer: envelopeBody,
};

const html = (description: string): Record<number, ResponseDoc> => ({ 200: { description, contentType: "text/html; charset=utf-8" } });

/** The routes of a box; `platformPath` is `platform.server.path` (the section-4 route). */
export function routeDocs(platformPath: string): RouteDoc[] {
  return [
    {
      method: "GET",
      path: "/healthz",
      tag: "status",
      access: "open",
      summary: "Liveness: 200 once started, 503 while starting or stopping.",
      responses: {
        200: { description: "ready", json: z.strictObject({ ok }) },
        503: { description: "starting or stopping", json: z.strictObject({ ok: z.literal(false), reason: z.string() }) },
      },
    },
    {
      method: "GET",
      path: "/api/status",
      tag: "status",
      access: "read",
      summary: "Everything the panel shows: lot, lanes, links, outbox, store, recent events, refusals.",
      responses: { 200: { description: "the status", json: statusSchema } },
    },
    {
      method: "GET",
      path: "/metrics",
      tag: "status",
      access: "read",
      summary: "Prometheus metrics in the text exposition format (docs/api.md).",
      responses: { 200: { description: "the exposition", contentType: "text/plain; version=0.0.4; charset=utf-8" } },
    },
    {
      method: "GET",
      path: "/api/openapi.json",
      tag: "status",
      access: "read",
      summary: "This document.",
      responses: {
        200: {
          description: "OpenAPI 3.1",
          json: z.looseObject({ openapi: z.string().startsWith("3.1"), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) }),
        },
      },
    },

    {
      method: "POST",
      path: "/api/lanes/:laneId/commands",
      tag: "lanes",
      access: "token",
      summary: "An attendant command (open, close, cash-paid, cancel), audited with operator and reason.",
      body: commandSchema,
      responses: { 200: { description: "done", json: z.strictObject({ ok, command: commandSchema.shape.command, detail: z.unknown().optional() }) } },
    },
    {
      method: "POST",
      path: "/api/lanes/:laneId/correct-plate",
      tag: "lanes",
      access: "token",
      summary:
        "The attendant's plate for a misread car waiting at the lane: the lane decides again with it (an exit is matched to the right stay and billed again; a refused entry is decided again). Audited with operator and reason; the stay keeps the plate it replaced.",
      body: correctPlateSchema,
      responses: {
        200: {
          description: "decided again",
          json: z.strictObject({ ok, laneId: z.string(), plate: z.string(), readPlate: z.string().describe("the plate the camera read"), detail: z.string() }),
        },
      },
    },
    {
      method: "GET",
      path: "/api/lanes/:laneId/photos/:photoId",
      tag: "lanes",
      access: "read",
      summary:
        "A camera photo of the lane (JPEG) from the last few kept on disk: `latest`, or by the id the exit card names. 404 E_NO_PHOTO when it is gone from the ring or the lane's camera sends no image.",
      responses: { 200: { description: "the photo", contentType: "image/jpeg" } },
    },
    {
      method: "GET",
      path: "/api/records",
      tag: "lanes",
      access: "read",
      summary: "Search the stays, in the lot and finished: by (fuzzy) plate, time range and status, a page at a time.",
      query: z.strictObject({
        plate: z.string().optional(),
        from: z.string().optional().describe("epoch milliseconds or an ISO time"),
        to: z.string().optional(),
        status: z.enum(["in-park", "paid", "unpaid", "released"]).optional(),
        page: z.string().regex(/^\d+$/).optional(),
        pageSize: z.string().regex(/^\d+$/).optional(),
        limit: z.string().regex(/^\d+$/).optional().describe("1–500, default 50"),
      }),
      responses: {
        200: { description: "records", json: z.looseObject({ inPark: z.array(inParkRecordSchema), inParkTotal: z.number().int(), recent: z.array(finishedStaySchema) }) },
      },
    },
    {
      method: "GET",
      path: "/api/records/:recordNo",
      tag: "lanes",
      access: "read",
      summary: "A stay's whole history: the record, its bill, payments, refunds and reports.",
      responses: { 200: { description: "the stay", json: z.looseObject({ recordNo: z.string(), payments: z.array(z.unknown()), refunds: z.array(z.unknown()) }) } },
    },
    {
      method: "GET",
      path: "/api/refunds",
      tag: "refunds",
      access: "read",
      summary: "Refunds owed to drivers who paid a stay twice, with totals.",
      query: z.strictObject({ state: z.enum(["owed", "refunded"]).optional(), fromMs: epochQuery.optional(), toMs: epochQuery.optional() }),
      responses: { 200: { description: "refunds", json: z.strictObject({ items: z.array(refundEntrySchema), totals: refundTotals }) } },
    },
    {
      method: "POST",
      path: "/api/refunds/:id/refunded",
      tag: "refunds",
      access: "token",
      summary: "Records who handed a refund back.",
      body: refundedSchema,
      responses: { 200: { description: "recorded", json: z.strictObject({ ok, refund: refundEntrySchema }) } },
    },

    {
      method: "POST",
      path: "/api/shift/start",
      tag: "shifts",
      access: "token",
      summary: "Starts the attendant's shift (one open at a time).",
      body: startShiftSchema,
      responses: { 200: { description: "started", json: z.strictObject({ ok, shift: openShift }) } },
    },
    {
      method: "POST",
      path: "/api/shift/end",
      tag: "shifts",
      access: "token",
      summary: "Ends the open shift and writes its report once (an empty body ends it as its own operator).",
      body: endShiftSchema,
      responses: { 200: { description: "ended", json: z.strictObject({ ok, shift: shiftHeader, report: shiftReport }) } },
    },
    {
      method: "GET",
      path: "/api/shift",
      tag: "shifts",
      access: "read",
      summary: "The open shift with its running report, or none.",
      responses: { 200: { description: "the open shift", json: z.strictObject({ open: z.boolean(), shift: openShift.nullable(), report: shiftReport.nullable() }) } },
    },
    {
      method: "GET",
      path: "/api/shifts",
      tag: "shifts",
      access: "read",
      summary: "Ended shifts that started in [from, to), newest first.",
      query: z.strictObject({ from: epochQuery.optional(), to: epochQuery.optional() }),
      responses: { 200: { description: "headers", json: z.strictObject({ items: z.array(shiftHeader) }) } },
    },
    { method: "GET", path: "/api/shifts/:id", tag: "shifts", access: "read", summary: "A shift's report.", responses: { 200: { description: "the report", json: shiftReport } } },
    {
      method: "GET",
      path: "/api/shifts/:id/print",
      tag: "shifts",
      access: "read",
      summary: "A shift's report as a printable page.",
      query: z.strictObject({ lang: z.enum(["zh", "en"]).optional() }),
      responses: html("the page"),
    },

    {
      method: "GET",
      path: "/api/outbox",
      tag: "outbox",
      access: "read",
      summary: "The report queue's status and entries.",
      query: z.strictObject({ parked: z.enum(["1", "true", "0", "false"]).optional(), recordNo: z.string().optional(), limit: z.string().regex(/^\d+$/).optional() }),
      responses: { 200: { description: "queue", json: z.strictObject({ status: outboxStatus, entries: z.array(outboxEntry) }) } },
    },
    {
      method: "POST",
      path: "/api/outbox/retry",
      tag: "outbox",
      access: "token",
      summary: "Sends parked reports again (one key, or all).",
      body: z.strictObject({ key: z.string().min(1).describe('an entry key, or "all"') }),
      responses: { 200: { description: "how many were retried", json: z.strictObject({ retried: z.number().int() }) } },
    },
    {
      method: "POST",
      path: "/api/outbox/discard",
      tag: "outbox",
      access: "token",
      summary: "Drops a report for good, with a reason.",
      body: z.strictObject({ key: z.string().min(1), reason: z.string().optional() }),
      responses: { 200: { description: "whether it was there", json: z.strictObject({ discarded: z.boolean() }) } },
    },

    {
      method: "GET",
      path: "/api/lot",
      tag: "lot",
      access: "read",
      summary: "The lot as this box sees it: its boxes, cars and free spaces (shared with other boxes when `lot.share` is on).",
      responses: {
        200: {
          description: "the lot",
          json: z.looseObject({ parkCode: z.string(), deviceId: z.string(), view: z.string(), boxes: z.array(lotBox), cars: z.number().int(), freeSpaces: z.number().int() }),
        },
      },
    },
    {
      method: "GET",
      path: "/api/lot/in-park",
      tag: "lot",
      access: "read",
      summary: "Every car in the lot, oldest entry first.",
      responses: {
        200: { description: "cars", json: z.strictObject({ cars: z.array(z.looseObject({ plate: z.string(), recordNo: z.string(), enterAtMs: epochMs, replica: z.boolean() })) }) },
      },
    },

    { method: "GET", path: "/", tag: "panel", access: "open", summary: "The booth panel.", responses: html("the panel page") },
    {
      method: "GET",
      path: "/panel/:file",
      tag: "panel",
      access: "open",
      summary: "The panel's scripts, styles and translations.",
      responses: { 200: { description: "a panel file (HTML, script or style)", contentType: "text/*" } },
    },
    {
      method: "GET",
      path: "/api/panel/session",
      tag: "panel",
      access: "token",
      summary: "Checks a token (the panel's log-in).",
      responses: { 200: { description: "the token is good", json: z.strictObject({ ok }) } },
    },
    {
      method: "GET",
      path: "/api/stream",
      tag: "panel",
      access: "read",
      summary: "Server-sent events: the status whenever it changes. Each `status` event's `data` is one line of JSON shaped as `GET /api/status` answers (the `Status` component).",
      responses: { 200: { description: "an event stream of `event: status` frames whose data is a `Status`", contentType: "text/event-stream", eventData: statusSchema } },
    },

    {
      method: "POST",
      path: "/camera/:laneId",
      tag: "devices",
      access: "open",
      summary:
        "A plate camera's HTTP push (Zhenshi AlarmInfoPlate); the camera key, when set, as `?key=` or `x-camera-key`. Every answer, errors too, tells the camera to stop re-sending.",
      body: z.looseObject({ AlarmInfoPlate: z.looseObject({}) }),
      responses: {
        200: { description: "taken", json: cameraReply },
        400: { description: "not a usable push", json: cameraReply },
        401: { description: "wrong camera key", json: cameraReply },
        403: { description: "no camera key set for a push from the network", json: cameraReply },
        404: { description: "no such lane", json: cameraReply },
        413: { description: "too large", json: cameraReply },
      },
    },
    {
      method: "POST",
      path: platformPath,
      tag: "platform",
      access: "open",
      summary: "Section-4 requests of the cloud platform: a signed envelope; every answer (refusals too) is the platform's `{code, msg}`.",
      body: z.looseObject({
        serviceName: z.string(),
        sign: z.string(),
        timestamp: z.union([z.string(), z.number()]),
        bizContent: z.union([z.string(), z.record(z.string(), z.unknown())]),
      }),
      responses: {
        200: { description: "the answer (its code says whether it was done)", json: envelopeBody },
        400: { description: "not an envelope", json: envelopeBody },
        413: { description: "too large", json: envelopeBody },
        415: { description: "not JSON", json: envelopeBody },
      },
    },

    {
      method: "POST",
      path: "/api/sim/inputs/:laneId/:input",
      tag: "simulator",
      access: "token",
      simOnly: true,
      summary: "Sets a simulated input (loopA, loopB, limit switches, buttons).",
      body: z.strictObject({ level: z.union([z.literal(0), z.literal(1)]) }),
      responses: { 200: { description: "set", json: z.strictObject({ ok }) } },
    },
    {
      method: "GET",
      path: "/api/sim/outputs",
      tag: "simulator",
      access: "read",
      simOnly: true,
      summary: "The simulated relay outputs, input levels and the last output writes.",
      responses: {
        200: {
          description: "levels",
          json: z.strictObject({ outputs: z.record(z.string(), z.number().int()), inputs: z.record(z.string(), z.number().int()), history: z.array(z.looseObject({})) }),
        },
      },
    },
    {
      method: "POST",
      path: "/api/sim/camera/:laneId",
      tag: "simulator",
      access: "token",
      simOnly: true,
      summary: "A plate read from the lane's simulated camera, through the camera's real parser.",
      body: z.strictObject({ plate: z.string().max(16), color: z.union([z.number().int(), z.string()]).optional(), confidence: z.number().min(0).max(100).optional() }),
      responses: { 200: { description: "delivered", json: z.strictObject({ ok, delivered: z.literal(true) }) } },
    },
    {
      method: "POST",
      path: "/api/sim/scanner/:laneId",
      tag: "simulator",
      access: "token",
      simOnly: true,
      summary: "A payment code from the lane's simulated scanner.",
      body: z.strictObject({ code: z.string().max(64) }),
      responses: { 200: { description: "delivered", json: z.strictObject({ ok, delivered: z.literal(true) }) } },
    },
    {
      method: "GET",
      path: "/api/sim/displays",
      tag: "simulator",
      access: "read",
      simOnly: true,
      summary: "What each simulated lane board shows, newest last.",
      query: z.strictObject({ limit: z.string().regex(/^\d+$/).optional() }),
      responses: {
        200: {
          description: "boards",
          json: z.strictObject({ displays: z.record(z.string(), z.looseObject({ device: z.string(), current: z.array(z.string()), shown: z.array(z.unknown()) })) }),
        },
      },
    },
  ];
}
