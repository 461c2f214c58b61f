// Over 600 lines on purpose: one stand-in of the platform, whose services, fault modes and records
// share one state, as the real platform's do.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { request } from "undici";
import { ApiError, BodyBudget, createGuardedServer, parseRequestTarget, readBody, sendError } from "../../api/http-pipeline.js";
import { systemClock, type Clock } from "../../kernel/clock.js";
import { silentLogger, type Logger } from "../../kernel/log.js";
import { defaultReturnCodes, section3ServiceIds, type PlatformConfig, type Section3ServiceId } from "../config.js";
import { canonicalJson, encodeEnvelope, parseEnvelope, timestampText, verifyEnvelope, type ParsedEnvelope } from "../envelope.js";
import { PlatformError, PlatformErrorCode } from "../errors.js";
import { exceedsJsonDepth, maxJsonDepth } from "../json-scan.js";
import { idempotencyKey, section3Schemas, type PreLeavePaidData } from "../section3.js";
import { compactWireTime, formatWireTime, maskSecret } from "../wire.js";
import { faultProblems, pickFault, type EmulatorFaults, type FaultAction, type PushFacts } from "./faults.js";

export type { EmulatorFaults } from "./faults.js";

/** The demo credentials (docs/protocol.md §7), the emulator's default. */
export const demoCredentials = { pid: "P100001", key: "0F1E2D3C4B5A69788796A5B4C3D2E1F0" } as const;

/**
 * Answer codes of the emulated cloud. 200 and 0 follow the issue (0 = "awaiting payment" for
 * a pre-exit bill); rejections reuse our section-4 placeholder codes (docs/protocol.md).
 */
export const emulatorCodes = {
  ok: 200,
  awaitingPayment: 0,
  badJson: defaultReturnCodes.badJson,
  badEnvelope: defaultReturnCodes.badEnvelope,
  unknownService: defaultReturnCodes.unknownService,
  badSign: defaultReturnCodes.badSign,
  staleTimestamp: defaultReturnCodes.staleTimestamp,
  wrongPid: defaultReturnCodes.wrongPid,
  badBizContent: defaultReturnCodes.badBizContent,
  conflict: defaultReturnCodes.conflict,
} as const;

/** How the cloud answers a pre-exit bill for one plate. */
export type PlateBehaviour = "frictionless" | "awaiting" | { code: number; msg: string };

export interface EmulatorOptions {
  /** Default 0 (an ephemeral port); the CLI uses 8090. */
  port?: number;
  host?: string;
  pid?: string;
  key?: string;
  /** serviceName of each section-3 push, if the box is configured with other names. */
  serviceNames?: Partial<Record<Section3ServiceId, string>>;
  /** Accepted |now − timestamp| in seconds; 0 turns the check off. Default 300. */
  timestampWindowS?: number;
  frictionlessPlates?: readonly string[];
  /** payType answered for collected bills (1 WeChat). */
  payType?: number;
  /** Zone of the payTime it answers. */
  timeZone?: string;
  clock?: Clock;
  log?: Logger;
  /**
   * Serve https with this certificate and key (PEM), as a real cloud does; with `clientCa`
   * the emulator also demands a client certificate issued by that CA.
   */
  tls?: { cert: string; key: string; clientCa?: string };
}

export interface EmulatorAnswer {
  code: number;
  msg: string;
  data?: unknown;
}

/** One distinct push the cloud accepted (duplicates by idempotency key are counted, not added). */
export interface ReceivedPush {
  seq: number;
  service: Section3ServiceId;
  serviceName: string;
  path: string;
  idempotencyKey: string;
  /** The bizContent exactly as received and signed. */
  bizText: string;
  biz: Record<string, unknown>;
  /** bizContent was compact with keys in ASCII order (our sending rule, docs/protocol.md §2). */
  canonical: boolean;
  bizForm: "object" | "string";
  receivedAtMs: number;
  /** Deliveries of this key; 1 = delivered exactly once. */
  count: number;
  answer: EmulatorAnswer;
}

