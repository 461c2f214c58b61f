import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from "mqtt";
import { z } from "zod";
import { systemClock, type Clock, type TimerHandle } from "../app/clock.js";
import type { Component } from "../app/lifecycle.js";
import { withTimeout } from "../app/lifecycle.js";
import type { Logger } from "../app/log.js";
import { VERSION } from "../version.js";
import { backoffDelayMs, defaultBackoff, type BackoffPolicy } from "./backoff.js";
import {
  decideCommand,
  MAX_PAYLOAD_BYTES,
  sniffId,
  type CommandContext,
  type CommandDefinition,
  type CommandHandler,
  type CommandOptions,
  type RefusalCounter,
} from "./commands.js";
import type { MqttConfig } from "./config.js";
import { FleetError, FleetErrorCodes } from "./errors.js";
import { EventSpool, spoolKey, type SpoolEntry } from "./event-spool.js";
import {
  commandResultSchema,
  configDesiredSchema,
  configReportedSchema,
  eventPayloadSchema,
  eventTypeSchema,
  healthPayloadSchema,
  infoPayloadSchema,
  jobRequestSchema,
  jobStatusPayloadSchema,
  laneStatePayloadSchema,
  platformWrappedRequestSchema,
  platformWrappedResponseSchema,
  schemaMessage,
  statusPayloadSchema,
  type CommandResult,
  type ConfigDetail,
  type EventPayload,
  type HealthInput,
  type HealthPayload,
  type InfoInput,
  type InfoPayload,
  type JobRequest,
  type JobStatusInput,
  type LaneStateInput,
  type LaneStatePayload,
  type StatusPayload,
  type StatusState,
} from "./payloads.js";
import { ProcessProbe } from "./process-probe.js";
import { SeenIds } from "./seen-ids.js";
import { JsonStateFile } from "./state-file.js";
import { fleetTopics, isTopicLevel, parseInboundTopic, type FleetTopics } from "./topics.js";

/** How the link makes an MQTT client; tests hand in a scripted one. */
export type ConnectFn = (url: string, options: IClientOptions) => MqttClient;

export type FleetLinkState = "stopped" | "connecting" | "connected" | "waiting";

export type ConfigDesiredHandler = (
  version: number,
  config: Record<string, unknown>,
) => Promise<{ status: "applied" | "rejected"; detail: ConfigDetail }>;
export type JobHandler = (jobId: string, job: JobRequest) => Promise<void> | void;
/** Gets the section-4 envelope as raw text (the signature covers the raw bizContent text). */
export type PlatformRequestHandler = (rawEnvelopeText: string) => Promise<object>;

export interface FleetLinkOptions {
  config: MqttConfig;
  deviceId: string;
  /** A directory the link owns: boot counter, command ids, applied config version, spool. */
  stateDir: string;
  log: Logger;
  clock?: Clock;
  /** [0, 1); the jitter source (tests make it deterministic). */
  random?: () => number;
  version?: string;
  backoff?: BackoffPolicy;
  /** The failure count resets only after the link has stayed up this long. */
  stableAfterMs?: number;
  /** The ring of recent events that `last-events` reads. */
  recentEventsSize?: number;
  /** Outbox, links, clock sync, store warnings: what the rest of the runtime knows. */
  healthSource?: () => HealthInput | Promise<HealthInput>;
  connect?: ConnectFn;
  connectTimeoutMs?: number;
  /** Command ids are remembered at least this long (default 24 h). */
  commandIdRetainMs?: number;
  /** QoS 1 answers (res, cfg/reported, jobs status, platform/res) held while offline. */
  offlineAnswersMax?: number;
}

/**
 * Gauges and counters of the link; all numbers so they fit the health payload's `fleet`
 * record. Counters appear once they are non-zero (connectAttempts, connects, disconnects,
 * eventsSent, eventsSpooled, eventsRefused, qos0Dropped, answersDropped, cmdOk, cmdFailed,
 * cmdDuplicate, cmdExpired, cmdInvalid, cmdNonJson, cmdOversized, cmdWrongVersion, cmdUnknown,
 * cmdRetained, cfgApplied, cfgRejected, cfgIgnored, platformAnswered, ...).
 */
export interface FleetStats {
  connected: number;
  boot: number;
  configVersion: number;
  failures: number;
  spoolDepth: number;
  spoolDropped: number;
  spoolWriteErrors: number;
  offlineAnswers: number;
  rememberedCommandIds: number;
  [counter: string]: number;
}

interface Connection {
  readonly id: number;
  readonly client: MqttClient;
  readonly protocolVersion: 4 | 5;
  connected: boolean;
  closed: boolean;
}

interface Outgoing {
  topic: string;
  payload: string;
  options: IClientPublishOptions;
}

const bootFileSchema = z.strictObject({ boot: z.int().min(0) });
const configStateSchema = z.strictObject({
  appliedVersion: z.int().min(0),
  lastRejectedVersion: z.int().min(0).nullable(),
});

const eventBatchSize = 50;
/** MQTT 5 CONNECT maximumPacketSize: larger packets are not sent to the box at all. */
const maxIncomingPacketBytes = 4 * MAX_PAYLOAD_BYTES;

/**
 * The fleet link over MQTT (architecture.md §7, issue 9): one Component that keeps a connection
 * to the broker, announces the box (retained status with a `lost` will, info, lane states),
 * publishes health and events, and routes commands, config pushes, update jobs and platform
 * section-4 envelopes to handlers the integrator registers.
 *
 * Connection policy: mqtt.js's own reconnect (a fixed period) is switched off and every
 * attempt is a fresh client with a clean session, scheduled here on the Clock with capped
 * exponential backoff and full jitter. Nothing relies on the broker's session: subscriptions
 * are made after every connect, events that were not acknowledged go back to the disk spool.
 */
