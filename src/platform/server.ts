import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { ApiError, type HttpServer } from "../api/http-server.js";
import { section4ServiceIds, type ReturnCodeName, type Section4ServiceId } from "./config.js";
import { parseEnvelope, verifyEnvelope, type ParsedEnvelope } from "./envelope.js";
import { PlatformError, PlatformErrorCode } from "./errors.js";
import type { LotPorts } from "./ports.js";
import { Refusal, type OpenInterfaceConfig, type Reply, type ServiceDef } from "./services/common.js";
import { inParkServices } from "./services/in-park.js";
import { laneServices } from "./services/lane.js";
import { listServices } from "./services/lists.js";
import { paymentServices } from "./services/payments.js";
import { vehicleServices } from "./services/vehicles.js";
import { overLength, readBiz } from "./wire.js";
import { ReplayCache } from "./replay-cache.js";

export type { OpenInterfaceConfig } from "./services/common.js";

/** The section-4 handler table: one entry per interface in the document's table of contents. */
export const section4Services: readonly ServiceDef[] = [...laneServices, ...paymentServices, ...inParkServices, ...vehicleServices, ...listServices] as ServiceDef[];

{
  // Every interface has exactly one handler (checked at load, cheap).
  const ids = section4Services.map((s) => s.id);
  const missing = section4ServiceIds.filter((id) => !ids.includes(id));
  if (missing.length > 0 || new Set(ids).size !== ids.length) throw new Error(`section-4 handler table is incomplete: ${missing.join(", ")}`);
}

export interface OpenInterfaceHandlerOptions {
  config: OpenInterfaceConfig;
  ports: LotPorts;
  clock: Clock;
  log: Logger;
}

export interface HandleMeta {
  /** "http", "mqtt"...: for logs only. */
  transport?: string;
  remote?: string;
}

export interface OpenInterfaceBody {
  code: number;
  msg: string;
  data?: unknown;
}

export interface OpenInterfaceResponse {
  /** HTTP status for the HTTP route; other transports ignore it. */
  status: number;
  body: OpenInterfaceBody;
}

export interface OpenInterfaceStats {
  accepted: number;
  /** Rejections by return-code name (badSign, staleTimestamp, notFound...). */
  rejected: Partial<Record<ReturnCodeName, number>>;
  /** Requests with values over their declared length (answered anyway). */
  overLengthWarnings: number;
  /** Signatures remembered against replays, and how many were dropped early for room. */
  replayCache: { entries: number; evictions: number };
}

export interface OpenInterfaceHandler {
  /** The configured route path (`platform.server.path`). */
  readonly path: string;
  readonly bodyLimitBytes: number;
  /** The configured success code (200 unless remapped). */
  readonly successCode: number;
  /** Answers one section-4 request body. Never throws; a rejection changes nothing. */
  handle(rawBodyText: string, meta?: HandleMeta): Promise<OpenInterfaceResponse>;
  /** A transport-level refusal (content type, size, encoding), counted and logged like the rest. */
  reject(codeName: "badContentType" | "tooLarge" | "badJson" | "busy", msg: string, meta?: HandleMeta): OpenInterfaceResponse;
  stats(): OpenInterfaceStats;
  /** serviceName → interface, as configured. */
  services(): Array<{ id: Section4ServiceId; serviceName: string; section: string }>;
}

const httpStatusFor: Partial<Record<ReturnCodeName, number>> = {
  badJson: 400,
  badContentType: 415,
  tooLarge: 413,
  internal: 500,
};

/**
 * Builds the transport-independent section-4 responder (docs/protocol.md §4): the HTTP route
 * and the MQTT `platform/req` topic both hand it the raw body text.
 *
 * Order of checks: JSON (nesting depth first) → envelope → pid → sign → timestamp → replay →
 * serviceName → bizContent schema → parkCode → handler. Everything before the handler only
 * reads (the replay memory aside), so a rejected request changes nothing; handlers validate
 * fully before their first write.
 */
