import type { Dispatcher } from "undici";
import { createAgent, request } from "./undici-core.js";
import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { readTlsFiles, untrustedCertificateCode } from "../kernel/tls.js";
import type { PlatformConfig, Section3ServiceId } from "./config.js";
import { encodeEnvelope, timestampText } from "./envelope.js";
import type { EnterNotifyBiz, LeaveNotifyBiz, PreEnterNotifyBiz, PreLeaveNotifyBiz, PreLeavePaidData } from "./section3.js";
import { maskSecret } from "./wire.js";

/**
 * How a call failed, so callers can choose (docs/protocol.md "Client results"):
 * - `refused`: no connection, it dropped before an answer, or the server's certificate is not
 *   trusted → cash fallback / retry later;
 * - `timeout`: the deadline passed → same, the cloud may still act on it;
 * - `http-status`: a non-2xx answer → transport failure, retry with backoff;
 * - `bad-response`: 2xx but not an envelope (not JSON, no code) → retry, log;
 * - `business-code`: a well-formed answer with code ≠ 200 → awaiting payment, or park;
 * - `aborted`: the caller gave up (its `signal`, e.g. the service stopping) → ask again later.
 */
export type PlatformFailureKind = "refused" | "timeout" | "http-status" | "bad-response" | "business-code" | "aborted";

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

export interface CallOptions<D = unknown> {
  /** Wall-time budget for the whole exchange, body included; default from config per service. */
  deadlineMs?: number;
  /**
   * Keep the exchange open this long in all (≥ deadlineMs): the call still resolves as
   * `timeout` at the deadline, and an answer that comes after it is handed to `onLateAnswer`.
   * The deadline decides what the caller does now; a platform that acts on a request late
   * (a pre-leave bill paid online) is still heard.
   */
  listenMs?: number;
  /** With `listenMs`: the late outcome of a call that timed out (an answer, or the final failure). */
  onLateAnswer?: (result: PlatformResult<D>) => void;
  /** Aborts the exchange (resolves as `aborted`; no late answer follows). */
  signal?: AbortSignal;
}

export interface PlatformClientOptions {
  config: PlatformConfig;
  clock: Clock;
  log: Logger;
  /** A shared dispatcher (tests, benchmarks); by default the client owns a keep-alive Agent. */
  dispatcher?: Dispatcher;
}

/** An HTTP answer the platform gave to any call, as told to `onAnswer` listeners. */
export interface PlatformAnswer {
  readonly serviceName: string;
  /** The HTTP status of the answer. */
  readonly httpStatus: number;
  /** The envelope's business code (200 = accepted); absent when the answer had none. */
  readonly code?: number;
  /** It came after the call's deadline, within its listening window: the caller had moved on. */
  readonly late: boolean;
}

export type PlatformAnswerListener = (answer: PlatformAnswer) => void;

export interface PlatformClientStats {
  calls: number;
  ok: number;
  failures: Record<PlatformFailureKind, number>;
  /** Answers (any) that came after a call's deadline, within its listening window. */
  lateAnswers: number;
}