export class FleetLink implements Component {
  readonly name = "fleet";
  readonly topics: FleetTopics;

  private readonly config: MqttConfig;
  private readonly deviceId: string;
  private readonly stateDir: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly version: string;
  private readonly backoff: BackoffPolicy;
  private readonly stableAfterMs: number;
  private readonly recentEventsSize: number;
  /** mqtt.js is loaded in start(): a box without a broker never pays its ~10 MB. */
  private connectFn: ConnectFn | undefined;
  private readonly connectTimeoutMs: number;
  private readonly offlineAnswersMax: number;
  private readonly healthSource: FleetLinkOptions["healthSource"];

  private readonly spool: EventSpool;
  private readonly seen: SeenIds;
  private readonly bootFile: JsonStateFile<z.infer<typeof bootFileSchema>>;
  private readonly configStateFile: JsonStateFile<z.infer<typeof configStateSchema>>;
  private readonly probe = new ProcessProbe();

  private running = false;
  private linkState: FleetLinkState = "stopped";
  private conn: Connection | undefined;
  private connSeq = 0;
  private protocolVersion: 4 | 5;
  private fallbackPending = false;
  private failures = 0;
  private nextAttemptAtMs: number | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  private healthTimer: TimerHandle | undefined;

  private bootCount = 0;
  private seq = 0;
  private appliedConfigVersion = 0;
  private lastRejectedConfigVersion: number | null = null;
  private statusState: Exclude<StatusState, "lost"> = "online";
  private info: InfoPayload | undefined;
  private readonly laneStates = new Map<string, LaneStatePayload>();
  private lastConfigReport: z.infer<typeof configReportedSchema> | undefined;
  private inflightEvents: SpoolEntry[] = [];
  private draining = false;
  private offlineAnswers: Outgoing[] = [];
  private recentEvents: EventPayload[] = [];
  private configChain: Promise<void> = Promise.resolve();

  private readonly commands = new Map<string, CommandDefinition>();
  private configHandler: ConfigDesiredHandler | undefined;
  private jobHandler: JobHandler | undefined;
  private platformHandler: PlatformRequestHandler | undefined;
  private readonly linkListeners = new Set<(state: FleetLinkState) => void>();
  private readonly counters: Record<string, number> = {};

