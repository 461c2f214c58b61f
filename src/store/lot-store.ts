import { join } from "node:path";
import { systemClock, type Clock } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import { type Collection, type Page, type PageRequest, type WriteOptions } from "./collection.js";
import type { DurableDocStatus } from "./durable-doc.js";
import { StoreError, StoreErrorCode, type StoreAlarm, type StoreWarning } from "./errors.js";
import { History, type CronScheduler } from "./history.js";
import { Lists, type BlacklistFilter, type ListChange, type ListEntryFromLot, type VehicleFilter } from "./lists.js";
import type {
  BlacklistEntry,
  BlacklistInput,
  CarGroup,
  CarGroupInput,
  Coupon,
  ExitInfoInput,
  FinishedStay,
  InParkDoc,
  InParkRecord,
  InParkRecordInput,
  ListsDoc,
  Payment,
  PaymentInput,
  Vehicle,
  VehicleInput,
} from "./records.js";
import { Settings } from "./settings.js";
import { Stays, type InParkChange, type PaymentResult } from "./stays.js";
import { prepareStoreDir } from "./store-dir.js";
import type { StorePart } from "./store-part.js";

/*
 * What lives where (docs/architecture.md "Store and write discipline"), and which part of
 * the store keeps it:
 *   <dir>/inpark.json (+ .prev, + .journal.NNNNNN)  stays.ts: in-park records, stays being
 *                                                  finished, payments received
 *   <dir>/lists.json  (+ .prev, + .journal.NNNNNN)  lists.ts: fixed vehicles, car groups, blacklist
 *   <dir>/settings.json (+ .prev)                   settings.ts: counters, last-seen times (batched)
 *   <dir>/history/                                  history.ts: finished stays and events (JSON lines)
 *   <dir>/outbox.journal                            the outbox (src/outbox)
 * lowdb rewrites a whole document per write, so each document holds only state that is
 * small and mutable, and the two journaled documents take their commits as journal appends
 * (DurableDoc journal mode): a car costs one small append and one fdatasync, not a rewrite
 * of every car in the park, nor of the 5,000-car vehicle list (≈ 2 MB).
 *
 * LotStore is the one face of these parts: it opens and closes them together, and every
 * caller (lanes, platform handlers, the local API) goes through its methods.
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
  /** Told of every durable commit of a document, with its wall time (the commit latency metric). */
  onCommit?: (file: string, elapsedMs: number, ok: boolean) => void;
}

