import type { Clock } from "./clock.js";
import type { Logger } from "./log.js";
import type {
  BlacklistRecord,
  CarGroupRecord,
  CouponRecord,
  InParkRecord,
  LanePort,
  ListPort,
  LotPorts,
  PaymentRecord,
  VehicleRecord,
} from "../platform/ports.js";
import { Refusal } from "../platform/services/common.js";
import { formatWireTime } from "../platform/wire.js";
import { StoreErrorCode, isStoreError } from "../store/errors.js";
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
 * The durable LotPorts: the section-4 handlers' lists (src/platform/ports.ts) on top of the
 * LotStore (src/store/lot-store.ts). Every put/remove/clear is one of the store's named
 * methods, which resolve after the durable write, so a handler's `code 200` follows the disk
 * (platform-api.md §8 4.2). The mapping, field by field (ports ↔ store):
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
 *   else the recordNo's `<laneId>_<17 digits>` prefix (architecture.md §4), else "cloud"
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
 *   payChannel, which is the §11.3 pay channel), plateId → extra.<same name>
 *
 * Text longer than the store allows (the platform's declared lengths are warnings only, §3.3)
 * is stored cut to the limit, with the whole text in extra.fullText.<field>; reads give the
 * whole text back. Keys of extra this module does not manage are kept on every write.
 * Store refusals become platform refusals with nothing changed: E_STORE_DUPLICATE (e.g. a
 * plate the store's normalisation finds registered) → conflict, E_STORE_INVALID →
 * badBizContent, E_STORE_NOT_FOUND → notFound. A put whose id another record holds, and a
 * key the store cannot keep ("__proto__"), are refused here before the store is asked.
 */

export interface StorePortsOptions {
  clock: Clock;
  log: Logger;
  /** The lot's zone: times in the log lines read as the platform writes them. */
  timeZone: string;
  /** Lane ids and platform channel ids (config `lanes`): maps a stay's laneId ↔ inChannelId. */
  lanes?: ReadonlyArray<{ id: string; channelId: string }>;
}

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

/** `<laneId>_<YYYYMMDDHHmmssSSS>` (architecture.md §4) → laneId. */
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
export function inParkToStore(r: InParkRecord, lanes: StorePortsOptions["lanes"] = []): StoreStayInput {
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
  return { plate: f.plate, plateColor: f.plateColor, carType: f.carType, carSubType: f.carSubType, enterAtMs: f.enterAtMs, source: f.source, extra: f.extra } as Partial<StoreStay>;
}

export function inParkFromStore(s: StoreStay, lanes: StorePortsOptions["lanes"] = []): InParkRecord {
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

// ---- the ports -----------------------------------------------------------------------------

/** Store refusals become platform refusals (nothing was changed: the store validates first). */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isStoreError(error, StoreErrorCode.Duplicate)) throw new Refusal("conflict", error.message);
    if (isStoreError(error, StoreErrorCode.Invalid)) throw new Refusal("badBizContent", error.message);
    if (isStoreError(error, StoreErrorCode.NotFound)) throw new Refusal("notFound", error.message);
    throw error;
  }
}

/**
 * The store keeps each list as a plain object keyed by the record's key, where "__proto__"
 * is not an own key: such a record would be acknowledged and then not be there. Refused.
 */
function checkKey(what: string, key: string): void {
  if (key === "__proto__") throw new Refusal("badBizContent", `${what} "${key}" cannot be stored`);
}

/**
 * The store's upsert methods find an existing record by key, then by id. A put whose key is
 * new but whose id another record holds would replace that other record: refused instead.
 */
function checkIdFree(what: string, key: string, id: number, holder: { key: string } | undefined): void {
  if (holder && holder.key !== key) throw new Refusal("conflict", `${what} id ${id} belongs to ${holder.key}, not ${key}`);
}

/**
 * The durable LotPorts over `store` (which must be started). `lane` is passed through.
 * Use it instead of createMemoryLotPorts when wiring the open-interface handler in the App.
 */
