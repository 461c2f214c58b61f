import { z } from "zod";
import { topicLevelPattern } from "./topics.js";

/**
 * One schema per payload of the fleet link (docs/mqtt.md). Every payload carries
 * `"v": 1`; a later incompatible format gets `"v": 2` on the same topics, so a backend can
 * serve a mixed fleet. Times are epoch milliseconds (UTC); the lot's local-time strings belong
 * to the platform protocol only.
 */
export const PAYLOAD_VERSION = 1 as const;

const v = z.literal(PAYLOAD_VERSION);
const epochMs = z.int().min(0);
const count = z.int().min(0);
/** Ids chosen by the backend: printable, short enough to log and remember. */
const messageId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

// ---- status (retained; the will message is `lost`) ----

export const statusStates = ["online", "offline", "lost", "updating"] as const;
export type StatusState = (typeof statusStates)[number];

export const statusPayloadSchema = z.strictObject({
  v,
  state: z.enum(statusStates),
  /** Counts process starts; with `seq` on events it lets a backend see gaps. */
  boot: count,
  version: z.string().min(1),
  /** The last config version applied through cfg/desired; 0 = the file as provisioned. */
  configVersion: count,
  /** For `lost`: when the will was armed (the connect), not when the box went away. */
  ts: epochMs,
});
export type StatusPayload = z.infer<typeof statusPayloadSchema>;

// ---- info (retained) ----

export const infoPayloadSchema = z.strictObject({
  v,
  deviceId: z.string().min(1),
  version: z.string().min(1),
  hardware: z.record(z.string(), z.unknown()),
  lanes: z.array(z.strictObject({ id: z.string().min(1), direction: z.enum(["in", "out"]), name: z.string().optional() })),
  /** Feature words a backend may test for (e.g. "cmd:open", "cfg-push", "platform-over-mqtt"). */
  capabilities: z.array(z.string().min(1)),
  ts: epochMs,
});
export type InfoPayload = z.infer<typeof infoPayloadSchema>;
export type InfoInput = Omit<InfoPayload, "v" | "ts" | "version" | "deviceId"> & { version?: string };

// ---- health (periodic, not retained, QoS 0) ----

export const linkStates = ["up", "down", "degraded", "unknown"] as const;
export type LinkState = (typeof linkStates)[number];

export const healthPayloadSchema = z.strictObject({
  v,
  ts: epochMs,
  uptimeS: z.number().min(0),
  memory: z.strictObject({ rssBytes: count, heapUsedBytes: count, heapTotalBytes: count }),
  /** Event-loop delay since the previous report; null when not measured. */
  eventLoopDelayMs: z.strictObject({ p50: z.number().min(0), p99: z.number().min(0), max: z.number().min(0) }).nullable(),
  /**
   * The platform outbox; null when the box has none wired. `retrying`: reports the platform
   * refused or did not answer, waiting for their next attempt; `lastCode`/`platformMsg`: the
   * platform's last business refusal (its code and its own text), null when none yet.
   */
  outbox: z
    .strictObject({
      depth: count,
      oldestAgeS: z.number().min(0).nullable(),
      parked: count,
      retrying: count.optional(),
      lastCode: z.int().nullable().optional(),
      platformMsg: z.string().max(500).nullable().optional(),
    })
    .nullable(),
  links: z.record(z.string(), z.enum(linkStates)),
  /** Whether the system clock is synchronised (NTP); null when unknown. */
  clockSynced: z.boolean().nullable(),
  /** Store generation warnings (a fallback to the previous generation, a quarantined file). */
  storeWarnings: z.array(z.string()),
  /** The fleet link's own counters (spool depth, drops, rejected messages, reconnects). */
  fleet: z.record(z.string(), z.number()),
});
export type HealthPayload = z.infer<typeof healthPayloadSchema>;
/** What the integrator supplies; the link fills in what it can measure itself. */
export type HealthInput = Partial<Omit<HealthPayload, "v" | "ts">>;

// ---- state/<laneId> (retained) ----

export const laneStatePayloadSchema = z.strictObject({
  v,
  laneId: z.string().regex(topicLevelPattern),
  /** The barrier machine's state name (closed, opening, open, closing, fault, ...). */
  barrier: z.string().min(1),
  /** Debounced loop presence by logical input name. */
  loops: z.record(z.string(), z.boolean()),
  /** The transaction the lane waits on (plate, fee, since), or null. */
  pending: z.record(z.string(), z.unknown()).nullable(),
  ts: epochMs,
});
export type LaneStatePayload = z.infer<typeof laneStatePayloadSchema>;
export type LaneStateInput = Omit<LaneStatePayload, "v" | "ts" | "laneId">;

// ---- evt/<type> (QoS 1, spooled while offline) ----

/** The event types the runtime publishes; others are allowed if they fit a topic level. */
export const knownEventTypes = [
  "vehicle-entered",
  "vehicle-left",
  "barrier-opened",
  "barrier-closed",
  "barrier-fault",
  "tailgate",
  "payment",
  "detector-fault",
  "camera-silent",
  /** Published by the link itself after the offline spool overflowed. */
  "events-dropped",
  /** Published at the end of every attendant shift (src/fleet/extensions/shift-reports.ts), not from the event bus. */
  "shift-report",
] as const;