export interface RejectedPush {
  seq: number;
  serviceName: string | undefined;
  reason: string;
  code: number | undefined;
  msg: string;
  receivedAtMs: number;
}

export interface ReceivedFilter {
  service?: string;
  recordNo?: string;
  plateId?: string;
  plateNum?: string;
}

export interface EmulatorStats {
  received: number;
  deliveries: number;
  duplicates: number;
  rejected: number;
  byService: Record<string, number>;
}

export interface BoxCallOptions {
  pid?: string;
  key?: string;
  /** Epoch seconds as text; default now. */
  timestamp?: string;
  bizContentForm?: "object" | "string";
  deadlineMs?: number;
  contentType?: string;
}

export interface BoxAnswer {
  status: number;
  /** Parsed JSON, or undefined when the body is not JSON. */
  body: unknown;
  bodyText: string;
  sent: { bodyText: string; sign: string };
}

export interface Emulator {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  received(filter?: ReceivedFilter): ReceivedPush[];
  rejected(): RejectedPush[];
  /** Repeated deliveries of an already received push. */
  duplicates(): number;
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than calls). */
  connections(): number;
  stats(): EmulatorStats;
  /** Replaces the faults; `refuse` closes/reopens the listening socket before resolving. */
  setFaults(faults: EmulatorFaults): Promise<void>;
  faults(): EmulatorFaults;
  clearFaults(): Promise<void>;
  setPlate(plate: string, behaviour: PlateBehaviour | undefined): void;
  /** Forgets received and rejected pushes (faults and plates stay). */
  reset(): void;
  /** Resolves with the first received push matching the filter (already there or arriving). */
  waitFor(filter: ReceivedFilter, timeoutMs?: number): Promise<ReceivedPush>;
  /**
   * Acts as the cloud towards a box: a signed section-4 request. Each call is signed afresh;
   * one that would repeat the exact text of a call made within the last 300 s (the same
   * request twice in one second, as a test may send it) is stamped a second earlier, as a real
   * cloud's later repeat would differ, because the box refuses a byte-identical repeat as a
   * replay. An explicit `timestamp` is sent as given.
   */
  callBox(url: string, serviceName: string, biz: Record<string, unknown>, options?: BoxCallOptions): Promise<BoxAnswer>;
}

/**
 * Emulator options matching a box's platform config: same pid/key/service names, the
 * `platform.emulator` settings, the lot's zone. The demo uses it to run the cloud beside the lot.
 */
export function emulatorOptionsFromConfig(platform: PlatformConfig, extra: { timeZone?: string; log?: Logger; port?: number; clock?: Clock } = {}): EmulatorOptions {
  return {
    port: extra.port ?? platform.emulator.port,
    host: platform.emulator.host,
    pid: platform.pid,
    key: platform.key,
    serviceNames: platform.serviceNames,
    timestampWindowS: platform.emulator.timestampWindowS,
    frictionlessPlates: platform.emulator.frictionlessPlates,
    payType: platform.emulator.payType,
    ...(extra.timeZone !== undefined ? { timeZone: extra.timeZone } : {}),
    ...(extra.log !== undefined ? { log: extra.log } : {}),
    ...(extra.clock !== undefined ? { clock: extra.clock } : {}),
  };
}

const controlPrefix = "/_emulator/";
/** A section-3 push is under 2 KiB and a control request smaller still. */
const bodyLimitBytes = 64 * 1024;

