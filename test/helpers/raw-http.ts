import { connect } from "node:net";

/** One answer read off a raw socket. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  bodyText: string;
  /** The body parsed as JSON, or undefined when it is not JSON (or there is none). */
  json: unknown;
  /** Milliseconds from the first byte written to the answer read. */
  tookMs: number;
}

/**
 * Writes `bytes` as they are to host:port and reads one HTTP answer: what a hostile client on
 * the LAN does, request line included (fetch and undici refuse to send a malformed one). The
 * read ends at the declared content length, at the socket's close, or right after the head of
 * an event stream (which never ends by itself).
 */
export function rawRequest(port: number, bytes: Buffer | string, options: { host?: string; timeoutMs?: number; onWritten?: () => void } = {}): Promise<RawAnswer> {
  const host = options.host ?? "127.0.0.1";
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(received.toString("latin1").slice(0, 200))}`)), timeoutMs);
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) return reject(error);
      const parsed = parse(received, true);
      if (!parsed) return reject(new Error(`connection closed without an HTTP answer; got ${JSON.stringify(received.toString("latin1").slice(0, 200))}`));
      resolve({ ...parsed, tookMs: performance.now() - started });
    };
    // The callback runs once every byte is handed to the kernel (or the write failed).
    socket.on("connect", () => socket.write(bytes, () => options.onWritten?.()));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (parse(received, false)) finish();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // The server may close while we still write (an early 413/400); what it said counts.
      if (parse(received, true)) finish();
      else if (error.code === "ECONNRESET" || error.code === "EPIPE") finish(new Error(`connection ${error.code} without an answer`));
      else finish(error);
    });
    socket.on("close", () => finish());
  });
}

/** A complete answer in `data`, or undefined; `closed` accepts a body cut by the close. */
function parse(data: Buffer, closed: boolean): Omit<RawAnswer, "tookMs"> | undefined {
  const headEnd = data.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const head = data.subarray(0, headEnd).toString("latin1").split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "");
  if (!match) return undefined;
  // An interim answer (100 Continue for an `expect` header) precedes the real one.
  if (match[1]!.startsWith("1")) return parse(data.subarray(headEnd + 4), closed);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(headEnd + 4);
  if ((headers["content-type"] ?? "").startsWith("text/event-stream")) body = Buffer.alloc(0);
  else if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    if (body.length < length && !closed) return undefined;
    body = body.subarray(0, length);
  } else if (headers["transfer-encoding"] === "chunked") {
    const decoded = dechunk(body);
    if (!decoded && !closed) return undefined;
    body = decoded ?? body;
  } else if (!closed && !/^(1\d\d|204|304)$/.test(match[1]!)) {
    return undefined;
  }
  const bodyText = body.toString("utf8");
  let json: unknown;
  try {
    json = bodyText === "" ? undefined : JSON.parse(bodyText);
  } catch {
    json = undefined;
  }
  return { status: Number(match[1]), headers, bodyText, json };
}

function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size)) return undefined;
    if (size === 0) return Buffer.concat(parts);
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** A request as bytes; `content-length` is added for a body unless a header already frames it. */
export function requestBytes(method: string, target: string, headers: Record<string, string> = {}, body?: Buffer | string): Buffer {
  const bodyBytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  const lines = [`${method} ${target} HTTP/1.1`, "host: box", "connection: close"];
  const names = Object.keys(headers).map((n) => n.toLowerCase());
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (bodyBytes && !names.includes("content-length") && !names.includes("transfer-encoding")) lines.push(`content-length: ${bodyBytes.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), bodyBytes ?? Buffer.alloc(0)]);
}
