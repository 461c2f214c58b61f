/**
 * The narrow interface the section-4 handlers act through. The records are the store's own
 * (src/store/records.ts: epoch ms for times, integer fen for money); the handlers convert
 * wire ↔ record themselves. Every method is async; a `put`/`remove`/`clear` resolves only
 * once the change is durable, because the handler answers `code 200` right after it
 * (docs/protocol.md §4.2: the payment is stored before the 200). The durable store stamps a
 * list entry's createdAtMs/updatedAtMs with its own clock: the values a `put` carries there
 * are only what an in-memory list keeps.
 *
 * The lane-facing part (`lane`) is implemented by the lane flows (src/lanes/platform-port.ts);
 * memory-ports.ts has injectable callbacks for tests.
 */
import type { Quote } from "../core/exit/bill-inputs.js";
import type { BlacklistEntry, CarGroup, InParkRecord, Payment, StayCoupon, Vehicle } from "../store/records.js";

/** A keyed list: the shape shared by every stored list. */
export interface ListPort<T> {
  /** Every record, in insertion order. */
  list(): Promise<T[]>;
  get(key: string): Promise<T | undefined>;
  /** Insert or replace by key; durable before it resolves. */
  put(record: T): Promise<void>;
  /** true when a record was removed; durable before it resolves. */
  remove(key: string): Promise<boolean>;
}

// ---- lane-facing calls ----

export type LaneRefusalReason = "not-found" | "no-vehicle" | "lane-invalid" | "lot-full" | "busy" | "expired" | "denied" | "unavailable" | "box-unreachable";

/** What the lane answers: done, or refused with a reason (mapped to a configurable code). */
export type LaneAnswer<T = undefined> = { ok: true; value: T; msg?: string } | { ok: false; reason: LaneRefusalReason; msg: string };

export interface FeeQuery {
  /** 0 prepay inside, 1 licensed car at the exit QR code, 2 unlicensed car at the exit. */
  payScene: 0 | 1 | 2;
  plateNum?: string;
  /** "" or absent: find the stay by plate (4.1 payScene 0 edge case). */
  recordNo?: string;
  /** The exit lane's platform channel id (payScene 1 and 2). */
  channelId?: string;
  /** The lane id matching `channelId`, when one is configured. */
  laneId?: string;
}

/** The bill of one stay at query time, fees in fen (4.1 response; the core's quote). */
export interface FeeQuote extends Quote {
  orderNo?: string;
}

export interface UnlicensedEntry {
  /** 7-character virtual plate as sent (without a 无 prefix). */
  plateNum: string;
  channelId: string;
  laneId: string;
  requestTimeMs: number;
}

export interface RemoteControl {
  channelId: string;
  laneId: string;
  /** 0 confirm release, 1 cancel release, 2 free / abnormal release. */
  type: 0 | 1 | 2;
  /** The event handle: a 3.3 plateId or a 3.4 recordNo. */
  plateId: string;
  operator: string;
  /** 0 control entry/exit, 1 manual barrier raise. */
  cmd: 0 | 1;
  openGateCase: number | null;
}

/** A stored 4.2 payment notice as the lanes hear it. */
export interface PaymentNotice {
  orderNo: string;
  /** "" when the notice named no stay. */
  recordNo: string;
  plateNum: string;
  /** The platform's pay type code (docs/protocol.md §6). */
  payType: number;
  amountFen: number;
  payTimeMs: number;
  /** The 3.3 event the payment answers ("" when none). */
  plateId: string;
}

export interface LanePort {
  /** 4.1: the bill of a stay now (without charging anything). */
  feeQuery(query: FeeQuery): Promise<LaneAnswer<FeeQuote>>;
  /** 4.3: admit an unlicensed car under a virtual plate; create the stay before resolving. */
  unlicensedEntry(entry: UnlicensedEntry): Promise<LaneAnswer<{ recordNo: string }>>;
  /** 4.12: decide a pending entry/exit, or raise the barrier by hand. */
  remoteControl(command: RemoteControl): Promise<LaneAnswer>;
  /** 4.8: spaces now, as absolute numbers (a count the cloud can show as it is, whatever it missed). */
  freeSpaces(): Promise<{ total: number; free: number }>;
  /** After a payment notice (4.2) is stored: let a waiting exit lane settle. Failures are logged only. */
  paymentNotified(payment: PaymentNotice): Promise<void>;
}

/**
 * 4.12 for a channel that is a lane of another box of the same lot (docs/mqtt.md "Forwarded
 * remote control"): the box that announced the channel decides, and its answer is the answer.
 */
export interface LotRemotePort {
  /** undefined when no other box of the lot announced `channelId`. */
  remoteControl(command: Omit<RemoteControl, "laneId">): Promise<LaneAnswer> | undefined;
}

/** Everything the section-4 handlers need from the lot. */
export interface LotPorts {
  /** Key: uuId. */
  vehicles: ListPort<Vehicle> & { clear(): Promise<number> };
  /** Key: uuid. */
  blacklist: ListPort<BlacklistEntry>;
  /** Key: carGroupUuid. */
  carGroups: ListPort<CarGroup>;
  /** Key: couponId; a coupon lives in its in-park stay (`recordNo`). */
  coupons: ListPort<StayCoupon>;
  /**
   * Key: recordNo. A put of a new recordNo adds the stay (4.13.4), of a known one edits it
   * (4.13.2); remove ends it in history as deleted by the platform (4.13.3, no exit report).
   */
  inPark: ListPort<InParkRecord>;
  /** Key: orderNo; payments are never rewritten. */
  payments: ListPort<Payment>;
  lane: LanePort;
  /** Only with `lot.share` on. */
  lotRemote?: LotRemotePort;
}
