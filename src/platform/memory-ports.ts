import type { BlacklistEntry, CarGroup, InParkRecord, Payment, StayCoupon, Vehicle } from "../store/records.js";
import type { LanePort, ListPort, LotPorts } from "./ports.js";

/** A list kept in memory. Records are copied in and out, so only `put` changes state. */
export class MemoryList<T> implements ListPort<T> {
  private readonly records = new Map<string, T>();
  /** Completed writes (put, remove, clear), for tests asserting "no state change". */
  writes = 0;

  constructor(
    private readonly keyOf: (record: T) => string,
    initial: readonly T[] = [],
  ) {
    for (const record of initial) this.records.set(keyOf(record), structuredClone(record));
  }

  async list(): Promise<T[]> {
    return [...this.records.values()].map((r) => structuredClone(r));
  }

  async get(key: string): Promise<T | undefined> {
    const record = this.records.get(key);
    return record === undefined ? undefined : structuredClone(record);
  }

  async put(record: T): Promise<void> {
    this.records.set(this.keyOf(record), structuredClone(record));
    this.writes++;
  }

  async remove(key: string): Promise<boolean> {
    const removed = this.records.delete(key);
    if (removed) this.writes++;
    return removed;
  }

  async clear(): Promise<number> {
    const count = this.records.size;
    this.records.clear();
    if (count > 0) this.writes++;
    return count;
  }

  size(): number {
    return this.records.size;
  }

  snapshot(): T[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
}

export interface MemoryLotPortsOptions {
  /** Lane callbacks; the ones left out refuse with reason "unavailable". */
  lane?: Partial<LanePort>;
  /** For the default freeSpaces(): total minus the in-park count. */
  totalSpaces?: number;
  seed?: {
    vehicles?: Vehicle[];
    blacklist?: BlacklistEntry[];
    carGroups?: CarGroup[];
    coupons?: StayCoupon[];
    inPark?: InParkRecord[];
    payments?: Payment[];
  };
}

export interface MemorySnapshot {
  vehicles: Vehicle[];
  blacklist: BlacklistEntry[];
  carGroups: CarGroup[];
  coupons: StayCoupon[];
  inPark: InParkRecord[];
  payments: Payment[];
}

export interface MemoryLotPorts extends LotPorts {
  vehicles: MemoryList<Vehicle>;
  blacklist: MemoryList<BlacklistEntry>;
  carGroups: MemoryList<CarGroup>;
  coupons: MemoryList<StayCoupon>;
  inPark: MemoryList<InParkRecord>;
  payments: MemoryList<Payment>;
  /** A deep copy of every list. */
  snapshot(): MemorySnapshot;
  /** Writes across all lists. */
  writes(): number;
}

/**
 * A complete in-memory LotPorts: the lists behave like the durable store (keyed, copied,
 * insertion-ordered); the lane-facing calls are the injected callbacks.
 */
export function createMemoryLotPorts(options: MemoryLotPortsOptions = {}): MemoryLotPorts {
  const seed = options.seed ?? {};
  const vehicles = new MemoryList<Vehicle>((r) => r.uuId, seed.vehicles);
  const blacklist = new MemoryList<BlacklistEntry>((r) => r.uuid, seed.blacklist);
  const carGroups = new MemoryList<CarGroup>((r) => r.carGroupUuid, seed.carGroups);
  const coupons = new MemoryList<StayCoupon>((r) => r.couponId, seed.coupons);
  const inPark = new MemoryList<InParkRecord>((r) => r.recordNo, seed.inPark);
  const payments = new MemoryList<Payment>((r) => r.orderNo, seed.payments);
  const unavailable = { ok: false as const, reason: "unavailable" as const, msg: "lane control is not connected" };
  const lane: LanePort = {
    feeQuery: options.lane?.feeQuery ?? (async () => unavailable),
    unlicensedEntry: options.lane?.unlicensedEntry ?? (async () => unavailable),
    remoteControl: options.lane?.remoteControl ?? (async () => unavailable),
    freeSpaces:
      options.lane?.freeSpaces ??
      (async () => {
        const total = options.totalSpaces ?? 0;
        return { total, free: Math.max(0, total - inPark.size()) };
      }),
    paymentNotified: options.lane?.paymentNotified ?? (async () => undefined),
  };
  const lists = { vehicles, blacklist, carGroups, coupons, inPark, payments };
  return {
    ...lists,
    lane,
    snapshot: () => ({
      vehicles: vehicles.snapshot(),
      blacklist: blacklist.snapshot(),
      carGroups: carGroups.snapshot(),
      coupons: coupons.snapshot(),
      inPark: inPark.snapshot(),
      payments: payments.snapshot(),
    }),
    writes: () => Object.values(lists).reduce((sum, list) => sum + list.writes, 0),
  };
}
