import { open, readFile, stat, truncate, type FileHandle } from "node:fs/promises";
import type { Dispatcher } from "undici";
import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { redactUrl } from "../kernel/redact-url.js";
import { sleep } from "../kernel/sleep.js";
import { caListWith, hasPemCertificate, untrustedCertificateCode } from "../kernel/tls.js";
import { UpdateError, UpdateErrorCode } from "./errors.js";

/**
 * Resumable download (docs/mqtt.md §7): the partial file is kept; after an interruption
 * the next request asks for `Range: bytes=<have>-`. A 206 whose Content-Range starts at our
 * offset is appended; a 200 means the server ignored the range and the file restarts from
 * zero. The size is known from the job, so more bytes than announced is an error, not a wait.
 */
export interface DownloadOptions {
  url: string;
  file: string;
  size: number;
  clock: Clock;
  log: Logger;
  /** Attempts without progress before giving up (an attempt that gained bytes resets the count). */
  attempts?: number;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  headersTimeoutMs?: number;
  /** No byte for this long aborts the attempt (then resumed). */
  stallTimeoutMs?: number;
  dispatcher?: Dispatcher;
  /**
   * PEM file of CA certificates trusted for https URLs besides the system's (a private update
   * server). Read when a download starts; unreadable, the download fails at once saying so.
   */
  caFile?: string;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
  /** Awaited after each chunk is written while the file is still incomplete (test hook). */
  onChunk?: (bytes: number) => Promise<void> | void;
}

export interface DownloadResult {
  /** Bytes present before the first request (a partial file from an earlier attempt). */
  resumedFrom: number;
  /** Bytes received over the network by this call. */
  bytesFetched: number;
  requests: number;
  /** Times the server answered 200 to a Range request and the file restarted. */
  restarts: number;
}

class PermanentDownloadError extends UpdateError {}

async function currentSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
}

function parseContentRange(value: string | string[] | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(text?.trim() ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === "*" ? undefined : Number(match[3]) };
}

