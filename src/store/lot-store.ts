import { randomBytes } from "node:crypto";
import { join } from "node:path";
// Plates compare by the core's one plate key (camera reads and platform entries differ in
// spacing, case, width and the virtual plate's 无 prefix).
import { plateKey, plateMatchesSearch } from "../core/plates/index.js";
import { DAY_MS } from "../core/time/zone.js";
import { systemClock, type Clock, type TimerHandle } from "../app/clock.js";
import type { Component } from "../app/lifecycle.js";
import type { Logger } from "../app/log.js";
import { Collection, paginate, type Page, type PageRequest, type WriteOptions } from "./collection.js";
import { DurableDoc, type DurableDocStatus } from "./durable-doc.js";
import { StoreError, StoreErrorCode, storeErrorFromFs, type StoreAlarm, type StoreWarning } from "./errors.js";
import { DEFAULT_CLOCK_FLOOR_MS, History, type CronScheduler, type HistoryLine } from "./history.js";
import {
  INPARK_DOC_VERSION,
  LISTS_DOC_VERSION,
  SETTINGS_DOC_VERSION,
  blacklistEntrySchema,
  carGroupSchema,
  couponSchema,
  exitInfoSchema,
  finishedStaySchema,
  inParkDocSchema,
  inParkRecordSchema,
  listsDocSchema,
  paymentSchema,
  settingsDocSchema,
  vehicleSchema,
  type BlacklistEntry,
  type BlacklistInput,
  type CarGroup,
  type CarGroupInput,
  type Coupon,
  type ExitInfoInput,
  type FinishedStay,
  type InParkDoc,
  type InParkRecord,
  type InParkRecordInput,
  type ListsDoc,
  type Payment,
  type PaymentInput,
  type SettingsDoc,
  type Vehicle,
  type VehicleInput,
} from "./records.js";
import { prepareStoreDir } from "./store-dir.js";

/*
 * What lives where (issue 7 item 2; docs/architecture.md "Store and write discipline"):
 *   <dir>/inpark.json (+ .prev, + .journal.NNNNNN)  in-park records, stays being finished,
 *                                                  payments received
 *   <dir>/lists.json  (+ .prev, + .journal.NNNNNN)  fixed vehicles, car groups, blacklist
 *   <dir>/settings.json (+ .prev)                   counters, last-seen times (batched)
 *   <dir>/history/                                  finished stays and events (JSON lines)
 *   <dir>/outbox.journal                            the outbox (src/outbox)
 * lowdb rewrites a whole document per write, so each document holds only state that is
 * small and mutable, and the two journaled documents take their commits as journal appends
 * (DurableDoc journal mode): a car costs one small append and one fdatasync, not a rewrite
 * of every car in the park, nor of the 5,000-car vehicle list (≈ 2 MB).
 */


export interface LotStoreOptions {
  dir: string;
  clock?: Clock;
  log?: Logger;
  historyRetentionDays?: number;
  historySegmentMaxBytes?: number;
  /** Batched state (counters, last-seen) is written at most this often. Default 60 s. */
  batchFlushMs?: number;
  /** The removal of a finished stay from inpark.json is batched within this. Default 1 s. */
  inParkFlushMs?: number;
  /** Retry period for failed writes (disk full or read-only). Default 5 s. */
  retryMs?: number;
  minFreeBytes?: number;
  /**
   * Counters restart this far past their last written value: they are batched, so a crash
   * may lose the last increments, and a number must never be issued twice. Default 1000.
   */
  counterCrashGap?: number;
  /** Payments are remembered (for idempotency on orderNo) this long. Default 90 days. */
  paymentRetentionDays?: number;
  clockFloorMs?: number;
  clockTrusted?: () => boolean;
  pruneSchedule?: string;
  cronScheduler?: CronScheduler;
  /** Whether start() schedules the daily history prune. Default true. */
  pruneJob?: boolean;
}

/** The config section (src/config/schema.ts `store`) mapped onto the options. */
export function lotStoreOptionsFromConfig(
  store: { dir: string; historyRetentionDays: number; historySegmentMaxBytes: number },
  extras: Omit<LotStoreOptions, "dir" | "historyRetentionDays" | "historySegmentMaxBytes"> = {},
): LotStoreOptions {
  return { dir: store.dir, historyRetentionDays: store.historyRetentionDays, historySegmentMaxBytes: store.historySegmentMaxBytes, ...extras };
}

export interface VehicleFilter {
  /** Substring of the plate (case-insensitive for Latin letters). */
  carNum?: string;
  carSpaceNum?: string;
  owner?: string;
  tel?: string;
  carTypeCode?: number;
  carGroupID?: number;
  carGroupUuid?: string;
  state?: 0 | 1;
  /** Last change (the platform's startTime/stopTime filter, [SIBLING] semantics). */
  updatedFromMs?: number;
  updatedToMs?: number;
}

