import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Component } from "../app/lifecycle.js";
import type { Logger } from "../app/log.js";

/** An HTTP error with a stable code, answered as `{ error: { code, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Access = "open" | "read" | "token";

export interface RouteOptions {
  /** Default 64 KiB; the camera push allows 2 MB (embedded images), the platform 1 MB. */
  bodyLimitBytes?: number;
  /** open: anyone; read: open on loopback (per `openReads`), token elsewhere; token: always. */
  access?: Access;
}

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  /** The raw body, read once, refused with 413 beyond the route's limit. */
  body(): Promise<Buffer>;
  /** The body parsed as JSON; malformed JSON is a 400. */
  json<T = unknown>(): Promise<T>;
  send(status: number, payload: unknown, headers?: Record<string, string>): void;
}

export type RouteHandler = (ctx: RouteContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  regex: RegExp;
  keys: string[];
  handler: RouteHandler;
  options: Required<RouteOptions>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  token: string;
  openReads: "loopback" | "anywhere" | "never";
}

/**
 * The one local HTTP server (architecture.md §10). Subsystems register their routes; the
 * server owns body limits, auth, JSON replies and the per-route rejection counters.
 */
export class HttpServer implements Component {
  readonly name = "http";
  private readonly routes: Route[] = [];
  private server: Server | undefined;
  private readonly rejections = new Map<string, number>();
  private readonly sockets = new Set<import("node:net").Socket>();

  constructor(
    private readonly options: HttpServerOptions,
    private readonly log: Logger,
  ) {}

  route(method: string, pattern: string, handler: RouteHandler, options: RouteOptions = {}): void {
    const keys: string[] = [];
    const source = pattern
      .split("/")
      .map((part) => {
        if (part.startsWith(":")) {
          keys.push(part.slice(1));
          return "([^/]+)";
        }
        return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      })
      .join("/");
    this.routes.push({
      method: method.toUpperCase(),
      pattern,
      regex: new RegExp(`^${source}$`),
      keys,
      handler,
      options: { bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024, access: options.access ?? "read" },
    });
  }

  /** Requests refused per route (bad body, bad auth, bad input), for /api/status. */
  rejectionCounts(): Record<string, number> {
    return Object.fromEntries(this.rejections);
  }

  countRejection(what: string): void {
    this.rejections.set(what, (this.rejections.get(what) ?? 0) + 1);
  }

  address(): { host: string; port: number } {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return { host: this.options.host, port: address?.port ?? this.options.port };
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.dispatch(req, res));
    server.keepAliveTimeout = 5000;
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Long-lived streams (server-sent events) would hold the close forever.
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local");
    const method = (req.method ?? "GET").toUpperCase();
    let matchedPath = false;
    for (const route of this.routes) {
      const match = route.regex.exec(url.pathname);
      if (!match) continue;
      matchedPath = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((key, i) => (params[key] = decodeURIComponent(match[i + 1] ?? "")));
      const ctx = this.context(req, res, url, params, route);
      try {
        this.authorise(req, url, route.options.access);
        await route.handler(ctx);
      } catch (error) {
        this.fail(ctx, route, error);
      }
      return;
    }
    const status = matchedPath ? 405 : 404;
    const body = JSON.stringify({ error: { code: matchedPath ? "E_METHOD" : "E_NOT_FOUND", message: `${method} ${url.pathname} is not a route` } });
    req.resume();
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(body);
  }

  private fail(ctx: RouteContext, route: Route, error: unknown): void {
    const key = `${route.method} ${route.pattern}`;
    if (error instanceof ApiError) {
      this.countRejection(key);
      this.log.warn({ route: key, status: error.status, code: error.code, reason: error.message }, "request rejected");
      if (!ctx.res.headersSent) ctx.send(error.status, { error: { code: error.code, message: error.message } });
      else ctx.res.end();
      return;
    }
    this.countRejection(key);
    this.log.error({ route: key, err: error }, "request handler failed");
    if (!ctx.res.headersSent) ctx.send(500, { error: { code: "E_INTERNAL", message: "internal error; see the log" } });
    else ctx.res.end();
  }

  private authorise(req: IncomingMessage, url: URL, access: Access): void {
    if (access === "open") return;
    if (access === "read") {
      const loopback = isLoopback(req.socket.remoteAddress);
      if (this.options.openReads === "anywhere" || (this.options.openReads === "loopback" && loopback)) return;
    }
    const header = req.headers.authorization ?? "";
    // EventSource cannot set headers, so reads (GET) may carry the token as a query parameter.
    const fromQuery = req.method === "GET" ? (url.searchParams.get("access_token") ?? "") : "";
    const presented = header.startsWith("Bearer ") ? header.slice(7).trim() : fromQuery;
    if (!presented || !safeEqual(presented, this.options.token)) {
      throw new ApiError(401, "E_AUTH", "a valid bearer token is required");
    }
  }

  private context(req: IncomingMessage, res: ServerResponse, url: URL, params: Record<string, string>, route: Route): RouteContext {
    let bodyPromise: Promise<Buffer> | undefined;
    const limit = route.options.bodyLimitBytes;
    const body = (): Promise<Buffer> => (bodyPromise ??= readBody(req, limit));
    return {
      req,
      res,
      url,
      params,
      body,
      async json<T>() {
        const type = req.headers["content-type"] ?? "";
        if (type && !/json|text\/plain/i.test(type)) throw new ApiError(415, "E_CONTENT_TYPE", `content type ${type} is not JSON`);
        const raw = await body();
        try {
          return JSON.parse(raw.toString("utf8")) as T;
        } catch {
          throw new ApiError(400, "E_JSON", "body is not valid JSON");
        }
      },
      send(status, payload, headers = {}) {
        const text = typeof payload === "string" ? payload : JSON.stringify(payload);
        const contentType = typeof payload === "string" ? "text/plain; charset=utf-8" : "application/json; charset=utf-8";
        res.writeHead(status, { "content-type": contentType, ...headers }).end(text);
      },
    };
  }
}

export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (Number.isFinite(declared) && declared > limitBytes) {
      req.resume();
      reject(new ApiError(413, "E_TOO_LARGE", `body of ${declared} bytes exceeds the limit of ${limitBytes}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limitBytes) {
        failed = true;
        reject(new ApiError(413, "E_TOO_LARGE", `body exceeds the limit of ${limitBytes} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => !failed && resolve(Buffer.concat(chunks)));
    req.on("error", (error) => !failed && reject(error));
  });
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