/** The config section (src/config/schema.ts `store`) mapped onto the options. */
export function lotStoreOptionsFromConfig(
  store: { dir: string; historyRetentionDays: number; historySegmentMaxBytes: number },
  extras: Omit<LotStoreOptions, "dir" | "historyRetentionDays" | "historySegmentMaxBytes"> = {},
): LotStoreOptions {
  return { dir: store.dir, historyRetentionDays: store.historyRetentionDays, historySegmentMaxBytes: store.historySegmentMaxBytes, ...extras };
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
 * The lot's durable state: in-park records, payments, fixed vehicles, car groups,
 * blacklist, settings and history (docs/architecture.md "Store and write discipline").
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
  readonly inPark: Collection<InParkRecord, InParkRecordInput, InParkDoc>;
  readonly payments: Collection<Payment, PaymentInput, InParkDoc>;
  readonly vehicles: Collection<Vehicle, unknown, ListsDoc>;
  readonly carGroups: Collection<CarGroup, unknown, ListsDoc>;
  readonly blacklist: Collection<BlacklistEntry, unknown, ListsDoc>;
  private readonly stays: Stays;
  private readonly lists: Lists;
  private readonly settings: Settings;
  private readonly clock: Clock;
  private readonly warningList: StoreWarning[] = [];
  private open = false;
  private indexesWarm: Promise<void> = Promise.resolve();

  constructor(private readonly options: LotStoreOptions) {
    this.clock = options.clock ?? systemClock;
    const part: StorePart = {
      dir: options.dir,
      clock: this.clock,
      log: options.log,
      ensureOpen: () => this.ensureOpen(),
      isOpen: () => this.open,
      docOptions: {
        clock: this.clock,
        ...(options.log ? { log: options.log } : {}),
        retryMs: options.retryMs ?? 5000,
        onWarning: (w: StoreWarning) => this.warningList.push(w),
        ...(options.onCommit ? { onCommit: options.onCommit } : {}),
      },
    };
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
    this.stays = new Stays(part, this.history, {
      ...(options.inParkFlushMs !== undefined ? { inParkFlushMs: options.inParkFlushMs } : {}),
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
      ...(options.paymentRetentionDays !== undefined ? { paymentRetentionDays: options.paymentRetentionDays } : {}),
      ...(options.clockFloorMs !== undefined ? { clockFloorMs: options.clockFloorMs } : {}),
    });
    const batch = options.batchFlushMs !== undefined ? { batchFlushMs: options.batchFlushMs } : {};
    this.lists = new Lists(part, batch);
    this.settings = new Settings(part, { ...batch, ...(options.counterCrashGap !== undefined ? { counterCrashGap: options.counterCrashGap } : {}) });
    this.inPark = this.stays.inPark;
    this.payments = this.stays.payments;
    this.vehicles = this.lists.vehicles;
    this.carGroups = this.lists.carGroups;
    this.blacklist = this.lists.blacklist;
  }

  get dir(): string {
    return this.options.dir;
  }

  /** The three documents, in the order they open, write and report. */
  private get docs() {
    return [this.stays.doc, this.lists.doc, this.settings.doc] as const;
  }

  /**
   * Checks the directory (missing/read-only/full → StoreError with a clear message), loads
   * the documents (falling back to previous generations with warnings), opens the history,
   * finishes stays a crash left half-moved, and schedules the history prune.
   */
  async start(): Promise<void> {
    await prepareStoreDir(this.options.dir, this.options.minFreeBytes !== undefined ? { minFreeBytes: this.options.minFreeBytes } : {});
    try {
      for (const doc of this.docs) await doc.open();
      await this.history.open();
    } catch (error) {
      // Release what did open (journal files), so a failed start leaves nothing running; the
      // start error below is the one that matters.
      for (const doc of this.docs) await doc.close().catch(() => undefined);
      // The history too: nothing was appended yet, so its close has nothing to lose.
      await this.history.close().catch(() => undefined);
      throw error;
    }
    this.open = true;
    this.lists.resetIndexes();
    await this.settings.recover();
    await this.stays.recover();
    // The plate indexes are built now, a slice at a time, rather than by the first lane
    // lookup or list change (with 5,000 vehicles that was one 11–17 ms stall here).
    this.indexesWarm = Promise.all([this.lists.warmIndexes(), this.stays.warmIndexes()]).then(() => undefined);
    if (this.options.pruneJob !== false) {
      this.history.startPruneJob().catch((error: unknown) => this.options.log?.error({ err: error }, "history prune job not scheduled"));
    }
  }

  /** Resolves once the plate indexes the start began building are complete. */
  whenIndexesWarm(): Promise<void> {
    return this.indexesWarm;
  }

  /** Writes everything batched and closes the history. */
  async stop(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.stays.close();
    await this.lists.doc.close();
    await this.settings.doc.close();
    // Event lines still waiting for a commit go in before the history closes.
    await this.stays.eventsWritten();
    await this.history.close();
  }

  // ---- in-park records (stays.ts) -----------------------------------------------------

  /** A new stay; durable when it resolves. E_STORE_DUPLICATE if the recordNo is known. */
  addInPark(record: InParkRecordInput): Promise<InParkRecord> {
    return this.stays.add(record);
  }

  getInPark(recordNo: string): InParkRecord | undefined {
    return this.inPark.get(recordNo);
  }

  /** In-park stays of a plate, exact after normalisation (fuzzy matching is the lane's). */
  findInParkByPlate(plate: string): InParkRecord[] {
    return this.stays.findByPlate(plate);
  }

  listInPark(filter?: (record: InParkRecord) => boolean, page?: PageRequest): Page<InParkRecord> {
    return this.stays.list(filter, page);
  }

  inParkCount(): number {
    return this.inPark.count();
  }

  /** Changes fields of an in-park record (entry report state, pending exit, ...). */
  updateInPark(recordNo: string, patch: Partial<InParkRecord>, options: WriteOptions = {}): Promise<InParkRecord> {
    return this.stays.update(recordNo, patch, options);
  }

  /** Ends a stay: durable in inpark.json, then in history (see Stays.finish for the steps). */
  finishStay(recordNo: string, exit: ExitInfoInput): Promise<FinishedStay> {
    return this.stays.finish(recordNo, exit);
  }

  /** A stay that never happened (the car backed out): ends it with reason "cancelled". */
  cancelStay(recordNo: string, details: { reason?: string; operator?: string; atMs?: number } = {}): Promise<FinishedStay> {
    return this.stays.cancel(recordNo, details);
  }

  /** Grants a coupon to an in-park stay; idempotent on couponId. */
  addCoupon(recordNo: string, coupon: Omit<Coupon, "grantedAtMs"> & { grantedAtMs?: number }): Promise<InParkRecord> {
    return this.stays.addCoupon(recordNo, coupon);
  }

  /**
   * Records a payment; idempotent on `orderNo`, applied to the stay it names in the same
   * durable write. Reply 200 to the platform only after this resolves (docs/protocol.md §4.2).
   */
  recordPayment(input: Omit<PaymentInput, "receivedAtMs"> & { receivedAtMs?: number }): Promise<PaymentResult> {
    return this.stays.recordPayment(input);
  }

  /** Finished stays of a plate, newest first, from the newest history segments (bounded). */
  recentStays(plate: string, options: { limit?: number; maxSegments?: number; sinceMs?: number } = {}): Promise<FinishedStay[]> {
    return this.stays.recentStays(plate, options);
  }

  /** The newest finished stays (any plate), newest first. */
  recentFinished(limit = 50): Promise<FinishedStay[]> {
    return this.stays.recentFinished(limit);
  }

  /** An event for the history (not fsynced on its own; the next durable append covers it). */
  appendEvent(event: { type: string; laneId?: string; plate?: string; recordNo?: string; [key: string]: unknown }): Promise<void> {
    return this.stays.appendEvent(event);
  }

  /**
   * Listens to changes of the in-park set, each told after its commit, with its source
   * ("local" or "lot": see InParkChange). Returns the unsubscribe function.
   */
  onInParkChange(listener: (change: InParkChange) => void): () => void {
    return this.stays.onChange(listener);
  }

  /** Writes another box's version of a stay here (lot sharing); durable, never reported. */
  upsertReplica(record: InParkRecord, replicaOf: NonNullable<InParkRecord["replicaOf"]>): Promise<InParkRecord> {
    return this.stays.upsertReplica(record, replicaOf);
  }

  /** Removes a stay another box finished; durable, no history line, never reported. */
  removeReplica(recordNo: string): Promise<boolean> {
    return this.stays.removeReplica(recordNo);
  }

  // ---- fixed vehicles, car groups, blacklist (lists.ts) --------------------------------

  /** Adds or replaces a fixed vehicle (addCar / editCar); E_STORE_DUPLICATE for a registered plate. */
  upsertVehicle(input: VehicleInput): Promise<Vehicle> {
    return this.lists.upsertVehicle(input);
  }

  getVehicle(key: { uuId?: string; id?: number }): Vehicle | undefined {
    return this.lists.getVehicle(key);
  }

  /** Registered vehicles with this plate (normalised); normally zero or one. */
  vehiclesByPlate(plate: string): Vehicle[] {
    return this.lists.vehiclesByPlate(plate);
  }

  deleteVehicle(key: { uuId?: string; id?: number }): Promise<boolean> {
    return this.lists.deleteVehicle(key);
  }

  listVehicles(filter: VehicleFilter = {}, page?: PageRequest): Page<Vehicle> {
    return this.lists.listVehicles(filter, page);
  }

  /** "Clear all vehicles" (platform 4.11.9): destructive, logged. Returns how many. */
  clearVehicles(): Promise<number> {
    return this.lists.clearVehicles();
  }

  /** Adds or replaces a car group, found by carGroupUuid then carGroupID. */
  upsertCarGroup(input: CarGroupInput): Promise<CarGroup> {
    return this.lists.upsertCarGroup(input);
  }

  getCarGroup(key: { carGroupUuid?: string; carGroupID?: number }): CarGroup | undefined {
    return this.lists.getCarGroup(key);
  }

  deleteCarGroup(key: { carGroupUuid?: string; carGroupID?: number }): Promise<boolean> {
    return this.lists.deleteCarGroup(key);
  }

  listCarGroups(page?: PageRequest): Page<CarGroup> {
    return this.lists.listCarGroups(page);
  }

  /** Adds or replaces a blacklist entry (found by uuid, then id). */
  addBlacklist(input: BlacklistInput): Promise<BlacklistEntry> {
    return this.lists.addBlacklist(input);
  }

  /** Removes entries by uuid, id or plate; returns how many were removed. */
  deleteBlacklist(key: { uuid?: string; id?: number; carNum?: string }): Promise<number> {
    return this.lists.deleteBlacklist(key);
  }

  /** [SIBLING] query: page/pageSize ≤ 0 returns everything. */
  listBlacklist(filter: BlacklistFilter = {}, page?: PageRequest): Page<BlacklistEntry> {
    return this.lists.listBlacklist(filter, page);
  }

  /** Entries for this plate that are in force at `atMs` (untilMs null or later). */
  blacklistFor(plate: string, atMs: number = this.clock.now()): BlacklistEntry[] {
    return this.lists.blacklistFor(plate, atMs);
  }

  /**
   * Listens to changes of the lists (vehicles, car groups, blacklist), each told after its
   * commit with its source ("local" or "lot"). Returns the unsubscribe function.
   */
  onListChange(listener: (change: ListChange) => void): () => void {
    return this.lists.onChange(listener);
  }

  /** Writes other boxes' versions of list entries (or their removals) here, in one durable commit, never published again; how many changed. */
  applyListsFromLot(changes: readonly ListEntryFromLot[]): Promise<number> {
    return this.lists.applyFromLot(changes);
  }

  // ---- batched settings (settings.ts) -------------------------------------------------

  /** The next value of a named counter (starts at 1); never reissued after a crash. */
  nextCounter(name: string): number {
    return this.settings.nextCounter(name);
  }

  setLastSeen(key: string, atMs: number = this.clock.now()): void {
    this.settings.setLastSeen(key, atMs);
  }

  lastSeen(key: string): number | undefined {
    return this.settings.lastSeen(key);
  }

  getSetting<T = unknown>(key: string): T | undefined {
    return this.settings.getSetting<T>(key);
  }

  /** A small setting; batched unless `durable`. The value must be JSON. */
  setSetting(key: string, value: unknown, options: WriteOptions = { durable: false }): Promise<void> {
    return this.settings.setSetting(key, value, options);
  }

  // ---- the documents together ---------------------------------------------------------

  /**
   * Rewrites the journaled documents whole now (normally done when their journals grow):
   * before a backup, or to test the snapshot path.
   */
  async compact(): Promise<void> {
    await this.stays.doc.flush();
    await this.lists.doc.flush();
    await Promise.all([this.stays.doc.snapshot(), this.lists.doc.snapshot()]);
  }

  /** Writes every batched change now. */
  async flush(): Promise<void> {
    await Promise.all([...this.docs.map((doc) => doc.flush()), this.history.sync()]);
  }

  alarms(): StoreAlarm[] {
    return [...this.docs.map((doc) => doc.alarm()), this.stays.alarm()].filter((a): a is StoreAlarm => a !== null);
  }

  warnings(): StoreWarning[] {
    return [...this.warningList, ...this.history.warnings()];
  }

  status(): LotStoreStatus {
    return {
      dir: this.options.dir,
      inPark: this.inPark.count(),
      finishing: this.stays.finishingCount(),
      vehicles: this.vehicles.count(),
      carGroups: this.carGroups.count(),
      blacklist: this.blacklist.count(),
      payments: this.payments.count(),
      documents: this.docs.map((doc) => doc.status()),
      history: this.history.status(),
      alarms: this.alarms(),
      warnings: this.warnings(),
    };
  }

  private ensureOpen(): void {
    if (!this.open) throw new StoreError(StoreErrorCode.Closed, "the store is not started", this.options.dir);
  }
}

export type { BlacklistFilter, InParkChange, ListChange, ListEntryFromLot, Page, PageRequest, PaymentResult, VehicleFilter, WriteOptions };