export interface BlacklistFilter {
  carNum?: string;
  /** Entries created within the range ([SIBLING] startTime/stopTime). */
  fromMs?: number;
  toMs?: number;
  type?: 0 | 1;
}

export interface PaymentResult {
  /** The orderNo was already recorded; nothing changed. */
  duplicate: boolean;
  payment: Payment;
  /** The in-park stay the payment was applied to as a prepayment, if any. */
  appliedTo?: string;
}

export interface LotStoreStatus {
  dir: string;
  inPark: number;
  finishing: number;
  vehicles: number;
  carGroups: number;
  blacklist: number;
  payments: number;
  documents: DurableDocStatus[];
  history: ReturnType<History["status"]>;
  alarms: StoreAlarm[];
  warnings: StoreWarning[];
}


/**
 * plate → keys, built on first use and then kept up to date change by change (a rebuild per
 * change would cost O(n) per platform edit: 5 ms per car with 5,000 cars).
 */
class PlateIndex {
  private map: Map<string, Set<string>> | undefined;

  constructor(private readonly all: () => Iterable<{ key: string; plate: string }>) {}

  keys(plate: string): string[] {
    if (!this.map) {
      this.map = new Map();
      for (const { key, plate: p } of this.all()) this.add(p, key);
    }
    return [...(this.map.get(plateKey(plate)) ?? [])];
  }

  change(key: string | undefined, before: string | undefined, after: string | undefined): void {
    if (!this.map) return;
    if (key === undefined) {
      this.map = undefined;
      return;
    }
    if (before !== undefined) {
      const set = this.map.get(plateKey(before));
      set?.delete(key);
      if (set?.size === 0) this.map.delete(plateKey(before));
    }
    if (after !== undefined) this.add(after, key);
  }

  reset(): void {
    this.map = undefined;
  }

  private add(plate: string, key: string): void {
    const norm = plateKey(plate);
    const set = this.map!.get(norm);
    if (set) set.add(key);
    else this.map!.set(norm, new Set([key]));
  }
}

function newUuid(): string {
  return randomBytes(16).toString("hex").toUpperCase();
}

function contains(haystack: string, needle: string | undefined): boolean {
  return needle === undefined || needle === "" || haystack.toUpperCase().includes(needle.toUpperCase());
}

/**
 * The lot's durable state: in-park records, payments, fixed vehicles, car groups,
 * blacklist, settings and history (architecture.md §5, issue 7).
 *
 * Write discipline: a method that changes something that must survive a crash (a new stay,
 * a finished stay, a payment, a list change from the platform) resolves only after the
 * change is on disk; the lane moves the barrier after that. When the disk refuses the
 * write, the method rejects with E_STORE_HELD_IN_MEMORY: the change is kept in memory, an
 * alarm shows in `status()`, and it is written when the disk recovers; the lane may go on
 * deciding. Counters and last-seen times are batched.
 *
 * The collections (`inPark`, `payments`, `vehicles`, `carGroups`, `blacklist`) are generic
 * CRUD ports; the named methods add the domain rules (ids, uniqueness, finishing a stay).
 */
export class LotStore implements Component {
  readonly name = "store";
  readonly history: History;
  /** The last event line waiting for an in-park commit before it is appended (appendEvent). */
  private eventTail: Promise<void> | undefined;
  readonly inPark: Collection<InParkRecord, InParkRecordInput, InParkDoc>;
  readonly payments: Collection<Payment, PaymentInput, InParkDoc>;
  readonly vehicles: Collection<Vehicle, unknown, ListsDoc>;
  readonly carGroups: Collection<CarGroup, unknown, ListsDoc>;
  readonly blacklist: Collection<BlacklistEntry, unknown, ListsDoc>;
  private readonly inParkDoc: DurableDoc<InParkDoc>;
  private readonly listsDoc: DurableDoc<ListsDoc>;
  private readonly settingsDoc: DurableDoc<SettingsDoc>;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly warningList: StoreWarning[] = [];
  private historyAlarm: StoreAlarm | null = null;
  private historyRetry: TimerHandle | undefined;
  private open = false;
  private readonly inParkByPlate = new PlateIndex(() => this.inPark.values().map((r) => ({ key: r.recordNo, plate: r.plate })));
  private readonly vehiclesByPlateIndex = new PlateIndex(() => this.vehicles.values().map((v) => ({ key: v.uuId, plate: v.carNum })));
  private readonly blacklistByPlate = new PlateIndex(() => this.blacklist.values().map((b) => ({ key: b.uuid, plate: b.carNum })));
  private vehiclesById: Map<number, string> | undefined;

