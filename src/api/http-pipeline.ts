import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { Logger } from "../kernel/log.js";
import { exceedsJsonDepth, JsonDepthGauge, maxJsonDepth } from "../platform/json-scan.js";

/**
 * The request pipeline every HTTP server of the project shares: the local API (with the camera
 * push and the section-4 route mounted on it) and the platform emulator. Everything a request
 * brings from outside — the request line, the path parameters, the body's size and nesting —
 * is checked here, inside the request's own error path, so hostile input gets a 4xx with a
 * stable code and the process and its state carry on.
 */

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

export const httpLimits = {
  /** A client has this long to send the request line and headers (slowloris). */
  headersTimeoutMs: 10_000,
  /** ... and this long for the whole request, body included (a 1.5 MB camera push on a slow LAN fits). */
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  /** How often Node checks the two timeouts above (its default, 30 s, would stretch them). */
  timeoutCheckMs: 1_000,
  /** Request line plus headers. */
  maxHeaderBytes: 16 * 1024,
  /** Default body limit of a route; routes with larger bodies say so. */
  defaultBodyLimitBytes: 16 * 1024,
  /** Bytes of request bodies buffered at once across one server; beyond, 503 (memory on a Pi). */
  bodyBudgetBytes: 16 * 1024 * 1024,
  maxJsonDepth,
} as const;

/**
 * The request target as a URL. Origin-form (`/path?query`) is taken literally — a target of
 * `//host/x` stays the path `//host/x` rather than naming a host — and absolute-form
 * (`http://host/path`, which HTTP/1.1 servers must accept) is parsed as it stands. Anything
 * else, or a target the URL parser refuses (`http://[::1`), is a 400 E_BAD_URL.
 */
export function parseRequestTarget(target: string | undefined): URL {
  const raw = target ?? "/";
  try {
    if (raw.startsWith("/")) return new URL(`http://local${raw}`);
    if (/^https?:\/\//i.test(raw)) return new URL(raw);
  } catch {
    // answered below
  }
  throw new ApiError(400, "E_BAD_URL", `request target ${JSON.stringify(raw.slice(0, 64))} is not a valid URL`);
}

/** One percent-encoded path segment decoded; a malformed escape (`%E0`, `%ZZ`) is a 400 E_BAD_PARAM. */
export function decodeParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, "E_BAD_PARAM", `path parameter ${name} ${JSON.stringify(raw.slice(0, 64))} is not valid percent-encoded UTF-8`);
  }
}

/** Parses JSON text after checking its nesting depth (see exceedsJsonDepth for why first). */
export function parseJsonText(text: string, maxDepth: number = httpLimits.maxJsonDepth): unknown {
  if (exceedsJsonDepth(text, maxDepth)) throw new ApiError(400, "E_JSON_DEPTH", `JSON nested deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "E_JSON", "body is not valid JSON");
  }
}

/** The bytes of request bodies one server holds at once. */
export class BodyBudget {
  private usedBytes = 0;

  constructor(readonly limitBytes: number = httpLimits.bodyBudgetBytes) {}

  get used(): number {
    return this.usedBytes;
  }

  take(bytes: number): boolean {
    if (this.usedBytes + bytes > this.limitBytes) return false;
    this.usedBytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
  }
}

export interface ReadBodyOptions {
  budget?: BodyBudget;
  /**
   * The body is JSON: stop reading at the first byte nested deeper than this (400
   * E_JSON_DEPTH) rather than buffer the rest of a hostile body. Parsers check again.
   */
  maxJsonDepth?: number;
}

/**
 * Reads the body, refused with 413 E_TOO_LARGE beyond `limitBytes` (at once when the declared
 * length says so), with 400 E_JSON_DEPTH when JSON nests too deep, and with 503 E_BUSY when
 * the server's budget for bodies in memory is spent. The bytes count against the budget while
 * they are read and are given back when the read ends.
 */
export function readBody(req: IncomingMessage, limitBytes: number, options: ReadBodyOptions = {}): Promise<Buffer> {
  const { budget } = options;
  const gauge = options.maxJsonDepth === undefined ? undefined : new JsonDepthGauge(options.maxJsonDepth);
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (Number.isFinite(declared) && declared > limitBytes) {
      req.resume();
      reject(new ApiError(413, "E_TOO_LARGE", `body of ${declared} bytes exceeds the limit of ${limitBytes}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      budget?.give(size);
      if (error) {
        req.resume();
        reject(error);
      } else {
        resolve(Buffer.concat(chunks));
      }
    };
    req.on("data", (chunk: Buffer) => {
      if (settled) return;
      if (size + chunk.length > limitBytes) return finish(new ApiError(413, "E_TOO_LARGE", `body exceeds the limit of ${limitBytes} bytes`));
      if (gauge && !gauge.push(chunk)) return finish(new ApiError(400, "E_JSON_DEPTH", `JSON nested deeper than ${gauge.maxDepth} levels`));
      if (budget && !budget.take(chunk.length)) return finish(new ApiError(503, "E_BUSY", "too many request bodies in flight; retry shortly"));
      size += chunk.length;
      chunks.push(chunk);
    });
    req.on("end", () => finish(undefined));
    req.on("error", (error) => finish(error));
    req.on("close", () => finish(new ApiError(400, "E_ABORTED", "the client went away before the body ended")));
  });
}

