import { EventEmitter } from "node:events";
import type { IClientOptions, IPublishPacket, MqttClient } from "mqtt";
import type { ConnectFn } from "../../src/fleet/fleet-link.js";

export interface ScriptedPublish {
  topic: string;
  payload: string;
  options: { qos?: number; retain?: boolean; properties?: Record<string, unknown> };
  /** Acknowledge (or fail) a held publish. */
  ack(error?: Error): void;
  acked: boolean;
}

/**
 * A stand-in for an mqtt.js client, for tests on fake time: it connects or refuses on the
 * script, records publishes, acknowledges them at once or holds them, and can be dropped or
 * fed inbound messages. It speaks only the part of MqttClient the fleet link uses.
 */
export class ScriptedClient extends EventEmitter {
  readonly published: ScriptedPublish[] = [];
  readonly subscribed: string[] = [];
  /** The options of each subscribe call (qos, MQTT 5 retain-as-published, ...). */
  readonly subscribeOptions: unknown[] = [];
  ended = false;
  /** false: publishes wait for `ack()` (a broker that has not answered yet). */
  autoAck = true;

  constructor(readonly options: IClientOptions) {
    super();
  }

  subscribe(topics: string | string[], options: unknown, callback?: (error: Error | null, granted: unknown[]) => void): this {
    this.subscribed.push(...(Array.isArray(topics) ? topics : [topics]));
    this.subscribeOptions.push(options);
    setImmediate(() => callback?.(null, []));
    return this;
  }

  publish(topic: string, payload: string, options: ScriptedPublish["options"], callback?: (error?: Error) => void): this {
    const entry: ScriptedPublish = {
      topic,
      payload,
      options,
      acked: false,
      ack: (error) => {
        if (entry.acked) return;
        entry.acked = true;
        setImmediate(() => callback?.(error));
      },
    };
    this.published.push(entry);
    if (this.autoAck) entry.ack();
    return this;
  }

  end(_force?: boolean, _options?: unknown, callback?: () => void): this {
    if (!this.ended) {
      this.ended = true;
      // mqtt.js fails pending callbacks on a forced end (reconnectPeriod 0, clean session).
      for (const entry of this.published) if (!entry.acked) entry.ack(new Error("Connection closed"));
    }
    callback?.();
    return this;
  }

  accept(): void {
    this.emit("connect", { cmd: "connack", returnCode: 0 });
  }

  refuse(): void {
    this.emit("error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    this.emit("close");
  }

  drop(): void {
    this.emit("close");
  }

  deliver(topic: string, payload: string | object, packet: Partial<IPublishPacket> = {}): void {
    const body = Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
    this.emit("message", topic, body, { cmd: "publish", topic, payload: body, qos: 1, retain: false, dup: false, ...packet });
  }

  /** Publishes on `topic` parsed as JSON. */
  payloadsOn(topic: string): Array<Record<string, unknown>> {
    return this.published.filter((p) => p.topic === topic).map((p) => JSON.parse(p.payload) as Record<string, unknown>);
  }
}

/** A ConnectFn that hands out ScriptedClients and remembers them; the test decides their fate. */
export function scriptedConnect(): { connect: ConnectFn; clients: ScriptedClient[] } {
  const clients: ScriptedClient[] = [];
  return {
    clients,
    connect: (_url, options) => {
      const client = new ScriptedClient(options);
      clients.push(client);
      return client as unknown as MqttClient;
    },
  };
}
