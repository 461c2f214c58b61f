import { z } from "zod";
import { photoRingConfigSchema } from "../io/camera/photo-ring.js";
import { tariffSchema } from "../core/fees/tariff-schema.js";
import { inputNames, outputNames } from "../core/lane/io-names.js";
import { platformConfigSchema } from "../platform/config.js";
import { mqttConfigSchema } from "../fleet/config.js";
import { lotShareConfigSchema } from "../lot/config.js";
import { serialDeviceSchema } from "../io/serial/config.js";
import { systemConfigSchema } from "../system/config.js";
import { updateConfigSchema } from "../update/config.js";
import { policyConfigSchema } from "../lanes/policy-schema.js";
import { outboxConfigSchema } from "../outbox/config.js";
import { isKnownTimeZone } from "./time-zone.js";

/** The config format this build writes and reads; older files are migrated (migrate.ts). */
export const CONFIG_VERSION = 1;

// The lane's input and output names belong to the lane core; the schema maps them to lines.
export { inputNames, outputNames, type InputName } from "../core/lane/io-names.js";

const lineSchema = z.strictObject({
  /** BCM line number (0..57 covers every Pi). */
  line: z.int().min(0).max(57),
  activeLow: z.boolean().default(false),
});

// Checked against the system's tzdata first (which also reads the zone's rules for the fees and
// the log's clock), Intl only for a zone tzdata lacks: time-zone.ts.
const timeZoneSchema = z.string().refine(isKnownTimeZone, { message: "is not an IANA time zone (e.g. Asia/Shanghai)" });

const detectorSchema = z.strictObject({
  /** presence: output held while occupied; pulse: a short pulse on arrival/departure. */
  type: z.enum(["presence", "pulse"]).default("presence"),
  minOnMs: z.int().min(0).max(10_000).default(100),
  minOffMs: z.int().min(0).max(10_000).default(300),
  /** Pulse detectors: which edges the pulses stand for. */
  pulseMeaning: z.enum(["arrival-and-departure", "arrival-only"]).default("arrival-and-departure"),
  /** Pulse detectors with arrival-only pulses: presence ends after this long. */
  pulseHoldMs: z.int().min(100).max(600_000).default(5000),
  /** An output held on beyond this is a detector fault (a welded relay, a loop stuck on), not a car. */
  stuckOnLimitMs: z.int().min(1000).default(600_000),
});

const laneTimersSchema = z.strictObject({
  /** Loop and plate may arrive in either order within this window. */
  plateWindowMs: z.int().min(100).max(120_000).default(5000),
  /** A second read of the same plate on the same lane within this window is ignored. */
  dedupeWindowMs: z.int().min(0).max(3_600_000).default(30_000),
  /** Reclose when no vehicle ever reached the safety loop after an open. */
  recloseMs: z.int().min(1000).max(600_000).default(30_000),
  /** Travel time of the arm, used to infer position without limit switches. */
  travelTimeMs: z.int().min(100).max(60_000).default(3000),
  /** With limit switches: a travel that has not reached its limit by then is a fault. */
  travelTimeoutMs: z.int().min(200).max(120_000).default(8000),
  /** An allowed car that left loopA and has not reached loopB within this time backed out. */
  backoutGraceMs: z.int().min(500).max(60_000).default(5000),
});

const laneSchema = z.strictObject({
  /** Lane id used in topics, record numbers and the local API: letters, digits, - and _. */
  id: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, "must be 1-16 letters, digits, - or _"),
  name: z.string().optional(),
  direction: z.enum(["in", "out"]),
  /** The platform's channel id for this lane (inChannelid / outChannelid / channelid). */
  channelId: z.string().min(1).max(30),
  detector: detectorSchema.prefault({}),
  inputs: z.partialRecord(z.enum(inputNames), lineSchema),
  outputs: z.partialRecord(z.enum(outputNames), lineSchema),
  relayPulseMs: z.int().min(50).max(5000).default(500),
  timers: laneTimersSchema.prefault({}),
  /** Name of a serial camera device, or "http" for the camera's HTTP push. */
  camera: z.string().min(1).default("http"),
  scanner: z.string().min(1).optional(),
  display: z.string().min(1).optional(),
});

const lotSchema = z.strictObject({
  parkCode: z.string().min(1).max(50),
  name: z.string().default("Car park"),
  timeZone: timeZoneSchema.default("Asia/Shanghai"),
  totalSpaces: z.int().min(0).max(100_000),
  /** Sharing the lot's in-park state with the other boxes of the lot (src/lot). */
  share: lotShareConfigSchema.prefault({}),
});

const apiSchema = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.int().min(0).max(65_535).default(8080),
  /** Bearer token for commands; at least 16 characters so it is not guessable. */
  token: z.string().min(16, "must be at least 16 characters"),
  /** Reading the status without the token: loopback only, or from anywhere. */
  openReads: z.enum(["loopback", "anywhere", "never"]).default("loopback"),
  /**
   * Shared secret for the camera HTTP push (query `?key=` or header `x-camera-key`). Without
   * one only the box itself (loopback) may push; an API bound beyond loopback with camera-push
   * lanes needs one of 16+ characters (config/cross-check.ts).
   */
  cameraKey: z.string().optional(),
});

const storeSchema = z.strictObject({
  dir: z.string().min(1),
  historyRetentionDays: z.int().min(1).max(3650).default(180),
  historySegmentMaxBytes: z
    .int()
    .min(4096)
    .default(8 * 1024 * 1024),
});

const hardwareSchema = z.strictObject({
  gpio: z.enum(["sim", "onoff"]).default("sim"),
  sysfsRoot: z.string().default("/sys/class/gpio"),
  /** The pin controller's gpiochip label; empty picks the SoC controller by known labels. */
  chipLabel: z.string().optional(),
});

const feesSchema = z.strictObject({
  /** The tariff applied to temporary cars; must name one of `tariffs`. */
  tariff: z.string().min(1),
  tariffs: z.record(z.string(), tariffSchema),
});

export const configSchema = z.strictObject({
  version: z.literal(CONFIG_VERSION),
  deviceId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, - or _"),
  lot: lotSchema,
  hardware: hardwareSchema.prefault({}),
  lanes: z.array(laneSchema).min(1, "at least one lane is needed"),
  serial: z.record(z.string(), serialDeviceSchema).default({}),
  fees: feesSchema,
  platform: platformConfigSchema,
  mqtt: mqttConfigSchema.optional(),
  api: apiSchema,
  store: storeSchema,
  /** The last camera photos of each lane, on disk under `store.dir/photos` (src/io/camera/photo-ring.ts). */
  photos: photoRingConfigSchema.prefault({}),
  outbox: outboxConfigSchema,
  policy: policyConfigSchema,
  system: systemConfigSchema,
  update: updateConfigSchema.prefault({}),
  log: z.strictObject({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info") }).prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type LaneConfig = Config["lanes"][number];
