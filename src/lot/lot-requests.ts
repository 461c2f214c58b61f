import { randomUUID } from "node:crypto";
import type { IClientPublishOptions, IClientSubscribeOptions, IPublishPacket } from "mqtt";
import { z } from "zod";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { LaneAnswer, LaneRefusalReason, RemoteControl } from "../platform/ports.js";
import { LOT_PAYLOAD_VERSION, LotPayloadError, decode, type Decoded } from "./lot-payloads.js";
import { topicLevel } from "./lot-topics.js";
import type { LotView } from "./lot-view.js";

/*
 * Forwarded remote control (docs/mqtt.md "Forwarded remote control"): a section-4 `remoteDev`
 * for a channel that is a lane of another box of the lot goes to that box over the lot's
 * broker with MQTT 5 request/response, and that box's answer is the platform's answer.
 *
 * The requester publishes to `lot/<parkCode>/requests/<target>` with its own
 * `lot/<parkCode>/responses/<requester>` as the response topic and the request id as the
 * correlation data, and waits at most `lot.share.forwardWaitMs`. The request expires before
 * that wait is over — on the broker (MQTT 5 message expiry) and at the target (`expiresAtMs`,
 * checked against the target's clock) — so a request the requester gave up on never moves a
 * barrier. The target applies each request id at most once: a repeat is answered with the
 * first answer.
 */

/** A forwarded command: what `remoteDev` carries, with the channel it names. */
export type ForwardedCommand = Omit<RemoteControl, "laneId">;

const deviceIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const requestIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
const refusalReasons = [
  "not-found",
  "no-vehicle",
  "lane-invalid",
  "lot-full",
  "busy",
  "expired",
  "denied",
  "unavailable",
  "box-unreachable",
] as const satisfies readonly LaneRefusalReason[];

export const remoteRequestSchema = z
  .strictObject({
    v: z.literal(LOT_PAYLOAD_VERSION),
    id: requestIdSchema,
    /** The box that forwards (its response topic is `responses/<from>`). */
    from: deviceIdSchema,
    /** The box that owns the channel (must be the topic's). */
    to: deviceIdSchema,
    channelId: z.string().min(1).max(30),
    type: z.union([z.literal(0), z.literal(1), z.literal(2)]),
    plateId: z.string().max(128),
    operator: z.string().max(128),
    cmd: z.union([z.literal(0), z.literal(1)]),
    openGateCase: z.int().nullable(),
    /** The requester's clock: after this the target does not act on it. */
    expiresAtMs: z.int().min(0),
  })
  .refine((r) => !((r.type === 2 || r.cmd === 1) && r.openGateCase === null), { message: "openGateCase is required for a free/abnormal release and a manual raise" });
export type RemoteRequest = z.infer<typeof remoteRequestSchema>;

export const remoteAnswerSchema = z.discriminatedUnion("ok", [
  z.object({ v: z.literal(LOT_PAYLOAD_VERSION), id: requestIdSchema, deviceId: deviceIdSchema, ok: z.literal(true), msg: z.string().max(200).optional() }),
  z.object({
    v: z.literal(LOT_PAYLOAD_VERSION),
    id: requestIdSchema,
    deviceId: deviceIdSchema,
    ok: z.literal(false),
    reason: z.enum(refusalReasons),
    msg: z.string().max(200),
  }),
]);
export type RemoteAnswer = z.infer<typeof remoteAnswerSchema>;

/** Stable codes of a rejected request or answer (logged, and counted under this name). */
export const LotRequestError = {
  ...LotPayloadError,
  /** No response topic or correlation data, or ones that do not fit the payload. */
  NoReturn: "E_LOT_REQUEST_NO_RETURN",
} as const;

/** A `requests/<deviceId>` message addressed to `topicDeviceId`. */
export function decodeRemoteRequest(payload: Buffer, topicDeviceId: string): Decoded<RemoteRequest> {
  const decoded = decode(remoteRequestSchema, payload);
  if (decoded.ok && decoded.value.to !== topicDeviceId) {
    return { ok: false, code: LotPayloadError.TopicMismatch, message: `a request to ${decoded.value.to} on the topic of ${topicDeviceId}` };
  }
  return decoded;
}

