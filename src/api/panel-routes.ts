import { readFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { systemClock, type Clock, type TimerHandle } from "../kernel/clock.js";
import { projectUrl } from "../kernel/project-dir.js";
import { ApiError, type HttpServer } from "./http-server.js";

/** The panel's files ship in `panel/` at the package root (no CDN, no build step). */
const panelDir = projectUrl("panel/");
const assets: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "panel.js": "text/javascript; charset=utf-8",
  "format.js": "text/javascript; charset=utf-8",
  "i18n.js": "text/javascript; charset=utf-8",
  "shift.js": "text/javascript; charset=utf-8",
  "records.js": "text/javascript; charset=utf-8",
  "lot.js": "text/javascript; charset=utf-8",
  "shortcuts.js": "text/javascript; charset=utf-8",
  "exit-card.js": "text/javascript; charset=utf-8",
  "i18n-errors.js": "text/javascript; charset=utf-8",
  "panel.css": "text/css; charset=utf-8",
};

/**
 * The page loads nothing from elsewhere (no CDN: a lane box may have no internet), so the policy can say so: a page
 * that cannot be framed or fed foreign scripts keeps the attendant's token to itself.
 */
const pageHeaders: Readonly<Record<string, string>> = {
  "cache-control": "no-cache",
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

export interface StatusFeed {
  status(): unknown;
  /** Subscribes to "something changed"; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

export interface PanelRoutesOptions {
  clock?: Clock;
  /** Fewest milliseconds between two status events; changes in between are coalesced. Default 200. */
  minIntervalMs?: number;
  /**
   * A status event at least this often even when no event was emitted: uptime, the outbox's
   * oldest age and the clock-sync flag change without one. It also tells the page the stream
   * is alive (comments are invisible to EventSource). Default 10 000.
   */
  refreshMs?: number;
  /** Most simultaneous streams; more are answered 503. Default 16. */
  maxStreams?: number;
  /** The reconnect delay the browser is told (the SSE `retry:` field). Default 2000. */
  retryMs?: number;
}

export interface PanelStreamStats {
  streams: number;
  /** Status frames written (one per stream per send). */
  statusEvents: number;
  /** Sends skipped for a stream whose socket buffer was still full (it gets the newest on drain). */
  skippedSlow: number;
  refusedStreams: number;
  statusErrors: number;
}

export interface PanelRoutes {
  stats(): PanelStreamStats;
}

/**
 * The local panel and its live feed.
 *
 * - `GET /` and `GET /panel/<file>`: the page, open to anyone (it holds no data; the data
 *   comes through the stream and the API, which check access).
 * - `GET /api/stream`: server-sent events, access "read" (open on loopback per
 *   `api.openReads`, else the token, as `?access_token=` because EventSource cannot send
 *   headers). One `status` event with the whole status on connect and after changes.
 * - `GET /api/panel/session`: token only; the login form checks the token with it before
 *   keeping it, so a mistyped token is refused at once rather than at the first button.
 */
export function registerPanelRoutes(http: HttpServer, feed: StatusFeed, options: PanelRoutesOptions = {}): PanelRoutes {
  const hub = new StatusHub(feed, {
    clock: options.clock ?? systemClock,
    minIntervalMs: options.minIntervalMs ?? 200,
    refreshMs: options.refreshMs ?? 10_000,
    maxStreams: options.maxStreams ?? 16,
    retryMs: options.retryMs ?? 2000,
  });

  const serve = async (file: string, res: ServerResponse): Promise<void> => {
    const body = await readFile(new URL(file, panelDir));
    res.writeHead(200, { "content-type": assets[file]!, ...pageHeaders }).end(body);
  };
  http.route("GET", "/", ({ res }) => serve("index.html", res), { access: "open" });
  http.route(
    "GET",
    "/panel/:file",
    async ({ params, res }) => {
      const file = params.file ?? "";
      if (!Object.hasOwn(assets, file)) throw new ApiError(404, "E_NOT_FOUND", `no panel file ${JSON.stringify(file.slice(0, 64))}`);
      await serve(file, res);
    },
    { access: "open" },
  );
  http.route("GET", "/api/panel/session", ({ send }) => send(200, { ok: true }), { access: "token" });
  http.route("GET", "/api/stream", ({ res }) => hub.add(res));
  return { stats: () => hub.stats() };
}

interface HubSettings {
  clock: Clock;
  minIntervalMs: number;
  refreshMs: number;
  maxStreams: number;
  retryMs: number;
}

interface Stream {
  res: ServerResponse;
  /** The socket buffer is full: write nothing more until it drains. */
  blocked: boolean;
  /** A send was skipped while blocked; the newest status follows the drain. */
  missed: boolean;
}

/**
 * One subscription to the app's changes for every open page: the status is built and
 * serialised once per send, whatever the number of pages, and at most every `minIntervalMs`,
 * so a chattering loop input cannot flood the browsers or the box. A page whose socket backs
 * up is skipped until it drains and then gets the newest status, so nothing piles up in memory.
 * Timers run only while a page is connected.
 */
class StatusHub {
  private readonly streams = new Set<Stream>();
  private unsubscribe: (() => void) | undefined;
  private pending: TimerHandle | undefined;
  private refresh: TimerHandle | undefined;
  private lastSentMonoMs = Number.NEGATIVE_INFINITY;
  private counters = { statusEvents: 0, skippedSlow: 0, refusedStreams: 0, statusErrors: 0 };

  constructor(
    private readonly feed: StatusFeed,
    private readonly settings: HubSettings,
  ) {}

  stats(): PanelStreamStats {
    return { streams: this.streams.size, ...this.counters };
  }

  add(res: ServerResponse): void {
    if (this.streams.size >= this.settings.maxStreams) {
      this.counters.refusedStreams++;
      throw new ApiError(503, "E_TOO_MANY_STREAMS", `at most ${this.settings.maxStreams} live panels at once; close one`);
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-content-type-options": "nosniff",
    });
    res.write(`retry: ${this.settings.retryMs}\n\n`);
    const stream: Stream = { res, blocked: false, missed: false };
    this.streams.add(stream);
    res.on("drain", () => {
      stream.blocked = false;
      if (stream.missed) {
        stream.missed = false;
        const frame = this.frame();
        if (frame) this.write(stream, frame);
      }
    });
    // The response's close (not the request's) is the socket going away for a stream.
    res.on("close", () => this.remove(stream));
    res.on("error", () => this.remove(stream));
    if (this.streams.size === 1) {
      this.unsubscribe = this.feed.onChange(() => this.schedule());
      this.armRefresh();
    }
    // The newcomer gets the status at once, the others are not disturbed.
    const frame = this.frame();
    if (frame) this.write(stream, frame);
  }

  private remove(stream: Stream): void {
    if (!this.streams.delete(stream)) return;
    if (this.streams.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.pending) this.settings.clock.clearTimeout(this.pending);
    if (this.refresh) this.settings.clock.clearTimeout(this.refresh);
    this.pending = undefined;
    this.refresh = undefined;
  }

  private schedule(): void {
    if (this.pending || this.streams.size === 0) return;
    const sinceMs = this.settings.clock.monotonicMs() - this.lastSentMonoMs;
    this.pending = this.settings.clock.setTimeout(() => this.broadcast(), Math.max(0, this.settings.minIntervalMs - sinceMs));
  }

  private armRefresh(): void {
    if (this.refresh) this.settings.clock.clearTimeout(this.refresh);
    this.refresh = this.settings.clock.setTimeout(() => {
      this.refresh = undefined;
      this.broadcast();
    }, this.settings.refreshMs);
  }

  private broadcast(): void {
    if (this.pending) this.settings.clock.clearTimeout(this.pending);
    this.pending = undefined;
    if (this.streams.size === 0) return;
    this.lastSentMonoMs = this.settings.clock.monotonicMs();
    const frame = this.frame();
    if (frame) for (const stream of this.streams) this.write(stream, frame);
    this.armRefresh();
  }

  /** The whole status as one SSE event, with the box's time so the page can show its clock. */
  private frame(): string | undefined {
    try {
      const status = this.feed.status();
      const payload = status && typeof status === "object" && !Array.isArray(status) ? { ...status, nowMs: this.settings.clock.now() } : status;
      // JSON.stringify escapes newlines inside strings, so the event is one `data:` line.
      return `event: status\ndata: ${JSON.stringify(payload)}\n\n`;
    } catch {
      this.counters.statusErrors++;
      return undefined;
    }
  }

  private write(stream: Stream, frame: string): void {
    if (stream.blocked) {
      stream.missed = true;
      this.counters.skippedSlow++;
      return;
    }
    this.counters.statusEvents++;
    if (!stream.res.write(frame)) stream.blocked = true;
  }
}