export interface GuardedServerOptions {
  /** Handles one request; a throw or rejection is answered 500 and logged, never escapes. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> | void;
  /** The JSON body of an error answer in the server's own dialect. */
  errorBody?(status: number, code: string, message: string): unknown;
  log: Logger;
  /** Told of each request refused before it could reach a handler (not HTTP, timeouts), by code. */
  onRefused?(code: string): void;
  /** Serve https (the emulator playing a real cloud). */
  tls?: { cert: string; key: string; ca?: string; requestCert?: boolean; rejectUnauthorized?: boolean };
}

export const defaultErrorBody = (_status: number, code: string, message: string): unknown => ({ error: { code, message } });

/** Writes an error answer as JSON (when nothing has been sent yet; else ends the response). */
export function sendError(res: ServerResponse, status: number, code: string, message: string, errorBody = defaultErrorBody, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...closeIfUnread(res), ...headers }).end(JSON.stringify(errorBody(status, code, message)));
}

/**
 * `connection: close` when the answer goes out before the request's body was read to its end
 * (refused early): the rest is not worth reading, and the socket cannot carry another request.
 */
export function closeIfUnread(res: ServerResponse): Record<string, string> {
  const { headers, complete } = res.req;
  // `complete` is false for a bodiless GET too while its handler runs: only a body counts.
  const hasBody = (headers["content-length"] !== undefined && headers["content-length"] !== "0") || headers["transfer-encoding"] !== undefined;
  return hasBody && !complete ? { connection: "close" } : {};
}

const clientErrors: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, "E_HEADERS_TOO_LARGE", `request line and headers exceed ${httpLimits.maxHeaderBytes} bytes`],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "E_TIMEOUT", "the request took too long to arrive"],
  ERR_HTTP_HEADERS_TIMEOUT: [408, "E_TIMEOUT", "the request headers took too long to arrive"],
};

/**
 * An http(s) server with the limits above and both error paths closed: requests whose
 * handler fails get a 500 in the request's scope, and bytes that are not HTTP at all (a bad
 * request line, oversized headers, a timeout) get a JSON 4xx and the connection is closed.
 */
export function createGuardedServer(options: GuardedServerOptions): Server {
  const errorBody = options.errorBody ?? defaultErrorBody;
  const serverOptions: ServerOptions = {
    headersTimeout: httpLimits.headersTimeoutMs,
    requestTimeout: httpLimits.requestTimeoutMs,
    keepAliveTimeout: httpLimits.keepAliveTimeoutMs,
    connectionsCheckingInterval: httpLimits.timeoutCheckMs,
    maxHeaderSize: httpLimits.maxHeaderBytes,
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const failed = (error: unknown): void => {
      options.log.error({ err: error, method: req.method, url: req.url?.slice(0, 200) }, "request handler failed");
      if (!res.headersSent) sendError(res, 500, "E_INTERNAL", "internal error; see the log", errorBody);
      else res.destroy();
    };
    try {
      const done = options.handle(req, res);
      if (done) done.catch(failed);
    } catch (error) {
      failed(error);
    }
  };
  const server = options.tls ? createTlsServer({ ...serverOptions, ...options.tls }, listener) : createServer(serverOptions, listener);
  server.keepAliveTimeout = httpLimits.keepAliveTimeoutMs;
  // An `expect` other than 100-continue: Node's own answer would be a bare 417.
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    options.onRefused?.("E_EXPECTATION");
    sendError(res, 417, "E_EXPECTATION", `expectation ${JSON.stringify(String(req.headers.expect ?? "").slice(0, 40))} is not supported`, errorBody);
  });
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    // Node's own handler would answer with a bare status line; a client gets our JSON instead.
    // A socket already answering a request (`_httpMessage` is Node's link to it) is only closed.
    const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (error.code === "ECONNRESET" || !socket.writable || answering) {
      socket.destroy();
      return;
    }
    const [status, code, message] = clientErrors[error.code ?? ""] ?? [400, "E_BAD_REQUEST", "the request is not valid HTTP/1.1"];
    options.log.warn({ code, reason: error.code ?? error.message }, "request refused before routing");
    options.onRefused?.(code);
    const body = JSON.stringify(errorBody(status, code, message));
    const reason = status === 431 ? "Request Header Fields Too Large" : status === 408 ? "Request Timeout" : "Bad Request";
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  return server;
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

/** A configured bind address that only the box itself can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || isLoopback(bare);
}
