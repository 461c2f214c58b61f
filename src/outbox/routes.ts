import { ApiError, type HttpServer } from "../api/http-server.js";
import type { Outbox } from "./outbox.js";

/**
 * Local API for the outbox (parked reports can be retried or dropped by an operator):
 *   GET  /api/outbox                 status and entries (`?parked=1`, `?recordNo=`, `?limit=`)
 *   POST /api/outbox/retry           `{ "key": "<key>" | "all" }` → `{ retried }` (token)
 *   POST /api/outbox/discard         `{ "key": "<key>", "reason"?: "..." }` → `{ discarded }` (token)
 * The same two actions are what an MQTT command or the panel would call.
 */
export function registerOutboxRoutes(http: HttpServer, outbox: Outbox): void {
  http.route("GET", "/api/outbox", ({ url, send }) => {
    const parked = url.searchParams.get("parked");
    const recordNo = url.searchParams.get("recordNo");
    const limit = Number(url.searchParams.get("limit") ?? 100);
    send(200, {
      status: outbox.status(),
      entries: outbox.list({
        ...(parked !== null ? { parked: parked === "1" || parked === "true" } : {}),
        ...(recordNo ? { recordNo } : {}),
        limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 1000) : 100,
      }),
    });
  });
  http.route(
    "POST",
    "/api/outbox/retry",
    async ({ json, send }) => {
      const body = await json<{ key?: unknown }>();
      if (typeof body?.key !== "string" || body.key.length === 0) throw new ApiError(400, "E_BAD_REQUEST", 'send {"key": "<entry key>" | "all"}');
      send(200, { retried: await outbox.retryParked(body.key) });
    },
    { access: "token" },
  );
  http.route(
    "POST",
    "/api/outbox/discard",
    async ({ json, send }) => {
      const body = await json<{ key?: unknown; reason?: unknown }>();
      if (typeof body?.key !== "string" || body.key.length === 0) throw new ApiError(400, "E_BAD_REQUEST", 'send {"key": "<entry key>", "reason": "..."}');
      const reason = typeof body.reason === "string" && body.reason ? body.reason : "discarded by operator";
      send(200, { discarded: await outbox.discard(body.key, reason) });
    },
    { access: "token" },
  );
}
