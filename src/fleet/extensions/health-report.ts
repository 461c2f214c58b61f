import type { IClientPublishOptions } from "mqtt";
import type { TimerHandle } from "../../kernel/clock.js";
import type { FleetConnection } from "../connection.js";
import { checked, type FleetContext, type FleetExtension } from "../extension.js";
import { healthPayloadSchema, type HealthInput, type HealthPayload } from "../payloads.js";
import { ProcessProbe } from "../process-probe.js";

export interface HealthReportOptions {
  /** Outbox, links, clock sync, store warnings: what the rest of the runtime knows. */
  source: (() => HealthInput | Promise<HealthInput>) | undefined;
  /** The link's own gauges and counters, for the `fleet` record. */
  stats: () => Record<string, number>;
  /** Warnings of the link's own state files. */
  warnings: () => string[];
}

/** `health`: every `healthIntervalS`, and on demand (the `health-now` command). */
export class HealthReport implements FleetExtension {
  readonly name = "health";
  private readonly probe = new ProcessProbe();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly ctx: FleetContext,
    private readonly connection: FleetConnection,
    private readonly options: HealthReportOptions,
  ) {}

  /** Called once the link runs: the timer's first report is one interval later. */
  async start(): Promise<void> {
    this.probe.start();
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.probe.stop();
  }

  /**
   * Publishes health now (QoS 0, with an MQTT 5 expiry of two intervals). Offline, it is
   * dropped and counted: a stale health report is worthless and QoS 0 is never queued.
   * Resolves with the payload that was built.
   */
  async publish(health?: HealthInput): Promise<HealthPayload> {
    const payload = await this.build(health);
    const conn = this.connection.live();
    if (!conn) {
      this.ctx.counters.count("qos0Dropped");
      return payload;
    }
    const options: IClientPublishOptions = { qos: 0, retain: false };
    if (conn.protocolVersion === 5) options.properties = { messageExpiryInterval: this.ctx.config.healthIntervalS * 2 };
    this.connection.send(conn, this.ctx.topics.health(), payload, options).catch((error: unknown) => this.ctx.log.debug({ err: error }, "health not sent"));
    this.ctx.counters.count("healthSent");
    return payload;
  }

  private schedule(): void {
    this.timer = this.ctx.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.connection.running) return;
      this.publish().catch((error: unknown) => this.ctx.log.warn({ err: error }, "health report failed"));
      this.schedule();
    }, this.ctx.config.healthIntervalS * 1000);
  }

  private async build(input?: HealthInput): Promise<HealthPayload> {
    let source: HealthInput = input ?? {};
    if (!input && this.options.source) {
      try {
        source = await this.options.source();
      } catch (error) {
        this.ctx.log.warn({ err: error }, "health source failed");
      }
    }
    const own = this.probe.sample();
    return checked(healthPayloadSchema, {
      v: 1,
      ts: this.ctx.clock.now(),
      uptimeS: source.uptimeS ?? own.uptimeS,
      memory: source.memory ?? own.memory,
      eventLoopDelayMs: source.eventLoopDelayMs === undefined ? own.eventLoopDelayMs : source.eventLoopDelayMs,
      outbox: source.outbox ?? null,
      links: { ...source.links, mqtt: this.connection.state === "connected" ? "up" : "down" },
      clockSynced: source.clockSynced ?? null,
      storeWarnings: [...(source.storeWarnings ?? []), ...this.options.warnings()],
      fleet: { ...this.options.stats(), ...source.fleet },
    });
  }
}
