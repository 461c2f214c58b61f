import { z } from "zod";
import { liftCarGroup, liftListEntry, liftPayment, liftStay } from "./legacy-extra.js";

/*
 * The lot's data shapes, one zod schema each (types are inferred from them). Inside the box
 * money is integer fen and time is epoch milliseconds; the platform's
 * yuan doubles and "YYYY-MM-DD HH:mm:ss" strings are converted by the platform handlers.
 * Field names follow the platform where a field is an identity the platform uses (recordNo,
 * uuId, carNum, carTypeCode, carGroupID, carGroupUuid), with a unit suffix where the unit
 * differs from the wire (balance → balanceFen, timeEnd → timeEndMs).
 *
 * Every object carries an optional `extra` map so an integrator can keep a field the vendor
 * adds later without a schema change; the schemas strip anything else.
 */

const extra = z.record(z.string(), z.unknown()).optional();
const ms = z.number().int();
const fen = z.int();
/**
 * Free text the platform fills (owner, remark, a plate it sends...). Its declared String(n)
 * lengths are warnings only (docs/protocol.md §2: its own examples exceed them), so the store
 * keeps the whole text. The bound, twenty times the longest declared length, only keeps a
 * document from growing without end: a longer text is refused at the wire (src/platform/wire.ts,
 * badBizContent naming the field), as no platform field means that much.
 */
export const PLATFORM_TEXT_MAX = 1024;
const platformText = z.string().max(PLATFORM_TEXT_MAX);

/** What a payment pays for: a stay (4.2), a fixed car (4.5, 4.11.6), a car group (4.10.5), or money paid back (4.11.10). */
export const paymentKinds = ["stay", "fixed-car", "car-group", "refund"] as const;

/** A payment received: for a stay (platform notice 4.2, scanner gun, cash) or, from the platform, for a fixed car or car group, or a refund. */
export const paymentSchema = z.object({
  /** The platform's order or transaction number: the idempotency key. */
  orderNo: z.string().min(1).max(64),
  /**
   * Only a "stay" payment is counted as a prepayment of the stay it names (recordNo, else its
   * plate's only stay): a monthly fee or a refund names the car, never its current stay.
   */
  kind: z.enum(paymentKinds).default("stay"),
  recordNo: platformText.optional(),
  plate: platformText.optional(),
  /** The vehicle's uuId or the car group's uuid the money is for (absent for a stay). */
  targetUuid: z.string().max(64).optional(),
  amountFen: fen.min(0),
  payAtMs: ms,
  /** Pay type and channel as the platform names them (docs/protocol.md §6). */
  payType: z.string().max(32).optional(),
  payChannel: z.string().max(32).optional(),
  /** 4.1 payScene of a stay payment the platform reported. */
  payScene: z.int().optional(),
  /** The exit lane's platform channel id the platform named (not `payChannel`, the pay channel). */
  channelId: platformText.optional(),
  /** The 3.3 pre-exit event the payment answers. */
  plateId: platformText.optional(),
  /** platform | scanner | cash | manual */
  source: z.string().max(32).default("platform"),
  receivedAtMs: ms,
  extra,
});
export type Payment = z.infer<typeof paymentSchema>;
export type PaymentInput = z.input<typeof paymentSchema>;

/** A prepayment applied to a stay (copied from the payment when it names the stay). */
export const prepaymentSchema = z.object({
  orderNo: z.string().min(1).max(64),
  amountFen: fen.min(0),
  payAtMs: ms,
  payType: z.string().max(32).optional(),
  payChannel: z.string().max(32).optional(),
});

/** A coupon granted to a stay (platform 4.7). `value`: fen, minutes or percent by kind. */
export const couponSchema = z.object({
  couponId: z.string().min(1).max(64),
  kind: z.enum(["amount", "minutes", "free", "percent"]),
  value: z.number().min(0),
  grantedAtMs: ms,
  source: z.string().max(32).optional(),
  /** The end of the coupon's validity (4.7 expireTime); absent = no end. */
  expiresAtMs: ms.optional(),
  /** Who granted it (4.7 operator). */
  operator: platformText.optional(),
  extra,
});
export type Coupon = z.infer<typeof couponSchema>;
/** A coupon with the stay holding it: the platform's coupon list (4.7) is keyed by couponId across stays. */
export type StayCoupon = Coupon & { recordNo: string };

/** The bill pushed with preLeaveNotify while the car waits at the exit (docs/protocol.md §3.3). */
export const pendingExitSchema = z.object({
  laneId: z.string().min(1),
  /** The pre-exit event handle the platform quotes back in remoteDev (4.12). */
  plateId: z.string().min(1).max(64),
  atMs: ms,
  payableFen: fen.min(0),
  discountFen: fen.min(0),
  /** Still to pay now (the platform's `paidFee`). */
  dueFen: fen.min(0),
  orderNo: z.string().max(64).optional(),
  extra,
});

/**
 * Delivery state of the stay's entry report (3.1) as the outbox last told us; on a replica
 * (another box's stay), "delivered" once the lot says that box's report was, else "queued".
 */
