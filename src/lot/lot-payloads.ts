import { z } from "zod";
import { couponSchema, inParkRecordSchema, prepaymentSchema, type FinishedStay, type InParkRecord } from "../store/records.js";
import { hlcSchema, type Hlc } from "./hlc.js";

/*
 * The payloads of the lot's topics (docs/mqtt.md "Sharing one lot between boxes"): what a box
 * says about itself (`boxes/<deviceId>`) and the version of a stay it wrote
 * (`stays/<recordNo>`). Both are JSON with `v: 1`; a box reads only what these schemas accept
 * and rejects the rest with a stable code, counted and logged, without touching its store.
 * Fields it does not know are dropped, not refused (z.object, not strictObject): a newer
 * release adds optional fields within `v: 1`, so a lot keeps working while its boxes are
 * updated one by one; a change an older box must not misread raises `v`.
 */

export const LOT_PAYLOAD_VERSION = 1;
/** A stay is a few hundred bytes; anything far larger is not one. */
export const LOT_MAX_PAYLOAD_BYTES = 64 * 1024;

const deviceIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

export const boxPayloadSchema = z.object({
  v: z.literal(LOT_PAYLOAD_VERSION),
  deviceId: deviceIdSchema,
  lanes: z
    .array(
      z.object({
        laneId: z.string().min(1).max(32),
        direction: z.enum(["in", "out"]),
        /** The lane's platform channel id: what a forwarded `remoteDev` names (optional for boxes that do not forward). */
        channelId: z.string().min(1).max(30).optional(),
      }),
    )
    .max(64),
  online: z.boolean(),
  /** When the box said this (its clock): the connect for `online: true` and for the will. */
  seenAtMs: z.int().min(0),
});
export type BoxPayload = z.infer<typeof boxPayloadSchema>;

/** How a finished stay ended, as much as another box needs to show it. */
const settlementSummarySchema = z.object({
  exitDeviceId: deviceIdSchema,
  exitLaneId: z.string().max(32),
  leaveAtMs: z.int(),
  payableFen: z.int().min(0),
  paidFen: z.int().min(0),
  prepaidFen: z.int().min(0),
  reason: z.string().max(32),
});

/** A plate on the lot link: what a camera reads fits easily; a platform's longer text is cut (payloads stay as docs/mqtt.md shows). */
const PAYLOAD_PLATE_MAX = 32;

/** `plate` cut to the payload's limit, never inside a surrogate pair. */
function payloadPlate(plate: string): string {
  if (plate.length <= PAYLOAD_PLATE_MAX) return plate;
  return plate.slice(0, /[\uD800-\uDBFF]/.test(plate.charAt(PAYLOAD_PLATE_MAX - 1)) ? PAYLOAD_PLATE_MAX - 1 : PAYLOAD_PLATE_MAX);
}

export const stayPayloadSchema = z.object({
  v: z.literal(LOT_PAYLOAD_VERSION),
  recordNo: inParkRecordSchema.shape.recordNo,
  plate: z.string().max(PAYLOAD_PLATE_MAX),
  plateColor: z.int().min(0).max(99).optional(),
  enterAtMs: z.int(),
  enterDeviceId: deviceIdSchema,
  enterLaneId: z.string().min(1).max(32),
  vehicleType: z.string().min(1).max(32),
  carType: z.int().optional(),
  carSubType: z.int().optional(),
  source: z.string().max(32).optional(),
  /** A platform edit's fields (4.13.2): the entry channel it named, who edited, when. */
  inChannelId: z.string().max(64).optional(),
  operator: z.string().max(64).optional(),
  updatedAtMs: z.int().optional(),
  /** The car group whose spaces the stay takes (a group's cars in the park are counted lot-wide). */
  groupKey: z.string().min(1).max(128).optional(),
  prepayments: z.array(prepaymentSchema).max(100),
  coupons: z.array(couponSchema).max(100),
  state: z.enum(["in-park", "left"]),
  /** Present when `state` is "left". */
  settlement: settlementSummarySchema.optional(),
  /**
   * The entering box's entry report (`enterNotify`) was delivered to the platform. Absent:
   * not known (not yet, or a box that does not say); another box's leave report waits for it.
   */
  entryReported: z.literal(true).optional(),
  hlc: hlcSchema,
});
export type StayPayload = z.infer<typeof stayPayloadSchema>;

/** Stable codes of a rejected lot message (logged, and counted under this name). */
export const LotPayloadError = {
  TooLarge: "E_LOT_TOO_LARGE",
  NotJson: "E_LOT_NOT_JSON",
  Invalid: "E_LOT_INVALID",
  TopicMismatch: "E_LOT_TOPIC_MISMATCH",
} as const;
export type LotPayloadErrorCode = (typeof LotPayloadError)[keyof typeof LotPayloadError];

export type Decoded<T> = { ok: true; value: T } | { ok: false; code: LotPayloadErrorCode; message: string };

