import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

export interface RecordedRequest {
  path: string;
  range: string | undefined;
  status: number;
  bytesSent: number;
}

/**
 * A file server on 127.0.0.1 for update tests: honours `Range: bytes=<n>-` with 206 and
 * Content-Range, can ignore ranges (answering 200, which makes the client restart), and can cut
 * the next responses after a number of body bytes to simulate a dropped link.
 */
export class BundleServer {
  readonly files = new Map<string, Buffer>();
  readonly requests: RecordedRequest[] = [];
  /** Body bytes after which the next responses are cut (one entry consumed per response). */
  readonly cuts: number[] = [];
  ignoreRange = false;
  chunkBytes = 16 * 1024;
  chunkDelayMs = 0;
  /** Pause between the last byte of a cut response and dropping the connection. */
  cutDelayMs = 100;
  private server: Server | undefined;
  private baseUrl = "";

  /** With `tls` (PEM certificate and key), the server speaks https. */
  constructor(private readonly tls?: { cert: string; key: string }) {}

  async start(): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = this.tls ? createTlsServer({ cert: this.tls.cert, key: this.tls.key }, handler) : createServer(handler);
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `${this.tls ? "https" : "http"}://127.0.0.1:${port}`;
    return this;
  }

  url(name: string): string {
    return `${this.baseUrl}/${name}`;
  }

  get totalBytesSent(): number {
    return this.requests.reduce((sum, r) => sum + r.bytesSent, 0);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent((req.url ?? "/").slice(1));
    const range = req.headers.range;
    const record: RecordedRequest = { path, range, status: 0, bytesSent: 0 };
    this.requests.push(record);
    const data = this.files.get(path);
    if (!data) {
      record.status = 404;
      res.writeHead(404).end("not found");
      return;
    }
    let start = 0;
    const match = /^bytes=(\d+)-$/.exec(range ?? "");
    if (match && !this.ignoreRange) {
      start = Number(match[1]);
      if (start >= data.length) {
        record.status = 416;
        res.writeHead(416, { "content-range": `bytes */${data.length}` }).end();
        return;
      }
      record.status = 206;
      res.writeHead(206, {
        "content-type": "application/octet-stream",
        "content-length": String(data.length - start),
        "content-range": `bytes ${start}-${data.length - 1}/${data.length}`,
        "accept-ranges": "bytes",
      });
    } else {
      record.status = 200;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(data.length), "accept-ranges": "bytes" });
    }
    const cut = this.cuts.shift();
    let offset = start;
    let closed = false;
    res.setMaxListeners(0);
    res.on("close", () => {
      closed = true;
    });
    while (offset < data.length && !closed) {
      let end = Math.min(data.length, offset + this.chunkBytes);
      const cutting = cut !== undefined && record.bytesSent + (end - offset) >= cut;
      if (cutting) end = offset + (cut - record.bytesSent);
      const chunk = data.subarray(offset, end);
      record.bytesSent += chunk.length;
      offset = end;
      if (cutting) {
        // Hand the bytes over, give the client a moment to consume them (a link drops some
        // time after its last byte, not on it), then drop the connection mid-body.
        await new Promise<void>((resolve) => res.write(chunk, () => resolve()));
        await delay(this.cutDelayMs);
        res.socket?.destroy();
        return;
      }
      if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
      if (this.chunkDelayMs > 0) await delay(this.chunkDelayMs);
    }
    if (!closed) res.end();
  }
}
