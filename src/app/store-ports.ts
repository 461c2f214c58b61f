import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { BlacklistRecord, CarGroupRecord, CouponRecord, InParkRecord, LanePort, ListPort, LotPorts, PaymentRecord, VehicleRecord } from "../platform/ports.js";
import { Refusal } from "../platform/services/common.js";
import { formatWireTime } from "../platform/wire.js";
import { StoreErrorCode, isStoreError } from "../store/errors.js";
import type { LotStore } from "../store/lot-store.js";
import type { Coupon, InParkRecord as StoreStay } from "../store/records.js";
import {
  blacklistFromStore,
  blacklistToStore,
  carGroupFromStore,
  carGroupToStore,
  couponFromStore,
  couponToStore,
  inParkFromStore,
  inParkPatch,
  inParkToStore,
  paymentFromStore,
  paymentToStore,
  vehicleFromStore,
  vehicleToStore,
  type LaneChannels,
} from "./store-port-mapping.js";

/*
 * The durable LotPorts: the section-4 handlers' lists (src/platform/ports.ts) on top of the
 * LotStore (src/store/lot-store.ts); the field mapping between the two is
 * store-port-mapping.ts. Every put/remove/clear is one of the store's named methods, which
 * resolve after the durable write, so a handler's `code 200` follows the disk
 * (docs/protocol.md §4.2).
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
  /** Lane ids and platform channel ids (config `lanes`): maps a stay's laneId ↔ inChannelId. */
  lanes?: LaneChannels;
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

// The mapping functions stay importable from here, where the ports have always been.
export * from "./store-port-mapping.js";
