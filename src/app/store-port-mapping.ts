import type { BlacklistRecord, CarGroupRecord, CouponRecord, InParkRecord, PaymentRecord, VehicleRecord } from "../platform/ports.js";
import type { LotStore } from "../store/lot-store.js";
import type {
  BlacklistEntry,
  BlacklistInput,
  CarGroup,
  CarGroupInput,
  Coupon,
  InParkRecord as StoreStay,
  InParkRecordInput as StoreStayInput,
  Payment,
  Vehicle,
  VehicleInput,
} from "../store/records.js";

/*
 * The field mapping between the section-4 handlers' records (src/platform/ports.ts) and the
 * LotStore's records (src/store/records.ts), used by the store-backed ports (store-ports.ts).
 * Pure functions, no IO. The mapping, field by field (ports ↔ store):
 *
 * vehicles (key uuId) VehicleRecord ↔ Vehicle, via upsertVehicle / deleteVehicle / clearVehicles
 *   id ↔ id · uuId ↔ uuId · carNum ↔ carNum · owner ↔ owner · carTypeCode ↔ carTypeCode
 *   carGroupId ↔ carGroupID · carGroupUuid ↔ carGroupUuid · carGroup ↔ carGroup
 *   region, code, virtualCardNum, tel, color, carSpaceNum, remark ↔ the same names
 *   balanceFen ↔ balanceFen · monthlyRentFen ↔ carMMoneyFen · refundFen ↔ refundFen (absent = 0)
 *   validFromMs ↔ timeStartMs · validToMs ↔ timeEndMs · enabled ↔ state (1/0) · frozen ↔ frozen
 *   updatedAtMs ↔ updatedAtMs (stamped by the store's clock at the write)
 *   store only: createdAtMs (kept by the store), extra
 * blacklist (key uuid) BlacklistRecord ↔ BlacklistEntry, via addBlacklist / deleteBlacklist
 *   every field has the same name; createdAtMs is kept by the store (the first write's time);
 *   store only: updatedAtMs, extra
 * carGroups (key uuid) CarGroupRecord ↔ CarGroup, via upsertCarGroup / deleteCarGroup
 *   id ↔ carGroupID · uuid ↔ carGroupUuid · name ↔ name · spaceCount ↔ spaces (null read as 0)
 *   remark ↔ remark · updatedAtMs ↔ updatedAtMs (store's clock)
 *   carTypeCode, validFromMs, validToMs, monthlyRentFen, balanceFen, enabled → extra.<same name>
 *   (absent on a group made elsewhere: 81, null, null, 0, 0, true — addCarGroup's defaults)
 * inPark (key recordNo) InParkRecord ↔ the store's in-park record
 *   recordNo ↔ recordNo · plateNum ↔ plate · plateColor ↔ plateColor (null = absent; a code
 *   outside the store's 0–99 goes to extra.plateColor) · carType, carSubType ↔ the same (absent
 *   read as 0) · enterTimeMs ↔ enterAtMs · source: lane ↔ camera (any other store source reads
 *   as lane), unlicensed ↔ unlicensed, platform ↔ platform
 *   inChannelId, operator, updatedAtMs → extra.<same name>
 *   laneId (store only, required): the lane whose channelId is inChannelId (options.lanes),
 *   else the recordNo's `<laneId>_<17 digits>` prefix (docs/protocol.md §3.1), else "cloud"
 *   entryReport (store only): "none" for a stay the platform added (it told us; there is
 *   nothing to report), the store's default "queued" otherwise; vehicleType, prepayments,
 *   coupons, pendingExit: store only, kept on an edit
 *   put of a new recordNo = addInPark (4.13.4); of a known one = updateInPark (4.13.2);
 *   remove = cancelStay reason "platform-delete" (4.13.3: the stay goes to history, no exit
 *   report)
 * coupons (key couponNo) CouponRecord ↔ a Coupon inside its stay's in-park record
 *   couponNo ↔ couponId · recordNo ↔ the stay holding it · kind, value ↔ the same
 *   issuedAtMs ↔ grantedAtMs · plateNum, expiresAtMs, operator → coupon extra.<same name>
 *   source = "platform". Only stays still in the park hold coupons: a finished stay's coupons
 *   went to history with it.
 * payments (key orderNo) PaymentRecord ↔ Payment, via recordPayment (idempotent on orderNo)
 *   orderNo ↔ orderNo · amountFen ↔ amountFen · payTimeMs ↔ payAtMs · receivedAtMs ↔ receivedAtMs
 *   payType (number) ↔ payType (its decimal text) · source = "platform"
 *   kind = "stay": recordNo ↔ recordNo ("" = absent), plateNum ↔ plate, so the store applies
 *   it to the stay's prepayments; other kinds (fixed-car, car-group, refund) keep recordNo and
 *   plateNum in extra instead, because recordPayment would otherwise count a monthly fee or a
 *   refund as a prepayment of the car's current stay
 *   kind, targetUuid, payScene, channelId (the exit lane's platform channel: not the store's
 *   payChannel, which is the platform's pay channel), plateId → extra.<same name>
 *
 * Text longer than the store allows (the platform's declared lengths are warnings only, docs/protocol.md §2)
 * is stored cut to the limit, with the whole text in extra.fullText.<field>; reads give the
 * whole text back. Keys of extra this module does not manage are kept on every write.
 */