/**
 * Starts the platform emulator: a real HTTP server playing the cloud's side of section 3
 * (docs/protocol.md §3, §7). It checks everything a strict cloud would check, keeps what it
 * accepted, de-duplicates by idempotency key, and misbehaves on demand.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger()).child({ sub: "emulator" });
  const pid = options.pid ?? demoCredentials.pid;
  const key = options.key ?? demoCredentials.key;
  const host = options.host ?? "127.0.0.1";
  const windowS = options.timestampWindowS ?? 300;
  const timeZone = options.timeZone ?? "Asia/Shanghai";
  const payType = options.payType ?? 1;
  const idByName = new Map<string, Section3ServiceId>();
  for (const id of section3ServiceIds) idByName.set(options.serviceNames?.[id] ?? id, id);

  const plates = new Map<string, PlateBehaviour>();
  for (const plate of options.frictionlessPlates ?? []) plates.set(plate, "frictionless");
  let faults: EmulatorFaults = {};
  // Timed hangs (`hang.forMs`) count from the moment the faults were set, on the real clock:
  // they hold real sockets.
  let faultsSetAtMs = performance.now();
  const heldTimers = new Map<NodeJS.Timeout, () => void>();
  let refuseTimer: NodeJS.Timeout | undefined;
  let seq = 0;
  let orderSeq = 0;
  let duplicates = 0;
  let deliveries = 0;
  const pushes = new Map<string, ReceivedPush>();
  /** Entry times this cloud changed on a box with editParkRecord (4.13), by recordNo. */
  const editedEnterTimes = new Map<string, string>();
  const rejectedPushes: RejectedPush[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  let listening = false;
  let stopped = false;

  const tls = options.tls;
  const bodyBudget = new BodyBudget();
  /** The body as UTF-8 text; ApiError 413 beyond the limit, 503 when the body budget is spent. */
  const readText = async (req: IncomingMessage): Promise<string> => (await readBody(req, bodyLimitBytes, { budget: bodyBudget, maxJsonDepth })).toString("utf8");
  // The same request pipeline as the box's own server: limits, timeouts, bad request lines.
  const server: Server = createGuardedServer({
    handle: dispatch,
    log,
    errorBody: emulatorErrorBody,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) } } : {}),
  });
  let connectionCount = 0;
  server.on("connection", (socket) => {
    connectionCount++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  let port = options.port ?? 0;
  await listen();
  port = (server.address() as AddressInfo).port;
  const url = `${tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}/`;
  log.info({ url, pid }, "platform emulator listening");

  async function listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    listening = true;
  }

  async function closeListener(): Promise<void> {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  }

  function matches(push: ReceivedPush, filter: ReceivedFilter): boolean {
    if (filter.service !== undefined && filter.service !== push.service && filter.service !== push.serviceName) return false;
    if (filter.recordNo !== undefined && push.biz.recordNo !== filter.recordNo) return false;
    if (filter.plateId !== undefined && push.biz.plateId !== filter.plateId) return false;
    if (filter.plateNum !== undefined && push.biz.plateNum !== filter.plateNum) return false;
    return true;
  }

  function reject(serviceName: string | undefined, reason: string, code: number | undefined, msg: string): void {
    rejectedPushes.push({ seq: ++seq, serviceName, reason, code, msg, receivedAtMs: clock.now() });
    log.warn({ serviceName, reason, code, detail: msg }, "push rejected");
  }

  function nextOrderNo(): string {
    // orderNo = TC<YYYYMMDDHHmmss><5 digits>, the form the box's own orders take.
    orderSeq = (orderSeq + 1) % 100_000;
    return `TC${compactWireTime(clock.now(), timeZone).slice(0, 14)}${String(orderSeq).padStart(5, "0")}`;
  }

  function preLeaveAnswer(biz: Record<string, unknown>): EmulatorAnswer {
    const paid = (): EmulatorAnswer => {
      const data: PreLeavePaidData = { payType, payTime: formatWireTime(clock.now(), timeZone), orderNo: nextOrderNo() };
      return { code: emulatorCodes.ok, msg: "成功", data };
    };
    const behaviour = plates.get(String(biz.plateNum));
    if (typeof behaviour === "object") return { code: behaviour.code, msg: behaviour.msg };
    if (biz.sweepCode === 1) return paid();
    if (behaviour === "frictionless") return paid();
    return { code: emulatorCodes.awaitingPayment, msg: "待支付" };
  }

  /** Validates and accepts one push; returns the answer. */
  function accept(envelope: ParsedEnvelope, path: string): EmulatorAnswer {
    const serviceName = envelope.serviceName;
    if (envelope.pid !== pid) {
      reject(serviceName, "wrong pid", emulatorCodes.wrongPid, `pid ${envelope.pid} is unknown`);
      return { code: emulatorCodes.wrongPid, msg: `pid ${envelope.pid} is unknown` };
    }
    try {
      verifyEnvelope(envelope, { key, nowMs: clock.now(), windowS, checkTimestamp: windowS > 0 });
    } catch (error) {
      const stale = error instanceof PlatformError && error.code === PlatformErrorCode.StaleTimestamp;
      const code = stale ? emulatorCodes.staleTimestamp : emulatorCodes.badSign;
      reject(serviceName, stale ? "stale timestamp" : "bad sign", code, (error as Error).message);
      return { code, msg: stale ? (error as Error).message : "签名错误 (sign error)" };
    }
    const service = idByName.get(serviceName);
    if (!service) {
      reject(serviceName, "unknown service", emulatorCodes.unknownService, `unknown serviceName ${serviceName}`);
      return { code: emulatorCodes.unknownService, msg: `unknown serviceName ${serviceName}` };
    }
    const checked = section3Schemas[service].safeParse(envelope.biz);
    if (!checked.success) {
      const msg = checked.error.issues.map((i) => `${i.path.join(".") || "(bizContent)"}: ${i.message}`).join("; ");
      reject(serviceName, "bad bizContent", emulatorCodes.badBizContent, msg);
      return { code: emulatorCodes.badBizContent, msg };
    }
    const biz = envelope.biz;
    const idKey = idempotencyKey(service, biz);
    const prior = pushes.get(idKey);
    deliveries++;
    if (prior) {
      prior.count++;
      duplicates++;
      log.info({ serviceName, key: idKey, count: prior.count }, "duplicate push; answered as before");
      return prior.answer;
    }
    if (service === "leaveNotify") {
      // The exit report's enterTime must equal the entry report's, or the cloud sees two
      // stays (docs/protocol.md §7).
      // The time the cloud knows: the entry report's, or its own later edit (4.13
      // editParkRecord, docs/protocol.md §3.2).
      const entry = pushes.get(idempotencyKey("enterNotify", biz));
      const knownEnterTime = editedEnterTimes.get(String(biz.recordNo)) ?? entry?.biz.enterTime;
      if (entry && knownEnterTime !== biz.enterTime) {
        deliveries--;
        const msg = `enterTime ${String(biz.enterTime)} differs from the entry time the platform knows, ${String(knownEnterTime)}`;
        reject(serviceName, "enterTime mismatch", emulatorCodes.conflict, msg);
        return { code: emulatorCodes.conflict, msg };
      }
    }
    const answer = service === "preLeaveNotify" ? preLeaveAnswer(biz) : { code: emulatorCodes.ok, msg: "成功" };
    let canonical = false;
    try {
      canonical = canonicalJson(biz) === envelope.bizText;
    } catch {
      canonical = false;
    }
    const push: ReceivedPush = {
      seq: ++seq,
      service,
      serviceName,
      path,
      idempotencyKey: idKey,
      bizText: envelope.bizText,
      biz,
      canonical,
      bizForm: envelope.bizForm,
      receivedAtMs: clock.now(),
      count: 1,
      answer,
    };
    pushes.set(idKey, push);
    log.info(
      { serviceName, key: idKey, code: answer.code, sweepAuthCodeMasked: typeof biz.sweepAuthCode === "string" ? maskSecret(biz.sweepAuthCode) : undefined },
      "push received",
    );
    for (const waiter of [...waiters]) waiter();
    return answer;
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const target = parseRequestTarget(req.url);
      const path = target.pathname;
      if (path.startsWith(controlPrefix)) {
        await control(req, res, path.slice(controlPrefix.length), target.searchParams);
        return;
      }
      if (req.method !== "POST") {
        req.resume();
        sendJson(res, 405, { code: emulatorCodes.badEnvelope, msg: "use POST" });
        return;
      }
      const bodyText = await readText(req);
      let envelope: ParsedEnvelope | undefined;
      let parseError: PlatformError | undefined;
      try {
        envelope = parseEnvelope(bodyText);
      } catch (error) {
        if (!(error instanceof PlatformError)) throw error;
        parseError = error;
      }
      const facts: PushFacts = {
        service: envelope ? (idByName.get(envelope.serviceName) ?? envelope.serviceName) : "",
        serviceName: envelope?.serviceName ?? "",
        ...(envelope && typeof envelope.biz.plateNum === "string" ? { plate: envelope.biz.plateNum } : {}),
        ...(envelope && typeof envelope.biz.recordNo === "string" ? { recordNo: envelope.biz.recordNo } : {}),
        ...(envelope && typeof envelope.biz.plateId === "string" ? { plateId: envelope.biz.plateId } : {}),
      };
      const fault = pickFault(faults, facts, performance.now() - faultsSetAtMs);
      if (fault && (await applyFault(fault, req, res, facts))) return;
      if (!envelope) {
        const code = parseError?.code === PlatformErrorCode.BadJson ? emulatorCodes.badJson : emulatorCodes.badEnvelope;
        reject(undefined, "bad envelope", code, parseError?.message ?? "unreadable");
        sendJson(res, 200, { code, msg: parseError?.message ?? "unreadable" });
        return;
      }
      sendJson(res, 200, accept(envelope, path));
    } catch (error) {
      if (error instanceof ApiError) {
        // Bad target, body too large, or the body budget spent: refused like any push.
        req.resume();
        reject(undefined, error.code, undefined, error.message);
        sendError(res, error.status, error.code, error.message, emulatorErrorBody);
        return;
      }
      log.error({ err: error }, "emulator failed on a request");
      if (!res.headersSent) sendJson(res, 500, { code: 500, msg: "emulator error" });
    }
  }

  /** true when the fault answered (or swallowed) the request. */
  async function applyFault(fault: FaultAction, req: IncomingMessage, res: ServerResponse, facts: PushFacts): Promise<boolean> {
    log.info({ fault: fault.kind, serviceName: facts.serviceName }, "fault applied");
    switch (fault.kind) {
      case "hang": {
        // Without forMs never answered; the socket is destroyed on stop() or when refusing.
        if (fault.forMs === undefined) return true;
        await holdUntil(faultsSetAtMs + fault.forMs);
        if (stopped) return true;
        if (fault.then === "drop") {
          req.socket.destroy();
          return true;
        }
        log.info({ serviceName: facts.serviceName }, "held push answered late");
        return false;
      }
      case "drop":
        req.socket.destroy();
        return true;
      case "delay":
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        return stopped;
      case "http-status":
        reject(facts.serviceName, "fault: http status", undefined, `HTTP ${fault.status}`);
        res.writeHead(fault.status, { "content-type": "text/plain; charset=utf-8" }).end(fault.body ?? "Internal Server Error");
        return true;
      case "malformed":
        reject(facts.serviceName, "fault: malformed", undefined, "malformed body");
        res.writeHead(200, { "content-type": "application/json;charset=UTF-8" }).end(fault.body ?? '{"code":200,"msg":"成');
        return true;
      case "business":
        reject(facts.serviceName, "fault: business error", fault.code, fault.msg);
        sendJson(res, 200, { code: fault.code, msg: fault.msg });
        return true;
    }
  }

  /** Waits until `atMs` on the performance clock, or until the emulator stops. */
  async function holdUntil(atMs: number): Promise<void> {
    const waitMs = Math.max(0, atMs - performance.now());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        heldTimers.delete(timer);
        resolve();
      }, waitMs);
      heldTimers.set(timer, resolve);
    });
  }

  async function control(req: IncomingMessage, res: ServerResponse, route: string, query: URLSearchParams): Promise<void> {
    const method = req.method ?? "GET";
    const readJson = async (): Promise<unknown> => {
      const text = await readText(req);
      if (exceedsJsonDepth(text)) throw new ControlError("body nests too deep");
      try {
        return text.trim() === "" ? {} : JSON.parse(text);
      } catch {
        throw new ControlError("body is not JSON");
      }
    };
    try {
      if (route === "received" && method === "GET") {
        const filter: ReceivedFilter = {};
        for (const name of ["service", "recordNo", "plateId", "plateNum"] as const) {
          const value = query.get(name);
          if (value !== null) filter[name] = value;
        }
        sendJson(res, 200, { items: api.received(filter) });
      } else if (route === "rejected" && method === "GET") {
        sendJson(res, 200, { items: api.rejected() });
      } else if (route === "stats" && method === "GET") {
        sendJson(res, 200, api.stats());
      } else if (route === "faults" && method === "GET") {
        sendJson(res, 200, api.faults());
      } else if (route === "faults" && method === "POST") {
        const body = await readJson();
        const problems = faultProblems(body);
        if (problems.length > 0) throw new ControlError(problems.join("; "));
        // Answer first and let it reach the socket: refusing closes this very connection.
        const flushed = new Promise<void>((resolve) => res.once("finish", () => resolve()));
        sendJson(res, 200, { ok: true, faults: body });
        await flushed;
        await api.setFaults(body as EmulatorFaults);
      } else if (route === "faults" && method === "DELETE") {
        await api.clearFaults();
        sendJson(res, 200, { ok: true });
      } else if (route === "plates" && method === "POST") {
        const body = (await readJson()) as { plate?: unknown; behaviour?: unknown };
        const b = body.behaviour;
        const valid =
          b === null ||
          b === undefined ||
          b === "frictionless" ||
          b === "awaiting" ||
          (typeof b === "object" && Number.isInteger((b as { code?: unknown }).code) && typeof (b as { msg?: unknown }).msg === "string");
        if (typeof body.plate !== "string" || !valid) throw new ControlError('send {"plate": "...", "behaviour": "frictionless" | "awaiting" | {"code","msg"} | null}');
        api.setPlate(body.plate, (b ?? undefined) as PlateBehaviour | undefined);
        sendJson(res, 200, { ok: true });
      } else if (route === "reset" && method === "POST") {
        api.reset();
        sendJson(res, 200, { ok: true });
      } else if (route === "call" && method === "POST") {
        const body = (await readJson()) as { to?: unknown; service?: unknown; biz?: unknown };
        if (typeof body.to !== "string" || typeof body.service !== "string" || !body.biz || typeof body.biz !== "object") {
          throw new ControlError('send {"to": "<box url>", "service": "<serviceName>", "biz": {...}}');
        }
        sendJson(res, 200, await api.callBox(body.to, body.service, body.biz as Record<string, unknown>));
      } else {
        req.resume();
        sendJson(res, 404, { error: `no control route ${method} ${controlPrefix}${route}`, code: "E_NOT_FOUND" });
      }
    } catch (error) {
      if (error instanceof ControlError) sendJson(res, 400, { error: error.message, code: "E_CONTROL" });
      else throw error;
    }
  }

  /** Signatures of the calls made towards boxes, with the second they were sent (see callBox). */
  const sentSigns = new Map<string, number>();
  const api: Emulator = {
    url,
    port,
    async stop() {
      stopped = true;
      if (refuseTimer) clearTimeout(refuseTimer);
      // Held pushes are never answered once stopped; their sockets close with the listener.
      for (const [timer, release] of heldTimers) {
        clearTimeout(timer);
        release();
      }
      heldTimers.clear();
      for (const waiter of [...waiters]) waiter();
      await closeListener();
    },
    received(filter = {}) {
      return [...pushes.values()].filter((p) => matches(p, filter)).map((p) => structuredClone(p));
    },
    rejected: () => rejectedPushes.map((r) => ({ ...r })),
    duplicates: () => duplicates,
    connections: () => connectionCount,
    stats() {
      const byService: Record<string, number> = {};
      for (const p of pushes.values()) byService[p.service] = (byService[p.service] ?? 0) + 1;
      return { received: pushes.size, deliveries, duplicates, rejected: rejectedPushes.length, byService };
    },
    async setFaults(next) {
      faults = structuredClone(next);
      faultsSetAtMs = performance.now();
      if (refuseTimer) clearTimeout(refuseTimer);
      refuseTimer = undefined;
      if (faults.refuse) {
        await closeListener();
        log.info({ forMs: faults.refuseForMs }, "refusing connections");
        if (faults.refuseForMs !== undefined) {
          refuseTimer = setTimeout(() => {
            refuseTimer = undefined;
            faults = { ...faults, refuse: false };
            if (!stopped) void listen().catch((error: unknown) => log.error({ err: error }, "cannot listen again"));
          }, faults.refuseForMs);
        }
      } else if (!listening && !stopped) {
        await listen();
      }
    },
    faults: () => structuredClone(faults),
    clearFaults: () => api.setFaults({}),
    setPlate(plate, behaviour) {
      if (behaviour === undefined) plates.delete(plate);
      else plates.set(plate, behaviour);
    },
    reset() {
      pushes.clear();
      rejectedPushes.length = 0;
      duplicates = 0;
      deliveries = 0;
    },
    waitFor(filter, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = [...pushes.values()].find((p) => matches(p, filter));
          if (found) {
            done();
            resolve(structuredClone(found));
            return true;
          }
          if (stopped) {
            done();
            reject(new Error("emulator stopped"));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no push matching ${JSON.stringify(filter)} within ${timeoutMs} ms`));
        }, timeoutMs);
        const listener = (): void => void check();
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(listener);
        };
        if (!check()) waiters.add(listener);
      });
    },
    async callBox(boxUrl, serviceName, biz, callOptions = {}) {
      const nowS = Math.floor(clock.now() / 1000);
      for (const [sign, sentS] of sentSigns) if (sentS < nowS - 300) sentSigns.delete(sign);
      const encode = (timestamp: string) =>
        encodeEnvelope({ pid: callOptions.pid ?? pid, key: callOptions.key ?? key, serviceName, timestamp, biz, bizContentForm: callOptions.bizContentForm ?? "object" });
      let encoded = encode(callOptions.timestamp ?? timestampText(clock.now()));
      for (let back = 1; callOptions.timestamp === undefined && sentSigns.has(encoded.sign) && back < 250; back++) encoded = encode(String(nowS - back));
      sentSigns.set(encoded.sign, nowS);
      const answer = await postEnvelope(boxUrl, encoded.bodyText, encoded.sign, callOptions);
      // An accepted edit of the entry time (4.13, by its default serviceName) is what this cloud
      // knows from now on: the exit report must carry it.
      const code = (answer.body as { code?: unknown } | undefined)?.code;
      if (serviceName === "editParkRecord" && (code === 200 || code === "200") && typeof biz.enterTime === "string" && typeof biz.recordNo === "string") {
        editedEnterTimes.set(biz.recordNo, biz.enterTime);
      }
      return answer;
    },
  };
  return api;
}

class ControlError extends Error {}

/** A refusal before the envelope is read: the cloud's `{code, msg}` plus the pipeline's stable code. */
function emulatorErrorBody(_status: number, code: string, message: string): unknown {
  return { code: emulatorCodes.badEnvelope, msg: message, error: { code, message } };
}

/** POSTs a signed body to a box and reads the answer (also used by `lanekeeper emulator call`). */
export async function postEnvelope(boxUrl: string, bodyText: string, sign: string, options: { deadlineMs?: number; contentType?: string } = {}): Promise<BoxAnswer> {
  const response = await request(boxUrl, {
    method: "POST",
    headers: { "content-type": options.contentType ?? "application/json;charset=UTF-8" },
    body: bodyText,
    signal: AbortSignal.timeout(options.deadlineMs ?? 10_000),
  });
  const text = await response.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.statusCode, body, bodyText: text, sent: { bodyText, sign } };
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { "content-type": "application/json;charset=UTF-8" }).end(JSON.stringify(payload));
}
