import type { AnswerQueue } from "../answers.js";
import { MAX_PAYLOAD_BYTES, sniffId, TOO_DEEP_MESSAGE, tooDeep } from "../commands.js";
import { errorText, type FleetContext, type FleetExtension, type InboundMessage } from "../extension.js";
import { platformWrappedRequestSchema, platformWrappedResponseSchema, schemaMessage } from "../payloads.js";

/** Gets the section-4 envelope as raw text (the signature covers the raw bizContent text). */
export type PlatformRequestHandler = (rawEnvelopeText: string) => Promise<object>;

/**
 * `platform/req` → `platform/res`: section-4 envelopes over MQTT, for boxes the platform cannot
 * reach over HTTP. Two forms, told apart by content:
 * - wrapped `{v?, id, envelope}` → `{v, id, response}` (works on 3.1.1);
 * - the raw envelope (MQTT 5) → the raw response, matched by correlation data.
 * Either goes to the request's response topic when it names one, else `platform/res`.
 */
export class PlatformRequests implements FleetExtension {
  readonly name = "platform";
  readonly inbound = "platformRequest";
  handler: PlatformRequestHandler | undefined;

  constructor(
    private readonly ctx: FleetContext,
    private readonly answers: AnswerQueue,
  ) {}

  async handle({ payload, packet }: InboundMessage): Promise<void> {
    const { counters, log, topics } = this.ctx;
    const route = this.answers.route(packet, topics.platformResponse());
    const wrappedError = (id: string | null, error: string, counter: string): void => {
      counters.count(counter);
      log.warn({ id, error }, "platform request refused");
      void this.answers.answer(route, platformWrappedResponseSchema, { v: 1, id, error });
    };
    if (payload.length === 0) {
      // A cleared retained message, as on cmd/<name> and jobs/<id>: nothing to answer.
      counters.count("platformEmpty");
      return;
    }
    if (payload.length > MAX_PAYLOAD_BYTES) return wrappedError(sniffId(payload), `payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "platformOversized");
    const text = payload.toString("utf8");
    if (tooDeep(text)) return wrappedError(sniffId(payload), TOO_DEEP_MESSAGE, "platformTooDeep");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return wrappedError(sniffId(payload), "payload is not JSON", "platformNonJson");
    }
    const isWrapped = typeof raw === "object" && raw !== null && "envelope" in raw;
    if (isWrapped) {
      const request = platformWrappedRequestSchema.safeParse(raw);
      const id = typeof (raw as { id?: unknown }).id === "string" ? (raw as { id: string }).id : null;
      if (!request.success) return wrappedError(id, schemaMessage(request.error), "platformInvalid");
      if (!this.handler) return wrappedError(request.data.id, "platform requests over MQTT are not enabled on this box", "platformNoHandler");
      const envelopeText = typeof request.data.envelope === "string" ? request.data.envelope : JSON.stringify(request.data.envelope);
      try {
        const response = await this.handler(envelopeText);
        counters.count("platformAnswered");
        void this.answers.answer(route, platformWrappedResponseSchema, { v: 1, id: request.data.id, response: response as Record<string, unknown> });
      } catch (error) {
        wrappedError(request.data.id, `handler failed: ${errorText(error)}`, "platformFailed");
      }
      return;
    }
    // Raw form: the envelope itself; the response is the platform's {code, msg, data}.
    let response: object;
    if (!this.handler) {
      counters.count("platformNoHandler");
      response = { code: 503, msg: "platform requests over MQTT are not enabled on this box" };
    } else {
      try {
        response = await this.handler(text);
        counters.count("platformAnswered");
      } catch (error) {
        counters.count("platformFailed");
        log.error({ err: error }, "platform handler failed");
        response = { code: 500, msg: "internal error" };
      }
    }
    if (route.correlationData === undefined && route.topic === topics.platformResponse()) {
      log.warn("raw platform request without correlation data: the answer cannot be matched");
    }
    void this.answers.sendRoute(route, JSON.stringify(response));
  }
}
