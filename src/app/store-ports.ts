import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { LanePort, ListPort, LotPorts } from "../platform/ports.js";
import { Refusal } from "../platform/services/common.js";
import { formatWireTime } from "../platform/wire.js";
import { StoreErrorCode, isStoreError } from "../store/errors.js";
import type { LotStore } from "../store/lot-store.js";
import type { BlacklistEntry, CarGroup, InParkRecord, Payment, StayCoupon, Vehicle } from "../store/records.js";

/*
 * The durable LotPorts: the section-4 handlers' lists (src/platform/ports.ts) on top of the
 * LotStore (src/store/lot-store.ts). Both speak the store's records, so nothing is mapped
 * here: every put/remove/clear is one of the store's named methods, which resolve after the
 * durable write, so a handler's `code 200` follows the disk (docs/protocol.md §4.2).
 *
 * Store refusals become platform refusals with nothing changed: E_STORE_DUPLICATE (e.g. a
 * plate the store's normalisation finds registered) → conflict, E_STORE_INVALID →
 * badBizContent, E_STORE_NOT_FOUND → notFound. A put whose id another record holds, and a
 * key the store cannot keep ("__proto__"), are refused here before the store is asked.
 * Coupons live inside their stay's in-park record; a put that names another stay moves it.
 */

export interface StorePortsOptions {
  clock: Clock;
  log: Logger;
  /** The lot's zone: times in the log lines read as the platform writes them. */
  timeZone: string;
}

/** What a platform edit of a stay (4.13.2) may change; the lane's fields (pending exit, prepayments, coupons...) stay as the store holds them. */
const platformStayFields = ["plate", "plateColor", "carType", "carSubType", "enterAtMs", "inChannelId", "operator", "updatedAtMs"] as const;

/**
 * The handlers change the records they read before they put them back: they get copies, so
 * nothing the store holds changes before (or without) a durable put.
 */
function copy<T>(record: T): T {
  return structuredClone(record);
}
const copies = <T>(records: readonly T[]): T[] => records.map(copy);