  constructor(options: FleetLinkOptions) {
    this.config = options.config;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.version = options.version ?? VERSION;
    this.backoff = options.backoff ?? defaultBackoff;
    this.stableAfterMs = options.stableAfterMs ?? 60_000;
    this.recentEventsSize = options.recentEventsSize ?? 200;
    this.connectFn = options.connect;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.offlineAnswersMax = options.offlineAnswersMax ?? 500;
    this.healthSource = options.healthSource;
    this.protocolVersion = options.config.protocolVersion;
    if (!isTopicLevel(options.deviceId)) throw new FleetError(FleetErrorCodes.BadName, `device id ${JSON.stringify(options.deviceId)} cannot be a topic level`);
    this.topics = fleetTopics(options.config.topicRoot, options.deviceId);
    this.spool = new EventSpool({ dir: options.stateDir, maxEntries: options.config.spoolMaxEvents, log: this.log });
    this.seen = new SeenIds(join(options.stateDir, "command-ids.json"), this.log, options.commandIdRetainMs === undefined ? {} : { retainMs: options.commandIdRetainMs });
    this.bootFile = new JsonStateFile(join(options.stateDir, "boot.json"), bootFileSchema, this.log);
    this.configStateFile = new JsonStateFile(join(options.stateDir, "config-version.json"), configStateSchema, this.log);
    this.stateDir = options.stateDir;
    this.deviceId = options.deviceId;
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    if (this.running) return;
    this.connectFn ??= (await import("mqtt")).connect;
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const boot = ((await this.bootFile.read())?.boot ?? 0) + 1;
    await this.bootFile.write({ boot });
    this.bootCount = boot;
    this.seq = 0;
    const configState = await this.configStateFile.read();
    this.appliedConfigVersion = configState?.appliedVersion ?? 0;
    this.lastRejectedConfigVersion = configState?.lastRejectedVersion ?? null;
    await this.seen.load(this.clock.now());
    const spool = await this.spool.open();
    this.log.info({ boot, spooled: spool.loaded, url: redactUrl(this.config.url), protocolVersion: this.protocolVersion }, "fleet link starting");
    this.running = true;
    this.probe.start();
    this.scheduleHealth();
    // The first attempt is immediate; the app does not wait for the broker (the lanes must
    // run without it), so start() returns before the connection is up.
    void this.connectNow();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const timer of [this.reconnectTimer, this.stableTimer, this.healthTimer]) if (timer) this.clock.clearTimeout(timer);
    this.reconnectTimer = this.stableTimer = this.healthTimer = undefined;
    this.probe.stop();
    const conn = this.conn;
    this.conn = undefined;
    if (conn && conn.connected && !conn.closed) {
      // `offline` first, then a clean DISCONNECT, which tells the broker to discard the will:
      // a box stopped on purpose is not `lost`.
      try {
        await withTimeout(this.sendOn(conn, this.topics.status(), this.statusPayload("offline"), { qos: 1, retain: true }), 250, "offline status");
        await withTimeout(new Promise<void>((resolve) => conn.client.end(false, {}, () => resolve())), 150, "MQTT disconnect");
      } catch (error) {
        this.log.warn({ err: error }, "clean disconnect did not finish; closing the socket");
      }
    }
    if (conn) {
      conn.closed = true;
      endQuietly(conn.client, true);
    }
    this.requeueInflightEvents();
    await this.spool.close();
    await Promise.all([this.seen.idle(), this.configStateFile.idle(), this.bootFile.idle()]);
    this.setLinkState("stopped");
    this.log.info({ spooled: this.spool.size }, "fleet link stopped");
  }

  // ------------------------------------------------------------------ introspection

  get state(): FleetLinkState {
    return this.linkState;
  }

  get boot(): number {
    return this.bootCount;
  }

  get configVersion(): number {
    return this.appliedConfigVersion;
  }

  /** The protocol of the current or next attempt (5 falls back to 4 on a 3.1.1-only broker). */
  get effectiveProtocolVersion(): 4 | 5 {
    return this.protocolVersion;
  }

  /** When the next reconnect attempt is due (epoch ms of the Clock), while waiting. */
  get nextAttemptAt(): number | undefined {
    return this.nextAttemptAtMs;
  }

  stats(): FleetStats {
    return {
      ...this.counters,
      connected: this.linkState === "connected" ? 1 : 0,
      boot: this.bootCount,
      configVersion: this.appliedConfigVersion,
      failures: this.failures,
      spoolDepth: this.spool.size,
      spoolDropped: this.spool.droppedTotal,
      spoolWriteErrors: this.spool.writeErrors,
      offlineAnswers: this.offlineAnswers.length,
      rememberedCommandIds: this.seen.size,
    };
  }

  /** Listens to link state changes; returns the unsubscribe function. */
  onLinkChange(listener: (state: FleetLinkState) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }

  /** The last `n` events published (spooled or sent), oldest first. */
  lastEvents(n: number): EventPayload[] {
    return n <= 0 ? [] : this.recentEvents.slice(-n);
  }

  // ------------------------------------------------------------------ upstream

  /** Sets the retained status (`online`, `offline`, `updating`); re-sent after every reconnect. */
  publishStatus(state: Exclude<StatusState, "lost">): void {
    this.statusState = state;
    const payload = this.statusPayload(state);
    this.sendRetainedLatest(this.topics.status(), payload);
  }

  publishInfo(info: InfoInput): void {
    const capabilities = new Set(info.capabilities);
    for (const name of this.commands.keys()) capabilities.add(`cmd:${name}`);
    if (this.configHandler) capabilities.add("cfg-push");
    if (this.jobHandler) capabilities.add("jobs");
    if (this.platformHandler) capabilities.add("platform-over-mqtt");
    const payload = this.checked(infoPayloadSchema, {
      v: 1,
      deviceId: this.deviceId,
      version: info.version ?? this.version,
      hardware: info.hardware,
      lanes: info.lanes,
      capabilities: [...capabilities].sort(),
      ts: this.clock.now(),
    });
    this.info = payload;
    this.sendRetainedLatest(this.topics.info(), payload);
  }

  publishLaneState(laneId: string, state: LaneStateInput): void {
    const topic = this.topicFor(() => this.topics.laneState(laneId));
    const payload = this.checked(laneStatePayloadSchema, { v: 1, laneId, ...state, ts: this.clock.now() });
    this.laneStates.set(laneId, payload);
    this.sendRetainedLatest(topic, payload);
  }

  /**
   * Publishes health now (QoS 0, with an MQTT 5 expiry of two intervals). Offline, it is
   * dropped and counted: a stale health report is worthless and QoS 0 is never queued.
   * Resolves with the payload that was built.
   */
  async publishHealth(health?: HealthInput): Promise<HealthPayload> {
    const payload = await this.buildHealth(health);
    const conn = this.liveConnection();
    if (!conn) {
      this.count("qos0Dropped");
      return payload;
    }
    const options: IClientPublishOptions = { qos: 0, retain: false };
    if (conn.protocolVersion === 5) options.properties = { messageExpiryInterval: this.config.healthIntervalS * 2 };
    this.sendOn(conn, this.topics.health(), payload, options).catch((error: unknown) => this.log.debug({ err: error }, "health not sent"));
    this.count("healthSent");
    return payload;
  }

  /**
   * Publishes an event on `evt/<type>` with `seq` and `boot`, QoS 1. Offline (or while older
   * events are still spooled) it goes to the disk spool and is sent in order later.
   */
  publishEvent(type: string, data: Record<string, unknown> = {}): EventPayload {
    const payload = this.makeEvent(type, data);
    if (!this.running) {
      // Only during shutdown: the spool is closed. Counted and logged, never silent.
      this.count("eventsDroppedStopped");
      this.log.warn({ type, seq: payload.seq }, "event published after the fleet link stopped; dropped");
      return payload;
    }
    this.enqueueEvent({ key: spoolKey(payload), payload });
    return payload;
  }

  /** QoS 1; held (bounded) while offline. Resolves once acknowledged or held; never rejects. */
  private makeEvent(type: string, data: Record<string, unknown>): EventPayload {
    if (this.bootCount === 0) throw new FleetError(FleetErrorCodes.NotStarted, "publishEvent before the fleet link started (the boot counter is not known)");
    const typeOk = eventTypeSchema.safeParse(type);
    if (!typeOk.success) throw new FleetError(FleetErrorCodes.BadName, `event type ${JSON.stringify(type)}: ${schemaMessage(typeOk.error)}`);
    const payload = this.checked(eventPayloadSchema, { v: 1, type, seq: this.seq + 1, boot: this.bootCount, ts: this.clock.now(), data });
    try {
      JSON.stringify(payload); // a BigInt or a cycle must fail here, not halfway into the spool
    } catch (error) {
      throw new FleetError(FleetErrorCodes.BadPayload, `event ${type} is not JSON-serialisable: ${errorText(error)}`);
    }
    this.seq = payload.seq;
    this.recentEvents.push(payload);
    if (this.recentEvents.length > this.recentEventsSize) this.recentEvents.splice(0, this.recentEvents.length - this.recentEventsSize);
    return payload;
  }

  /** QoS 1; held (bounded) while offline. Resolves once acknowledged or held; never rejects. */
  publishJobStatus(jobId: string, status: JobStatusInput): Promise<void> {
    const topic = this.topicFor(() => this.topics.jobStatus(jobId));
    const payload = this.checked(jobStatusPayloadSchema, { v: 1, jobId, ...status, ts: this.clock.now() });
    return this.sendAnswer({ topic, payload: JSON.stringify(payload), options: { qos: 1, retain: false } });
  }

  // ------------------------------------------------------------------ downstream registration

  /**
   * Registers `cmd/<name>`. The handler gets the args parsed by `argsSchema`; what it resolves
   * to is the `data` of an `ok` answer, what it throws becomes an `error` answer.
   */
  registerCommand<S extends z.ZodType>(
    name: string,
    argsSchema: S,
    handler: CommandHandler<z.output<S>>,
    options: CommandOptions = {},
  ): void {
    if (!isTopicLevel(name)) throw new FleetError(FleetErrorCodes.BadName, `command name ${JSON.stringify(name)} cannot be a topic level`);
    if (this.commands.has(name)) throw new FleetError(FleetErrorCodes.BadName, `command "${name}" is registered twice`);
    this.commands.set(name, {
      name,
      argsSchema,
      handler: handler as CommandHandler<unknown>,
      requiresExpiresAt: options.requiresExpiresAt ?? false,
      timeoutMs: options.timeoutMs ?? 30_000,
    });
  }

  /**
   * Handles `cfg/desired`. The handler validates (validateConfig in src/config/load.ts) and
   * applies; the link keeps the version bookkeeping and answers on `cfg/reported`.
   */
  onConfigDesired(handler: ConfigDesiredHandler): void {
    this.configHandler = handler;
  }

  onJob(handler: JobHandler): void {
    this.jobHandler = handler;
  }

  onPlatformRequest(handler: PlatformRequestHandler): void {
    this.platformHandler = handler;
  }

  // ------------------------------------------------------------------ connection

  private async connectNow(): Promise<void> {
    this.reconnectTimer = undefined;
    this.nextAttemptAtMs = undefined;
    if (!this.running) return;
    this.setLinkState("connecting");
    this.count("connectAttempts");
    const id = ++this.connSeq;
    let options: IClientOptions;
    try {
      options = await this.clientOptions();
    } catch (error) {
      this.log.error({ err: error }, "cannot prepare the MQTT connection (TLS files?)");
      this.count("connectSetupErrors");
      if (this.connSeq === id) this.scheduleReconnect();
      return;
    }
    if (!this.running || this.connSeq !== id) return;
    let client: MqttClient;
    try {
      client = this.connectFn!(this.config.url, options);
    } catch (error) {
      this.log.error({ err: error }, "MQTT client could not be created");
      this.count("connectSetupErrors");
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
    const version = this.protocolVersion;
    const will = Buffer.from(JSON.stringify(this.statusPayload("lost")));
    const options: IClientOptions = {
      protocolVersion: version,
      clientId: `lanekeeper-${this.deviceId}`,
      clean: true,
      keepalive: this.config.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: this.connectTimeoutMs,
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: this.topics.status(), payload: will, qos: 1, retain: true },
      rejectUnauthorized: this.config.rejectUnauthorized,
    };
    // MQTT 5: no session survives us (sessionExpiryInterval 0); nothing relies on it. The
    // packet limit keeps a runaway publisher from filling the box's memory; payloads between
    // MAX_PAYLOAD_BYTES and it still reach us and are answered with an error.
    if (version === 5) options.properties = { sessionExpiryInterval: 0, maximumPacketSize: maxIncomingPacketBytes };
    if (this.config.username !== undefined) options.username = this.config.username;
    if (this.config.password !== undefined) options.password = this.config.password;
    // Read at every attempt: a rotated certificate is picked up without a restart.
    if (this.config.caFile) options.ca = await readFile(this.config.caFile);
    if (this.config.certFile) options.cert = await readFile(this.config.certFile);
    if (this.config.keyFile) options.key = await readFile(this.config.keyFile);
    return options;
  }

  private onConnected(conn: Connection): void {
    if (conn.closed || this.conn !== conn || !this.running) return;
    conn.connected = true;
    this.count("connects");
    this.setLinkState("connected");
    this.log.info({ failures: this.failures, protocolVersion: conn.protocolVersion }, "fleet link connected");
    // The failure count resets only once the link has proved stable: a broker that accepts
    // and drops at once must not pin every box to the 1 s ceiling.
    this.stableTimer = this.clock.setTimeout(() => {
      this.stableTimer = undefined;
      if (this.conn === conn && conn.connected && !conn.closed) this.failures = 0;
    }, this.stableAfterMs);

    // A clean session has no subscriptions: make them on every connect.
    conn.client.subscribe(this.topics.subscriptions(), { qos: 1 }, (error, granted) => {
      if (error) {
        this.log.error({ err: error }, "subscribe failed");
        this.count("subscribeErrors");
        return;
      }
      const refused = (granted ?? []).filter((grant) => grant.qos === 128 || grant.qos > 2);
      if (refused.length > 0) {
        this.count("subscribeErrors");
        this.log.error({ refused: refused.map((grant) => grant.topic) }, "broker refused subscriptions (ACL?)");
      }
    });
    const retained: IClientPublishOptions = { qos: 1, retain: true };
    const fail = (what: string) => (error: unknown) => this.log.warn({ err: error }, `${what} not sent`);
    this.sendOn(conn, this.topics.status(), this.statusPayload(this.statusState), retained).catch(fail("status"));
    if (this.info) this.sendOn(conn, this.topics.info(), this.info, retained).catch(fail("info"));
    for (const [laneId, state] of this.laneStates) this.sendOn(conn, this.topics.laneState(laneId), state, retained).catch(fail(`state/${laneId}`));
    if (this.lastConfigReport) this.sendOn(conn, this.topics.configReported(), this.lastConfigReport, retained).catch(fail("cfg/reported"));
    const answers = this.offlineAnswers;
    this.offlineAnswers = [];
    for (const answer of answers) this.sendRaw(conn, answer).catch(fail(answer.topic));
    if (this.spool.droppedUnreported > 0) {
      // Sent ahead of the spool, not through it: a full spool would otherwise drop one more
      // event to make room for the notice about dropping events.
      const dropped = this.spool.droppedUnreported;
      this.spool.droppedUnreported = 0;
      const payload = this.makeEvent("events-dropped", { count: dropped, totalSinceStart: this.spool.droppedTotal, reason: "offline spool full" });
      this.sendEventDirect(conn, { key: spoolKey(payload), payload });
    }
    void this.drain(conn);
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
      this.count("protocolFallbacks");
      return;
    }
    this.count("clientErrors");
    this.log.warn({ err: { message: error.message, code } }, conn.connected ? "MQTT error" : "MQTT connect failed");
  }

  private onClosed(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    const wasConnected = conn.connected;
    conn.connected = false;
    if (this.stableTimer) this.clock.clearTimeout(this.stableTimer);
    this.stableTimer = undefined;
    this.requeueInflightEvents();
    // Fails the publish callbacks still pending on this client; their events are back in the
    // spool already, their answers are re-queued by sendAnswer's callback.
    endQuietly(conn.client, true);
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (!this.running) return;
    if (wasConnected) {
      this.count("disconnects");
      this.log.warn({ spooled: this.spool.size }, "fleet link lost");
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
    if (!this.running) return;
    this.failures++;
    const delayMs = backoffDelayMs(this.failures, this.random, this.backoff);
    this.counters.lastReconnectDelayMs = delayMs;
    this.nextAttemptAtMs = this.clock.now() + delayMs;
    this.setLinkState("waiting");
    this.log.info({ failures: this.failures, delayMs }, "fleet link reconnect scheduled");
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

  private liveConnection(): Connection | undefined {
    const conn = this.conn;
    return conn && conn.connected && !conn.closed ? conn : undefined;
  }

  // ------------------------------------------------------------------ sending

  private sendOn(conn: Connection, topic: string, payload: object, options: IClientPublishOptions): Promise<void> {
    return this.sendRaw(conn, { topic, payload: JSON.stringify(payload), options });
  }

  private sendRaw(conn: Connection, out: Outgoing): Promise<void> {
    return new Promise((resolve, reject) => {
      if (conn.closed) {
        reject(new Error("connection closed"));
        return;
      }
      conn.client.publish(out.topic, out.payload, out.options, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** status, info, state/<lane>: the latest value is kept and re-sent on every connect. */
  private sendRetainedLatest(topic: string, payload: object): void {
    const conn = this.liveConnection();
    if (!conn) return;
    this.sendOn(conn, topic, payload, { qos: 1, retain: true }).catch((error: unknown) => this.log.debug({ err: error, topic }, "retained publish deferred to the next connect"));
  }

  /**
   * QoS 1 answers: sent now, or held (bounded) until the next connect. Resolves when the
   * broker acknowledged it, or it was held or refused; it never rejects.
   */
  private sendAnswer(out: Outgoing): Promise<void> {
    const conn = this.liveConnection();
    if (!conn) {
      this.holdAnswer(out);
      return Promise.resolve();
    }
    return this.sendRaw(conn, out).catch((error: unknown) => {
      if (conn.closed) this.holdAnswer(out);
      else {
        this.count("answersRefused");
        this.log.warn({ err: error, topic: out.topic }, "broker refused an answer");
      }
    });
  }

  private holdAnswer(out: Outgoing): void {
    if (!this.running) {
      this.count("answersDropped");
      return;
    }
    this.offlineAnswers.push(out);
    if (this.offlineAnswers.length > this.offlineAnswersMax) {
      const dropped = this.offlineAnswers.shift();
      this.count("answersDropped");
      this.log.warn({ topic: dropped?.topic }, "offline answer queue full: oldest answer dropped");
    }
  }

  // ------------------------------------------------------------------ events and spool

  private eventOptions(conn: Connection): IClientPublishOptions {
    const options: IClientPublishOptions = { qos: 1, retain: false };
    if (conn.protocolVersion === 5) options.properties = { messageExpiryInterval: this.config.eventExpiryS };
    return options;
  }

  private enqueueEvent(entry: SpoolEntry): void {
    const conn = this.liveConnection();
    if (conn && this.spool.size === 0 && !this.draining) {
      this.sendEventDirect(conn, entry);
      return;
    }
    this.spool.append([entry]);
    this.count("eventsSpooled");
    if (conn && !this.draining) void this.drain(conn);
  }

  private sendEventDirect(conn: Connection, entry: SpoolEntry): void {
    this.inflightEvents.push(entry);
    this.sendOn(conn, this.topics.event(entry.payload.type), entry.payload, this.eventOptions(conn)).then(
      () => {
        this.forgetInflight(entry);
        this.count("eventsSent");
      },
      (error: unknown) => {
        // A closed connection already moved the event back to the spool (onClosed).
        if (conn.closed || !this.forgetInflight(entry)) return;
        this.count("eventsRefused");
        this.log.warn({ err: error, type: entry.payload.type, seq: entry.payload.seq }, "broker refused an event");
      },
    );
  }

  private forgetInflight(entry: SpoolEntry): boolean {
    const at = this.inflightEvents.indexOf(entry);
    if (at < 0) return false;
    this.inflightEvents.splice(at, 1);
    return true;
  }

  /** Unacknowledged direct events go back to the spool, oldest first. */
  private requeueInflightEvents(): void {
    if (this.inflightEvents.length === 0) return;
    const entries = this.inflightEvents;
    this.inflightEvents = [];
    // Direct sends happen only while the spool is empty, so these are older than anything in it.
    this.spool.append(entries);
    this.count("eventsSpooled", entries.length);
  }

  /** Sends the spool in order, a batch at a time; an entry leaves the spool once acknowledged. */
  private async drain(conn: Connection): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!conn.closed && this.running && this.spool.size > 0) {
        const batch = this.spool.peek(eventBatchSize);
        const results = await Promise.allSettled(
          batch.map((entry) => this.sendOn(conn, this.topics.event(entry.payload.type), entry.payload, this.eventOptions(conn))),
        );
        if (conn.closed) break;
        const refused = results.filter((result) => result.status === "rejected").length;
        if (refused > 0) {
          // Refused by the broker (MQTT 5 reason code) on a live link: retrying would block the queue forever.
          this.count("eventsRefused", refused);
          this.log.warn({ refused }, "broker refused spooled events");
        }
        this.count("eventsSent", batch.length - refused);
        await this.spool.consume(batch);
      }
    } catch (error) {
      this.log.error({ err: error }, "spool drain failed");
    } finally {
      this.draining = false;
    }
    if (!conn.closed && this.running && this.spool.size > 0) void this.drain(conn);
  }

  // ------------------------------------------------------------------ downstream

  private onMessage(conn: Connection, topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (conn.closed) return;
    this.count("messagesIn");
    const inbound = parseInboundTopic(this.topics, topic);
    if (!inbound) {
      this.count("messagesUnrouted");
      this.log.warn({ topic }, "message on a topic the link does not handle");
      return;
    }
    const work =
      inbound.kind === "command"
        ? this.handleCommand(inbound.name, payload, packet)
        : inbound.kind === "configDesired"
          ? this.queueConfig(payload)
          : inbound.kind === "job"
            ? this.handleJob(inbound.jobId, payload, packet)
            : this.handlePlatform(payload, packet);
    // A failing handler is logged with its context; it never takes the link down.
    work.catch((error: unknown) => {
      this.count("handlerFailures");
      this.log.error({ err: error, topic }, "inbound message handling failed");
    });
  }

  private async handleCommand(name: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const nowMs = this.clock.now();
    if (payload.length === 0) {
      // How a backend clears a retained message: nothing was asked, nothing to answer.
      this.count("cmdEmpty");
      this.log.debug({ cmd: name }, "empty command payload ignored");
      return;
    }
    const answerTo = this.answerRoute(packet, isTopicLevel(name) ? this.topics.commandResult(name) : undefined);
    const decision = decideCommand({ name, payload, retained: packet.retain, nowMs, registry: this.commands, seen: (id) => this.seen.get(id) });
    if (decision.kind === "answer") {
      this.count(decision.counter satisfies RefusalCounter);
      this.log.warn({ cmd: name, id: decision.id, status: decision.status, error: decision.error, bytes: payload.length }, "command refused");
      const result: CommandResult = { v: 1, id: decision.id, status: decision.status, error: decision.error, ts: nowMs };
      if (decision.data !== undefined) result.data = decision.data;
      this.answer(answerTo, commandResultSchema, result);
      return;
    }
    const { id, definition, args, expiresAtMs } = decision;
    try {
      // Durable BEFORE the handler runs: a crash mid-command must not re-run it on redelivery.
      await this.seen.remember(id, name, nowMs, expiresAtMs);
    } catch (error) {
      this.count("cmdNotRecorded");
      this.log.error({ err: error, cmd: name, id }, "cannot record the command id; not running it");
      this.answer(answerTo, commandResultSchema, { v: 1, id, status: "error", error: "cannot record the command id durably", ts: this.clock.now() });
      return;
    }
    const after: Array<() => void | Promise<void>> = [];
    const ctx: CommandContext = { id, name, expiresAtMs, receivedAtMs: nowMs, afterResponse: (fn) => after.push(fn) };
    let result: CommandResult;
    try {
      const data = await this.withClockTimeout(definition.handler(args, ctx), definition.timeoutMs, `command "${name}"`);
      result = { v: 1, id, status: "ok", ts: this.clock.now() };
      if (data !== undefined) result.data = data;
      this.count("cmdOk");
      this.log.info({ cmd: name, id }, "command done");
    } catch (error) {
      result = { v: 1, id, status: "error", error: errorText(error), ts: this.clock.now() };
      this.count("cmdFailed");
      this.log.warn({ cmd: name, id, err: error }, "command failed");
    }
    this.seen.settle(id, result.status).catch((error: unknown) => this.log.warn({ err: error }, "command id status not saved"));
    // After-actions (a restart) wait for the broker's acknowledgement of the answer.
    await this.answer(answerTo, commandResultSchema, result);
    for (const fn of after) {
      try {
        await fn();
      } catch (error) {
        this.log.error({ err: error, cmd: name, id }, "after-response action failed");
      }
    }
  }

  private queueConfig(payload: Buffer): Promise<void> {
    // One push at a time: two versions racing must not apply out of order.
    const next = this.configChain.then(() => this.handleConfig(payload));
    this.configChain = next.catch(() => undefined);
    return next;
  }

  private async handleConfig(payload: Buffer): Promise<void> {
    const reject = (version: number | null, detail: string, counter: string): void => {
      this.count(counter);
      this.log.warn({ version, detail }, "config push refused");
      this.reportConfig({ v: 1, version, status: "rejected", detail, ts: this.clock.now() });
    };
    if (payload.length === 0) return; // a cleared retained message: nothing desired
    if (payload.length > MAX_PAYLOAD_BYTES) return reject(null, `payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "cfgOversized");
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      return reject(null, "payload is not JSON", "cfgNonJson");
    }
    const record = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
    const readableVersion = typeof record.version === "number" && Number.isInteger(record.version) && record.version >= 1 ? record.version : null;
    if (record.v !== 1) return reject(readableVersion, `unsupported payload version ${JSON.stringify(record.v ?? null)}; this box speaks v 1`, "cfgWrongVersion");
    const desired = configDesiredSchema.safeParse(raw);
    if (!desired.success) return reject(readableVersion, schemaMessage(desired.error), "cfgInvalid");
    const { version, config } = desired.data;
    // The retained document comes back at every reconnect: versions already answered are quiet.
    if (version <= this.appliedConfigVersion) {
      this.count("cfgIgnored");
      if (version < this.appliedConfigVersion) this.log.info({ version, applied: this.appliedConfigVersion }, "older config version ignored");
      return;
    }
    if (version === this.lastRejectedConfigVersion) {
      this.count("cfgIgnored");
      return;
    }
    if (!this.configHandler) return reject(version, "config push is not enabled on this box", "cfgNoHandler");
    let outcome: { status: "applied" | "rejected"; detail: ConfigDetail };
    try {
      outcome = await this.configHandler(version, config);
    } catch (error) {
      outcome = { status: "rejected", detail: `apply failed: ${errorText(error)}` };
    }
    if (outcome.status === "applied") {
      this.appliedConfigVersion = version;
      this.lastRejectedConfigVersion = null;
      this.count("cfgApplied");
      this.log.info({ version }, "config push applied");
    } else {
      this.lastRejectedConfigVersion = version;
      this.count("cfgRejected");
      this.log.warn({ version, detail: outcome.detail }, "config push rejected");
    }
    await this.configStateFile
      .write({ appliedVersion: this.appliedConfigVersion, lastRejectedVersion: this.lastRejectedConfigVersion })
      .catch((error: unknown) => this.log.error({ err: error }, "applied config version not saved"));
    this.reportConfig({ v: 1, version, status: outcome.status, detail: outcome.detail, ts: this.clock.now() });
    if (outcome.status === "applied") this.publishStatus(this.statusState);
  }

  private reportConfig(report: z.infer<typeof configReportedSchema>): void {
    const payload = this.checked(configReportedSchema, report);
    this.lastConfigReport = payload;
    this.sendRetainedLatest(this.topics.configReported(), payload);
  }

  private async handleJob(jobId: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    if (!isTopicLevel(jobId)) {
      this.count("jobInvalid");
      this.log.warn({ jobId }, "job id cannot be a topic level; ignored");
      return;
    }
    const refuse = (detail: string, counter: string): void => {
      this.count(counter);
      this.log.warn({ jobId, detail }, "job refused");
      this.publishJobStatus(jobId, { status: "rejected", detail });
    };
    if (payload.length > MAX_PAYLOAD_BYTES) return refuse(`payload too large: ${payload.length} bytes`, "jobOversized");
    if (packet.retain) return refuse("retained jobs are not run", "jobRetained");
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      return refuse("payload is not JSON", "jobNonJson");
    }
    const job = jobRequestSchema.safeParse(raw);
    if (!job.success) return refuse(schemaMessage(job.error), "jobInvalid");
    const key = `job:${jobId}`;
    if (this.seen.get(key)) {
      this.count("jobDuplicate");
      this.log.info({ jobId }, "job id seen before; not started again");
      return;
    }
    if (!this.jobHandler) return refuse("jobs are not enabled on this box", "jobNoHandler");
    await this.seen.remember(key, job.data.type, this.clock.now(), undefined);
    try {
      await this.jobHandler(jobId, job.data);
      this.count("jobsStarted");
    } catch (error) {
      this.count("jobFailed");
      this.log.error({ err: error, jobId }, "job handler failed");
      this.publishJobStatus(jobId, { status: "failed", detail: errorText(error).slice(0, 2000) });
    }
  }

  /**
   * Section-4 envelopes over MQTT. Two forms, told apart by content:
   * - wrapped `{v?, id, envelope}` → `{v, id, response}` (works on 3.1.1);
   * - the raw envelope (MQTT 5) → the raw response, matched by correlation data.
   * Either goes to the request's response topic when it names one, else `platform/res`.
   */
  private async handlePlatform(payload: Buffer, packet: IPublishPacket): Promise<void> {
    const route = this.answerRoute(packet, this.topics.platformResponse());
    const wrappedError = (id: string | null, error: string, counter: string): void => {
      this.count(counter);
      this.log.warn({ id, error }, "platform request refused");
      this.answer(route, platformWrappedResponseSchema, { v: 1, id, error });
    };
    if (payload.length > MAX_PAYLOAD_BYTES) return wrappedError(sniffId(payload), `payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "platformOversized");
    const text = payload.toString("utf8");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return wrappedError(sniffId(payload), "payload is not JSON", "platformNonJson");
    }
    const isWrapped = typeof raw === "object" && raw !== null && "envelope" in raw;
    if (isWrapped) {
      const request = platformWrappedRequestSchema.safeParse(raw);
      const id = typeof (raw as { id?: unknown }).id === "string" ? ((raw as { id: string }).id) : null;
      if (!request.success) return wrappedError(id, schemaMessage(request.error), "platformInvalid");
      if (!this.platformHandler) return wrappedError(request.data.id, "platform requests over MQTT are not enabled on this box", "platformNoHandler");
      const envelopeText = typeof request.data.envelope === "string" ? request.data.envelope : JSON.stringify(request.data.envelope);
      try {
        const response = await this.platformHandler(envelopeText);
        this.count("platformAnswered");
        this.answer(route, platformWrappedResponseSchema, { v: 1, id: request.data.id, response: response as Record<string, unknown> });
      } catch (error) {
        wrappedError(request.data.id, `handler failed: ${errorText(error)}`, "platformFailed");
      }
      return;
    }
    // Raw form: the envelope itself; the response is the platform's {code, msg, data}.
    let response: object;
    if (!this.platformHandler) {
      this.count("platformNoHandler");
      response = { code: 503, msg: "platform requests over MQTT are not enabled on this box" };
    } else {
      try {
        response = await this.platformHandler(text);
        this.count("platformAnswered");
      } catch (error) {
        this.count("platformFailed");
        this.log.error({ err: error }, "platform handler failed");
        response = { code: 500, msg: "internal error" };
      }
    }
    if (route.correlationData === undefined && route.topic === this.topics.platformResponse()) {
      this.log.warn("raw platform request without correlation data: the answer cannot be matched");
    }
    this.sendRoute(route, JSON.stringify(response));
  }

  // ------------------------------------------------------------------ answers

  /** Where an answer goes: the MQTT 5 response topic when valid, else the default topic. */
  private answerRoute(packet: IPublishPacket, fallback: string | undefined): { topic: string | undefined; correlationData: Buffer | undefined } {
    const props = packet.properties;
    const responseTopic = props?.responseTopic;
    const topic = typeof responseTopic === "string" && responseTopic.length > 0 && !/[#+\u0000]/.test(responseTopic) ? responseTopic : fallback;
    const correlationData = props?.correlationData;
    return { topic, correlationData: Buffer.isBuffer(correlationData) ? correlationData : undefined };
  }

  private answer<T extends object>(route: { topic: string | undefined; correlationData: Buffer | undefined }, schema: z.ZodType<T>, payload: T): Promise<void> {
    return this.sendRoute(route, JSON.stringify(this.checked(schema, payload)));
  }

  private sendRoute(route: { topic: string | undefined; correlationData: Buffer | undefined }, text: string): Promise<void> {
    if (route.topic === undefined) {
      this.count("answersUnroutable");
      return Promise.resolve();
    }
    const options: IClientPublishOptions = { qos: 1, retain: false };
    // Correlation data is echoed as received (MQTT 5 §4.10); it only exists on MQTT 5.
    if (route.correlationData !== undefined) options.properties = { correlationData: route.correlationData };
    return this.sendAnswer({ topic: route.topic, payload: text, options });
  }

  // ------------------------------------------------------------------ health

  private scheduleHealth(): void {
    this.healthTimer = this.clock.setTimeout(() => {
      this.healthTimer = undefined;
      if (!this.running) return;
      this.publishHealth().catch((error: unknown) => this.log.warn({ err: error }, "health report failed"));
      this.scheduleHealth();
    }, this.config.healthIntervalS * 1000);
  }

  private async buildHealth(input?: HealthInput): Promise<HealthPayload> {
    let source: HealthInput = input ?? {};
    if (!input && this.healthSource) {
      try {
        source = await this.healthSource();
      } catch (error) {
        this.log.warn({ err: error }, "health source failed");
      }
    }
    const own = this.probe.sample();
    const warnings = [this.seen.warning, this.bootFile.warning, this.configStateFile.warning].filter((w): w is string => w !== undefined);
    return this.checked(healthPayloadSchema, {
      v: 1,
      ts: this.clock.now(),
      uptimeS: source.uptimeS ?? own.uptimeS,
      memory: source.memory ?? own.memory,
      eventLoopDelayMs: source.eventLoopDelayMs === undefined ? own.eventLoopDelayMs : source.eventLoopDelayMs,
      outbox: source.outbox ?? null,
      links: { ...source.links, mqtt: this.linkState === "connected" ? "up" : "down" },
      clockSynced: source.clockSynced ?? null,
      storeWarnings: [...(source.storeWarnings ?? []), ...warnings],
      fleet: { ...this.stats(), ...source.fleet },
    });
  }

  // ------------------------------------------------------------------ helpers

  private statusPayload(state: StatusState): StatusPayload {
    return this.checked(statusPayloadSchema, {
      v: 1,
      state,
      boot: this.bootCount,
      version: this.version,
      configVersion: this.appliedConfigVersion,
      ts: this.clock.now(),
    });
  }

  /** Outgoing payloads are checked too: a wiring bug surfaces at the call, not at the backend. */
  private checked<T>(schema: z.ZodType<T>, value: unknown): T {
    const result = schema.safeParse(value);
    if (!result.success) throw new FleetError(FleetErrorCodes.BadPayload, schemaMessage(result.error));
    return result.data;
  }

  private topicFor(build: () => string): string {
    try {
      return build();
    } catch (error) {
      throw new FleetError(FleetErrorCodes.BadName, errorText(error));
    }
  }

  private count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  private withClockTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => reject(new FleetError(FleetErrorCodes.CommandTimeout, `${what} did not finish within ${ms} ms`)), ms);
      promise.then(
        (value) => {
          this.clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          this.clock.clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
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

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** The broker URL for logs, without credentials a URL might carry. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//HIDDEN@");
}