export function createOpenInterfaceHandler(options: OpenInterfaceHandlerOptions): OpenInterfaceHandler {
  const { config, ports, clock } = options;
  const log = options.log;
  const server = config.platform.server;
  const codes = server.returnCodes;
  const byName = new Map<string, ServiceDef>();
  for (const def of section4Services) byName.set(server.serviceNames[def.id], def);

  const stats: Omit<OpenInterfaceStats, "replayCache"> = { accepted: 0, rejected: {}, overLengthWarnings: 0 };
  const replays = new ReplayCache(server.timestampWindowS, server.replayCacheMax);
  // Handlers that write run one at a time, so check-then-write sequences cannot interleave.
  let writeChain: Promise<unknown> = Promise.resolve();
  const serialised = <T>(work: () => Promise<T>): Promise<T> => {
    const run = writeChain.then(work, work);
    // The caller gets `run` and its error; the chain only serialises.
    writeChain = run.catch(() => undefined);
    return run;
  };

  function answer(codeName: ReturnCodeName, msg: string, data?: unknown): OpenInterfaceResponse {
    const body: OpenInterfaceBody = { code: codes[codeName], msg };
    if (data !== undefined) body.data = data;
    return { status: httpStatusFor[codeName] ?? 200, body };
  }

  function rejection(codeName: ReturnCodeName, msg: string, context: Record<string, unknown>): OpenInterfaceResponse {
    stats.rejected[codeName] = (stats.rejected[codeName] ?? 0) + 1;
    const level = codeName === "internal" ? "error" : "warn";
    log[level]({ ...context, reason: codeName, code: codes[codeName], detail: msg }, "platform request rejected");
    return answer(codeName, msg);
  }

  async function handle(rawBodyText: string, meta: HandleMeta = {}): Promise<OpenInterfaceResponse> {
    const context: Record<string, unknown> = { transport: meta.transport, remote: meta.remote };
    let envelope: ParsedEnvelope;
    try {
      envelope = parseEnvelope(rawBodyText);
    } catch (error) {
      if (error instanceof PlatformError) {
        return rejection(error.code === PlatformErrorCode.BadJson ? "badJson" : "badEnvelope", error.message, context);
      }
      return rejection("internal", "internal error; see the log", { ...context, err: error });
    }
    context.service = envelope.serviceName;
    context.pid = envelope.pid;
    if (envelope.pid !== config.platform.pid) return rejection("wrongPid", `pid ${envelope.pid} is not this car park's partner id`, context);
    try {
      const verified = verifyEnvelope(envelope, { key: config.platform.key, nowMs: clock.now(), windowS: server.timestampWindowS, checkTimestamp: false });
      context.skewS = verified.skewS;
    } catch (error) {
      if (error instanceof PlatformError) return rejection("badSign", error.message, context);
      return rejection("internal", "internal error; see the log", { ...context, err: error });
    }
    const skewS = envelope.timestampS - Math.floor(clock.now() / 1000);
    if (Math.abs(skewS) > server.timestampWindowS) {
      const msg = `timestamp is ${Math.abs(skewS)} s ${skewS > 0 ? "in the future" : "old"}; the window is ${server.timestampWindowS} s`;
      if (server.rejectStaleTimestamps) return rejection("staleTimestamp", msg, context);
      log.warn({ ...context, skewS }, "platform request outside the timestamp window; answered (rejectStaleTimestamps is off)");
    }
    // Only a verified request gets here, so envelope.sign is set; a repeat of it is a replay,
    // refused before any handler runs (a cloud retry must be signed afresh, with a new timestamp).
    if (!replays.remember(envelope.sign ?? "", envelope.timestampS, Math.floor(clock.now() / 1000))) {
      return rejection("replay", "this exact request (same sign) was already received; sign a retry with a new timestamp", context);
    }
    const def = byName.get(envelope.serviceName);
    if (!def) return rejection("unknownService", `unknown serviceName ${envelope.serviceName}`, context);
    context.section = def.section;

    const read = readBiz(def.schema, envelope.biz);
    if (!read.ok) {
      const msg = `bizContent: ${read.problems.map((p) => `${p.path} ${p.message}`).join("; ")}`;
      return rejection("badBizContent", msg, context);
    }
    const biz = read.value as Record<string, unknown> & { parkCode: string };
    if (biz.parkCode.trim() !== config.lot.parkCode) return rejection("wrongParkCode", `parkCode ${biz.parkCode} is not this car park (${config.lot.parkCode})`, context);
    const warnings = overLength(biz, def.lengths ?? {});
    if (warnings.length > 0) {
      stats.overLengthWarnings++;
      log.warn({ ...context, warnings }, "platform request exceeds declared lengths; accepted");
    }

    const run = async (): Promise<Reply> => def.handle(biz, { ports, config, nowMs: clock.now(), log: log.child({ service: envelope.serviceName }) });
    let reply: Reply;
    try {
      reply = def.mutates ? await serialised(run) : await run();
    } catch (error) {
      if (error instanceof Refusal) return rejection(error.codeName, error.message, context);
      return rejection("internal", "internal error; see the log", { ...context, err: error });
    }
    if (reply.code !== "success") return rejection(reply.code, reply.msg ?? reply.code, context);
    stats.accepted++;
    log.debug(context, "platform request answered");
    return answer("success", reply.msg ?? "成功", reply.data);
  }

  return {
    path: server.path,
    bodyLimitBytes: server.bodyLimitBytes,
    successCode: codes.success,
    handle: async (rawBodyText, meta) => {
      try {
        return await handle(rawBodyText, meta);
      } catch (error) {
        // handle() catches everything it expects; this is the last guard for the process.
        return rejection("internal", "internal error; see the log", { transport: meta?.transport, err: error });
      }
    },
    reject: (codeName, msg, meta = {}) => rejection(codeName, msg, { transport: meta.transport, remote: meta.remote }),
    stats: () => ({ ...structuredClone(stats), replayCache: replays.stats() }),
    services: () => section4Services.map((def) => ({ id: def.id, serviceName: server.serviceNames[def.id], section: def.section })),
  };
}