  constructor(private readonly options: LotStoreOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log;
    const common = {
      clock: this.clock,
      ...(options.log ? { log: options.log } : {}),
      retryMs: options.retryMs ?? 5000,
      onWarning: (w: StoreWarning) => this.warningList.push(w),
    };
    this.inParkDoc = new DurableDoc<InParkDoc>({
      ...common,
      path: join(options.dir, "inpark.json"),
      schema: inParkDocSchema,
      version: INPARK_DOC_VERSION,
      initial: () => ({ version: INPARK_DOC_VERSION, seq: 0, inPark: {}, finishing: {}, payments: {} }),
      flushIntervalMs: options.inParkFlushMs ?? 1000,
      journal: true,
    });
    this.listsDoc = new DurableDoc<ListsDoc>({
      ...common,
      path: join(options.dir, "lists.json"),
      schema: listsDocSchema,
      version: LISTS_DOC_VERSION,
      initial: () => ({ version: LISTS_DOC_VERSION, seq: 0, vehicles: {}, carGroups: {}, blacklist: {}, nextId: { vehicle: 1, carGroup: 1, blacklist: 1 } }),
      flushIntervalMs: options.batchFlushMs ?? 60_000,
      journal: true,
    });
    this.settingsDoc = new DurableDoc<SettingsDoc>({
      ...common,
      path: join(options.dir, "settings.json"),
      schema: settingsDocSchema,
      version: SETTINGS_DOC_VERSION,
      initial: () => ({ version: SETTINGS_DOC_VERSION, counters: {}, lastSeen: {}, values: {} }),
      flushIntervalMs: options.batchFlushMs ?? 60_000,
    });
    this.history = new History({
      dir: join(options.dir, "history"),
      clock: this.clock,
      ...(options.log ? { log: options.log } : {}),
      ...(options.historySegmentMaxBytes !== undefined ? { segmentMaxBytes: options.historySegmentMaxBytes } : {}),
      ...(options.historyRetentionDays !== undefined ? { retentionDays: options.historyRetentionDays } : {}),
      ...(options.clockFloorMs !== undefined ? { clockFloorMs: options.clockFloorMs } : {}),
      ...(options.clockTrusted ? { clockTrusted: options.clockTrusted } : {}),
      ...(options.pruneSchedule ? { pruneSchedule: options.pruneSchedule } : {}),
      ...(options.cronScheduler ? { scheduler: options.cronScheduler } : {}),
    });

    this.inPark = new Collection("inPark", this.inParkDoc, "inPark", inParkRecordSchema, (r) => r.recordNo, (key, before, after) =>
      this.inParkByPlate.change(key, before?.plate, after?.plate),
    );
    this.payments = new Collection("payments", this.inParkDoc, "payments", paymentSchema, (p) => p.orderNo);
    this.vehicles = new Collection<Vehicle, unknown, ListsDoc>("vehicles", this.listsDoc, "vehicles", vehicleSchema, (v) => v.uuId, (key, before, after) => {
      this.vehiclesByPlateIndex.change(key, before?.carNum, after?.carNum);
      if (!this.vehiclesById) return;
      if (key === undefined) this.vehiclesById = undefined;
      else {
        if (before) this.vehiclesById.delete(before.id);
        if (after) this.vehiclesById.set(after.id, after.uuId);
      }
    });
    this.carGroups = new Collection<CarGroup, unknown, ListsDoc>("carGroups", this.listsDoc, "carGroups", carGroupSchema, (g) => g.carGroupUuid);
    this.blacklist = new Collection<BlacklistEntry, unknown, ListsDoc>("blacklist", this.listsDoc, "blacklist", blacklistEntrySchema, (b) => b.uuid, (key, before, after) =>
      this.blacklistByPlate.change(key, before?.carNum, after?.carNum),
    );
  }

  get dir(): string {
    return this.options.dir;
  }