/** Section-3 client (lot → cloud) over undici with connection reuse. */
export interface PlatformClient {
  /** 3.1 entry report. */
  enterNotify(biz: EnterNotifyBiz, options?: CallOptions): Promise<PlatformResult>;
  /** 3.2 exit report. */
  leaveNotify(biz: LeaveNotifyBiz, options?: CallOptions): Promise<PlatformResult>;
  /** 3.3 pre-exit bill; a 200 may carry payType/payTime/orderNo. */
  preLeaveNotify(biz: PreLeaveNotifyBiz, options?: CallOptions<PreLeavePaidData>): Promise<PlatformResult<PreLeavePaidData>>;
  /** 3.4 pre-entry push. */
  preEnterNotify(biz: PreEnterNotifyBiz, options?: CallOptions): Promise<PlatformResult>;
  /**
   * Any push: `service` is a section-3 id (mapped through `serviceNames`) or a literal
   * serviceName. bizContent is encoded strictly (ASCII key order, compact, raw UTF-8).
   */
  call<D = unknown>(service: Section3ServiceId | (string & {}), biz: Record<string, unknown>, options?: CallOptions<D>): Promise<PlatformResult<D>>;
  /**
   * Told of every HTTP answer to any call (any status, any code, on time or late): the
   * platform is reachable, so work waiting for it can go at once (the lanes re-ask a
   * timed-out bill; on a 200 the outbox probes its parked reports). A throwing listener is
   * logged and changes nothing about the call. Returns the unsubscribe.
   */
  onAnswer(listener: PlatformAnswerListener): () => void;
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

/** How long close() waits for calls in flight before destroying their sockets. */
const CLOSE_GRACE_MS = 100;

export function createPlatformClient(options: PlatformClientOptions): PlatformClient {
  const { config, clock } = options;
  const log = options.log;
  const ownDispatcher = options.dispatcher === undefined;
  const tls = ownDispatcher ? readTlsFiles("platform", config) : { connect: undefined, problems: [] };
  // A missing or broken file must not keep the lanes down: they run offline (cash fallback,
  // outbox) and every failed call says what is wrong.
  for (const problem of tls.problems) log.error({ problem }, "platform TLS file not used");
  const tlsHint = tls.problems.length > 0 ? ` (${tls.problems.join("; ")})` : "";
  // The own Agent is made on the first call: undici's modules stay off the start-up path.
  let ownAgent: Dispatcher | undefined;
  const agentOptions = (): Parameters<typeof createAgent>[0] => ({
    ...(tls.connect ? { connect: tls.connect } : {}),
    connections: config.client.connections,
    keepAliveTimeout: config.client.keepAliveTimeoutMs,
    keepAliveMaxTimeout: config.client.keepAliveTimeoutMs,
    // Our own deadline (the exchange window) governs; undici's header/body timers fire late
    // and would only ever be a backstop.
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const dispatcherNow = (): Dispatcher => options.dispatcher ?? (ownAgent ??= createAgent(agentOptions()));
  const counts: PlatformClientStats = {
    calls: 0,
    ok: 0,
    failures: { refused: 0, timeout: 0, "http-status": 0, "bad-response": 0, "business-code": 0, aborted: 0 },
    lateAnswers: 0,
  };
  const answerListeners = new Set<PlatformAnswerListener>();
  const answered = (answer: PlatformAnswer): void => {
    for (const listener of [...answerListeners]) {
      try {
        listener(answer);
      } catch (error) {
        log.error({ err: error, service: answer.serviceName }, "platform answer listener failed");
      }
    }
  };

  const defaultDeadline = (service: string): number => {
    if (service === "preLeaveNotify") return config.deadlines.preLeaveMs;
    if (service === "preEnterNotify") return config.deadlines.preEnterMs;
    return config.deadlines.reportMs;
  };

  const nameFor = (service: string): string => (Object.hasOwn(config.serviceNames, service) ? config.serviceNames[service as Section3ServiceId] : service);

  function urlFor(serviceName: string): string {
    const explicit = config.servicePaths[serviceName];
    if (explicit) return /^https?:\/\//.test(explicit) ? explicit : new URL(explicit, config.baseUrl).href;
    if (config.pathStyle === "single") return config.baseUrl;
    return new URL(config.pathTemplate.replaceAll("{service}", encodeURIComponent(serviceName)), config.baseUrl).href;
  }

  async function call<D>(service: string, biz: Record<string, unknown>, callOptions: CallOptions<D> = {}): Promise<PlatformResult<D>> {
    const serviceName = nameFor(service);
    const deadlineMs = callOptions.deadlineMs ?? defaultDeadline(service);
    const listenMs = Math.max(deadlineMs, callOptions.listenMs ?? deadlineMs);
    const encoded = encodeEnvelope({
      pid: config.pid,
      key: config.key,
      serviceName,
      timestamp: timestampText(clock.now()),
      biz,
      bizContentForm: config.bizContentForm,
    });
    const url = urlFor(serviceName);
    // The exchange lives until the listening window ends or the caller aborts; the deadline
    // only decides when the caller gets its `timeout`.
    const lifetime = exchangeWindow(listenMs, callOptions.signal);
    const signal = lifetime.signal;
    const begun = performance.now();
    const elapsed = (): number => Math.round((performance.now() - begun) * 1000) / 1000;
    counts.calls++;
    const context = {
      service: serviceName,
      recordNo: biz.recordNo,
      plateId: biz.plateId,
      // A scanner payment code is a credential: never logged in full (docs/protocol.md §3.3).
      sweepAuthCodeMasked: typeof biz.sweepAuthCode === "string" ? maskSecret(biz.sweepAuthCode) : undefined,
    };
    // Set when the caller got its `timeout`: an answer after that is a late one.
    let pastDeadline = false;
    const exchange = (async (): Promise<PlatformResult<D>> => {
      try {
        const response = await request(url, {
          method: "POST",
          dispatcher: dispatcherNow(),
          signal,
          headers: { "content-type": "application/json;charset=UTF-8" },
          body: encoded.bodyText,
        });
        const bodyText = await response.body.text();
        const classified = classify<D>(response.statusCode, bodyText, elapsed());
        const code = classified.ok ? 200 : classified.code;
        answered({ serviceName, httpStatus: response.statusCode, ...(code !== undefined ? { code } : {}), late: pastDeadline });
        return classified;
      } catch (error) {
        if (callOptions.signal?.aborted) return { ok: false, kind: "aborted", detail: "aborted by the caller", elapsedMs: elapsed() };
        if (signal.aborted) return { ok: false, kind: "timeout", detail: `no answer within ${listenMs} ms`, elapsedMs: elapsed() };
        const code = (error as { code?: string }).code ?? (error as Error).name;
        const untrusted = untrustedCertificateCode(error);
        const detail =
          untrusted !== undefined
            ? `TLS ${untrusted}: the platform's certificate is not trusted (${(error as Error).message}); a private CA goes in platform.caFile${tlsHint}`
            : refusedCodes.has(code)
              ? code
              : `${code}: ${(error as Error).message}`;
        return { ok: false, kind: "refused", detail, elapsedMs: elapsed() };
      } finally {
        lifetime.release();
      }
    })();
    let deadlineTimer: NodeJS.Timeout | undefined;
    const atDeadline = new Promise<"deadline">((resolve) => {
      if (listenMs > deadlineMs)
        deadlineTimer = setTimeout(() => {
          pastDeadline = true;
          resolve("deadline");
        }, deadlineMs);
    });
    const first = await Promise.race([exchange, atDeadline]);
    clearTimeout(deadlineTimer);
    const result: PlatformResult<D> = first === "deadline" ? { ok: false, kind: "timeout", detail: `no answer within ${deadlineMs} ms`, elapsedMs: elapsed() } : first;
    if (first === "deadline") {
      // Heard after the deadline: handed on, never lost (a late 200 to a bill is money taken).
      void exchange.then((late) => {
        const fields = { ...context, elapsedMs: late.elapsedMs, ok: late.ok, kind: late.ok ? undefined : late.kind, code: late.ok ? 200 : late.code };
        if (late.ok || (late.kind !== "timeout" && late.kind !== "aborted")) {
          counts.lateAnswers++;
          log.info(fields, "late platform answer");
        } else log.debug(fields, "no late platform answer");
        try {
          callOptions.onLateAnswer?.(late);
        } catch (error) {
          log.error({ err: error, ...context }, "late answer handler failed");
        }
      });
    }
    if (result.ok) counts.ok++;
    else counts.failures[result.kind]++;
    const logged = { ...context, elapsedMs: result.elapsedMs };
    if (result.ok) log.debug(logged, "platform call ok");
    // A business code is an answer (e.g. 0 "awaiting payment" to a pre-leave bill), not a
    // fault of the link: info, so the warnings stay meaningful. An abort is the caller's own.
    else if (result.kind === "business-code") log.info({ ...logged, kind: result.kind, code: result.code, platformMsg: result.msg }, "platform answered with a business code");
    else if (result.kind === "aborted") log.debug(logged, "platform call aborted");
    else log.warn({ ...logged, kind: result.kind, code: result.code, platformMsg: result.msg, status: result.status, detail: result.detail }, "platform call failed");
    return result;
  }

  return {
    enterNotify: (biz, o) => call("enterNotify", biz, o),
    leaveNotify: (biz, o) => call("leaveNotify", biz, o),
    preLeaveNotify: (biz, o) => call<PreLeavePaidData>("preLeaveNotify", biz, o),
    preEnterNotify: (biz, o) => call("preEnterNotify", biz, o),
    call,
    onAnswer(listener) {
      answerListeners.add(listener);
      return () => answerListeners.delete(listener);
    },
    urlFor,
    stats: () => structuredClone(counts),
    async close() {
      const dispatcher = ownAgent;
      if (!ownDispatcher || !dispatcher) return;
      // A call the platform hangs on must not hold the stop: a short grace for answers on
      // their way, then the sockets go (the outbox sends its reports again at the next start).
      let grace: NodeJS.Timeout | undefined;
      const closed = dispatcher.close().then(() => true);
      const done = await Promise.race([closed, new Promise<boolean>((resolve) => (grace = setTimeout(() => resolve(false), CLOSE_GRACE_MS)))]);
      clearTimeout(grace);
      if (!done) await dispatcher.destroy();
    },
  };
}

/**
 * The signal of one exchange: aborted when its listening window ends or when the caller's
 * signal aborts, whichever is first. `release()` (the exchange is over) clears the window's
 * timer and takes its listener off the caller's signal, so a finished call leaves nothing
 * behind. AbortSignal.timeout + AbortSignal.any did not: the timeout signal and its timer
 * lived on for the whole window after the answer (5 s for a report, 30 s for a bill: under
 * load, a thousand of them at a time), and every combined signal was registered on the
 * caller's long-lived stop signal (nodejs/node#55351: AbortSignal.any leaks when a source
 * signal is long-lived).
 */
function exchangeWindow(listenMs: number, callerSignal: AbortSignal | undefined): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${listenMs} ms`, "TimeoutError")), listenMs);
  // Like AbortSignal.timeout: the window alone never keeps the process up.
  timer.unref();
  const onCallerAbort = (): void => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      callerSignal?.removeEventListener("abort", onCallerAbort);
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