/** A lot payload through its schema: the size limit, JSON, then the schema (E_LOT_* codes). */
export function decode<T>(schema: z.ZodType<T>, payload: Buffer): Decoded<T> {
  if (payload.length > LOT_MAX_PAYLOAD_BYTES) return { ok: false, code: LotPayloadError.TooLarge, message: `${payload.length} bytes (limit ${LOT_MAX_PAYLOAD_BYTES})` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch (error) {
    return { ok: false, code: LotPayloadError.NotJson, message: (error as Error).message };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    return { ok: false, code: LotPayloadError.Invalid, message: issues.join("; ") };
  }
  return { ok: true, value: parsed.data };
}

/** A `stays/<recordNo>` message; its recordNo must be the topic's. */
export function decodeStay(payload: Buffer, topicRecordNo: string): Decoded<StayPayload> {
  const decoded = decode(stayPayloadSchema, payload);
  if (decoded.ok && decoded.value.recordNo !== topicRecordNo) {
    return { ok: false, code: LotPayloadError.TopicMismatch, message: `recordNo ${decoded.value.recordNo} on the topic of ${topicRecordNo}` };
  }
  return decoded;
}

/** A `boxes/<deviceId>` message; its deviceId must be the topic's. */
export function decodeBox(payload: Buffer, topicDeviceId: string): Decoded<BoxPayload> {
  const decoded = decode(boxPayloadSchema, payload);
  if (decoded.ok && decoded.value.deviceId !== topicDeviceId) {
    return { ok: false, code: LotPayloadError.TopicMismatch, message: `deviceId ${decoded.value.deviceId} on the topic of ${topicDeviceId}` };
  }
  return decoded;
}

/** The in-park version of a stay this box holds (its own, or a replica it edited). */
export function inParkPayload(record: InParkRecord, deviceId: string, hlc: Hlc): StayPayload {
  return {
    v: LOT_PAYLOAD_VERSION,
    recordNo: record.recordNo,
    plate: payloadPlate(record.plate),
    // A code outside the dictionary (kept as the platform sent it) is not the lot link's to carry.
    ...(record.plateColor !== undefined && record.plateColor >= 0 && record.plateColor <= 99 ? { plateColor: record.plateColor } : {}),
    enterAtMs: record.enterAtMs,
    enterDeviceId: record.replicaOf?.deviceId ?? deviceId,
    enterLaneId: record.laneId,
    vehicleType: record.vehicleType,
    ...(record.carType !== undefined ? { carType: record.carType } : {}),
    ...(record.carSubType !== undefined ? { carSubType: record.carSubType } : {}),
    ...(record.source !== undefined ? { source: record.source } : {}),
    ...editFields(record),
    // The platform knows a stay it made itself (source "platform") without any entry report.
    ...(record.entryReport === "delivered" || record.source === "platform" ? { entryReported: true as const } : {}),
    prepayments: record.prepayments,
    coupons: record.coupons,
    state: "in-park",
    hlc,
  };
}

/** The platform edit's fields and the car group of a record, as far as the payload carries them. */
function editFields(record: InParkRecord): Pick<StayPayload, "inChannelId" | "operator" | "updatedAtMs" | "groupKey"> {
  const groupKey = record.extra?.groupKey;
  return {
    ...(record.inChannelId !== undefined && record.inChannelId.length <= 64 ? { inChannelId: record.inChannelId } : {}),
    ...(record.operator !== undefined && record.operator.length <= 64 ? { operator: record.operator } : {}),
    ...(record.updatedAtMs !== undefined ? { updatedAtMs: record.updatedAtMs } : {}),
    ...(typeof groupKey === "string" && groupKey.length > 0 && groupKey.length <= 128 ? { groupKey } : {}),
  };
}

/** The "left" version of a stay this box finished. */
export function leftPayload(stay: FinishedStay, deviceId: string, hlc: Hlc): StayPayload {
  return {
    ...inParkPayload(stay, deviceId, hlc),
    state: "left",
    settlement: {
      exitDeviceId: deviceId,
      exitLaneId: stay.exit.laneId,
      leaveAtMs: stay.exit.leaveAtMs,
      payableFen: stay.exit.payableFen,
      paidFen: stay.exit.paidFen,
      prepaidFen: stay.exit.prepaidFen,
      reason: stay.exit.reason,
    },
  };
}

/** The in-park record a stay payload stands for (what a replica holds). */
export function recordOfPayload(stay: StayPayload): InParkRecord {
  return inParkRecordSchema.parse({
    recordNo: stay.recordNo,
    plate: stay.plate,
    ...(stay.plateColor !== undefined ? { plateColor: stay.plateColor } : {}),
    laneId: stay.enterLaneId,
    enterAtMs: stay.enterAtMs,
    vehicleType: stay.vehicleType,
    ...(stay.carType !== undefined ? { carType: stay.carType } : {}),
    ...(stay.carSubType !== undefined ? { carSubType: stay.carSubType } : {}),
    ...(stay.source !== undefined ? { source: stay.source } : {}),
    ...(stay.inChannelId !== undefined ? { inChannelId: stay.inChannelId } : {}),
    ...(stay.operator !== undefined ? { operator: stay.operator } : {}),
    ...(stay.updatedAtMs !== undefined ? { updatedAtMs: stay.updatedAtMs } : {}),
    ...(stay.groupKey !== undefined ? { extra: { groupKey: stay.groupKey } } : {}),
    // A replica's entry report is the entering box's to send: "delivered" once the lot says so.
    entryReport: stay.entryReported === true ? "delivered" : "queued",
    prepayments: stay.prepayments,
    coupons: stay.coupons,
  });
}

/** Whether two versions say the same about the stay (the clocks left aside). */
export function sameContent(a: StayPayload, b: StayPayload): boolean {
  // Through the schema: one key order, whichever way each side was made.
  const canonical = (p: StayPayload) => JSON.stringify(stayPayloadSchema.parse({ ...p, hlc: { wallMs: 0, counter: 0, deviceId: "-" } }));
  return canonical(a) === canonical(b);
}