  /**
   * Checks the directory (missing/read-only/full → StoreError with a clear message), loads
   * the documents (falling back to previous generations with warnings), opens the history,
   * finishes stays a crash left half-moved, and schedules the history prune.
   */
  async start(): Promise<void> {
    await prepareStoreDir(this.options.dir, this.options.minFreeBytes !== undefined ? { minFreeBytes: this.options.minFreeBytes } : {});
    try {
      await this.inParkDoc.open();
      await this.listsDoc.open();
      await this.settingsDoc.open();
      await this.history.open();
    } catch (error) {
      // Release what did open (journal files), so a failed start leaves nothing running.
      for (const doc of [this.inParkDoc, this.listsDoc, this.settingsDoc]) await doc.close().catch(() => undefined);
      await this.history.close().catch(() => undefined);
      throw error;
    }
    this.open = true;
    this.inParkByPlate.reset();
    this.vehiclesByPlateIndex.reset();
    this.blacklistByPlate.reset();
    this.vehiclesById = undefined;

    // Counters are batched: skip past anything a crash may have issued but not written.
    const counters = this.settingsDoc.data.counters;
    if (Object.keys(counters).length > 0) {
      const gap = this.options.counterCrashGap ?? 1000;
      for (const name of Object.keys(counters)) counters[name] = counters[name]! + gap;
      await this.settingsDoc.commit();
    }

    // Payments are remembered for idempotency; forget old ones, but never by a wrong clock.
    const now = this.clock.now();
    if (now >= (this.options.clockFloorMs ?? DEFAULT_CLOCK_FLOOR_MS)) {
      const cutoff = now - (this.options.paymentRetentionDays ?? 90) * DAY_MS;
      let dropped = 0;
      for (const [orderNo, p] of Object.entries(this.inParkDoc.data.payments)) {
        if (p.receivedAtMs < cutoff) {
          this.inParkDoc.del("payments", orderNo);
          dropped++;
        }
      }
      if (dropped > 0) this.inParkDoc.commitLater();
    }

    const finishing = Object.values(this.inParkDoc.data.finishing);
    if (finishing.length > 0) {
      this.log?.info({ stays: finishing.length }, "moving stays finished before the last stop into history");
      await this.moveToHistory(finishing);
    }
    if (this.options.pruneJob !== false) this.history.startPruneJob();
  }

  /** Writes everything batched and closes the history. */
  async stop(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    if (this.historyRetry) this.clock.clearTimeout(this.historyRetry);
    this.historyRetry = undefined;
    await this.inParkDoc.close();
    await this.listsDoc.close();
    await this.settingsDoc.close();
    // Event lines still waiting for a commit go in before the history closes.
    await this.eventTail?.catch(() => undefined);
    await this.history.close();
  }

  // ---- in-park records ----------------------------------------------------------------

  /** A new stay; durable when it resolves. E_STORE_DUPLICATE if the recordNo is known. */
  async addInPark(record: InParkRecordInput): Promise<InParkRecord> {
    this.ensureOpen();
    if (Object.hasOwn(this.inParkDoc.data.finishing, record.recordNo)) {
      throw new StoreError(StoreErrorCode.Duplicate, `stay ${record.recordNo} already exists (finished)`);
    }
    return this.inPark.insert(record);
  }

  getInPark(recordNo: string): InParkRecord | undefined {
    return this.inPark.get(recordNo);
  }

  /** In-park stays of a plate, exact after normalisation (fuzzy matching is the lane's). */
  findInParkByPlate(plate: string): InParkRecord[] {
    return this.inParkByPlate.keys(plate).map((k) => this.inPark.get(k)).filter((r): r is InParkRecord => !!r);
  }

  listInPark(filter?: (record: InParkRecord) => boolean, page?: PageRequest): Page<InParkRecord> {
    return this.inPark.list(filter, page);
  }

  inParkCount(): number {
    return this.inPark.count();
  }

  /** Changes fields of an in-park record (entry report state, pending exit, ...). */
  updateInPark(recordNo: string, patch: Partial<InParkRecord>, options: WriteOptions = {}): Promise<InParkRecord> {
    this.ensureOpen();
    return this.inPark.patch(recordNo, patch, options);
  }

