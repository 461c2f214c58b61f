import { commonJsExports } from "../kernel/commonjs-exports.js";
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from "mqtt";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import { withTimeout } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import { backoffDelayMs, type BackoffPolicy } from "../kernel/backoff.js";
import { MAX_PAYLOAD_BYTES } from "./commands.js";
import { addBrokerCredentials, type MqttConfig } from "./config.js";
import type { Connection, FleetCounters, FleetExtension } from "./extension.js";
import { inboundFilter, parseInboundTopic, type FleetTopics } from "./topics.js";

/** How the link makes an MQTT client; tests hand in a scripted one. */
export type ConnectFn = (url: string, options: IClientOptions) => MqttClient;

export type FleetLinkState = "stopped" | "connecting" | "connected" | "waiting";

/** One publish: topic, the payload's text, and its MQTT options. */
export interface Outgoing {
  topic: string;
  payload: string;
  options: IClientPublishOptions;
}

export interface FleetConnectionOptions {
  config: MqttConfig;
  deviceId: string;
  topics: FleetTopics;
  log: Logger;
  clock: Clock;
  counters: FleetCounters;
  /** [0, 1); the jitter source. */
  random: () => number;
  backoff: BackoffPolicy;
  /** The failure count resets only after the link has stayed up this long. */
  stableAfterMs: number;
  connect: ConnectFn | undefined;
  connectTimeoutMs: number;
  /** The retained `lost` status the broker publishes for us when the socket dies. */
  will: () => object;
  /** What the "fleet link lost" line says besides (the spool depth). */
  lostContext?: () => Record<string, unknown>;
}

/** MQTT 5 CONNECT maximumPacketSize: larger packets are not sent to the box at all. */
const maxIncomingPacketBytes = 4 * MAX_PAYLOAD_BYTES;

/**
 * The connection to the broker: connect, reconnect with backoff, the will, the subscriptions
 * of the extensions, publishing, and the dispatch of inbound messages to the extension that
 * owns their topic.
 *
 * Connection policy: mqtt.js's own reconnect (a fixed period) is switched off and every
 * attempt is a fresh client with a clean session, scheduled here on the Clock with capped
 * exponential backoff and full jitter. Nothing relies on the broker's session: subscriptions
 * are made after every connect, and each extension re-sends what it needs the broker to hold.
 */
export class FleetConnection {
  private readonly options: FleetConnectionOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly counters: FleetCounters;
  private readonly extensions: FleetExtension[] = [];
  /** mqtt.js is loaded in prepare(): a box without a broker never pays its ~10 MB. */
  private connectFn: ConnectFn | undefined;

  private isRunning = false;
  private linkState: FleetLinkState = "stopped";
  private conn: Connection | undefined;
  private connSeq = 0;
  private protocolVersion: 4 | 5;
  private fallbackPending = false;
  private failureCount = 0;
  private nextAttemptAtMs: number | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  private readonly linkListeners = new Set<(state: FleetLinkState) => void>();

  constructor(options: FleetConnectionOptions) {
    this.options = options;
    this.log = options.log;
    this.clock = options.clock;
    this.counters = options.counters;
    this.connectFn = options.connect;
    this.protocolVersion = options.config.protocolVersion;
  }

  /** Adds an extension; its subscriptions and connect hooks run in the order of adding. */
  use(extension: FleetExtension): void {
    this.extensions.push(extension);
  }

  get running(): boolean {
    return this.isRunning;
  }

  get state(): FleetLinkState {
    return this.linkState;
  }

  get failures(): number {
    return this.failureCount;
  }

  /** The protocol of the current or next attempt (5 falls back to 4 on a 3.1.1-only broker). */
  get effectiveProtocolVersion(): 4 | 5 {
    return this.protocolVersion;
  }

  /** When the next reconnect attempt is due (epoch ms of the Clock), while waiting. */
  get nextAttemptAt(): number | undefined {
    return this.nextAttemptAtMs;
  }

  /** Listens to link state changes; returns the unsubscribe function. */
  onLinkChange(listener: (state: FleetLinkState) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }

  async prepare(): Promise<void> {
    this.connectFn ??= commonJsExports(await import("mqtt"), "connect").connect;
  }

  /**
   * Starts connecting. The first attempt is immediate; the app does not wait for the broker
   * (the lanes must run without it), so this returns before the connection is up.
   */
  start(): void {
    this.isRunning = true;
    void this.connectNow();
  }