export function decodeRemoteAnswer(payload: Buffer): Decoded<RemoteAnswer> {
  return decode(remoteAnswerSchema, payload);
}

/** The request/response topics of one lot (`base` is `<topicRoot>/lot/<parkCode>`). */
export function requestTopics(base: string) {
  return {
    request: (deviceId: string) => `${base}/requests/${topicLevel(deviceId)}`,
    response: (deviceId: string) => `${base}/responses/${topicLevel(deviceId)}`,
  };
}

/** What the lot share lends the requests: its client, while connected. */
export interface RequestLink {
  readonly protocolVersion: 4 | 5;
  connected(): boolean;
  publish(topic: string, text: string, options: IClientPublishOptions): Promise<void>;
  /** A rejected message: logged and counted with the lot's other rejections. */
  reject(topic: string, code: string, message: string): void;
}

export interface LotRequestsOptions {
  deviceId: string;
  /** `<topicRoot>/lot/<parkCode>` */
  base: string;
  view: LotView;
  link: RequestLink;
  /** How long a forward waits for the target's answer (`lot.share.forwardWaitMs`). */
  waitMs: number;
  /** This box's own lanes decide a request forwarded to it. */
  remoteControl?: (command: ForwardedCommand) => Promise<LaneAnswer>;
  clock: Clock;
  log: Logger;
}

interface Waiting {
  target: string;
  channelId: string;
  resolve(answer: LaneAnswer): void;
  timer: TimerHandle;
}

interface Applied {
  answer: Promise<LaneAnswer>;
  atMs: number;
}

/** Applied request ids are kept this long (every request expires well before). */
const APPLIED_KEEP_MS = 10 * 60_000;
const APPLIED_MAX = 10_000;
/** How long an answer waits on the broker for a requester that is briefly away. */
const ANSWER_EXPIRY_S = 30;

/** The share of the wait the request may live: the rest is for the target's work and its answer. */
export function requestLifetimeMs(waitMs: number): number {
  return Math.max(100, Math.floor(waitMs * 0.75));
}

export class LotRequests {
  private readonly topics: ReturnType<typeof requestTopics>;
  private readonly waiting = new Map<string, Waiting>();
  private readonly applied = new Map<string, Applied>();
  private readonly counts = { forwarded: 0, forwardAnswered: 0, forwardUnreachable: 0, answersLate: 0, requestsApplied: 0, requestsRepeated: 0, requestsExpired: 0 };

  constructor(private readonly options: LotRequestsOptions) {
    this.topics = requestTopics(options.base);
  }

