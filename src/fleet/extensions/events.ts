import type { IClientPublishOptions } from "mqtt";
import type { FleetConnection } from "../connection.js";
import { FleetError, FleetErrorCodes } from "../errors.js";
import { EventSpool, spoolKey, type SpoolEntry } from "../event-spool.js";
import { checked, errorText, type Connection, type FleetContext, type FleetExtension } from "../extension.js";
import { eventPayloadSchema, eventTypeSchema, schemaMessage, type EventPayload } from "../payloads.js";

const eventBatchSize = 50;

export interface EventsOptions {
  stateDir: string;
  /** This run's boot number; 0 until the status extension has started. */
  boot: () => number;
  /** The ring of recent events that `last-events` reads. */
  recentEventsSize: number;
}

/**
 * `evt/<type>`: events numbered with `seq` and `boot`, QoS 1. Offline (or while older events
 * are still spooled) they go to the disk spool and are sent in order after the next connect;
 * an event leaves the spool only once the broker acknowledged it.
 */
export class Events implements FleetExtension {
  readonly name = "events";
  readonly spool: EventSpool;
  private seq = 0;
  private loadedAtStart = 0;
  private inflight: SpoolEntry[] = [];
  private draining = false;
  private recent: EventPayload[] = [];

  constructor(
    private readonly ctx: FleetContext,
    private readonly connection: FleetConnection,
    private readonly options: EventsOptions,
  ) {
    this.spool = new EventSpool({ dir: options.stateDir, maxEntries: ctx.config.spoolMaxEvents, log: ctx.log });
  }

  /** How many spooled events the last start found on disk. */
  get loaded(): number {
    return this.loadedAtStart;
  }

  async start(): Promise<void> {
    this.seq = 0;
    this.loadedAtStart = (await this.spool.open()).loaded;
  }

  async stop(): Promise<void> {
    this.requeueInflight();
    await this.spool.close();
  }

  onConnected(conn: Connection): void {
    if (this.spool.droppedUnreported > 0) {
      // Sent ahead of the spool, not through it: a full spool would otherwise drop one more
      // event to make room for the notice about dropping events.
      const dropped = this.spool.droppedUnreported;
      this.spool.droppedUnreported = 0;
      const payload = this.make("events-dropped", { count: dropped, totalSinceStart: this.spool.droppedTotal, reason: "offline spool full" });
      this.sendDirect(conn, { key: spoolKey(payload), payload });
    }
    void this.drain(conn);
  }

  /** Unacknowledged direct events go back to the spool. */
  onClosed(): void {
    this.requeueInflight();
  }

  /** The last `n` events published (spooled or sent), oldest first. */
  last(n: number): EventPayload[] {
    return n <= 0 ? [] : this.recent.slice(-n);
  }

  publish(type: string, data: Record<string, unknown>): EventPayload {
    const payload = this.make(type, data);
    if (!this.connection.running) {
      // Only during shutdown: the spool is closed. Counted and logged, never silent.
      this.ctx.counters.count("eventsDroppedStopped");
      this.ctx.log.warn({ type, seq: payload.seq }, "event published after the fleet link stopped; dropped");
      return payload;
    }
    this.enqueue({ key: spoolKey(payload), payload });
    return payload;
  }

  private make(type: string, data: Record<string, unknown>): EventPayload {
    const boot = this.options.boot();
    if (boot === 0) throw new FleetError(FleetErrorCodes.NotStarted, "publishEvent before the fleet link started (the boot counter is not known)");
    const typeOk = eventTypeSchema.safeParse(type);
    if (!typeOk.success) throw new FleetError(FleetErrorCodes.BadName, `event type ${JSON.stringify(type)}: ${schemaMessage(typeOk.error)}`);
    const payload = checked(eventPayloadSchema, { v: 1, type, seq: this.seq + 1, boot, ts: this.ctx.clock.now(), data });
    try {
      JSON.stringify(payload); // a BigInt or a cycle must fail here, not halfway into the spool
    } catch (error) {
      throw new FleetError(FleetErrorCodes.BadPayload, `event ${type} is not JSON-serialisable: ${errorText(error)}`);
    }
    this.seq = payload.seq;
    this.recent.push(payload);
    if (this.recent.length > this.options.recentEventsSize) this.recent.splice(0, this.recent.length - this.options.recentEventsSize);
    return payload;
  }

  private publishOptions(conn: Connection): IClientPublishOptions {
    const options: IClientPublishOptions = { qos: 1, retain: false };
    if (conn.protocolVersion === 5) options.properties = { messageExpiryInterval: this.ctx.config.eventExpiryS };
    return options;
  }

  private enqueue(entry: SpoolEntry): void {
    const conn = this.connection.live();
    if (conn && this.spool.size === 0 && !this.draining) {
      this.sendDirect(conn, entry);
      return;
    }
    this.spool.append([entry]);
    this.ctx.counters.count("eventsSpooled");
    if (conn && !this.draining) void this.drain(conn);
  }

  private sendDirect(conn: Connection, entry: SpoolEntry): void {
    this.inflight.push(entry);
    this.connection.send(conn, this.ctx.topics.event(entry.payload.type), entry.payload, this.publishOptions(conn)).then(
      () => {
        this.forgetInflight(entry);
        this.ctx.counters.count("eventsSent");
      },
      (error: unknown) => {
        // A closed connection already moved the event back to the spool (onClosed).
        if (conn.closed || !this.forgetInflight(entry)) return;
        this.ctx.counters.count("eventsRefused");
        this.ctx.log.warn({ err: error, type: entry.payload.type, seq: entry.payload.seq }, "broker refused an event");
      },
    );
  }

  private forgetInflight(entry: SpoolEntry): boolean {
    const at = this.inflight.indexOf(entry);
    if (at < 0) return false;
    this.inflight.splice(at, 1);
    return true;
  }

  private requeueInflight(): void {
    if (this.inflight.length === 0) return;
    const entries = this.inflight;
    this.inflight = [];
    // Direct sends happen only while the spool is empty, so these are older than anything in it.
    this.spool.append(entries);
    this.ctx.counters.count("eventsSpooled", entries.length);
  }

  /** Sends the spool in order, a batch at a time; an entry leaves the spool once acknowledged. */
  private async drain(conn: Connection): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!conn.closed && this.connection.running && this.spool.size > 0) {
        const batch = this.spool.peek(eventBatchSize);
        const results = await Promise.allSettled(
          batch.map((entry) => this.connection.send(conn, this.ctx.topics.event(entry.payload.type), entry.payload, this.publishOptions(conn))),
        );
        if (conn.closed) break;
        const refused = results.filter((result) => result.status === "rejected").length;
        if (refused > 0) {
          // Refused by the broker (MQTT 5 reason code) on a live link: retrying would block the queue forever.
          this.ctx.counters.count("eventsRefused", refused);
          this.ctx.log.warn({ refused }, "broker refused spooled events");
        }
        this.ctx.counters.count("eventsSent", batch.length - refused);
        await this.spool.consume(batch);
      }
    } catch (error) {
      this.ctx.log.error({ err: error }, "spool drain failed");
    } finally {
      this.draining = false;
    }
    if (!conn.closed && this.connection.running && this.spool.size > 0) void this.drain(conn);
  }
}
