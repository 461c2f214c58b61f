import { join } from "node:path";
import type { IClientPublishOptions } from "mqtt";
import { z } from "zod";
import type { FleetConnection } from "../connection.js";
import { checked, topicFor, type Connection, type FleetContext, type FleetExtension } from "../extension.js";
import {
  infoPayloadSchema,
  laneStatePayloadSchema,
  statusPayloadSchema,
  type InfoInput,
  type InfoPayload,
  type LaneStateInput,
  type LaneStatePayload,
  type StatusPayload,
  type StatusState,
} from "../payloads.js";
import { JsonStateFile } from "../state-file.js";

const bootFileSchema = z.strictObject({ boot: z.int().min(0) });

export interface StatusInfoOptions {
  stateDir: string;
  /** The config version the box runs, for the status payload. */
  configVersion: () => number;
  /** The capabilities the registered handlers add to `info`. */
  capabilities: () => Iterable<string>;
}

/**
 * The retained announcements: `status` (with the boot counter; its `lost` form is the will),
 * `info`, and `state/<lane>`. The latest of each is kept and re-sent after every connect.
 */
export class StatusInfo implements FleetExtension {
  readonly name = "status";
  private readonly bootFile: JsonStateFile<z.infer<typeof bootFileSchema>>;
  private bootCount = 0;
  private statusState: Exclude<StatusState, "lost"> = "online";
  private info: InfoPayload | undefined;
  private infoInput: InfoInput | undefined;
  private readonly laneStates = new Map<string, LaneStatePayload>();

  constructor(
    private readonly ctx: FleetContext,
    private readonly connection: FleetConnection,
    private readonly options: StatusInfoOptions,
  ) {
    this.bootFile = new JsonStateFile(join(options.stateDir, "boot.json"), bootFileSchema, ctx.log);
  }

  /** This run's boot number (0 before start). */
  get boot(): number {
    return this.bootCount;
  }

  get warning(): string | undefined {
    return this.bootFile.warning;
  }

  async start(): Promise<void> {
    const boot = ((await this.bootFile.read())?.boot ?? 0) + 1;
    await this.bootFile.write({ boot });
    this.bootCount = boot;
  }

  async stop(): Promise<void> {
    await this.bootFile.idle();
  }

  onConnected(conn: Connection): void {
    const retained: IClientPublishOptions = { qos: 1, retain: true };
    const fail = (what: string) => (error: unknown) => this.ctx.log.warn({ err: error }, `${what} not sent`);
    this.connection.send(conn, this.ctx.topics.status(), this.payload(this.statusState), retained).catch(fail("status"));
    if (this.info) this.connection.send(conn, this.ctx.topics.info(), this.info, retained).catch(fail("info"));
    for (const [laneId, state] of this.laneStates) this.connection.send(conn, this.ctx.topics.laneState(laneId), state, retained).catch(fail(`state/${laneId}`));
  }

  /** The `offline` status, sent on a stop before the clean DISCONNECT. */
  sendOffline(conn: Connection): Promise<void> {
    return this.connection.send(conn, this.ctx.topics.status(), this.payload("offline"), { qos: 1, retain: true });
  }

  publishStatus(state: Exclude<StatusState, "lost">): void {
    this.statusState = state;
    this.connection.sendRetainedLatest(this.ctx.topics.status(), this.payload(state));
  }

  /** Sends the status again (its config version changed). */
  republishStatus(): void {
    this.publishStatus(this.statusState);
  }

  publishInfo(info: InfoInput): void {
    this.infoInput = info;
    const capabilities = new Set(info.capabilities);
    for (const capability of this.options.capabilities()) capabilities.add(capability);
    const payload = checked(infoPayloadSchema, {
      v: 1,
      deviceId: this.ctx.deviceId,
      version: info.version ?? this.ctx.version,
      hardware: info.hardware,
      lanes: info.lanes,
      capabilities: [...capabilities].sort(),
      ts: this.ctx.clock.now(),
    });
    this.info = payload;
    this.connection.sendRetainedLatest(this.ctx.topics.info(), payload);
  }

  /** `info` announces capabilities: a handler registered after publishInfo must show in it. */
  refreshInfo(): void {
    if (this.infoInput) this.publishInfo(this.infoInput);
  }

  publishLaneState(laneId: string, state: LaneStateInput): void {
    const topic = topicFor(() => this.ctx.topics.laneState(laneId));
    const payload = checked(laneStatePayloadSchema, { v: 1, laneId, ...state, ts: this.ctx.clock.now() });
    this.laneStates.set(laneId, payload);
    this.connection.sendRetainedLatest(topic, payload);
  }

  payload(state: StatusState): StatusPayload {
    return checked(statusPayloadSchema, {
      v: 1,
      state,
      boot: this.bootCount,
      version: this.ctx.version,
      configVersion: this.options.configVersion(),
      ts: this.ctx.clock.now(),
    });
  }
}