  /** The subscriptions this box needs after every connect (none on 3.1.1: no request/response there). */
  subscriptions(): Record<string, IClientSubscribeOptions> {
    if (this.options.link.protocolVersion !== 5) return {};
    const me = this.options.deviceId;
    return { [this.topics.request(me)]: { qos: 1 }, [this.topics.response(me)]: { qos: 1 } };
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  /** 4.12 for a channel of another box of the lot, answered with that box's result; undefined when no other box announced the channel. */
  forward(command: ForwardedCommand): Promise<LaneAnswer> | undefined {
    const me = this.options.deviceId;
    const owners = this.options.view.allBoxes().filter((box) => box.deviceId !== me && box.lanes.some((lane) => lane.channelId === command.channelId));
    if (owners.length === 0) return undefined;
    if (owners.length > 1) {
      const names = owners.map((box) => box.deviceId).join(", ");
      return Promise.resolve({ ok: false, reason: "lane-invalid", msg: `channel ${command.channelId} is announced by more than one box of the lot (${names})` });
    }
    const target = owners[0]!;
    const unreachable = (why: string): Promise<LaneAnswer> => {
      this.counts.forwardUnreachable++;
      this.options.log.warn({ channelId: command.channelId, target: target.deviceId, why }, "remote control not forwarded");
      return Promise.resolve({ ok: false, reason: "box-unreachable", msg: `channel ${command.channelId} is a lane of box ${target.deviceId}: ${why}` });
    };
    const { link } = this.options;
    if (link.protocolVersion !== 5) return unreachable("the lot broker speaks MQTT 3.1.1, which has no request/response (forwarding needs protocolVersion 5)");
    if (!link.connected()) return unreachable("this box is not connected to the lot broker");
    if (!target.online) return unreachable(`that box is offline (since ${new Date(target.lastSeenMs).toISOString()})`);
    return this.send(target.deviceId, command);
  }

  private send(target: string, command: ForwardedCommand): Promise<LaneAnswer> {
    const { clock, link, waitMs, deviceId } = this.options;
    const id = randomUUID().replace(/-/g, "");
    const lifetimeMs = requestLifetimeMs(waitMs);
    const request: RemoteRequest = { v: LOT_PAYLOAD_VERSION, id, from: deviceId, to: target, ...command, expiresAtMs: clock.now() + lifetimeMs };
    this.counts.forwarded++;
    return new Promise<LaneAnswer>((resolve) => {
      const settle = (answer: LaneAnswer) => {
        const held = this.waiting.get(id);
        if (!held) return;
        clock.clearTimeout(held.timer);
        this.waiting.delete(id);
        resolve(answer);
      };
      const timer = clock.setTimeout(() => {
        this.counts.forwardUnreachable++;
        this.options.log.warn({ target, channelId: command.channelId, id, waitMs }, "forwarded remote control not answered in time");
        settle({
          ok: false,
          reason: "box-unreachable",
          msg: `channel ${command.channelId} is a lane of box ${target}, which did not answer within ${waitMs} ms (it does not act on the request after it expired)`,
        });
      }, waitMs);
      this.waiting.set(id, { target, channelId: command.channelId, resolve: settle, timer });
      const properties = {
        responseTopic: this.topics.response(deviceId),
        correlationData: Buffer.from(id),
        // Whole seconds on the broker, rounded up; the target checks expiresAtMs to the ms.
        messageExpiryInterval: Math.ceil(lifetimeMs / 1000),
      };
      link.publish(this.topics.request(target), JSON.stringify(request), { qos: 1, retain: false, properties }).catch((error: unknown) => {
        this.counts.forwardUnreachable++;
        settle({ ok: false, reason: "box-unreachable", msg: `channel ${command.channelId} is a lane of box ${target}: the request was not sent (${String(error)})` });
      });
    });
  }

  /** Takes a message on this box's request or response topic; false for any other topic. */
  take(topic: string, payload: Buffer, packet: IPublishPacket): boolean {
    const me = this.options.deviceId;
    if (topic === this.topics.request(me)) {
      void this.onRequest(topic, payload, packet);
      return true;
    }
    if (topic === this.topics.response(me)) {
      this.onAnswer(topic, payload, packet);
      return true;
    }
    return false;
  }

  private onAnswer(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const decoded = decodeRemoteAnswer(payload);
    if (!decoded.ok) return this.options.link.reject(topic, decoded.code, decoded.message);
    const answer = decoded.value;
    const correlation = packet.properties?.correlationData?.toString("utf8");
    if (correlation !== answer.id)
      return this.options.link.reject(topic, LotRequestError.NoReturn, `correlation data ${JSON.stringify(correlation)} is not the answer's id ${answer.id}`);
    const held = this.waiting.get(answer.id);
    if (!held) {
      this.counts.answersLate++;
      this.options.log.warn({ id: answer.id, from: answer.deviceId, ok: answer.ok }, "an answer to a forwarded remote control came after the wait (or was never asked)");
      return;
    }
    if (held.target !== answer.deviceId)
      return this.options.link.reject(topic, LotPayloadError.TopicMismatch, `the answer to a request for ${held.target} came from ${answer.deviceId}`);
    this.counts.forwardAnswered++;
    held.resolve(
      answer.ok
        ? { ok: true, value: undefined, ...(answer.msg !== undefined ? { msg: answer.msg } : {}) }
        : { ok: false, reason: answer.reason, msg: `box ${answer.deviceId}: ${answer.msg}` },
    );
  }

  private async onRequest(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const { link, clock, log } = this.options;
    const decoded = decodeRemoteRequest(payload, this.options.deviceId);
    if (!decoded.ok) return link.reject(topic, decoded.code, decoded.message);
    const request = decoded.value;
    const responseTopic = packet.properties?.responseTopic;
    const correlation = packet.properties?.correlationData;
    if (responseTopic !== this.topics.response(request.from) || correlation?.toString("utf8") !== request.id) {
      return link.reject(
        topic,
        LotRequestError.NoReturn,
        `response topic ${JSON.stringify(responseTopic)} / correlation data do not name ${request.from}'s answer to ${request.id}`,
      );
    }
    const key = `${request.from}/${request.id}`;
    let applied = this.applied.get(key);
    if (applied) {
      this.counts.requestsRepeated++;
      log.info({ id: request.id, from: request.from }, "a forwarded remote control came again; answered with the first answer");
    } else {
      applied = { answer: this.apply(request), atMs: clock.now() };
      this.remember(key, applied);
    }
    const answer = await applied.answer;
    const body: RemoteAnswer = answer.ok
      ? { v: LOT_PAYLOAD_VERSION, id: request.id, deviceId: this.options.deviceId, ok: true, ...(answer.msg !== undefined ? { msg: answer.msg.slice(0, 200) } : {}) }
      : { v: LOT_PAYLOAD_VERSION, id: request.id, deviceId: this.options.deviceId, ok: false, reason: answer.reason, msg: answer.msg.slice(0, 200) };
    const options: IClientPublishOptions = { qos: 1, retain: false, properties: { correlationData: correlation, messageExpiryInterval: ANSWER_EXPIRY_S } };
    await link
      .publish(responseTopic, JSON.stringify(body), options)
      .catch((error: unknown) => log.warn({ err: error, id: request.id, to: request.from }, "answer to a forwarded remote control not sent"));
  }

  private async apply(request: RemoteRequest): Promise<LaneAnswer> {
    const { clock, log, remoteControl } = this.options;
    const lateMs = clock.now() - request.expiresAtMs;
    if (lateMs > 0) {
      this.counts.requestsExpired++;
      log.warn({ id: request.id, from: request.from, lateMs }, "a forwarded remote control came after it expired; not applied");
      return { ok: false, reason: "expired", msg: `the request reached ${this.options.deviceId} ${lateMs} ms after it expired; nothing was done` };
    }
    if (!remoteControl) return { ok: false, reason: "unavailable", msg: "this box does not take forwarded remote control" };
    this.counts.requestsApplied++;
    const command: ForwardedCommand = {
      channelId: request.channelId,
      type: request.type,
      plateId: request.plateId,
      operator: request.operator,
      cmd: request.cmd,
      openGateCase: request.openGateCase,
    };
    log.info({ id: request.id, from: request.from, channelId: command.channelId, type: command.type, cmd: command.cmd, operator: command.operator }, "forwarded remote control");
    try {
      return await remoteControl(command);
    } catch (error) {
      log.error({ err: error, id: request.id, from: request.from }, "forwarded remote control failed");
      return { ok: false, reason: "unavailable", msg: "the box failed to apply it; see its log" };
    }
  }

  private remember(key: string, applied: Applied): void {
    const oldest = this.options.clock.now() - APPLIED_KEEP_MS;
    for (const [k, entry] of this.applied) {
      if (entry.atMs >= oldest && this.applied.size < APPLIED_MAX) break;
      this.applied.delete(k);
    }
    this.applied.set(key, applied);
  }

  /** Stops waiting: every forward still open is answered "unreachable" now. */
  stop(): void {
    for (const [id, held] of [...this.waiting]) {
      this.counts.forwardUnreachable++;
      held.resolve({ ok: false, reason: "box-unreachable", msg: `channel ${held.channelId} is a lane of box ${held.target}; this box is stopping (request ${id} unanswered)` });
    }
  }
}