  /**
   * Stops reconnecting and closes the connection. On a live one, `beforeDisconnect` runs first
   * (the `offline` status), then a clean DISCONNECT, which tells the broker to discard the will:
   * a box stopped on purpose is not `lost`.
   */
  async stop(beforeDisconnect: (conn: Connection) => Promise<void>): Promise<void> {
    this.isRunning = false;
    for (const timer of [this.reconnectTimer, this.stableTimer]) if (timer) this.clock.clearTimeout(timer);
    this.reconnectTimer = this.stableTimer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (conn && conn.connected && !conn.closed) {
      try {
        await withTimeout(beforeDisconnect(conn), 250, "offline status");
        await withTimeout(new Promise<void>((resolve) => conn.client.end(false, {}, () => resolve())), 150, "MQTT disconnect");
      } catch (error) {
        this.log.warn({ err: error }, "clean disconnect did not finish; closing the socket");
      }
    }
    if (conn) {
      conn.closed = true;
      endQuietly(conn.client, true);
    }
  }

  /** The last step of a stop, once the extensions have put their state away. */
  markStopped(): void {
    this.setLinkState("stopped");
  }

  /** The connection, when it is up. */
  live(): Connection | undefined {
    const conn = this.conn;
    return conn && conn.connected && !conn.closed ? conn : undefined;
  }

  send(conn: Connection, topic: string, payload: object, options: IClientPublishOptions): Promise<void> {
    return this.sendRaw(conn, { topic, payload: JSON.stringify(payload), options });
  }

