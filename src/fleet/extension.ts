import type { IPublishPacket, MqttClient } from "mqtt";
import type { z } from "zod";
import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { MqttConfig } from "./config.js";
import { FleetError, FleetErrorCodes } from "./errors.js";
import { schemaMessage } from "./payloads.js";
import type { FleetTopics, InboundTopic } from "./topics.js";

/**
 * What the fleet link is made of: one connection (connection.ts) and extensions, one per
 * feature (the shape of zigbee2mqtt's `lib/mqtt.ts` and its `extension/` folder). The
 * connection owns the socket; an extension owns one job — the retained status, health, events,
 * commands, jobs, config pushes, platform requests — and the connection calls it at the moments
 * below, in the order the extensions were added.
 */
export interface FleetExtension {
  readonly name: string;
  /** The downstream topic this extension answers; its filter is subscribed after every connect. */
  readonly inbound?: InboundTopic["kind"] | undefined;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** After every connect: re-send what the broker should hold, flush what waited offline. */
  onConnected?(conn: Connection): void;
  /** A connection closed (a drop, not a stop): take back what was in flight on it. */
  onClosed?(): void;
  /** A message on this extension's `inbound` topic. A rejection is logged and counted by the caller. */
  handle?(message: InboundMessage): Promise<void>;
}

export interface InboundMessage {
  readonly topic: string;
  readonly route: InboundTopic;
  readonly payload: Buffer;
  readonly packet: IPublishPacket;
}

/** One connection attempt; a new one (a fresh client, a clean session) per attempt. */
export interface Connection {
  readonly id: number;
  readonly client: MqttClient;
  readonly protocolVersion: 4 | 5;
  connected: boolean;
  closed: boolean;
}

/**
 * The link's counters, shared by the connection and the extensions: each counts under its own
 * names, and all of them appear (once non-zero) in the health payload's `fleet` record.
 */
export class FleetCounters {
  private readonly values: Record<string, number> = {};

  count(name: string, by = 1): void {
    this.values[name] = (this.values[name] ?? 0) + by;
  }

  set(name: string, value: number): void {
    this.values[name] = value;
  }

  snapshot(): Record<string, number> {
    return { ...this.values };
  }
}

/** What every extension is built with. */
export interface FleetContext {
  readonly config: MqttConfig;
  readonly deviceId: string;
  readonly version: string;
  readonly topics: FleetTopics;
  readonly log: Logger;
  readonly clock: Clock;
  readonly counters: FleetCounters;
}

/** Outgoing payloads are checked too: a wiring bug surfaces at the call, not at the backend. */
export function checked<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new FleetError(FleetErrorCodes.BadPayload, schemaMessage(result.error));
  return result.data;
}

/** A topic built from a caller's name; a name that cannot be a topic level is a FleetError. */
export function topicFor(build: () => string): string {
  try {
    return build();
  } catch (error) {
    throw new FleetError(FleetErrorCodes.BadName, errorText(error));
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
