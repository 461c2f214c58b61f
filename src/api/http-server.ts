import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import {
  ApiError,
  BodyBudget,
  closeIfUnread,
  createGuardedServer,
  decodeParam,
  httpLimits,
  isLoopback,
  parseJsonText,
  parseRequestTarget,
  readBody,
  sendError,
} from "./http-pipeline.js";

export { ApiError, isLoopback } from "./http-pipeline.js";

export type Access = "open" | "read" | "token";

export interface RouteOptions {
  /**
   * Default 16 KiB (a command or a simulator input is a few hundred bytes); the camera push
   * allows 1.5 MiB (embedded images), the section-4 route `platform.server.bodyLimitBytes`.
   */
  bodyLimitBytes?: number;
  /** open: anyone; read: open on loopback (per `openReads`), token elsewhere; token: always. */
  access?: Access;
}

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  /** The raw body, read once, refused with 413 beyond the route's limit (503 when the server's body budget is spent). */
  body(): Promise<Buffer>;
  /** The body parsed as JSON; malformed JSON is a 400 E_JSON, nesting deeper than 32 levels a 400 E_JSON_DEPTH. */
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
 * The one local HTTP server. Subsystems register their routes; the
 * server owns body limits, auth, JSON replies and the per-route rejection counters.
 */
export class HttpServer implements Component {
  readonly name = "http";
  private readonly routes: Route[] = [];
  private server: Server | undefined;
  private readonly rejections = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private readonly bodyBudget = new BodyBudget();

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
      options: { bodyLimitBytes: options.bodyLimitBytes ?? httpLimits.defaultBodyLimitBytes, access: options.access ?? "read" },
    });
  }

  /** The registered routes (method, pattern with `:params`, access): for tests and the docs. */
  routeList(): Array<{ method: string; pattern: string; access: Access; bodyLimitBytes: number }> {
    return this.routes.map((r) => ({ method: r.method, pattern: r.pattern, access: r.options.access, bodyLimitBytes: r.options.bodyLimitBytes }));
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
    const server = createGuardedServer({ handle: (req, res) => this.dispatch(req, res), log: this.log, onRefused: (code) => this.countRejection(`(unrouted) ${code}`) });
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
    const method = (req.method ?? "GET").toUpperCase();
    let url: URL;
    try {
      url = parseRequestTarget(req.url);
    } catch (error) {
      return this.refuseUnrouted(req, res, error instanceof ApiError ? error : new ApiError(400, "E_BAD_URL", "the request target is not a valid URL"));
    }
    let matchedPath = false;
    for (const route of this.routes) {
      const match = route.regex.exec(url.pathname);
      if (!match) continue;
      matchedPath = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      const ctx = this.context(req, res, url, params, route);
      try {
        route.keys.forEach((key, i) => (params[key] = decodeParam(key, match[i + 1] ?? "")));
        this.authorise(req, url, route.options.access);
        await route.handler(ctx);
      } catch (error) {
        this.fail(ctx, route, error);
      }
      return;
    }
    const message = `${method} ${url.pathname.slice(0, 200)} is not a route`;
    this.refuseUnrouted(req, res, matchedPath ? new ApiError(405, "E_METHOD", message) : new ApiError(404, "E_NOT_FOUND", message));
  }

  /** A request refused before any route took it (bad target, no such route): counted under its code. */
  private refuseUnrouted(req: IncomingMessage, res: ServerResponse, error: ApiError): void {
    this.countRejection(`(unrouted) ${error.code}`);
    // A probe for routes that do not exist is routine on a LAN; a malformed target is not.
    this.log[error.status === 400 ? "warn" : "debug"]({ status: error.status, code: error.code, reason: error.message }, "request rejected");
    req.resume();
    sendError(res, error.status, error.code, error.message);
  }

  private fail(ctx: RouteContext, route: Route, error: unknown): void {
    const key = `${route.method} ${route.pattern}`;
    this.countRejection(key);
    if (error instanceof ApiError) {
      this.log.warn({ route: key, status: error.status, code: error.code, reason: error.message }, "request rejected");
      // A body left unread would otherwise sit in the socket of a keep-alive connection.
      ctx.req.resume();
      sendError(ctx.res, error.status, error.code, error.message);
      return;
    }
    this.log.error({ route: key, err: error }, "request handler failed");
    sendError(ctx.res, 500, "E_INTERNAL", "internal error; see the log");
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
    // The scheme name is case-insensitive (RFC 9110 §11.1): "bearer x" is as good as "Bearer x".
    const scheme = /^bearer[ \t]+(.*)$/i.exec(header);
    const presented = scheme ? scheme[1]!.trim() : fromQuery;
    if (!presented || !safeEqual(presented, this.options.token)) {
      throw new ApiError(401, "E_AUTH", "a valid bearer token is required");
    }
  }

  private context(req: IncomingMessage, res: ServerResponse, url: URL, params: Record<string, string>, route: Route): RouteContext {
    let bodyPromise: Promise<Buffer> | undefined;
    const limit = route.options.bodyLimitBytes;
    const budget = this.bodyBudget;
    // Every body this server takes is JSON (the camera push, section 4, commands).
    const body = (): Promise<Buffer> => (bodyPromise ??= readBody(req, limit, { budget, maxJsonDepth: httpLimits.maxJsonDepth }));
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
        return parseJsonText(raw.toString("utf8")) as T;
      },
      send(status, payload, headers = {}) {
        const text = typeof payload === "string" ? payload : JSON.stringify(payload);
        const contentType = typeof payload === "string" ? "text/plain; charset=utf-8" : "application/json; charset=utf-8";
        res.writeHead(status, { "content-type": contentType, ...closeIfUnread(res), ...headers }).end(text);
      },
    };
  }
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