export const eventTypeSchema = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, "must be kebab-case, at most 64 characters");

export const eventPayloadSchema = z.strictObject({
  v,
  type: eventTypeSchema,
  /** 1, 2, 3, ... within one boot; a gap means a lost event. */
  seq: z.int().min(1),
  boot: count,
  ts: epochMs,
  data: z.record(z.string(), z.unknown()),
});
export type EventPayload = z.infer<typeof eventPayloadSchema>;

// ---- cmd/<name> → res/<name> ----

/** epoch milliseconds, or an ISO 8601 date-time with a zone. */
export const expiresAtSchema = z.union([epochMs, z.iso.datetime({ offset: true })]);

export const commandRequestSchema = z.strictObject({
  v,
  id: messageId,
  expiresAt: expiresAtSchema.optional(),
  args: z.unknown().optional(),
});
export type CommandRequest = z.infer<typeof commandRequestSchema>;

/**
 * `expired` is in the enum for backends written against an earlier draft of the contract, but
 * the box answers an expired command with `status: "rejected", error: "expired"`, so every
 * refusal that did not run anything is one status.
 */
export const commandStatuses = ["ok", "error", "rejected", "expired", "duplicate"] as const;
export type CommandStatus = (typeof commandStatuses)[number];

export const commandResultSchema = z.strictObject({
  v,
  /** null when the request had no readable id (non-JSON, oversized, no `id`). */
  id: z.string().nullable(),
  status: z.enum(commandStatuses),
  data: z.unknown().optional(),
  /** A stable code (`E_CMD_…`) on every answer that is not `ok`; `error` says it in words. */
  code: z
    .string()
    .regex(/^E_[A-Z0-9_]+$/)
    .optional(),
  error: z.string().optional(),
  ts: epochMs,
});
export type CommandResult = z.infer<typeof commandResultSchema>;

/** Arguments of the lane commands (open, close) the integrator registers. */
export const laneCommandArgsSchema = z.strictObject({
  laneId: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, "must be a lane id"),
  operator: z.string().min(1).max(64).optional(),
  reason: z.string().max(200).optional(),
});
export type LaneCommandArgs = z.infer<typeof laneCommandArgsSchema>;

// ---- cfg/desired → cfg/reported (both retained) ----

export const configDesiredSchema = z.strictObject({
  v,
  version: z.int().min(1),
  config: z.record(z.string(), z.unknown()),
});
export type ConfigDesired = z.infer<typeof configDesiredSchema>;

export const configProblemSchema = z.strictObject({ path: z.string(), message: z.string() });
export const configDetailSchema = z.union([z.string(), z.array(configProblemSchema)]);
export type ConfigDetail = z.infer<typeof configDetailSchema>;

export const configReportedSchema = z.strictObject({
  v,
  /** null when the desired document was unreadable (no version to answer to). */
  version: z.int().min(1).nullable(),
  status: z.enum(["applied", "rejected"]),
  detail: configDetailSchema,
  ts: epochMs,
});
export type ConfigReported = z.infer<typeof configReportedSchema>;

// ---- jobs/<jobId> → jobs/<jobId>/status ----

/** The job body is the update module's contract; the link checks only what it routes on. */
export const jobRequestSchema = z.looseObject({
  v,
  type: z.string().min(1).max(64),
});
export type JobRequest = z.infer<typeof jobRequestSchema>;

export const jobStates = ["queued", "running", "succeeded", "failed", "rejected", "rolled-back"] as const;
export type JobState = (typeof jobStates)[number];

export const jobStatusPayloadSchema = z.strictObject({
  v,
  jobId: z.string().regex(topicLevelPattern),
  status: z.enum(jobStates),
  /** The step the job is at (download, verify, unpack, switch, restart, confirm). */
  step: z.string().min(1).max(64).optional(),
  /** 0..1 within the step, when known. */
  progress: z.number().min(0).max(1).optional(),
  detail: z.string().max(2000).optional(),
  ts: epochMs,
});
export type JobStatusPayload = z.infer<typeof jobStatusPayloadSchema>;
export type JobStatusInput = Omit<JobStatusPayload, "v" | "ts" | "jobId">;

// ---- platform/req → platform/res ----

/**
 * The wrapped form, for MQTT 3.1.1 (no response topic, no correlation data): the envelope
 * travels as text so the signature over the raw bizContent text survives (docs/protocol.md §2;
 * an object is accepted and re-serialised, which only verifies when bizContent is a string).
 */
export const platformWrappedRequestSchema = z.strictObject({
  v: v.optional(),
  id: messageId,
  envelope: z.union([z.string().min(2), z.record(z.string(), z.unknown())]),
});
export type PlatformWrappedRequest = z.infer<typeof platformWrappedRequestSchema>;

export const platformWrappedResponseSchema = z.strictObject({
  v,
  id: z.string().nullable(),
  response: z.record(z.string(), z.unknown()).optional(),
  error: z.string().optional(),
});
export type PlatformWrappedResponse = z.infer<typeof platformWrappedResponseSchema>;

/** The first problem of a zod error, as one line for a `res` payload or a log. */
export function schemaMessage(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}