  /**
   * Ends a stay: it leaves the in-park records and goes to history. Resolves once the end is
   * durable (the exit decision will not be lost). Steps, so that a crash at any point is
   * recovered at the next start without scanning history:
   *   1. move the record to `finishing` in inpark.json, durably (this is the commit point);
   *   2. append the stay to history, durably;
   *   3. drop it from `finishing` (batched; a crash before this re-appends it at start,
   *      so history readers de-duplicate by recordNo).
   * A history failure after step 1 raises an alarm and is retried; the exit stays durable.
   */
  async finishStay(recordNo: string, exit: ExitInfoInput): Promise<FinishedStay> {
    this.ensureOpen();
    const data = this.inParkDoc.data;
    let stay = data.finishing[recordNo];
    if (!stay) {
      const record = data.inPark[recordNo];
      if (!record) throw new StoreError(StoreErrorCode.NotFound, `no in-park stay ${recordNo}`);
      const parsedExit = exitInfoSchema.safeParse(exit);
      if (!parsedExit.success) {
        throw new StoreError(StoreErrorCode.Invalid, `exit of ${recordNo}: ${parsedExit.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      }
      stay = finishedStaySchema.parse({ ...record, exit: parsedExit.data, finishedAtMs: this.clock.now() });
      this.inParkDoc.del("inPark", recordNo);
      this.inParkDoc.set("finishing", recordNo, stay);
      this.inParkByPlate.change(recordNo, record.plate, undefined);
      await this.inParkDoc.commit();
    }
    await this.moveToHistory([stay]);
    return stay;
  }

  /** A stay that never happened (the car backed out): ends it with reason "cancelled". */
  cancelStay(recordNo: string, details: { reason?: string; operator?: string; atMs?: number } = {}): Promise<FinishedStay> {
    const record = this.inPark.get(recordNo);
    return this.finishStay(recordNo, {
      laneId: record?.laneId ?? "",
      leaveAtMs: details.atMs ?? this.clock.now(),
      reason: details.reason ?? "cancelled",
      ...(details.operator !== undefined ? { operator: details.operator } : {}),
    });
  }

  /** Grants a coupon to an in-park stay; idempotent on couponId. */
  async addCoupon(recordNo: string, coupon: Omit<Coupon, "grantedAtMs"> & { grantedAtMs?: number }): Promise<InParkRecord> {
    this.ensureOpen();
    const record = this.inPark.get(recordNo);
    if (!record) throw new StoreError(StoreErrorCode.NotFound, `no in-park stay ${recordNo}`);
    if (record.coupons.some((c) => c.couponId === coupon.couponId)) return record;
    const parsed = couponSchema.safeParse({ grantedAtMs: this.clock.now(), ...coupon });
    if (!parsed.success) throw new StoreError(StoreErrorCode.Invalid, `coupon: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    return this.inPark.patch(recordNo, { coupons: [...record.coupons, parsed.data] });
  }

  /**
   * Records a payment; idempotent on `orderNo` (a repeated notice changes nothing and says
   * so). When it names an in-park stay (recordNo, else the only stay of its plate) it is
   * also added to that stay's prepayments, in the same durable write. Reply 200 to the
   * platform only after this resolves (platform-api.md §4.2).
   */
  async recordPayment(input: Omit<PaymentInput, "receivedAtMs"> & { receivedAtMs?: number }): Promise<PaymentResult> {
    this.ensureOpen();
    const existing = this.payments.get(input.orderNo);
    if (existing) return { duplicate: true, payment: existing };
    const payment = this.payments.parse({ receivedAtMs: this.clock.now(), ...input });
    let stay: InParkRecord | undefined;
    if (payment.recordNo) stay = this.inPark.get(payment.recordNo);
    else if (payment.plate) {
      const stays = this.findInParkByPlate(payment.plate);
      if (stays.length === 1) stay = stays[0];
    }
    this.inParkDoc.set("payments", payment.orderNo, payment);
    if (stay && !stay.prepayments.some((p) => p.orderNo === payment.orderNo)) {
      this.inParkDoc.set("inPark", stay.recordNo, {
        ...stay,
        prepayments: [
          ...stay.prepayments,
          {
            orderNo: payment.orderNo,
            amountFen: payment.amountFen,
            payAtMs: payment.payAtMs,
            ...(payment.payType !== undefined ? { payType: payment.payType } : {}),
            ...(payment.payChannel !== undefined ? { payChannel: payment.payChannel } : {}),
          },
        ],
      });
    }
    await this.inParkDoc.commit();
    return { duplicate: false, payment, ...(stay ? { appliedTo: stay.recordNo } : {}) };
  }

  /** Finished stays of a plate, newest first, from the newest history segments (bounded). */
  async recentStays(plate: string, options: { limit?: number; maxSegments?: number; sinceMs?: number } = {}): Promise<FinishedStay[]> {
    const limit = options.limit ?? 20;
    // Stay lines only: the plate's event lines are newer and would use up the limit.
    const lines = await this.history.recentByPlate(plate, {
      kind: "stay",
      limit: limit * 2,
      ...(options.maxSegments !== undefined ? { maxSegments: options.maxSegments } : {}),
      ...(options.sinceMs !== undefined ? { sinceMs: options.sinceMs } : {}),
    });
    return dedupeStays(lines).slice(0, limit);
  }

  /** The newest finished stays (any plate), newest first. */
  async recentFinished(limit = 50): Promise<FinishedStay[]> {
    const lines = await this.history.recent((l) => l.t === "stay", { limit: limit * 2, prefilter: '"t":"stay"' });
    return dedupeStays(lines).slice(0, limit);
  }

  /** An event for the history (not fsynced on its own; the next durable append covers it). */
  async appendEvent(event: { type: string; laneId?: string; plate?: string; recordNo?: string; [key: string]: unknown }): Promise<void> {
    this.ensureOpen();
    const { type, ...rest } = event;
    const atMs = this.clock.now();
    // After the in-park commits in flight: an event line is not durable, and its write beside
    // a decision's fsync would only slow that fsync (one car waits on it, nobody on the line).
    // A line that comes while earlier ones wait queues behind them: the history keeps order.
    const commits = this.inParkDoc.commitsInFlight();
    const before = this.eventTail;
    if (!commits && !before) return this.history.append({ t: "event", atMs, type, ...rest }, false);
    const line = (async () => {
      await before?.catch(() => undefined);
      if (commits) {
        await commits;
        // and after what the commit's waiters do next (a relay to write).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await this.history.append({ t: "event", atMs, type, ...rest }, false);
    })();
    this.eventTail = line;
    const done = () => {
      if (this.eventTail === line) this.eventTail = undefined;
    };
    line.then(done, done);
    return line;
  }

  // ---- fixed vehicles -----------------------------------------------------------------

  /**
   * Adds or replaces a fixed vehicle (addCar / editCar). An existing vehicle is found by
   * `uuId`, then by `id`; the replacement is whole (editCar semantics: absent fields take
   * their defaults). A new one gets the next id and, without a uuId, a generated one.
   * E_STORE_DUPLICATE when another vehicle already has the plate (lane decisions by plate
   * must be unambiguous).
   */
  async upsertVehicle(input: VehicleInput): Promise<Vehicle> {
    this.ensureOpen();
    const existing = this.getVehicle({ ...(input.uuId ? { uuId: input.uuId } : {}), ...(input.id ? { id: input.id } : {}) });
    const now = this.clock.now();
    const lists = this.listsDoc.data;
    const id = existing?.id ?? (input.id && input.id > 0 ? input.id : lists.nextId.vehicle);
    const uuId = existing?.uuId ?? (input.uuId || newUuid());
    const vehicle = this.vehicles.parse({ ...input, id, uuId, createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now });
    const samePlate = this.vehiclesByPlate(vehicle.carNum).filter((v) => v.uuId !== uuId);
    if (samePlate.length > 0) {
      throw new StoreError(StoreErrorCode.Duplicate, `plate ${vehicle.carNum} is already registered (uuId ${samePlate[0]!.uuId})`);
    }
    if (id >= lists.nextId.vehicle) this.listsDoc.set("nextId", "vehicle", id + 1);
    return this.vehicles.put(vehicle);
  }

  getVehicle(key: { uuId?: string; id?: number }): Vehicle | undefined {
    if (key.uuId) {
      const v = this.vehicles.get(key.uuId);
      if (v) return v;
    }
    if (key.id !== undefined && key.id > 0) return this.findVehicleById(key.id);
    return undefined;
  }

  /** Registered vehicles with this plate (normalised); normally zero or one. */
  vehiclesByPlate(plate: string): Vehicle[] {
    return this.vehiclesByPlateIndex.keys(plate).map((k) => this.vehicles.get(k)).filter((v): v is Vehicle => !!v);
  }

  async deleteVehicle(key: { uuId?: string; id?: number }): Promise<boolean> {
    this.ensureOpen();
    const vehicle = this.getVehicle(key);
    if (!vehicle) return false;
    return this.vehicles.delete(vehicle.uuId);
  }

  listVehicles(filter: VehicleFilter = {}, page?: PageRequest): Page<Vehicle> {
    return this.vehicles.list(
      (v) =>
        plateMatchesSearch(v.carNum, filter.carNum) &&
        contains(v.carSpaceNum, filter.carSpaceNum) &&
        contains(v.owner, filter.owner) &&
        contains(v.tel, filter.tel) &&
        (filter.carTypeCode === undefined || v.carTypeCode === filter.carTypeCode) &&
        (filter.carGroupID === undefined || v.carGroupID === filter.carGroupID) &&
        (filter.carGroupUuid === undefined || v.carGroupUuid === filter.carGroupUuid) &&
        (filter.state === undefined || v.state === filter.state) &&
        (filter.updatedFromMs === undefined || v.updatedAtMs >= filter.updatedFromMs) &&
        (filter.updatedToMs === undefined || v.updatedAtMs <= filter.updatedToMs),
      page,
    );
  }

  /** "Clear all vehicles" (platform 4.11.9): destructive, logged. Returns how many. */
  async clearVehicles(): Promise<number> {
    this.ensureOpen();
    const count = await this.vehicles.clear();
    this.log?.warn({ count }, "all fixed vehicles cleared");
    return count;
  }

  // ---- car groups ---------------------------------------------------------------------

  /** Adds or replaces a car group, found by carGroupUuid then carGroupID. */
  async upsertCarGroup(input: CarGroupInput): Promise<CarGroup> {
    this.ensureOpen();
    const existing = this.getCarGroup({
      ...(input.carGroupUuid ? { carGroupUuid: input.carGroupUuid } : {}),
      ...(input.carGroupID ? { carGroupID: input.carGroupID } : {}),
    });
    const lists = this.listsDoc.data;
    const now = this.clock.now();
    const carGroupID = existing?.carGroupID ?? (input.carGroupID && input.carGroupID > 0 ? input.carGroupID : lists.nextId.carGroup);
    const carGroupUuid = existing?.carGroupUuid ?? (input.carGroupUuid || newUuid());
    const group = this.carGroups.parse({ ...input, carGroupID, carGroupUuid, createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now });
    if (carGroupID >= lists.nextId.carGroup) this.listsDoc.set("nextId", "carGroup", carGroupID + 1);
    return this.carGroups.put(group);
  }

  getCarGroup(key: { carGroupUuid?: string; carGroupID?: number }): CarGroup | undefined {
    if (key.carGroupUuid) {
      const g = this.carGroups.get(key.carGroupUuid);
      if (g) return g;
    }
    if (key.carGroupID !== undefined && key.carGroupID > 0) return this.carGroups.find((g) => g.carGroupID === key.carGroupID);
    return undefined;
  }

  async deleteCarGroup(key: { carGroupUuid?: string; carGroupID?: number }): Promise<boolean> {
    this.ensureOpen();
    const group = this.getCarGroup(key);
    return group ? this.carGroups.delete(group.carGroupUuid) : false;
  }

  listCarGroups(page?: PageRequest): Page<CarGroup> {
    return this.carGroups.list(undefined, page);
  }

  // ---- blacklist ----------------------------------------------------------------------

  /** Adds or replaces a blacklist entry (found by uuid, then id). */
  async addBlacklist(input: BlacklistInput): Promise<BlacklistEntry> {
    this.ensureOpen();
    const existing =
      (input.uuid ? this.blacklist.get(input.uuid) : undefined) ??
      (input.id && input.id > 0 ? this.blacklist.find((b) => b.id === input.id) : undefined);
    const lists = this.listsDoc.data;
    const now = this.clock.now();
    const id = existing?.id ?? (input.id && input.id > 0 ? input.id : lists.nextId.blacklist);
    const uuid = existing?.uuid ?? (input.uuid || newUuid());
    const entry = this.blacklist.parse({ ...input, id, uuid, createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now });
    if (id >= lists.nextId.blacklist) this.listsDoc.set("nextId", "blacklist", id + 1);
    return this.blacklist.put(entry);
  }

  /** Removes entries by uuid, id or plate; returns how many were removed. */
  async deleteBlacklist(key: { uuid?: string; id?: number; carNum?: string }): Promise<number> {
    this.ensureOpen();
    const plate = key.carNum !== undefined ? plateKey(key.carNum) : undefined;
    const doomed = this.blacklist.values().filter(
      (b) => (key.uuid !== undefined && b.uuid === key.uuid) || (key.id !== undefined && b.id === key.id) || (plate !== undefined && plateKey(b.carNum) === plate),
    );
    if (doomed.length === 0) return 0;
    for (const b of doomed) {
      this.listsDoc.del("blacklist", b.uuid);
      this.blacklistByPlate.change(b.uuid, b.carNum, undefined);
    }
    await this.listsDoc.commit();
    return doomed.length;
  }

  /** [SIBLING] query: page/pageSize ≤ 0 returns everything. */
  listBlacklist(filter: BlacklistFilter = {}, page?: PageRequest): Page<BlacklistEntry> {
    return this.blacklist.list(
      (b) =>
        plateMatchesSearch(b.carNum, filter.carNum) &&
        (filter.type === undefined || b.type === filter.type) &&
        (filter.fromMs === undefined || b.createdAtMs >= filter.fromMs) &&
        (filter.toMs === undefined || b.createdAtMs <= filter.toMs),
      page,
    );
  }

  /** Entries for this plate that are in force at `atMs` (untilMs null or later). */
  blacklistFor(plate: string, atMs: number = this.clock.now()): BlacklistEntry[] {
    return this.blacklistByPlate
      .keys(plate)
      .map((k) => this.blacklist.get(k))
      .filter((b): b is BlacklistEntry => !!b && (b.untilMs === null || b.untilMs > atMs));
  }

  // ---- batched settings ---------------------------------------------------------------

  /**
   * The next value of a named counter (starts at 1). Batched: never reissued after a crash
   * because start() skips `counterCrashGap` ahead.
   */
  nextCounter(name: string): number {
    this.ensureOpen();
    const counters = this.settingsDoc.data.counters;
    const value = (counters[name] ?? 0) + 1;
    counters[name] = value;
    this.settingsDoc.markDirty();
    return value;
  }

  setLastSeen(key: string, atMs: number = this.clock.now()): void {
    this.ensureOpen();
    this.settingsDoc.data.lastSeen[key] = atMs;
    this.settingsDoc.markDirty();
  }

  lastSeen(key: string): number | undefined {
    return this.settingsDoc.data.lastSeen[key];
  }

  getSetting<T = unknown>(key: string): T | undefined {
    return this.settingsDoc.data.values[key] as T | undefined;
  }

  /** A small setting; batched unless `durable`. The value must be JSON. */
  async setSetting(key: string, value: unknown, options: WriteOptions = { durable: false }): Promise<void> {
    this.ensureOpen();
    this.settingsDoc.data.values[key] = structuredClone(value);
    if (options.durable === false) this.settingsDoc.markDirty();
    else await this.settingsDoc.commit();
  }

  /**
   * Rewrites the journaled documents whole now (normally done when their journals grow):
   * before a backup, or to test the snapshot path.
   */
  async compact(): Promise<void> {
    await this.inParkDoc.flush();
    await this.listsDoc.flush();
    await Promise.all([this.inParkDoc.snapshot(), this.listsDoc.snapshot()]);
  }

  /** Writes every batched change now. */
  async flush(): Promise<void> {
    await Promise.all([this.inParkDoc.flush(), this.listsDoc.flush(), this.settingsDoc.flush(), this.history.sync()]);
  }

  // ---- status -------------------------------------------------------------------------

  alarms(): StoreAlarm[] {
    return [this.inParkDoc.alarm(), this.listsDoc.alarm(), this.settingsDoc.alarm(), this.historyAlarm].filter((a): a is StoreAlarm => a !== null);
  }

  warnings(): StoreWarning[] {
    return [...this.warningList, ...this.history.warnings()];
  }

  status(): LotStoreStatus {
    return {
      dir: this.options.dir,
      inPark: this.inPark.count(),
      finishing: Object.keys(this.inParkDoc.data.finishing).length,
      vehicles: this.vehicles.count(),
      carGroups: this.carGroups.count(),
      blacklist: this.blacklist.count(),
      payments: this.payments.count(),
      documents: [this.inParkDoc.status(), this.listsDoc.status(), this.settingsDoc.status()],
      history: this.history.status(),
      alarms: this.alarms(),
      warnings: this.warnings(),
    };
  }

  // ---- internals ----------------------------------------------------------------------

  private ensureOpen(): void {
    if (!this.open) throw new StoreError(StoreErrorCode.Closed, "the store is not started", this.options.dir);
  }

  private findVehicleById(id: number): Vehicle | undefined {
    if (!this.vehiclesById) {
      this.vehiclesById = new Map(this.vehicles.values().map((v) => [v.id, v.uuId]));
    }
    const uuId = this.vehiclesById.get(id);
    return uuId === undefined ? undefined : this.vehicles.get(uuId);
  }

  private async moveToHistory(stays: FinishedStay[]): Promise<void> {
    const lines: HistoryLine[] = stays.map((stay) => ({ t: "stay", atMs: stay.exit.leaveAtMs, recordNo: stay.recordNo, plate: stay.plate, stay }));
    try {
      await this.history.appendMany(lines, true);
    } catch (error) {
      const cause = storeErrorFromFs(error, this.history.dir, "appending finished stays");
      if (!this.historyAlarm) {
        this.historyAlarm = { code: cause.code, message: `${cause.message}; finished stays are kept in inpark.json until history accepts them`, sinceMs: this.clock.now() };
        this.log?.error({ err: cause }, "history append failed; retrying");
      }
      this.scheduleHistoryRetry();
      return;
    }
    if (this.historyAlarm) {
      this.log?.info("history appends recovered");
      this.historyAlarm = null;
    }
    for (const stay of stays) this.inParkDoc.del("finishing", stay.recordNo);
    this.inParkDoc.commitLater();
  }

  private scheduleHistoryRetry(): void {
    if (this.historyRetry || !this.open) return;
    this.historyRetry = this.clock.setTimeout(() => {
      this.historyRetry = undefined;
      const pending = Object.values(this.inParkDoc.data.finishing);
      if (pending.length > 0) void this.moveToHistory(pending);
    }, this.options.retryMs ?? 5000);
  }
}

function dedupeStays(lines: readonly HistoryLine[]): FinishedStay[] {
  const seen = new Set<string>();
  const out: FinishedStay[] = [];
  for (const line of lines) {
    if (line.t !== "stay" || typeof line.recordNo !== "string" || seen.has(line.recordNo)) continue;
    const parsed = finishedStaySchema.safeParse(line.stay);
    if (!parsed.success) continue;
    seen.add(line.recordNo);
    out.push(parsed.data);
  }
  return out;
}

export { paginate };
export type { Page, PageRequest, WriteOptions };
