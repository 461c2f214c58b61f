import { readFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import type { HttpServer } from "./http-server.js";

/** The panel's files ship in `panel/` at the package root (no CDN, no build step). */
const panelDir = new URL("../../panel/", import.meta.url);
const assets: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "panel.js": "text/javascript; charset=utf-8",
  "panel.css": "text/css; charset=utf-8",
};

export interface StatusFeed {
  status(): unknown;
  /** Subscribes to "something changed"; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * The local panel and its live feed. The feed is server-sent events: one `status` event with
 * the whole status on connect and after each change (coalesced to at most 5 a second, so a
 * chattering input cannot flood a browser), and a comment every 15 s to keep proxies open.
 */
export function registerPanelRoutes(http: HttpServer, feed: StatusFeed): void {
  const serve = async (file: string, res: ServerResponse): Promise<void> => {
    const body = await readFile(new URL(file, panelDir));
    res.writeHead(200, { "content-type": assets[file]!, "cache-control": "no-cache" }).end(body);
  };
  http.route("GET", "/", ({ res }) => serve("index.html", res), { access: "open" });
  http.route(
    "GET",
    "/panel/:file",
    async ({ params, res, send }) => {
      const file = params.file ?? "";
      if (!(file in assets)) return send(404, { error: { code: "E_NOT_FOUND", message: `no panel file ${file}` } });
      await serve(file, res);
    },
    { access: "open" },
  );
  http.route("GET", "/api/stream", ({ req, res }) => {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
    res.write("retry: 2000\n\n");
    let pending: NodeJS.Timeout | undefined;
    let lastSentAt = 0;
    const push = (): void => {
      pending = undefined;
      lastSentAt = Date.now();
      res.write(`event: status\ndata: ${JSON.stringify(feed.status())}\n\n`);
    };
    const schedule = (): void => {
      if (pending) return;
      pending = setTimeout(push, Math.max(0, 200 - (Date.now() - lastSentAt)));
    };
    push();
    const unsubscribe = feed.onChange(schedule);
    const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    req.on("close", () => {
      unsubscribe();
      clearInterval(heartbeat);
      if (pending) clearTimeout(pending);
    });
  });
}
