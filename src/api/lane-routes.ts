import { z } from "zod";
import { ApiError, type HttpServer } from "./http-server.js";
import type { LaneService } from "../lanes/lanes.js";
import type { LotStore } from "../store/lot-store.js";
import type { Outbox } from "../outbox/outbox.js";
import type { Clock } from "../kernel/clock.js";
import { RefundError, RefundErrorCode } from "../lanes/refunds.js";
import { registerRecordsRoutes } from "./records-routes.js";
import { photoIdPattern, type PhotoRing } from "../io/camera/photo-ring.js";

export const commandSchema = z.strictObject({
  command: z.enum(["open", "close", "cash-paid", "cancel"]),
  /** Who pressed it: kept in the audit trail and the exit report. */
  operator: z.string().trim().min(1, "operator is required").max(64),
  reason: z.string().trim().max(200).default(""),
});

/**
 * Every barrier opened by hand is accounted for in the shift report with its reason, whether
 * the car under it owes money, paid already, or there is no car at all: an open without one
 * is refused before anything moves.
 */
function reasonMissing(command: string, reason: string): boolean {
  return command === "open" && reason === "";
}

export const correctPlateSchema = z.strictObject({
  /** The plate as the attendant reads it on the car (checked as a plate by the lane). */
  plate: z.string().trim().min(1, "plate is required").max(16),
  operator: z.string().trim().min(1, "operator is required").max(64),
  /** Why: kept in the audit trail and on the stay. */
  reason: z.string().trim().min(1, "a reason is required").max(200),
});

/** A refused body's problems, each with where it is: `operator: operator is required; reason: …`. */
function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
}

export const refundedSchema = z.strictObject({
  /** Who handed the money back. */
  operator: z.string().trim().min(1, "operator is required").max(64),
});

interface LaneRoutesSource {
  lanes: LaneService;
  /** The cameras' photos (absent: every photo is 404). */
  photos?: PhotoRing;
  store: LotStore;
  outbox: Outbox;
  clock: Clock;
}

/**
 * Attendant commands and record lookups. Commands need the bearer token
 * and are audited with operator and reason; a refused command changes nothing.
 */
export function registerLaneRoutes(http: HttpServer, app: LaneRoutesSource): void {
  http.route(
    "POST",
    "/api/lanes/:laneId/commands",
    async ({ params, json, send }) => {
      const parsed = commandSchema.safeParse(await json());
      if (!parsed.success) {
        throw new ApiError(400, "E_COMMAND", issuesText(parsed.error));
      }
      const { command, operator, reason } = parsed.data;
      if (reasonMissing(command, reason)) throw new ApiError(400, "E_REASON_REQUIRED", "an open by hand needs a reason (1-200 characters)");
      // Cash waits for its outcome: the platform may be asked once more and say "paid online".
      const result = command === "cash-paid" ? await app.lanes.cashPaid(params.laneId ?? "", operator, reason) : app.lanes.command(params.laneId ?? "", command, operator, reason);
      if (!result.ok) throw new ApiError(result.code === "E_LANE_UNKNOWN" ? 404 : 409, result.code, result.message);
      send(200, { ok: true, command, detail: result.detail });
    },
    { access: "token" },
  );

  http.route(
    "POST",
    "/api/lanes/:laneId/correct-plate",
    async ({ params, json, send }) => {
      const parsed = correctPlateSchema.safeParse(await json());
      if (!parsed.success) {
        const reasonMissing = parsed.error.issues.some((i) => i.path[0] === "reason");
        throw new ApiError(400, reasonMissing ? "E_REASON_REQUIRED" : "E_CORRECTION", issuesText(parsed.error));
      }
      const result = await app.lanes.correctPlate(params.laneId ?? "", parsed.data);
      if (!result.ok) throw new ApiError(result.code === "E_LANE_UNKNOWN" ? 404 : result.code === "E_BAD_PLATE" ? 400 : 409, result.code, result.message);
      send(200, result);
    },
    { access: "token" },
  );

  // The camera's last photos of a lane: `latest`, or a photo by its id (the exit card names them).
  http.route("GET", "/api/lanes/:laneId/photos/:photoId", async ({ params, res }) => {
    const laneId = params.laneId ?? "";
    const wanted = params.photoId ?? "";
    if (wanted !== "latest" && !photoIdPattern.test(wanted)) throw new ApiError(400, "E_PHOTO_ID", 'a photo id is "latest" or <atMs>-<seq>');
    const meta = wanted === "latest" ? app.photos?.latest(laneId) : app.photos?.byId(laneId, wanted);
    const jpeg = meta ? await app.photos?.read(laneId, meta.id) : undefined;
    if (!meta || !jpeg) throw new ApiError(404, "E_NO_PHOTO", `no photo ${wanted} on lane ${laneId.slice(0, 32)} (a serial camera sends none; the ring keeps the last few)`);
    res
      .writeHead(200, {
        "content-type": "image/jpeg",
        "content-length": String(jpeg.length),
        "cache-control": wanted === "latest" ? "no-cache" : "private, max-age=3600",
        "x-photo-id": meta.id,
        "x-photo-at-ms": String(meta.atMs),
      })
      .end(jpeg);
  });

  // Refunds owed to drivers who paid a stay twice, with totals a shift report can sum.
  http.route("GET", "/api/refunds", async ({ url, send }) => {
    const state = url.searchParams.get("state");
    if (state !== null && state !== "owed" && state !== "refunded") throw new ApiError(400, "E_REFUND_FILTER", "state must be owed or refunded");
    const fromMs = url.searchParams.get("fromMs");
    const toMs = url.searchParams.get("toMs");
    const bound = (name: string, text: string | null): number | undefined => {
      if (text === null) return undefined;
      const value = Number(text);
      if (!Number.isSafeInteger(value)) throw new ApiError(400, "E_REFUND_FILTER", `${name} must be epoch milliseconds`);
      return value;
    };
    const items = app.lanes.refunds.list({
      ...(state === null ? {} : { state }),
      ...(fromMs === null ? {} : { fromMs: bound("fromMs", fromMs)! }),
      ...(toMs === null ? {} : { toMs: bound("toMs", toMs)! }),
    });
    send(200, { items, totals: app.lanes.refunds.totals(items) });
  });

  http.route(
    "POST",
    "/api/refunds/:id/refunded",
    async ({ params, json, send }) => {
      const parsed = refundedSchema.safeParse(await json());
      if (!parsed.success) throw new ApiError(400, "E_REFUND", issuesText(parsed.error));
      try {
        const entry = await app.lanes.refunds.markRefunded(params.id ?? "", parsed.data.operator);
        send(200, { ok: true, refund: entry });
      } catch (error) {
        if (error instanceof RefundError) throw new ApiError(error.code === RefundErrorCode.NotFound ? 404 : 409, error.code, error.message);
        throw error;
      }
    },
    { access: "token" },
  );

  registerRecordsRoutes(http, app);
}