/** Lane ids and platform channel ids (config `lanes`): maps a stay's laneId ↔ inChannelId. */
export type LaneChannels = ReadonlyArray<{ id: string; channelId: string }>;

type Extra = Record<string, unknown>;

// ---- text that may be longer than the store keeps -----------------------------------------

const FULL_TEXT = "fullText";

/** Store limits (src/store/records.ts) of the free-text fields the platform fills. */
const limits = {
  carNum: 32,
  plate: 32,
  short: 64,
  remark: 256,
} as const;

/** Cuts `value` to `max` UTF-16 units (never inside a surrogate pair); the whole text goes to `full`. */
function fit(field: string, value: string, max: number, full: Record<string, string>): string {
  if (value.length <= max) return value;
  full[field] = value;
  const end = /[\uD800-\uDBFF]/.test(value.charAt(max - 1)) ? max - 1 : max;
  return value.slice(0, end);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The whole text of a field cut by `fit`, or the stored text. */
function unfit(field: string, stored: string, extra: Extra | undefined): string {
  const full = extra?.[FULL_TEXT];
  if (isRecord(full)) {
    const whole = full[field];
    if (typeof whole === "string" && whole.startsWith(stored)) return whole;
  }
  return stored;
}

/**
 * The store record's extra after a write: the existing keys, with the managed ones set
 * (undefined removes one). undefined when nothing is left.
 */
function mergeExtra(existing: Extra | undefined, managed: Record<string, unknown>): Extra | undefined {
  const out: Extra = { ...existing };
  for (const [key, value] of Object.entries(managed)) {
    if (value === undefined) delete out[key];
    else out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const fullTextOf = (full: Record<string, string>): Record<string, string> | undefined => (Object.keys(full).length > 0 ? full : undefined);

const num = (extra: Extra | undefined, key: string, fallback: number): number => {
  const v = extra?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
};
const numOrNull = (extra: Extra | undefined, key: string, fallback: number | null): number | null => {
  const v = extra?.[key];
  return v === null ? null : typeof v === "number" && Number.isFinite(v) ? v : fallback;
};
const str = (extra: Extra | undefined, key: string, fallback: string): string => {
  const v = extra?.[key];
  return typeof v === "string" ? v : fallback;
};
const bool = (extra: Extra | undefined, key: string, fallback: boolean): boolean => {
  const v = extra?.[key];
  return typeof v === "boolean" ? v : fallback;
};

// ---- vehicles ------------------------------------------------------------------------------

const vehicleTextFields = ["owner", "region", "code", "virtualCardNum", "carGroupUuid", "carGroup", "tel", "color", "carSpaceNum"] as const;

/** VehicleRecord → the store's upsertVehicle input (existing: the stored record, for its extra). */
export function vehicleToStore(v: VehicleRecord, existing?: Vehicle): VehicleInput {
  const full: Record<string, string> = {};
  const text = Object.fromEntries(vehicleTextFields.map((f) => [f, fit(f, v[f], limits.short, full)])) as Record<(typeof vehicleTextFields)[number], string>;
  const carNum = fit("carNum", v.carNum, limits.carNum, full);
  const remark = fit("remark", v.remark, limits.remark, full);
  const extra = mergeExtra(existing?.extra, { [FULL_TEXT]: fullTextOf(full) });
  return {
    id: v.id,
    uuId: v.uuId,
    carNum,
    ...text,
    remark,
    carTypeCode: v.carTypeCode,
    carGroupID: v.carGroupId,
    balanceFen: v.balanceFen,
    carMMoneyFen: v.monthlyRentFen,
    refundFen: v.refundFen,
    timeStartMs: v.validFromMs,
    timeEndMs: v.validToMs,
    state: v.enabled ? 1 : 0,
    frozen: v.frozen,
    ...(extra ? { extra } : {}),
  };
}

export function vehicleFromStore(v: Vehicle): VehicleRecord {
  const t = (field: string, stored: string): string => unfit(field, stored, v.extra);
  return {
    id: v.id,
    uuId: v.uuId,
    carNum: t("carNum", v.carNum),
    owner: t("owner", v.owner),
    carTypeCode: v.carTypeCode,
    carGroupId: v.carGroupID,
    carGroupUuid: t("carGroupUuid", v.carGroupUuid),
    carGroup: t("carGroup", v.carGroup),
    region: t("region", v.region),
    code: t("code", v.code),
    virtualCardNum: t("virtualCardNum", v.virtualCardNum),
    tel: t("tel", v.tel),
    color: t("color", v.color),
    carSpaceNum: t("carSpaceNum", v.carSpaceNum),
    remark: t("remark", v.remark),
    balanceFen: v.balanceFen,
    monthlyRentFen: v.carMMoneyFen,
    refundFen: v.refundFen ?? 0,
    validFromMs: v.timeStartMs,
    validToMs: v.timeEndMs,
    enabled: v.state === 1,
    frozen: v.frozen,
    updatedAtMs: v.updatedAtMs,
  };
}

// ---- blacklist -----------------------------------------------------------------------------

export function blacklistToStore(r: BlacklistRecord, existing?: BlacklistEntry): BlacklistInput {
  const full: Record<string, string> = {};
  const carNum = fit("carNum", r.carNum, limits.carNum, full);
  const operator = fit("operator", r.operator, limits.short, full);
  const remark = fit("remark", r.remark, limits.remark, full);
  const extra = mergeExtra(existing?.extra, { [FULL_TEXT]: fullTextOf(full) });
  return {
    id: r.id,
    uuid: r.uuid,
    carNum,
    // The handler accepts only 0 and 1; anything else is refused by the store's schema.
    type: r.type as 0 | 1,
    untilMs: r.untilMs,
    operator,
    remark,
    denyIn: r.denyIn,
    denyOut: r.denyOut,
    inNotify: r.inNotify,
    ...(extra ? { extra } : {}),
  };
}

export function blacklistFromStore(b: BlacklistEntry): BlacklistRecord {
  return {
    id: b.id,
    uuid: b.uuid,
    carNum: unfit("carNum", b.carNum, b.extra),
    type: b.type,
    untilMs: b.untilMs,
    operator: unfit("operator", b.operator, b.extra),
    remark: unfit("remark", b.remark, b.extra),
    denyIn: b.denyIn,
    denyOut: b.denyOut,
    inNotify: b.inNotify,
    createdAtMs: b.createdAtMs,
  };
}

// ---- car groups ----------------------------------------------------------------------------

export function carGroupToStore(g: CarGroupRecord, existing?: CarGroup): CarGroupInput {
  const full: Record<string, string> = {};
  const name = fit("name", g.name, limits.short, full);
  const remark = fit("remark", g.remark, limits.remark, full);
  const extra = mergeExtra(existing?.extra, {
    carTypeCode: g.carTypeCode,
    validFromMs: g.validFromMs,
    validToMs: g.validToMs,
    monthlyRentFen: g.monthlyRentFen,
    balanceFen: g.balanceFen,
    enabled: g.enabled,
    [FULL_TEXT]: fullTextOf(full),
  });
  return {
    carGroupID: g.id,
    carGroupUuid: g.uuid,
    name,
    spaces: g.spaceCount,
    remark,
    ...(extra ? { extra } : {}),
  };
}

export function carGroupFromStore(g: CarGroup): CarGroupRecord {
  const x = g.extra;
  return {
    id: g.carGroupID,
    uuid: g.carGroupUuid,
    name: unfit("name", g.name, x),
    spaceCount: g.spaces ?? 0,
    carTypeCode: num(x, "carTypeCode", 81),
    validFromMs: numOrNull(x, "validFromMs", null),
    validToMs: numOrNull(x, "validToMs", null),
    monthlyRentFen: num(x, "monthlyRentFen", 0),
    balanceFen: num(x, "balanceFen", 0),
    remark: unfit("remark", g.remark, x),
    enabled: bool(x, "enabled", true),
    updatedAtMs: g.updatedAtMs,
  };
}

// ---- in-park records -----------------------------------------------------------------------

const storeSource: Record<InParkRecord["source"], string> = { lane: "camera", unlicensed: "unlicensed", platform: "platform" };

function sourceFromStore(source: string | undefined): InParkRecord["source"] {
  return source === "platform" || source === "unlicensed" ? source : "lane";
}

const validPlateColor = (c: number | null): c is number => c !== null && Number.isInteger(c) && c >= 0 && c <= 99;

/** `<laneId>_<YYYYMMDDHHmmssSSS>` (docs/protocol.md §3.1) → laneId. */
function laneFromRecordNo(recordNo: string): string | undefined {
  return /^(.{1,32})_\d{17}$/.exec(recordNo)?.[1];
}

/** The fields of a stay that come from the ports record, with the extra they need. */
function stayFields(r: InParkRecord, existing: StoreStay | undefined) {
  const full: Record<string, string> = {};
  const plate = fit("plate", r.plateNum, limits.plate, full);
  const extra = mergeExtra(existing?.extra, {
    inChannelId: r.inChannelId,
    operator: r.operator,
    updatedAtMs: r.updatedAtMs,
    plateColor: r.plateColor !== null && !validPlateColor(r.plateColor) ? r.plateColor : undefined,
    [FULL_TEXT]: fullTextOf(full),
  });
  return {
    plate,
    plateColor: validPlateColor(r.plateColor) ? r.plateColor : undefined,
    carType: r.carType,
    carSubType: r.carSubType,
    enterAtMs: r.enterTimeMs,
    // An edit from the platform keeps the store's finer source ("manual" stays "manual").
    source: existing && sourceFromStore(existing.source) === r.source ? existing.source : storeSource[r.source],
    extra,
  };
}

/** A new stay (4.13.4) → addInPark input. */
export function inParkToStore(r: InParkRecord, lanes: LaneChannels = []): StoreStayInput {
  const f = stayFields(r, undefined);
  const laneId = lanes.find((l) => r.inChannelId !== "" && l.channelId === r.inChannelId)?.id ?? laneFromRecordNo(r.recordNo) ?? "cloud";
  return {
    recordNo: r.recordNo,
    plate: f.plate,
    ...(f.plateColor !== undefined ? { plateColor: f.plateColor } : {}),
    laneId,
    enterAtMs: f.enterAtMs,
    carType: f.carType,
    carSubType: f.carSubType,
    ...(f.source !== undefined ? { source: f.source } : {}),
    entryReport: r.source === "platform" ? "none" : "queued",
    ...(f.extra ? { extra: f.extra } : {}),
  };
}

/** An edit (4.13.2) → updateInPark patch; optional fields set to undefined are removed. */
export function inParkPatch(r: InParkRecord, existing: StoreStay): Partial<StoreStay> {
  const f = stayFields(r, existing);
  return { plate: f.plate, plateColor: f.plateColor, carType: f.carType, carSubType: f.carSubType, enterAtMs: f.enterAtMs, source: f.source, extra: f.extra };
}

export function inParkFromStore(s: StoreStay, lanes: LaneChannels = []): InParkRecord {
  const x = s.extra;
  const laneChannel = lanes.find((l) => l.id === s.laneId)?.channelId ?? "";
  return {
    recordNo: s.recordNo,
    plateNum: unfit("plate", s.plate, x),
    plateColor: s.plateColor ?? numOrNull(x, "plateColor", null),
    carType: s.carType ?? 0,
    carSubType: s.carSubType ?? 0,
    enterTimeMs: s.enterAtMs,
    inChannelId: str(x, "inChannelId", laneChannel),
    source: sourceFromStore(s.source),
    operator: str(x, "operator", ""),
    updatedAtMs: num(x, "updatedAtMs", s.enterAtMs),
  };
}

// ---- coupons -------------------------------------------------------------------------------

export function couponToStore(c: CouponRecord, existing?: Coupon): Coupon {
  const extra = mergeExtra(existing?.extra, { plateNum: c.plateNum, expiresAtMs: c.expiresAtMs, operator: c.operator })!;
  return { couponId: c.couponNo, kind: c.kind, value: c.value, grantedAtMs: c.issuedAtMs, source: "platform", extra };
}

export function couponFromStore(c: Coupon, stay: StoreStay): CouponRecord {
  return {
    couponNo: c.couponId,
    recordNo: stay.recordNo,
    plateNum: str(c.extra, "plateNum", stay.plate),
    kind: c.kind,
    value: c.value,
    expiresAtMs: numOrNull(c.extra, "expiresAtMs", null),
    operator: str(c.extra, "operator", ""),
    issuedAtMs: c.grantedAtMs,
  };
}

// ---- payments ------------------------------------------------------------------------------

export type PaymentInput = Parameters<LotStore["recordPayment"]>[0];

export function paymentToStore(p: PaymentRecord): PaymentInput {
  const full: Record<string, string> = {};
  const stay = p.kind === "stay";
  const plate = stay ? fit("plate", p.plateNum, limits.plate, full) : "";
  const recordNo = stay ? fit("recordNo", p.recordNo, limits.short, full) : "";
  const extra = mergeExtra(undefined, {
    kind: p.kind,
    targetUuid: p.targetUuid,
    payScene: p.payScene,
    channelId: p.channelId,
    plateId: p.plateId,
    recordNo: stay ? undefined : p.recordNo,
    plateNum: stay ? undefined : p.plateNum,
    [FULL_TEXT]: fullTextOf(full),
  });
  return {
    orderNo: p.orderNo,
    ...(recordNo !== "" ? { recordNo } : {}),
    ...(stay && plate !== "" ? { plate } : {}),
    amountFen: p.amountFen,
    payAtMs: p.payTimeMs,
    payType: String(p.payType),
    source: "platform",
    receivedAtMs: p.receivedAtMs,
    ...(extra ? { extra } : {}),
  };
}

export function paymentFromStore(p: Payment): PaymentRecord {
  const x = p.extra;
  const kind = str(x, "kind", "stay");
  const payType = Number.parseInt(p.payType ?? "", 10);
  return {
    orderNo: p.orderNo,
    kind: kind === "fixed-car" || kind === "car-group" || kind === "refund" ? kind : "stay",
    recordNo: p.recordNo !== undefined ? unfit("recordNo", p.recordNo, x) : str(x, "recordNo", ""),
    plateNum: p.plate !== undefined ? unfit("plate", p.plate, x) : str(x, "plateNum", ""),
    targetUuid: str(x, "targetUuid", ""),
    payType: Number.isFinite(payType) ? payType : 0,
    amountFen: p.amountFen,
    payTimeMs: p.payAtMs,
    payScene: numOrNull(x, "payScene", null),
    channelId: str(x, "channelId", ""),
    plateId: str(x, "plateId", ""),
    receivedAtMs: p.receivedAtMs,
  };
}