export const entryReportStates = ["none", "queued", "delivered", "parked"] as const;

/**
 * One in-park record: a stay that has entered and not left. `recordNo` is the stay's key
 * everywhere (`<laneId>_<YYYYMMDDHHmmssSSS>`, docs/protocol.md §3.1).
 */
export const inParkRecordSchema = z.object({
  recordNo: z.string().min(1).max(64),
  /** As read (or the unlicensed car's virtual plate, or as the platform sent it); may be "" when unread. */
  plate: platformText,
  /** Plate colour code (docs/protocol.md §6), kept as sent even outside the dictionary. */
  plateColor: z.int().optional(),
  laneId: z.string().min(1).max(32),
  enterAtMs: ms,
  /** temporary | monthly | stored-value | free | visitor | unlicensed (the lane decides). */
  vehicleType: z.string().min(1).max(32).default("temporary"),
  /** Platform vehicle type and concrete type (docs/protocol.md §6). */
  carType: z.int().optional(),
  carSubType: z.int().optional(),
  /** camera | unlicensed | manual | platform */
  source: z.string().max(32).optional(),
  /** The entry lane's platform channel id as the platform named it (4.13.4); absent: the lane's own. */
  inChannelId: platformText.optional(),
  /** Who added or last edited the stay by hand (4.13). */
  operator: platformText.optional(),
  /** The last edit of the stay's entry fields (4.13.2); absent: never edited, the entry time. */
  updatedAtMs: ms.optional(),
  entryReport: z.enum(entryReportStates).default("queued"),
  prepayments: z.array(prepaymentSchema).default([]),
  coupons: z.array(couponSchema).default([]),
  pendingExit: pendingExitSchema.optional(),
  /**
   * A no-record exit taken while the lot view was stale (docs/mqtt.md "Partitions and
   * reconciliation"): the car may have entered at a box this one could not hear. Its platform
   * reports are held until the lot is live again and reconciliation decided what it was.
   */
  provisional: z.boolean().optional(),
  /**
   * Set on a replica: a stay another box of the lot entered, copied here from the lot broker
   * (docs/mqtt.md "Sharing one lot between boxes") so this box's decisions see it. Absent on
   * this box's own stays. `hlc` is the version held (hybrid logical clock of its last writer).
   */
  replicaOf: z
    .object({
      deviceId: z.string().min(1).max(64),
      hlc: z.object({ wallMs: ms, counter: z.int().min(0), deviceId: z.string().min(1).max(64) }),
    })
    .optional(),
  extra,
});
export type InParkRecord = z.infer<typeof inParkRecordSchema>;
export type InParkRecordInput = z.input<typeof inParkRecordSchema>;

/** How a stay ended. */
export const exitInfoSchema = z.object({
  laneId: z.string().max(32),
  leaveAtMs: ms,
  payableFen: fen.min(0).default(0),
  discountFen: fen.min(0).default(0),
  /** Prepaid amounts counted against this bill. */
  prepaidFen: fen.min(0).default(0),
  /** Collected at the exit. */
  paidFen: fen.min(0).default(0),
  payType: z.string().max(32).optional(),
  orderNo: z.string().max(64).optional(),
  /** normal | cash-fallback | free | manual | cancelled | platform-delete | correction */
  reason: z.string().max(32).default("normal"),
  operator: z.string().max(64).optional(),
  /** The plate read at the exit when it differs from the entry read (fuzzy match). */
  exitPlate: z.string().max(32).optional(),
  extra,
});
export type ExitInfoInput = z.input<typeof exitInfoSchema>;

export const finishedStaySchema = inParkRecordSchema.extend({ exit: exitInfoSchema, finishedAtMs: ms });
export type FinishedStay = z.infer<typeof finishedStaySchema>;

/**
 * A fixed (registered) vehicle: the platform's addCar/editCar fields (docs/protocol.md
 * §4.11). Key: `uuId` (the platform's preferred id; generated when the platform sent
 * none); `id` is the local auto-increment number the platform also uses.
 */
export const vehicleSchema = z.object({
  id: z.int().min(1),
  uuId: z.string().min(1).max(64),
  carNum: platformText.min(1),
  owner: platformText.default(""),
  region: platformText.default(""),
  code: platformText.default(""),
  virtualCardNum: platformText.default(""),
  /** Concrete vehicle type (sub type, e.g. 81), not the main type. */
  carTypeCode: z.int(),
  carGroupID: z.int().min(0).default(0),
  carGroupUuid: platformText.default(""),
  carGroup: platformText.default(""),
  balanceFen: fen.default(0),
  /** Monthly rent (the platform's carMMoney). */
  carMMoneyFen: fen.min(0).default(0),
  /** Validity (the platform's timeStart/timeEnd); null = open-ended. */
  timeStartMs: ms.nullable().default(null),
  timeEndMs: ms.nullable().default(null),
  tel: platformText.default(""),
  color: platformText.default(""),
  carSpaceNum: platformText.default(""),
  remark: platformText.default(""),
  /** 0 = disabled, 1 = enabled. */
  state: z.union([z.literal(0), z.literal(1)]).default(1),
  frozen: z.boolean().default(false),
  refundFen: fen.optional(),
  createdAtMs: ms,
  updatedAtMs: ms,
  extra,
});
export type Vehicle = z.infer<typeof vehicleSchema>;
/** What a caller supplies: id/uuId optional (assigned when new), timestamps by the store. */
export type VehicleInput = Omit<z.input<typeof vehicleSchema>, "id" | "uuId" | "createdAtMs" | "updatedAtMs"> & {
  id?: number;
  uuId?: string;
};

