import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";
import { systemClock, type Clock } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import { redactUrl } from "../kernel/redact-url.js";
import { VERSION } from "../version.js";
import { AnswerQueue } from "./answers.js";
import type { BackoffPolicy } from "../kernel/backoff.js";
import { defaultBackoff } from "./backoff.js";
import type { CommandDefinition, CommandHandler, CommandOptions } from "./commands.js";
import type { MqttConfig } from "./config.js";
import { FleetConnection, type ConnectFn, type FleetLinkState } from "./connection.js";
import { FleetError, FleetErrorCodes } from "./errors.js";
import { FleetCounters, type FleetContext, type FleetExtension } from "./extension.js";
import { CommandRunner } from "./extensions/command-runner.js";
import { ConfigPush, type ConfigDesiredHandler } from "./extensions/config-push.js";
import { Events } from "./extensions/events.js";
import { HealthReport } from "./extensions/health-report.js";
import { Jobs, type JobHandler } from "./extensions/jobs.js";
import { PlatformRequests, type PlatformRequestHandler } from "./extensions/platform-requests.js";
import { StatusInfo } from "./extensions/status-info.js";
import type { EventPayload, HealthInput, HealthPayload, InfoInput, JobStatusInput, LaneStateInput, StatusState } from "./payloads.js";
import { SeenIds } from "./seen-ids.js";
import { fleetTopics, isTopicLevel, type FleetTopics } from "./topics.js";

export type { ConnectFn, FleetLinkState } from "./connection.js";
export type { ConfigDesiredHandler } from "./extensions/config-push.js";
export type { JobHandler } from "./extensions/jobs.js";
export type { PlatformRequestHandler } from "./extensions/platform-requests.js";

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

/**
 * The fleet link over MQTT: one Component that keeps a connection to the broker, announces the
 * box (retained status with a `lost` will, info, lane states), publishes health and events,
 * and routes commands, config pushes, update jobs and platform section-4 envelopes to handlers
 * the integrator registers.
 *
 * This class only assembles: the connection (connection.ts) and one extension per feature
 * (extensions/), and the public surface the rest of the app uses.
 */
export class FleetLink implements Component {
  readonly name = "fleet";
  readonly topics: FleetTopics;

  private readonly config: MqttConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly stateDir: string;
  private readonly counters = new FleetCounters();
  private readonly connection: FleetConnection;
  private readonly extensions: FleetExtension[];
  private readonly seen: SeenIds;
  private readonly answers: AnswerQueue;
  private readonly status: StatusInfo;
  private readonly commandRunner: CommandRunner;
  private readonly configPush: ConfigPush;
  private readonly jobs: Jobs;
  private readonly platform: PlatformRequests;
  private readonly events: Events;
  private readonly health: HealthReport;
  /** The command registry (the runner's); read by the docs check of the command table. */
  private readonly commands: Map<string, CommandDefinition>;

  constructor(options: FleetLinkOptions) {
    if (!isTopicLevel(options.deviceId)) throw new FleetError(FleetErrorCodes.BadName, `device id ${JSON.stringify(options.deviceId)} cannot be a topic level`);
    const { config, stateDir } = options;
    this.config = config;
    this.log = options.log;
    this.stateDir = stateDir;
    this.topics = fleetTopics(config.topicRoot, options.deviceId);
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.connection = new FleetConnection({
      config,
      deviceId: options.deviceId,
      topics: this.topics,
      log: this.log,
      clock,
      counters: this.counters,
      random: options.random ?? Math.random,
      backoff: options.backoff ?? defaultBackoff,
      stableAfterMs: options.stableAfterMs ?? 60_000,
      connect: options.connect,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      will: () => this.status.payload("lost"),
      lostContext: () => ({ spooled: this.events.spool.size }),
    });
    const ctx: FleetContext = { config, deviceId: options.deviceId, version: options.version ?? VERSION, topics: this.topics, log: this.log, clock, counters: this.counters };
    this.seen = new SeenIds(join(stateDir, "command-ids.json"), this.log, options.commandIdRetainMs === undefined ? {} : { retainMs: options.commandIdRetainMs });
    this.answers = new AnswerQueue(ctx, this.connection, options.offlineAnswersMax ?? 500);
    this.status = new StatusInfo(ctx, this.connection, { stateDir, configVersion: () => this.configPush.version, capabilities: () => this.capabilities() });
    this.commandRunner = new CommandRunner(ctx, this.answers, this.seen);
    this.commands = this.commandRunner.registry;
    this.configPush = new ConfigPush(ctx, this.connection, stateDir, () => this.status.republishStatus());
    this.jobs = new Jobs(ctx, this.answers, this.seen);
    this.platform = new PlatformRequests(ctx, this.answers);
    this.events = new Events(ctx, this.connection, { stateDir, boot: () => this.status.boot, recentEventsSize: options.recentEventsSize ?? 200 });
    this.health = new HealthReport(ctx, this.connection, {
      source: options.healthSource,
      stats: () => this.stats(),
      warnings: () => [this.seen.warning, this.status.warning, this.configPush.warning].filter((w): w is string => w !== undefined),
    });
    // The order is the order of the subscriptions and of what is re-sent after a connect:
    // status, info and lane states first, then cfg/reported, held answers, and the event spool.
    this.extensions = [this.status, this.commandRunner, this.configPush, this.jobs, this.platform, this.answers, this.events, this.health];
    for (const extension of this.extensions) this.connection.use(extension);
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    if (this.connection.running) return;
    await this.connection.prepare();
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await this.seen.load(this.clock.now());
    // The health report starts last: its timer must not outlive a start that failed.
    for (const extension of this.extensions) await extension.start?.();
    this.log.info(
      { boot: this.status.boot, spooled: this.events.loaded, url: redactUrl(this.config.url), protocolVersion: this.connection.effectiveProtocolVersion },
      "fleet link starting",
    );
    this.connection.start();
  }

