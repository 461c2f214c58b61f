import { connect, type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from "mqtt";

export interface ProbeMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  properties: IPublishPacket["properties"];
  /** The payload parsed as JSON (throws if it is not). */
  json<T = Record<string, unknown>>(): T;
}

/**
 * A test-side MQTT client playing the backend: it subscribes, records every message and waits
 * for the ones a test expects. A real mqtt.js client against the same broker as the box.
 */
export class MqttProbe {
  readonly messages: ProbeMessage[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => {
      this.messages.push({
        topic,
        payload,
        retain: packet.retain,
        properties: packet.properties,
        json: <T>() => JSON.parse(payload.toString("utf8")) as T,
      });
      for (const wake of [...this.waiters]) wake();
    });
  }

  static async connect(url: string, options: IClientOptions = {}): Promise<MqttProbe> {
    const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, clientId: `probe-${Math.random().toString(16).slice(2, 10)}`, ...options });
    // Listen before the CONNACK: a resumed session delivers its queue right behind it.
    const probe = new MqttProbe(client);
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    return probe;
  }

  async subscribe(filter: string | string[], options: { qos?: 0 | 1 | 2; rap?: boolean } = {}): Promise<void> {
    await this.client.subscribeAsync(filter, { qos: options.qos ?? 1, ...(options.rap === undefined ? {} : { rap: options.rap }) });
  }

  async publish(topic: string, payload: string | Buffer | object, options: IClientPublishOptions = {}): Promise<void> {
    const body = typeof payload === "string" || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    await this.client.publishAsync(topic, body, { qos: 1, ...options });
  }

  /** Messages on `topic` so far. */
  on(topic: string): ProbeMessage[] {
    return this.messages.filter((message) => message.topic === topic);
  }

  /** Resolves with the first message (already received or later) that matches. */
  waitFor(match: (message: ProbeMessage) => boolean, timeoutMs = 5000, what = "message"): Promise<ProbeMessage> {
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        const hit = this.messages.find(match);
        if (!hit) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got: ${this.messages.map((m) => m.topic).join(", ") || "nothing"}`));
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  /** Resolves once `count` messages on `topic` have arrived. */
  async waitForCount(topic: string, count: number, timeoutMs = 5000): Promise<ProbeMessage[]> {
    await this.waitFor(() => this.on(topic).length >= count, timeoutMs, `${count} messages on ${topic}`);
    return this.on(topic);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}

/** Polls `check` until it is true (for state that changes without a message). */
export async function until(check: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