/** A coupon as its stay keeps it (the stay is the one holding it). */
function heldCoupon(coupon: StayCoupon) {
  const { recordNo: _stay, ...held } = coupon;
  return held;
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
  const wire = (ms: number): string => formatWireTime(ms, options.timeZone);

  const vehicles: ListPort<Vehicle> & { clear(): Promise<number> } = {
    async list() {
      return copies(store.listVehicles().items);
    },
    async get(uuId) {
      const v = uuId === "" ? undefined : store.vehicles.get(uuId);
      return v && copy(v);
    },
    async put(record) {
      checkKey("uuId", record.uuId);
      const existing = store.vehicles.get(record.uuId);
      if (!existing && record.id > 0) {
        const holder = store.getVehicle({ id: record.id });
        checkIdFree("vehicle", record.uuId, record.id, holder && { key: holder.uuId });
      }
      await guarded(() => store.upsertVehicle(record));
    },
    async remove(uuId) {
      if (uuId === "" || !store.vehicles.has(uuId)) return false;
      return store.deleteVehicle({ uuId });
    },
    async clear() {
      return store.clearVehicles();
    },
  };

  const blacklist: ListPort<BlacklistEntry> = {
    async list() {
      return copies(store.listBlacklist().items);
    },
    async get(uuid) {
      const b = store.blacklist.get(uuid);
      return b && copy(b);
    },
    async put(record) {
      checkKey("uuid", record.uuid);
      const existing = store.blacklist.get(record.uuid);
      if (!existing && record.id > 0) {
        const holder = store.blacklist.find((b) => b.id === record.id);
        checkIdFree("blacklist", record.uuid, record.id, holder && { key: holder.uuid });
      }
      await guarded(() => store.addBlacklist(record));
    },
    async remove(uuid) {
      if (uuid === "" || !store.blacklist.has(uuid)) return false;
      return (await store.deleteBlacklist({ uuid })) > 0;
    },
  };

  const carGroups: ListPort<CarGroup> = {
    async list() {
      return copies(store.listCarGroups().items);
    },
    async get(uuid) {
      const g = store.carGroups.get(uuid);
      return g && copy(g);
    },
    async put(record) {
      checkKey("carGroupUuid", record.carGroupUuid);
      const existing = store.carGroups.get(record.carGroupUuid);
      if (!existing && record.carGroupID > 0) {
        const holder = store.getCarGroup({ carGroupID: record.carGroupID });
        checkIdFree("car group", record.carGroupUuid, record.carGroupID, holder && { key: holder.carGroupUuid });
      }
      await guarded(() => store.upsertCarGroup(record));
    },
    async remove(uuid) {
      if (uuid === "" || !store.carGroups.has(uuid)) return false;
      return store.deleteCarGroup({ carGroupUuid: uuid });
    },
  };

  const inPark: ListPort<InParkRecord> = {
    async list() {
      return copies(store.listInPark().items);
    },
    async get(recordNo) {
      const stay = store.getInPark(recordNo);
      return stay && copy(stay);
    },
    async put(record) {
      checkKey("recordNo", record.recordNo);
      if (store.getInPark(record.recordNo)) {
        // 4.13.2: the platform's fields only (an edit sets fields, it never clears one).
        const patch: Partial<InParkRecord> = Object.fromEntries(platformStayFields.filter((field) => record[field] !== undefined).map((field) => [field, record[field]]));
        await guarded(() => store.updateInPark(record.recordNo, patch));
      } else await guarded(() => store.addInPark(record));
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

  /** The in-park stay holding a coupon. */
  const holderOf = (couponId: string): InParkRecord | undefined => store.listInPark().items.find((stay) => stay.coupons.some((c) => c.couponId === couponId));

  const coupons: ListPort<StayCoupon> = {
    async list() {
      return store.listInPark().items.flatMap((stay) => stay.coupons.map((c) => ({ ...copy(c), recordNo: stay.recordNo })));
    },
    async get(couponId) {
      const stay = holderOf(couponId);
      const coupon = stay?.coupons.find((c) => c.couponId === couponId);
      return stay && coupon && { ...copy(coupon), recordNo: stay.recordNo };
    },
    async put(record) {
      const holder = holderOf(record.couponId);
      if (holder && holder.recordNo === record.recordNo) {
        const replaced = holder.coupons.map((c) => (c.couponId === record.couponId ? heldCoupon(record) : c));
        await guarded(() => store.updateInPark(record.recordNo, { coupons: replaced }));
        return;
      }
      if (!store.getInPark(record.recordNo)) throw new Refusal("notFound", `no in-park stay ${record.recordNo} for coupon ${record.couponId}`);
      if (holder) {
        // Moved to another stay: two writes; a crash between them loses the coupon from both,
        // and the platform's retry of 4.7 grants it again.
        await guarded(() => store.updateInPark(holder.recordNo, { coupons: holder.coupons.filter((c) => c.couponId !== record.couponId) }));
        log.warn({ couponNo: record.couponId, from: holder.recordNo, to: record.recordNo }, "coupon moved to another stay");
      }
      await guarded(() => store.addCoupon(record.recordNo, heldCoupon(record)));
    },
    async remove(couponId) {
      const holder = holderOf(couponId);
      if (!holder) return false;
      await store.updateInPark(holder.recordNo, { coupons: holder.coupons.filter((c) => c.couponId !== couponId) });
      return true;
    },
  };

  const payments: ListPort<Payment> = {
    async list() {
      return copies(store.payments.values());
    },
    async get(orderNo) {
      const p = store.payments.get(orderNo);
      return p && copy(p);
    },
    async put(record) {
      checkKey("orderNo", record.orderNo);
      const result = await guarded(() => store.recordPayment(record));
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