const acceptedMediaTypes = /^(application\/json|text\/json|text\/plain|application\/[\w.+-]+\+json)$/;

/** null when the content type is acceptable; otherwise the reason. A missing header is accepted. */
export function contentTypeProblem(header: string | undefined): string | null {
  if (header === undefined || header.trim() === "") return null;
  const [media = "", ...params] = header.split(";").map((p) => p.trim().toLowerCase());
  if (!acceptedMediaTypes.test(media)) return `content type ${media} is not JSON; send application/json;charset=UTF-8`;
  const charset = params
    .find((p) => p.startsWith("charset="))
    ?.slice(8)
    .replace(/"/g, "");
  // The signature only reproduces over UTF-8 (the published test vector does), so another charset cannot verify.
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") return `charset ${charset} is not supported; send UTF-8`;
  return null;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * `POST <path>` on the local server for section-4 requests. Authentication is the envelope's
 * signature, so the route is open; the body limit answers 413 with an envelope, not a bare error.
 */
export function registerPlatformRoute(http: HttpServer, handler: OpenInterfaceHandler, path: string = handler.path): void {
  const routeKey = `POST ${path}`;
  http.route(
    "POST",
    path,
    async (ctx) => {
      const meta: HandleMeta = { transport: "http", ...(ctx.req.socket.remoteAddress ? { remote: ctx.req.socket.remoteAddress } : {}) };
      const problem = contentTypeProblem(ctx.req.headers["content-type"]);
      if (problem) {
        ctx.req.resume();
        http.countRejection(routeKey);
        const r = handler.reject("badContentType", problem, meta);
        ctx.send(r.status, r.body);
        return;
      }
      let raw: Buffer;
      try {
        raw = await ctx.body();
      } catch (error) {
        if (error instanceof ApiError && error.status === 413) {
          http.countRejection(routeKey);
          const r = handler.reject("tooLarge", `body exceeds the limit of ${handler.bodyLimitBytes} bytes`, meta);
          ctx.send(r.status, r.body, { connection: "close" });
          return;
        }
        if (error instanceof ApiError && error.code === "E_JSON_DEPTH") {
          http.countRejection(routeKey);
          const r = handler.reject("badJson", `body is not valid JSON: ${error.message}`, meta);
          ctx.send(r.status, r.body);
          return;
        }
        if (error instanceof ApiError && error.status === 503) {
          http.countRejection(routeKey);
          const r = handler.reject("busy", error.message, meta);
          ctx.send(503, r.body, { connection: "close", "retry-after": "1" });
          return;
        }
        throw error;
      }
      let text: string;
      try {
        text = utf8.decode(raw);
      } catch {
        http.countRejection(routeKey);
        const r = handler.reject("badJson", "body is not valid UTF-8", meta);
        ctx.send(r.status, r.body);
        return;
      }
      const r = await handler.handle(text, meta);
      if (r.body.code !== handler.successCode) http.countRejection(routeKey);
      ctx.send(r.status, r.body);
    },
    { bodyLimitBytes: handler.bodyLimitBytes, access: "open" },
  );
}
