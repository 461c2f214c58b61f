import type { HttpServer } from "./http-server.js";
import { VERSION } from "../version.js";

/**
 * `GET /api/openapi.json`: the local API described in OpenAPI 3.1 (openapi-document.ts). The
 * document is built at the first request and kept: converting the schemas costs CPU that
 * the start-up path does not spend, and the routes are all registered by then.
 */
export function registerOpenApiRoute(http: HttpServer, options: { platformPath: string }): void {
  let document: string | undefined;
  http.route("GET", "/api/openapi.json", async ({ send }) => {
    if (document === undefined) {
      const { buildOpenApiDocument } = await import("./openapi-document.js");
      document = JSON.stringify(buildOpenApiDocument({ platformPath: options.platformPath, version: VERSION, registered: http.routeList() }));
    }
    send(200, document, { "content-type": "application/json; charset=utf-8" });
  });
}
