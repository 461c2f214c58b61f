import type { HttpServer } from "./http-server.js";

interface StatusSource {
  isReady(): boolean;
  status(): Record<string, unknown>;
}

export function registerCoreRoutes(http: HttpServer, app: StatusSource): void {
  http.route("GET", "/healthz", ({ send }) => (app.isReady() ? send(200, { ok: true }) : send(503, { ok: false, reason: "starting or stopping" })), { access: "open" });
  http.route("GET", "/api/status", ({ send }) => send(200, app.status()));
}
