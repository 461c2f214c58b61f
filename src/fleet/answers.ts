import type { IClientPublishOptions, IPublishPacket } from "mqtt";
import type { z } from "zod";
import type { FleetConnection, Outgoing } from "./connection.js";
import { checked, type Connection, type FleetContext, type FleetExtension } from "./extension.js";

/** Where an answer goes: a topic (none: unroutable) and the MQTT 5 correlation data to echo. */
export interface AnswerRoute {
  topic: string | undefined;
  correlationData: Buffer | undefined;
}

/**
 * The QoS 1 answers of the downstream features (res/<name>, jobs/<id>/status, platform/res):
 * sent now, or held (bounded) while offline and sent after the next connect, in order.
 */
export class AnswerQueue implements FleetExtension {
  readonly name = "answers";
  private held: Outgoing[] = [];

  constructor(
    private readonly ctx: FleetContext,
    private readonly connection: FleetConnection,
    private readonly maxHeld: number,
  ) {}

  /** How many answers wait for the next connect. */
  get size(): number {
    return this.held.length;
  }

  onConnected(conn: Connection): void {
    const answers = this.held;
    this.held = [];
    for (const answer of answers) this.connection.sendRaw(conn, answer).catch((error: unknown) => this.ctx.log.warn({ err: error }, `${answer.topic} not sent`));
  }

  /** Where an answer goes: the MQTT 5 response topic when valid, else the default topic. */
  route(packet: IPublishPacket, fallback: string | undefined): AnswerRoute {
    const props = packet.properties;
    const responseTopic = props?.responseTopic;
    const topic = typeof responseTopic === "string" && responseTopic.length > 0 && !/[#+\u0000]/.test(responseTopic) ? responseTopic : fallback;
    const correlationData = props?.correlationData;
    return { topic, correlationData: Buffer.isBuffer(correlationData) ? correlationData : undefined };
  }

  /** A schema-checked answer on a route. */
  answer<T extends object>(route: AnswerRoute, schema: z.ZodType<T>, payload: T): Promise<void> {
    return this.sendRoute(route, JSON.stringify(checked(schema, payload)));
  }

  sendRoute(route: AnswerRoute, text: string): Promise<void> {
    if (route.topic === undefined) {
      this.ctx.counters.count("answersUnroutable");
      return Promise.resolve();
    }
    const options: IClientPublishOptions = { qos: 1, retain: false };
    // Correlation data is echoed as received (MQTT 5 §4.10); it only exists on MQTT 5.
    if (route.correlationData !== undefined) options.properties = { correlationData: route.correlationData };
    return this.send({ topic: route.topic, payload: text, options });
  }

  /**
   * Sends now, or holds (bounded) until the next connect. Resolves when the broker
   * acknowledged it, or it was held or refused; it never rejects.
   */
  send(out: Outgoing): Promise<void> {
    const conn = this.connection.live();
    if (!conn) {
      this.hold(out);
      return Promise.resolve();
    }
    return this.connection.sendRaw(conn, out).catch((error: unknown) => {
      if (conn.closed) this.hold(out);
      else {
        this.ctx.counters.count("answersRefused");
        this.ctx.log.warn({ err: error, topic: out.topic }, "broker refused an answer");
      }
    });
  }

  private hold(out: Outgoing): void {
    if (!this.connection.running) {
      this.ctx.counters.count("answersDropped");
      return;
    }
    this.held.push(out);
    if (this.held.length > this.maxHeld) {
      const dropped = this.held.shift();
      this.ctx.counters.count("answersDropped");
      this.ctx.log.warn({ topic: dropped?.topic }, "offline answer queue full: oldest answer dropped");
    }
  }
}
