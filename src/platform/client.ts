import type { Dispatcher } from "undici";
import { Agent, request } from "./undici-core.js";
import type { Clock } from "../app/clock.js";
import type { Logger } from "../app/log.js";
import { readTlsFiles, untrustedCertificateCode } from "../app/tls.js";
import type { PlatformConfig, Section3ServiceId } from "./config.js";
import { encodeEnvelope, timestampText } from "./envelope.js";
import type { EnterNotifyBiz, LeaveNotifyBiz, PreEnterNotifyBiz, PreLeaveNotifyBiz, PreLeavePaidData } from "./section3.js";
import { maskSecret } from "./wire.js";

/**
 * How a call failed, so callers can choose (architecture.md §3.3, §5):
 * - `refused`: no connection, it dropped before an answer, or the server's certificate is not
 *   trusted → cash fallback / retry later;
 * - `timeout`: the deadline passed → same, the cloud may still act on it;
 * - `http-status`: a non-2xx answer → transport failure, retry with backoff;
 * - `bad-response`: 2xx but not an envelope (not JSON, no code) → retry, log;
 * - `business-code`: a well-formed answer with code ≠ 200 → awaiting payment, or park.
 */
export type PlatformFailureKind = "refused" | "timeout" | "http-status" | "bad-response" | "business-code";

export interface PlatformSuccess<D = unknown> {
  readonly ok: true;
  readonly code: 200;
  readonly msg: string;
  readonly data: D | undefined;
  readonly elapsedMs: number;
}

export interface PlatformFailure {
  readonly ok: false;
  readonly kind: PlatformFailureKind;
  /** The envelope code (business-code). */
  readonly code?: number;
  readonly msg?: string;
  /** The HTTP status (http-status, bad-response). */
  readonly status?: number;
  readonly data?: unknown;
  /** Transport error code or parse problem, for logs. */
  readonly detail?: string;
  readonly elapsedMs: number;
}

export type PlatformResult<D = unknown> = PlatformSuccess<D> | PlatformFailure;

export interface CallOptions {
  /** Wall-time budget for the whole exchange, body included; default from config per service. */
  deadlineMs?: number;
}

export interface PlatformClientOptions {
  config: PlatformConfig;
  clock: Clock;
  log: Logger;
  /** A shared dispatcher (tests, benchmarks); by default the client owns a keep-alive Agent. */
  dispatcher?: Dispatcher;
}

export interface PlatformClientStats {
  calls: number;
  ok: number;
  failures: Record<PlatformFailureKind, number>;
}

/** Section-3 client (lot → cloud) over undici with connection reuse. */
export interface PlatformClient {
  /** 3.1 entry report. */
  enterNotify(biz: EnterNotifyBiz, options?: CallOptions): Promise<PlatformResult>;
  /** 3.2 exit report. */
  leaveNotify(biz: LeaveNotifyBiz, options?: CallOptions): Promise<PlatformResult>;
  /** 3.3 pre-exit bill; a 200 may carry payType/payTime/orderNo. */
  preLeaveNotify(biz: PreLeaveNotifyBiz, options?: CallOptions): Promise<PlatformResult<PreLeavePaidData>>;
  /** 3.4 pre-entry push. */
  preEnterNotify(biz: PreEnterNotifyBiz, options?: CallOptions): Promise<PlatformResult>;
  /**
   * Any push: `service` is a section-3 id (mapped through `serviceNames`) or a literal
   * serviceName. bizContent is encoded strictly (ASCII key order, compact, raw UTF-8).
   */
  call<D = unknown>(service: Section3ServiceId | (string & {}), biz: Record<string, unknown>, options?: CallOptions): Promise<PlatformResult<D>>;
  /** The URL a serviceName is POSTed to. */
  urlFor(serviceName: string): string;
  stats(): PlatformClientStats;
  close(): Promise<void>;
}

const refusedCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