  sendRaw(conn: Connection, out: Outgoing): Promise<void> {
    return new Promise((resolve, reject) => {
      if (conn.closed) {
        reject(new Error("connection closed"));
        return;
      }
      conn.client.publish(out.topic, out.payload, out.options, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** status, info, state/<lane>, cfg/reported: the owner keeps the latest and re-sends it on connect. */
  sendRetainedLatest(topic: string, payload: object): void {
    const conn = this.live();
    if (!conn) return;
    this.send(conn, topic, payload, { qos: 1, retain: true }).catch((error: unknown) => this.log.debug({ err: error, topic }, "retained publish deferred to the next connect"));
  }

  // ------------------------------------------------------------------ connecting

  private async connectNow(): Promise<void> {
    this.reconnectTimer = undefined;
    this.nextAttemptAtMs = undefined;
    if (!this.isRunning) return;
    this.setLinkState("connecting");
    this.counters.count("connectAttempts");
    const id = ++this.connSeq;
    let options: IClientOptions;
    try {
      options = await this.clientOptions();
    } catch (error) {
      this.log.error({ err: error }, "cannot prepare the MQTT connection (TLS files?)");
      this.counters.count("connectSetupErrors");
      if (this.connSeq === id) this.scheduleReconnect();
      return;
    }
    if (!this.isRunning || this.connSeq !== id) return;
    let client: MqttClient;
    try {
      client = this.connectFn!(this.options.config.url, options);
    } catch (error) {
      this.log.error({ err: error }, "MQTT client could not be created");
      this.counters.count("connectSetupErrors");
      this.scheduleReconnect();
      return;
    }
    const conn: Connection = { id, client, protocolVersion: this.protocolVersion, connected: false, closed: false };
    this.conn = conn;
    client.on("connect", () => this.onConnected(conn));
    client.on("message", (topic, payload, packet) => this.onMessage(conn, topic, payload, packet));
    client.on("error", (error) => this.onClientError(conn, error));
    client.on("close", () => this.onClosed(conn));
  }

  private async clientOptions(): Promise<IClientOptions> {
    const { config, deviceId, topics } = this.options;
    const version = this.protocolVersion;
    const will = Buffer.from(JSON.stringify(this.options.will()));
    const options: IClientOptions = {
      protocolVersion: version,
      clientId: `lanekeeper-${deviceId}`,
      clean: true,
      keepalive: config.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: this.options.connectTimeoutMs,
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: topics.status(), payload: will, qos: 1, retain: true },
      rejectUnauthorized: config.rejectUnauthorized,
    };
    // MQTT 5: no session survives us (sessionExpiryInterval 0); nothing relies on it. The
    // packet limit keeps a runaway publisher from filling the box's memory; payloads between
    // MAX_PAYLOAD_BYTES and it still reach us and are answered with an error.
    if (version === 5) options.properties = { sessionExpiryInterval: 0, maximumPacketSize: maxIncomingPacketBytes };
    const reading = addBrokerCredentials(options, config);
    if (reading) await reading;
    return options;
  }

  private onConnected(conn: Connection): void {
    if (conn.closed || this.conn !== conn || !this.isRunning) return;
    conn.connected = true;
    this.counters.count("connects");
    this.setLinkState("connected");
    this.log.info({ failures: this.failureCount, protocolVersion: conn.protocolVersion }, "fleet link connected");
    // The failure count resets only once the link has proved stable: a broker that accepts
    // and drops at once must not pin every box to the 1 s ceiling.
    this.stableTimer = this.clock.setTimeout(() => {
      this.stableTimer = undefined;
      if (this.conn === conn && conn.connected && !conn.closed) this.failureCount = 0;
    }, this.options.stableAfterMs);
    this.subscribe(conn);
    for (const extension of this.extensions) {
      try {
        extension.onConnected?.(conn);
      } catch (error) {
        this.log.error({ err: error, extension: extension.name }, "extension failed on connect");
      }
    }
  }

  /**
   * A clean session has no subscriptions: they are made on every connect. Retain-as-published
   * (MQTT 5 §3.8.3.1): without it a broker clears the retain flag of a message it forwards
   * live, so a command or job published retained while the box is online would look like an
   * ordinary one and run. MQTT 3.1.1 has no such option (docs/mqtt.md §10).
   */
  private subscribe(conn: Connection): void {
    const filters = this.extensions.flatMap((extension) => (extension.inbound === undefined ? [] : [inboundFilter(this.options.topics, extension.inbound)]));
    if (filters.length === 0) return;
    const subscribeOptions = conn.protocolVersion === 5 ? { qos: 1 as const, rap: true } : { qos: 1 as const };
    conn.client.subscribe(filters, subscribeOptions, (error, granted) => {
      if (error) {
        this.log.error({ err: error }, "subscribe failed");
        this.counters.count("subscribeErrors");
        return;
      }
      const refused = (granted ?? []).filter((grant) => grant.qos === 128 || grant.qos > 2);
      if (refused.length > 0) {
        this.counters.count("subscribeErrors");
        this.log.error({ refused: refused.map((grant) => grant.topic) }, "broker refused subscriptions (ACL?)");
      }
    });
  }

  private onClientError(conn: Connection, error: Error & { code?: unknown }): void {
    if (conn.closed) return;
    const code = error.code;
    // A 3.1.1-only broker answers an MQTT 5 CONNECT with return code 1 ("unacceptable
    // protocol version", MQTT 3.1.1 §3.2.2.3), which MQTT 5 names 0x84.
    if (!conn.connected && conn.protocolVersion === 5 && (code === 1 || code === 0x84)) {
      this.log.warn("broker does not speak MQTT 5; falling back to 3.1.1");
      this.protocolVersion = 4;
      this.fallbackPending = true;
      this.counters.count("protocolFallbacks");
      return;
    }
    this.counters.count("clientErrors");
    this.log.warn({ err: { message: error.message, code } }, conn.connected ? "MQTT error" : "MQTT connect failed");
  }

  private onClosed(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    const wasConnected = conn.connected;
    conn.connected = false;
    if (this.stableTimer) this.clock.clearTimeout(this.stableTimer);
    this.stableTimer = undefined;
    for (const extension of this.extensions) extension.onClosed?.();
    // Fails the publish callbacks still pending on this client; their events are back in the
    // spool already, their answers are re-queued by the answer queue's callback.
    endQuietly(conn.client, true);
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (!this.isRunning) return;
    if (wasConnected) {
      this.counters.count("disconnects");
      this.log.warn(this.options.lostContext?.() ?? {}, "fleet link lost");
    }
    if (this.fallbackPending) {
      this.fallbackPending = false;
      this.reconnectTimer = this.clock.setTimeout(() => void this.connectNow(), 0);
      this.setLinkState("waiting");
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.isRunning) return;
    this.failureCount++;
    const delayMs = backoffDelayMs(this.failureCount, this.options.backoff, this.options.random);
    this.counters.set("lastReconnectDelayMs", delayMs);
    this.nextAttemptAtMs = this.clock.now() + delayMs;
    this.setLinkState("waiting");
    this.log.info({ failures: this.failureCount, delayMs }, "fleet link reconnect scheduled");
    this.reconnectTimer = this.clock.setTimeout(() => void this.connectNow(), delayMs);
  }

  private setLinkState(state: FleetLinkState): void {
    if (this.linkState === state) return;
    this.linkState = state;
    for (const listener of this.linkListeners) {
      try {
        listener(state);
      } catch (error) {
        this.log.warn({ err: error }, "link listener failed");
      }
    }
  }

  // ------------------------------------------------------------------ inbound

  private onMessage(conn: Connection, topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (conn.closed) return;
    this.counters.count("messagesIn");
    const route = parseInboundTopic(this.options.topics, topic);
    const extension = route ? this.extensions.find((candidate) => candidate.inbound === route.kind && candidate.handle) : undefined;
    if (!route || !extension?.handle) {
      this.counters.count("messagesUnrouted");
      this.log.warn({ topic }, "message on a topic the link does not handle");
      return;
    }
    // A failing handler is logged with its context; it never takes the link down.
    extension.handle({ topic, route, payload, packet }).catch((error: unknown) => {
      this.counters.count("handlerFailures");
      this.log.error({ err: error, topic }, "inbound message handling failed");
    });
  }
}

function endQuietly(client: MqttClient, force: boolean): void {
  try {
    client.end(force);
    // After a graceful end() that timed out, mqtt.js ignores a second end() (it is already
    // "disconnecting") and would keep the socket open; destroying the stream closes it for sure.
    if (force) (client as { stream?: { destroy?: () => void } }).stream?.destroy?.();
  } catch {
    // Ending a client whose stream is already gone can throw inside mqtt.js; nothing to do.
  }
}
