import { z } from "zod";
import type { Section3ServiceId } from "./config.js";
import { formatWireTime } from "./wire.js";

/**
 * Section-3 pushes (lot → cloud) as we send them. 3.3 is [DOC]; 3.1, 3.2 and 3.4 are missing
 * from the document, and the fields below are the project's own definitions,
 * published in docs/protocol.md so a cloud integrator can rely on them.
 *
 * These schemas are strict on purpose: they describe what the lot must send (numbers as
 * numbers, every field present). The emulator checks every push against them.
 */

const wireTime = z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, "must be YYYY-MM-DD HH:mm:ss");
/** A wire time, or "" where the field has nothing to say (no payment, no operator). */
const wireTimeOrEmpty = z.union([wireTime, z.literal("")]);
const fen = z.int().min(0);
const text = (max: number) => z.string().min(1).max(max);
/** The lot, the stay and its plate: how every push opens. */
const stayKeys = { parkCode: text(50), recordNo: text(50), plateNum: text(20) };
/** The stay's bill at the exit: what the exit report (3.2) and the pre-exit bill (3.3) both open with. */
const exitBillKeys = {
  ...stayKeys,
  carType: z.int(),
  carSubType: z.int(),
  enterTime: wireTime,
  leaveTime: wireTime,
  payableFee: fen,
  discountFee: fen,
};

/** 3.1 `enterNotify` [OURS fields; serviceName INFERRED from the test vector]. */
export const enterNotifySchema = z.strictObject({
  ...stayKeys,
  /** Plate colour code (docs/protocol.md §6). */
  plateColor: z.int(),
  carType: z.int(),
  carSubType: z.int(),
  enterTime: wireTime,
  /** Empty for a stay made at an exit for a car no entry lane saw (`policy.exit.unknownEntryChannel`). */
  inChannelid: z.string().max(30),
});
export type EnterNotifyBiz = z.infer<typeof enterNotifySchema>;

/**
 * 3.2 `leaveNotify` [OURS]. `enterTime` is the entry time the platform knows: the one sent in
 * enterNotify, or the platform's own edit of it (4.13 editParkRecord).
 */
export const leaveNotifySchema = z.strictObject({
  ...exitBillKeys,
  /** Paid before the exit (in-lot prepay through the platform). */
  prepaidFee: fen,
  /** Collected at the exit. */
  paidFee: fen,
  /** 3.3 response dictionary: 1 WeChat, 2 Alipay, 3 balance, 4 cash; 0 nothing collected. */
  payType: z.int().min(0),
  payTime: wireTimeOrEmpty,
  orderNo: z.string().max(50),
  outChannelid: text(30),
  /** 0 normal, 1 free, 2 abnormal, 3 manual. */
  releaseType: z.int().min(0),
  operator: z.string().max(20),
  /**
   * [OURS] Paid twice (cash taken while the platform could not be asked, then its 200 for the
   * same bill; or two bills collected online): the second collection and what is owed back.
   * Present only then; payType/paidFee/orderNo/payTime stay the first payment's.
   */
  doublePaid: z.literal(1).optional(),
  secondPayType: z.int().min(0).optional(),
  secondPaidFee: fen.optional(),
  secondOrderNo: z.string().max(50).optional(),
  secondPayTime: wireTimeOrEmpty.optional(),
  refundFee: fen.optional(),
});
export type LeaveNotifyBiz = z.infer<typeof leaveNotifySchema>;

/** What the exit itself collected: the amount, how, when and under which order. */
export interface ExitCollection {
  paidFen: number;
  payType: number;
  payTimeMs: number | null;
  orderNo: string;
}

/**
 * The payment fields of the exit report (docs/protocol.md §3.2). They describe the money
 * collected at the exit only: when nothing was (a free, prepaid, remote or hand release), all
 * of them say so — payType 0, payTime "", orderNo "" — whatever instant or number the release
 * path carried along.
 */
export function exitPaymentFields(collected: ExitCollection, timeZone: string): Pick<LeaveNotifyBiz, "paidFee" | "payType" | "payTime" | "orderNo"> {
  if (collected.paidFen <= 0) return { paidFee: 0, payType: 0, payTime: "", orderNo: "" };
  return {
    paidFee: collected.paidFen,
    payType: collected.payType,
    payTime: collected.payTimeMs === null ? "" : formatWireTime(collected.payTimeMs, timeZone),
    orderNo: collected.orderNo,
  };
}

/** 3.3 `preLeaveNotify` [DOC]. `paidFee` is the amount still due now. */
export const preLeaveNotifySchema = z
  .strictObject({
    ...exitBillKeys,
    paidFee: fen,
    outChannelid: z.string().max(30).optional(),
    orderNo: z.string().max(50).optional(),
    sweepCode: z.union([z.literal(0), z.literal(1)]),
    sweepAuthCode: z.string().min(1).optional(),
    plateId: z.string().min(1).max(50),
  })
  .refine((biz) => biz.sweepCode === 0 || biz.sweepAuthCode !== undefined, {
    message: "sweepAuthCode is required when sweepCode is 1",
    path: ["sweepAuthCode"],
  });
export type PreLeaveNotifyBiz = z.infer<typeof preLeaveNotifySchema>;

/** 3.4 `preEnterNotify` [OURS]. Its recordNo comes back as `remoteDev.plateId` (4.12). */
export const preEnterNotifySchema = z.strictObject({
  ...stayKeys,
  plateColor: z.int(),
  carType: z.int(),
  carSubType: z.int(),
  inChannelid: text(30),
  arriveTime: wireTime,
  /** Why the lot asks: e.g. "confirm-required", "lot-full", "monthly-expired", "blacklist". */
  reason: z.string().max(50),
});
export type PreEnterNotifyBiz = z.infer<typeof preEnterNotifySchema>;

export const section3Schemas: Record<Section3ServiceId, z.ZodType<Record<string, unknown>>> = {
  enterNotify: enterNotifySchema,
  leaveNotify: leaveNotifySchema,
  preLeaveNotify: preLeaveNotifySchema,
  preEnterNotify: preEnterNotifySchema,
};

/** What a 200 answer to 3.3 carries when the cloud collected the fee (docs/protocol.md §3.3). */
export interface PreLeavePaidData {
  payType: number;
  payTime: string;
  orderNo: string;
}

/**
 * The key the cloud de-duplicates a push by: reports by their recordNo, a pre-exit bill by
 * its plateId (a new bill gets a new plateId, docs/protocol.md §3.3).
 */
export function idempotencyKey(service: Section3ServiceId, biz: Record<string, unknown>): string {
  const id = service === "preLeaveNotify" ? biz.plateId : biz.recordNo;
  return `${service}:${String(id ?? "")}`;
}