export function createPlatformClient(options: PlatformClientOptions): PlatformClient {
  const { config, clock } = options;
  const log = options.log;
  const ownDispatcher = options.dispatcher === undefined;
  const tls = ownDispatcher ? readTlsFiles("platform", config) : { connect: undefined, problems: [] };
  // A missing or broken file must not keep the lanes down: they run offline (cash fallback,
  // outbox) and every failed call says what is wrong.
  for (const problem of tls.problems) log.error({ problem }, "platform TLS file not used");
  const tlsHint = tls.problems.length > 0 ? ` (${tls.problems.join("; ")})` : "";
  const dispatcher =
    options.dispatcher ??
    new Agent({
      ...(tls.connect ? { connect: tls.connect } : {}),
      connections: config.client.connections,
      keepAliveTimeout: config.client.keepAliveTimeoutMs,
      keepAliveMaxTimeout: config.client.keepAliveTimeoutMs,
      // Our own deadline (AbortSignal.timeout) governs; undici's header/body timers fire late
      // and would only ever be a backstop.
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
  const counts: PlatformClientStats = {
    calls: 0,
    ok: 0,
    failures: { refused: 0, timeout: 0, "http-status": 0, "bad-response": 0, "business-code": 0 },
  };

  const defaultDeadline = (service: string): number => {
    if (service === "preLeaveNotify") return config.deadlines.preLeaveMs;
    if (service === "preEnterNotify") return config.deadlines.preEnterMs;
    return config.deadlines.reportMs;
  };

  const nameFor = (service: string): string =>
    Object.hasOwn(config.serviceNames, service) ? config.serviceNames[service as Section3ServiceId] : service;

  function urlFor(serviceName: string): string {
    const explicit = config.servicePaths[serviceName];
    if (explicit) return /^https?:\/\//.test(explicit) ? explicit : new URL(explicit, config.baseUrl).href;
    if (config.pathStyle === "single") return config.baseUrl;
    return new URL(config.pathTemplate.replaceAll("{service}", encodeURIComponent(serviceName)), config.baseUrl).href;
  }

  async function call<D>(service: string, biz: Record<string, unknown>, callOptions: CallOptions = {}): Promise<PlatformResult<D>> {
    const serviceName = nameFor(service);
    const deadlineMs = callOptions.deadlineMs ?? defaultDeadline(service);
    const encoded = encodeEnvelope({
      pid: config.pid,
      key: config.key,
      serviceName,
      timestamp: timestampText(clock.now()),
      biz,
      bizContentForm: config.bizContentForm,
    });
    const url = urlFor(serviceName);
    const signal = AbortSignal.timeout(deadlineMs);
    const begun = performance.now();
    const elapsed = (): number => Math.round((performance.now() - begun) * 1000) / 1000;
    counts.calls++;
    let result: PlatformResult<D>;
    try {
      const response = await request(url, {
        method: "POST",
        dispatcher,
        signal,
        headers: { "content-type": "application/json;charset=UTF-8" },
        body: encoded.bodyText,
      });
      const bodyText = await response.body.text();
      result = classify<D>(response.statusCode, bodyText, elapsed());
    } catch (error) {
      if (signal.aborted) {
        result = { ok: false, kind: "timeout", detail: `no answer within ${deadlineMs} ms`, elapsedMs: elapsed() };
      } else {
        const code = (error as { code?: string }).code ?? (error as Error).name;
        const untrusted = untrustedCertificateCode(error);
        const detail =
          untrusted !== undefined
            ? `TLS ${untrusted}: the platform's certificate is not trusted (${(error as Error).message}); a private CA goes in platform.caFile${tlsHint}`
            : refusedCodes.has(code)
              ? code
              : `${code}: ${(error as Error).message}`;
        result = { ok: false, kind: "refused", detail, elapsedMs: elapsed() };
      }
    }
    if (result.ok) counts.ok++;
    else counts.failures[result.kind]++;
    const context = {
      service: serviceName,
      recordNo: biz.recordNo,
      plateId: biz.plateId,
      // A scanner payment code is a credential: never logged in full (platform-api.md §7 3.3).
      sweepAuthCodeMasked: typeof biz.sweepAuthCode === "string" ? maskSecret(biz.sweepAuthCode) : undefined,
      elapsedMs: result.elapsedMs,
    };
    if (result.ok) log.debug(context, "platform call ok");
    // A business code is an answer (e.g. 0 "awaiting payment" to a pre-leave bill), not a
    // fault of the link: info, so the warnings stay meaningful.
    else if (result.kind === "business-code") log.info({ ...context, kind: result.kind, code: result.code, msg: result.msg }, "platform answered with a business code");
    else log.warn({ ...context, kind: result.kind, code: result.code, msg: result.msg, status: result.status, detail: result.detail }, "platform call failed");
    return result;
  }

  return {
    enterNotify: (biz, o) => call("enterNotify", biz, o),
    leaveNotify: (biz, o) => call("leaveNotify", biz, o),
    preLeaveNotify: (biz, o) => call<PreLeavePaidData>("preLeaveNotify", biz, o),
    preEnterNotify: (biz, o) => call("preEnterNotify", biz, o),
    call,
    urlFor,
    stats: () => structuredClone(counts),
    async close() {
      if (ownDispatcher) await dispatcher.close();
    },
  };
}

/** Turns an HTTP answer into a result; `code` may be a number or a numeric string ("200"). */
export function classify<D>(status: number, bodyText: string, elapsedMs: number): PlatformResult<D> {
  if (status < 200 || status > 299) {
    return { ok: false, kind: "http-status", status, detail: bodyText.slice(0, 200), elapsedMs };
  }
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return { ok: false, kind: "bad-response", status, detail: `not JSON: ${bodyText.slice(0, 80)}`, elapsedMs };
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, kind: "bad-response", status, detail: "answer is not a JSON object", elapsedMs };
  }
  const record = body as Record<string, unknown>;
  const codeKey = Object.keys(record).find((k) => k.toLowerCase() === "code");
  const msgKey = Object.keys(record).find((k) => k.toLowerCase() === "msg");
  const dataKey = Object.keys(record).find((k) => k.toLowerCase() === "data");
  const rawCode = codeKey === undefined ? undefined : record[codeKey];
  const code = typeof rawCode === "number" ? rawCode : typeof rawCode === "string" && /^\s*-?\d+\s*$/.test(rawCode) ? Number(rawCode) : undefined;
  if (code === undefined || !Number.isInteger(code)) {
    return { ok: false, kind: "bad-response", status, detail: "answer has no numeric code", elapsedMs };
  }
  const msg = msgKey !== undefined && record[msgKey] !== undefined && record[msgKey] !== null ? String(record[msgKey]) : "";
  const data = dataKey === undefined ? undefined : record[dataKey];
  if (code === 200) return { ok: true, code: 200, msg, data: data as D | undefined, elapsedMs };
  return data === undefined ? { ok: false, kind: "business-code", code, msg, elapsedMs } : { ok: false, kind: "business-code", code, msg, data, elapsedMs };
}
