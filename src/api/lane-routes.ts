import { z } from "zod";
import { ApiError, type HttpServer } from "./http-server.js";
import type { LaneService } from "../lane/lane-service.js";
import type { LotStore } from "../store/lot-store.js";
import { normalisePlate } from "../core/plates/index.js";

const commandSchema = z.strictObject({
  command: z.enum(["open", "close", "cash-paid", "cancel"]),
  /** Who pressed it: kept in the audit trail and the exit report. */
  operator: z.string().trim().min(1, "operator is required").max(64),
  reason: z.string().trim().max(200).default(""),
});

interface LaneRoutesSource {
  lanes: LaneService;
  store: LotStore;
}

/**
 * Attendant commands and record lookups (architecture.md §10). Commands need the bearer token
 * and are audited with operator and reason; a refused command changes nothing.
 */
export function registerLaneRoutes(http: HttpServer, app: LaneRoutesSource): void {
  http.route(
    "POST",
    "/api/lanes/:laneId/commands",
    async ({ params, json, send }) => {
      const parsed = commandSchema.safeParse(await json());
      if (!parsed.success) {
        throw new ApiError(400, "E_COMMAND", parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
      }
      const { command, operator, reason } = parsed.data;
      const result = app.lanes.command(params.laneId ?? "", command, operator, reason);
      if (!result.ok) throw new ApiError(result.code === "E_LANE_UNKNOWN" ? 404 : 409, result.code, result.message);
      send(200, { ok: true, command, detail: result.detail });
    },
    { access: "token" },
  );

  http.route("GET", "/api/records", async ({ url, send }) => {
    const plateFilter = url.searchParams.get("plate");
    const plate = plateFilter ? normalisePlate(plateFilter) : undefined;
    const limit = Math.min(500, Math.max(1, Number(url.searchParams.get("limit") ?? 50) || 50));
    const inPark = app.store.listInPark(plate ? (r) => normalisePlate(r.plate).includes(plate) : undefined, { page: 1, pageSize: limit });
    const recent = plate ? await app.store.recentStays(plate, { limit }) : await app.store.recentFinished(limit);
    send(200, { inPark: inPark.items, inParkTotal: inPark.totalItems, recent });
  });
}