  async stop(): Promise<void> {
    if (!this.connection.running) return;
    await this.connection.stop((conn) => this.status.sendOffline(conn));
    for (const extension of [...this.extensions].reverse()) await extension.stop?.();
    await this.seen.idle();
    this.connection.markStopped();
    this.log.info({ spooled: this.events.spool.size }, "fleet link stopped");
  }

  // ------------------------------------------------------------------ introspection

  get state(): FleetLinkState {
    return this.connection.state;
  }

  get boot(): number {
    return this.status.boot;
  }

  get configVersion(): number {
    return this.configPush.version;
  }

  /** The protocol of the current or next attempt (5 falls back to 4 on a 3.1.1-only broker). */
  get effectiveProtocolVersion(): 4 | 5 {
    return this.connection.effectiveProtocolVersion;
  }

  /** When the next reconnect attempt is due (epoch ms of the Clock), while waiting. */
  get nextAttemptAt(): number | undefined {
    return this.connection.nextAttemptAt;
  }

  stats(): FleetStats {
    return {
      ...this.counters.snapshot(),
      connected: this.connection.state === "connected" ? 1 : 0,
      boot: this.status.boot,
      configVersion: this.configPush.version,
      failures: this.connection.failures,
      spoolDepth: this.events.spool.size,
      spoolDropped: this.events.spool.droppedTotal,
      spoolWriteErrors: this.events.spool.writeErrors,
      offlineAnswers: this.answers.size,
      rememberedCommandIds: this.seen.size,
    };
  }

  /** Listens to link state changes; returns the unsubscribe function. */
  onLinkChange(listener: (state: FleetLinkState) => void): () => void {
    return this.connection.onLinkChange(listener);
  }

  /** The last `n` events published (spooled or sent), oldest first. */
  lastEvents(n: number): EventPayload[] {
    return this.events.last(n);
  }

  // ------------------------------------------------------------------ upstream

  /** Sets the retained status (`online`, `offline`, `updating`); re-sent after every reconnect. */
  publishStatus(state: Exclude<StatusState, "lost">): void {
    this.status.publishStatus(state);
  }

  /**
   * Sets the retained `info`. Its capabilities are the handlers registered at the time; one
   * registered later (the update agent wires `onJob` after the app is built) publishes it again.
   */
  publishInfo(info: InfoInput): void {
    this.status.publishInfo(info);
  }

  publishLaneState(laneId: string, state: LaneStateInput): void {
    this.status.publishLaneState(laneId, state);
  }

  /**
   * Publishes health now (QoS 0, with an MQTT 5 expiry of two intervals). Offline, it is
   * dropped and counted: a stale health report is worthless and QoS 0 is never queued.
   * Resolves with the payload that was built.
   */
  publishHealth(health?: HealthInput): Promise<HealthPayload> {
    return this.health.publish(health);
  }

  /**
   * Publishes an event on `evt/<type>` with `seq` and `boot`, QoS 1. Offline (or while older
   * events are still spooled) it goes to the disk spool and is sent in order later.
   */
  publishEvent(type: string, data: Record<string, unknown> = {}): EventPayload {
    return this.events.publish(type, data);
  }

  /** QoS 1; held (bounded) while offline. Resolves once acknowledged or held; never rejects. */
  publishJobStatus(jobId: string, status: JobStatusInput): Promise<void> {
    return this.jobs.publishStatus(jobId, status);
  }

  // ------------------------------------------------------------------ downstream registration

  /**
   * Registers `cmd/<name>`. The handler gets the args parsed by `argsSchema`; what it resolves
   * to is the `data` of an `ok` answer, what it throws becomes an `error` answer.
   */
  registerCommand<S extends z.ZodType>(name: string, argsSchema: S, handler: CommandHandler<z.output<S>>, options: CommandOptions = {}): void {
    this.commandRunner.register(name, argsSchema, handler, options);
    this.status.refreshInfo();
  }

  /**
   * Handles `cfg/desired`. The handler validates (validateConfig in src/config/load.ts) and
   * applies; the link keeps the version bookkeeping and answers on `cfg/reported`.
   */
  onConfigDesired(handler: ConfigDesiredHandler): void {
    this.configPush.handler = handler;
    this.status.refreshInfo();
  }

  onJob(handler: JobHandler): void {
    this.jobs.handler = handler;
    this.status.refreshInfo();
  }

  onPlatformRequest(handler: PlatformRequestHandler): void {
    this.platform.handler = handler;
    this.status.refreshInfo();
  }

  /** What the registered handlers add to the capabilities of `info`. */
  private capabilities(): string[] {
    const capabilities = [...this.commands.keys()].map((name) => `cmd:${name}`);
    if (this.configPush.handler) capabilities.push("cfg-push");
    if (this.jobs.handler) capabilities.push("jobs");
    if (this.platform.handler) capabilities.push("platform-over-mqtt");
    return capabilities;
  }
}
