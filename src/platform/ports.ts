/**
 * The narrow interface the section-4 handlers act through. Everything is a plain record
 * (JSON-serialisable, epoch ms for times, integer fen for money) so a durable store can back
 * it with one collection per list. Every method is async; a `put`/`remove`/`clear` resolves
 * only once the change is durable, because the handler answers `code 200` right after it
 * (docs/protocol.md §4.2: the payment is stored before the 200).
 *
 * The lane-facing part (`lane`) is implemented by the lane flows; until they exist it is a
 * set of injectable callbacks (memory-ports.ts).
 */
import type { Quote } from "../core/exit/bill-inputs.js";

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

/** A fixed vehicle (monthly-rent, stored-value...) registered at the lot (4.4, 4.5, 4.11). Key: `uuId`. */
export interface VehicleRecord {
  /** Local auto-increment id (the document's `id`, 4.4 `pcardId`). */
  id: number;
  /** Global unique id (preferred key; 4.4 `pcardUuid`). */
  uuId: string;
  carNum: string;
  owner: string;
  /** Concrete vehicle type, e.g. 81 (docs/protocol.md §6); main type = ⌊carTypeCode / 10⌋. */
  carTypeCode: number;
  /** Car group: auto-increment id (0 = none) and uuid ("" = none). */
  carGroupId: number;
  carGroupUuid: string;
  /** "vehicle info group" text of 4.11.2. */
  carGroup: string;
  region: string;
  code: string;
  virtualCardNum: string;
  tel: string;
  color: string;
  carSpaceNum: string;
  remark: string;
  balanceFen: number;
  monthlyRentFen: number;
  /** Total refunded (4.11.10), fen. */
  refundFen: number;
  validFromMs: number | null;
  validToMs: number | null;
  /** 4.11 state: false = disabled (0). */
  enabled: boolean;
  /** 4.11.7 / 4.11.8. A frozen car is treated as temporary until unfrozen. */
  frozen: boolean;
  updatedAtMs: number;
}

/** 4.9 blacklist record ([SIBLING] data model). Key: `uuid`. */
export interface BlacklistRecord {
  id: number;
  uuid: string;
  carNum: string;
  /** 0 traffic-restriction blacklist, 1 coupon blacklist. */
  type: number;
  /** End of validity; null = no end. */
  untilMs: number | null;
  operator: string;
  remark: string;
  denyIn: boolean;
  denyOut: boolean;
  inNotify: boolean;
  createdAtMs: number;
}

/** 4.10 car group (several cars sharing a number of spaces). Key: `uuid`. */
export interface CarGroupRecord {
  id: number;
  uuid: string;
  name: string;
  spaceCount: number;
  carTypeCode: number;
  validFromMs: number | null;
  validToMs: number | null;
  monthlyRentFen: number;
  balanceFen: number;
  remark: string;
  enabled: boolean;
  updatedAtMs: number;
}

/** 4.7 coupon granted to a stay. Key: `couponNo`. */
export interface CouponRecord {
  couponNo: string;
  recordNo: string;
  plateNum: string;
  /** amount: `value` fen off; minutes: `value` minutes free; free: whole stay free; percent: `value` % off. */
  kind: "amount" | "minutes" | "free" | "percent";
  value: number;
  expiresAtMs: number | null;
  operator: string;
  issuedAtMs: number;
}

/** A stay in the car park (4.6, 4.13; the lane flows create most of them). Key: `recordNo`. */
export interface InParkRecord {
  recordNo: string;
  plateNum: string;
  /** Plate colour code (docs/protocol.md §6); null when unknown. */
  plateColor: number | null;
  carType: number;
  carSubType: number;
  enterTimeMs: number;
  /** The platform channel id of the entry lane ("" when added by hand). */
  inChannelId: string;
  /** Who made it: a lane, the cloud (4.3 / 4.13.4), or a person. */
  source: "lane" | "unlicensed" | "platform";
  operator: string;
  updatedAtMs: number;
}

/** A payment the cloud reported (4.2, 4.5, 4.10.5, 4.11.6, 4.11.10). Key: `orderNo` (idempotency). */
export interface PaymentRecord {
  orderNo: string;
  /** stay: 4.2; fixed-car: 4.5 / 4.11.6; car-group: 4.10.5; refund: 4.11.10 (amount paid back). */
  kind: "stay" | "fixed-car" | "car-group" | "refund";
  recordNo: string;
  plateNum: string;
  /** The vehicle or car group the money is for ("" for a stay). */
  targetUuid: string;
  payType: number;
  amountFen: number;
  payTimeMs: number;
  /** 4.1 payScene of a stay payment; null otherwise. */
  payScene: number | null;
  channelId: string;
  /** The 3.3 event the payment answers ("" when none). */
  plateId: string;
  receivedAtMs: number;
}

// ---- lane-facing calls ----

export type LaneRefusalReason = "not-found" | "no-vehicle" | "lane-invalid" | "lot-full" | "busy" | "expired" | "denied" | "unavailable";

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
  paymentNotified(payment: PaymentRecord): Promise<void>;
}

/** Everything the section-4 handlers need from the lot. */
export interface LotPorts {
  vehicles: ListPort<VehicleRecord> & { clear(): Promise<number> };
  blacklist: ListPort<BlacklistRecord>;
  carGroups: ListPort<CarGroupRecord>;
  coupons: ListPort<CouponRecord>;
  inPark: ListPort<InParkRecord>;
  payments: ListPort<PaymentRecord>;
  lane: LanePort;
}