export function createStoreLotPorts(store: LotStore, lane: LanePort, options: StorePortsOptions): LotPorts {
  const log = options.log.child({ sub: "store-ports" });
  const lanes = options.lanes ?? [];
  const wire = (ms: number): string => formatWireTime(ms, options.timeZone);

  const vehicles: ListPort<VehicleRecord> & { clear(): Promise<number> } = {
    async list() {
      return store.listVehicles().items.map(vehicleFromStore);
    },
    async get(uuId) {
      const v = uuId === "" ? undefined : store.vehicles.get(uuId);
      return v && vehicleFromStore(v);
    },
    async put(record) {
      checkKey("uuId", record.uuId);
      const existing = store.vehicles.get(record.uuId);
      if (!existing && record.id > 0) {
        const holder = store.getVehicle({ id: record.id });
        checkIdFree("vehicle", record.uuId, record.id, holder && { key: holder.uuId });
      }
      await guarded(() => store.upsertVehicle(vehicleToStore(record, existing)));
    },
    async remove(uuId) {
      if (uuId === "" || !store.vehicles.has(uuId)) return false;
      return store.deleteVehicle({ uuId });
    },
    async clear() {
      return store.clearVehicles();
    },
  };

  const blacklist: ListPort<BlacklistRecord> = {
    async list() {
      return store.listBlacklist().items.map(blacklistFromStore);
    },
    async get(uuid) {
      const b = store.blacklist.get(uuid);
      return b && blacklistFromStore(b);
    },
    async put(record) {
      checkKey("uuid", record.uuid);
      const existing = store.blacklist.get(record.uuid);
      if (!existing && record.id > 0) {
        const holder = store.blacklist.find((b) => b.id === record.id);
        checkIdFree("blacklist", record.uuid, record.id, holder && { key: holder.uuid });
      }
      await guarded(() => store.addBlacklist(blacklistToStore(record, existing)));
    },
    async remove(uuid) {
      if (uuid === "" || !store.blacklist.has(uuid)) return false;
      return (await store.deleteBlacklist({ uuid })) > 0;
    },
  };

  const carGroups: ListPort<CarGroupRecord> = {
    async list() {
      return store.listCarGroups().items.map(carGroupFromStore);
    },
    async get(uuid) {
      const g = store.carGroups.get(uuid);
      return g && carGroupFromStore(g);
    },
    async put(record) {
      checkKey("carGroupUuid", record.uuid);
      const existing = store.carGroups.get(record.uuid);
      if (!existing && record.id > 0) {
        const holder = store.getCarGroup({ carGroupID: record.id });
        checkIdFree("car group", record.uuid, record.id, holder && { key: holder.carGroupUuid });
      }
      await guarded(() => store.upsertCarGroup(carGroupToStore(record, existing)));
    },
    async remove(uuid) {
      if (uuid === "" || !store.carGroups.has(uuid)) return false;
      return store.deleteCarGroup({ carGroupUuid: uuid });
    },
  };

  const inPark: ListPort<InParkRecord> = {
    async list() {
      return store.listInPark().items.map((s) => inParkFromStore(s, lanes));
    },
    async get(recordNo) {
      const s = store.getInPark(recordNo);
      return s && inParkFromStore(s, lanes);
    },
    async put(record) {
      checkKey("recordNo", record.recordNo);
      const existing = store.getInPark(record.recordNo);
      if (existing) await guarded(() => store.updateInPark(record.recordNo, inParkPatch(record, existing)));
      else await guarded(() => store.addInPark(inParkToStore(record, lanes)));
    },
    async remove(recordNo) {
      const existing = store.getInPark(recordNo);
      if (!existing) return false;
      // 4.13.3: the stay ends in history as deleted by the platform; no exit report follows.
      await store.cancelStay(recordNo, { reason: "platform-delete", atMs: options.clock.now() });
      log.info({ recordNo, plate: existing.plate, enterTime: wire(existing.enterAtMs) }, "stay ended: deleted by the platform");
      return true;
    },
  };

  /** The in-park stay holding a coupon, and the coupon. */
  const findCoupon = (couponNo: string): { stay: StoreStay; coupon: Coupon } | undefined => {
    for (const stay of store.listInPark().items) {
      const coupon = stay.coupons.find((c) => c.couponId === couponNo);
      if (coupon) return { stay, coupon };
    }
    return undefined;
  };

  const coupons: ListPort<CouponRecord> = {
    async list() {
      return store.listInPark().items.flatMap((stay) => stay.coupons.map((c) => couponFromStore(c, stay)));
    },
    async get(couponNo) {
      const found = findCoupon(couponNo);
      return found && couponFromStore(found.coupon, found.stay);
    },
    async put(record) {
      const held = findCoupon(record.couponNo);
      if (held && held.stay.recordNo === record.recordNo) {
        const replaced = held.stay.coupons.map((c) => (c.couponId === record.couponNo ? couponToStore(record, c) : c));
        await guarded(() => store.updateInPark(record.recordNo, { coupons: replaced }));
        return;
      }
      if (!store.getInPark(record.recordNo)) throw new Refusal("notFound", `no in-park stay ${record.recordNo} for coupon ${record.couponNo}`);
      if (held) {
        // Moved to another stay: two writes; a crash between them loses the coupon from both,
        // and the platform's retry of 4.7 grants it again.
        await guarded(() => store.updateInPark(held.stay.recordNo, { coupons: held.stay.coupons.filter((c) => c.couponId !== record.couponNo) }));
        log.warn({ couponNo: record.couponNo, from: held.stay.recordNo, to: record.recordNo }, "coupon moved to another stay");
      }
      await guarded(() => store.addCoupon(record.recordNo, couponToStore(record)));
    },
    async remove(couponNo) {
      const held = findCoupon(couponNo);
      if (!held) return false;
      await store.updateInPark(held.stay.recordNo, { coupons: held.stay.coupons.filter((c) => c.couponId !== couponNo) });
      return true;
    },
  };

  const payments: ListPort<PaymentRecord> = {
    async list() {
      return store.payments.values().map(paymentFromStore);
    },
    async get(orderNo) {
      const p = store.payments.get(orderNo);
      return p && paymentFromStore(p);
    },
    async put(record) {
      checkKey("orderNo", record.orderNo);
      const result = await guarded(() => store.recordPayment(paymentToStore(record)));
      // A payment is never rewritten (money records are append-only); the handlers check for a
      // prior orderNo first, so a duplicate here is a repeat that raced in.
      if (result.duplicate) log.info({ orderNo: record.orderNo }, "payment already recorded; kept as first received");
      else if (result.appliedTo) log.debug({ orderNo: record.orderNo, recordNo: result.appliedTo }, "payment applied to the stay's prepayments");
    },
    async remove(orderNo) {
      // No handler removes payments; kept for the port's contract (a correction by hand).
      return store.payments.delete(orderNo);
    },
  };

  return { vehicles, blacklist, carGroups, coupons, inPark, payments, lane };
}