/** The dispatcher for `options`: the caller's, or one trusting `caFile` as well as the system's CAs. */
async function dispatcherFor(options: DownloadOptions): Promise<Dispatcher | undefined> {
  if (options.dispatcher || !options.caFile || !options.url.startsWith("https:")) return options.dispatcher;
  let pem: string;
  try {
    pem = await readFile(options.caFile, "utf8");
  } catch (error) {
    throw new UpdateError(
      UpdateErrorCode.Download,
      `update.download.caFile ${options.caFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  if (!hasPemCertificate(pem)) {
    throw new UpdateError(UpdateErrorCode.Download, `update.download.caFile ${options.caFile}: no PEM certificate in it`);
  }
  const { Agent } = await import("undici");
  return new Agent({ connect: { ca: caListWith(pem) } });
}

export async function downloadResumable(options: DownloadOptions): Promise<DownloadResult> {
  const dispatcher = await dispatcherFor(options);
  try {
    return await downloadWith(dispatcher === options.dispatcher ? options : { ...options, ...(dispatcher ? { dispatcher } : {}) });
  } finally {
    if (dispatcher && dispatcher !== options.dispatcher) await dispatcher.close();
  }
}

async function downloadWith(options: DownloadOptions): Promise<DownloadResult> {
  const attempts = options.attempts ?? 8;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
  const result: DownloadResult = { resumedFrom: await currentSize(options.file), bytesFetched: 0, requests: 0, restarts: 0 };
  let failures = 0;
  let lastError = "";
  for (;;) {
    if (options.signal?.aborted) throw new UpdateError(UpdateErrorCode.Aborted, "download aborted");
    let have = await currentSize(options.file);
    if (have > options.size) {
      // Longer than the job says: whatever it is, it is not our bundle.
      await truncate(options.file, 0);
      have = 0;
    }
    if (have === options.size) return result;
    const before = have;
    try {
      await fetchOnce(options, have, result);
    } catch (error) {
      if (error instanceof PermanentDownloadError) throw new UpdateError(error.code, error.message);
      if (options.signal?.aborted) throw new UpdateError(UpdateErrorCode.Aborted, "download aborted");
      // No retry mends an untrusted certificate; an expired one may be the box's clock.
      const tlsCode = untrustedCertificateCode(error);
      if (tlsCode !== undefined) {
        throw new UpdateError(
          UpdateErrorCode.Download,
          `TLS: the server's certificate for ${redactUrl(options.url)} is not trusted (${tlsCode}: ${(error as Error).message}); a private server's CA goes in update.download.caFile`,
        );
      }
      lastError = (error as Error).message || String(error);
      const gained = (await currentSize(options.file)) > before;
      failures = gained ? 1 : failures + 1;
      options.log.warn({ err: lastError, have: await currentSize(options.file), size: options.size, failures }, "download interrupted; will resume");
      if (failures >= attempts) throw new UpdateError(UpdateErrorCode.Download, `download failed after ${failures} attempt(s) without progress: ${lastError}`);
      const delayMs = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (failures - 1));
      await sleep(options.clock, delayMs, options.signal);
    }
  }
}

async function fetchOnce(options: DownloadOptions, have: number, result: DownloadResult): Promise<void> {
  const headers: Record<string, string> = {};
  if (have > 0) headers.range = `bytes=${have}-`;
  result.requests++;
  // Opened before the request so no await sits between the response and reading its body
  // (undici drops body bytes not yet read when the connection breaks).
  const handle = await open(options.file, "a");
  try {
    await receive(options, have, result, headers, handle);
  } finally {
    await handle.close();
  }
}

async function receive(options: DownloadOptions, have: number, result: DownloadResult, headers: Record<string, string>, handle: FileHandle): Promise<void> {
  // undici loads lazily: it is the heaviest import here and a box only needs it for a download.
  const { request } = await import("undici");
  const response = await request(options.url, {
    method: "GET",
    headers,
    headersTimeout: options.headersTimeoutMs ?? 30_000,
    bodyTimeout: options.stallTimeoutMs ?? 60_000,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const { statusCode, body } = response;
  let offset: number;
  if (statusCode === 206) {
    const range = parseContentRange(response.headers["content-range"]);
    if (!range || range.start !== have || (range.total !== undefined && range.total !== options.size)) {
      await body.dump();
      if (range?.total !== undefined && range.total !== options.size) {
        throw new PermanentDownloadError(UpdateErrorCode.Size, `server says the file is ${range.total} bytes, the job says ${options.size}`);
      }
      // A range we did not ask for: start over rather than stitch mismatched pieces.
      await handle.truncate(0);
      throw new Error(`unexpected Content-Range ${String(response.headers["content-range"])} for a request from ${have}`);
    }
    offset = have;
  } else if (statusCode === 200) {
    const length = Number(response.headers["content-length"]);
    if (Number.isFinite(length) && length !== options.size) {
      await body.dump();
      throw new PermanentDownloadError(UpdateErrorCode.Size, `server sends ${length} bytes, the job says ${options.size}`);
    }
    if (have > 0) {
      result.restarts++;
      options.log.info({ have }, "server ignored Range; downloading from the start");
    }
    offset = 0;
  } else if (statusCode === 416) {
    // Our partial file does not fit the server's file (it changed): start over.
    await body.dump();
    await handle.truncate(0);
    throw new Error("server refused the range (416)");
  } else {
    await body.dump();
    if (statusCode >= 400 && statusCode < 500 && statusCode !== 408 && statusCode !== 429) {
      throw new PermanentDownloadError(UpdateErrorCode.Download, `server answered HTTP ${statusCode} for ${redactUrl(options.url)}`);
    }
    throw new Error(`server answered HTTP ${statusCode}`);
  }

  // The handle appends (O_APPEND), so after a truncate to zero writes start at the beginning.
  if (offset === 0 && have > 0) await handle.truncate(0);
  let written = offset;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    if (written + buffer.length > options.size) {
      body.destroy();
      throw new PermanentDownloadError(UpdateErrorCode.Size, `server sent more than the announced ${options.size} bytes`);
    }
    await handle.write(buffer);
    written += buffer.length;
    result.bytesFetched += buffer.length;
    options.onProgress?.(written, options.size);
    if (written < options.size) await options.onChunk?.(written);
  }
  await handle.sync();
  if (written < options.size) throw new Error(`connection ended after ${written} of ${options.size} bytes`);
}