/** A car group / space group (docs/protocol.md §4.10: carGroupID secondary, carGroupUuid preferred). */
export const carGroupSchema = z.object({
  carGroupID: z.int().min(1),
  carGroupUuid: z.string().min(1).max(64),
  name: platformText.default(""),
  /** Spaces the group may occupy at once; null = no limit. */
  spaces: z.int().min(0).nullable().default(null),
  /** The concrete vehicle type of the group's cars (4.10), as for a vehicle. */
  carTypeCode: z.int().default(81),
  /** Monthly rent and balance of the group (4.10.2, 4.10.5). */
  carMMoneyFen: fen.min(0).default(0),
  balanceFen: fen.default(0),
  /** Validity; null = open-ended. */
  timeStartMs: ms.nullable().default(null),
  timeEndMs: ms.nullable().default(null),
  /** 0 = disabled, 1 = enabled. */
  state: z.union([z.literal(0), z.literal(1)]).default(1),
  remark: platformText.default(""),
  createdAtMs: ms,
  updatedAtMs: ms,
  extra,
});
export type CarGroup = z.infer<typeof carGroupSchema>;
export type CarGroupInput = Omit<z.input<typeof carGroupSchema>, "carGroupID" | "carGroupUuid" | "createdAtMs" | "updatedAtMs"> & {
  carGroupID?: number;
  carGroupUuid?: string;
};

/** A blacklist entry: the platform's MQTT record model (docs/protocol.md §4.9). */
export const blacklistEntrySchema = z.object({
  id: z.int().min(1),
  uuid: z.string().min(1).max(64),
  carNum: platformText.min(1),
  /** 0 = traffic-restriction blacklist, 1 = coupon blacklist. */
  type: z.union([z.literal(0), z.literal(1)]).default(0),
  /** The `duration` validity limit; null = until removed. */
  untilMs: ms.nullable().default(null),
  operator: platformText.default(""),
  remark: platformText.default(""),
  denyIn: z.boolean().default(true),
  denyOut: z.boolean().default(true),
  inNotify: z.boolean().default(false),
  createdAtMs: ms,
  updatedAtMs: ms,
  extra,
});
export type BlacklistEntry = z.infer<typeof blacklistEntrySchema>;
export type BlacklistInput = Omit<z.input<typeof blacklistEntrySchema>, "id" | "uuid" | "createdAtMs" | "updatedAtMs"> & {
  id?: number;
  uuid?: string;
};

// ---- the documents --------------------------------------------------------------------

// Records written before a platform field became a field of its own kept it in `extra`; the
// documents move it on read (legacy-extra.ts), so no version step is needed.
export const INPARK_DOC_VERSION = 1;
/** `inpark.json`: what changes with every car. Kept small: it is rewritten on every change. */
export const inParkDocSchema = z.object({
  version: z.literal(INPARK_DOC_VERSION),
  /** The last journal change this snapshot holds (DurableDoc journal mode). */
  seq: z.int().min(0).default(0),
  inPark: z.record(z.string(), z.preprocess(liftStay, inParkRecordSchema)),
  /** Stays whose exit is durable here and whose history line may not be yet (see finishStay). */
  finishing: z.record(z.string(), z.preprocess(liftStay, finishedStaySchema)),
  payments: z.record(z.string(), z.preprocess(liftPayment, paymentSchema)),
});
export type InParkDoc = z.infer<typeof inParkDocSchema>;

export const LISTS_DOC_VERSION = 1;
/** `lists.json`: registered vehicles, car groups, blacklist; changed by platform commands. */
export const listsDocSchema = z.object({
  version: z.literal(LISTS_DOC_VERSION),
  seq: z.int().min(0).default(0),
  vehicles: z.record(z.string(), z.preprocess(liftListEntry, vehicleSchema)),
  carGroups: z.record(z.string(), z.preprocess(liftCarGroup, carGroupSchema)),
  blacklist: z.record(z.string(), z.preprocess(liftListEntry, blacklistEntrySchema)),
  nextId: z.object({ vehicle: z.int().min(1), carGroup: z.int().min(1), blacklist: z.int().min(1) }),
});
export type ListsDoc = z.infer<typeof listsDocSchema>;

export const SETTINGS_DOC_VERSION = 1;
/** `settings.json`: batched, non-critical state. */
export const settingsDocSchema = z.object({
  version: z.literal(SETTINGS_DOC_VERSION),
  counters: z.record(z.string(), z.int().min(0)),
  lastSeen: z.record(z.string(), ms),
  values: z.record(z.string(), z.unknown()),
});
export type SettingsDoc = z.infer<typeof settingsDocSchema>;
