import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { plateKey, plateMatchesSearch } from "../core/plates/index.js";
import { Collection, type Page, type PageRequest, type WriteOptions } from "./collection.js";
import { DurableDoc } from "./durable-doc.js";
import { StoreError, StoreErrorCode } from "./errors.js";
import { ChangeNotices, type ChangeSource } from "./change-notices.js";
import { PlateIndex } from "./plate-index.js";
import {
  LISTS_DOC_VERSION,
  blacklistEntrySchema,
  carGroupSchema,
  listsDocSchema,
  vehicleSchema,
  type BlacklistEntry,
  type BlacklistInput,
  type CarGroup,
  type CarGroupInput,
  type ListsDoc,
  type Vehicle,
  type VehicleInput,
} from "./records.js";
import type { StorePart } from "./store-part.js";

/*
 * The lists: `lists.json` (fixed vehicles, car groups, blacklist), changed by platform
 * commands and read by the lanes on every car. Each change is durable before the method
 * resolves (the platform gets its `200` after that), and told to the change listeners after
 * its commit (the lot shares the lists: docs/mqtt.md "Lists shared by the lot").
 */

/** The three lists, by their names in `lists.json`. */
export type ListName = "vehicles" | "carGroups" | "blacklist";

/**
 * A change of one list entry, told after its write was committed: the entry as it is now
 * (undefined: removed). `source` is "local" (the platform, the local API, provisioning at
 * this box) or "lot" (another box's version applied with applyFromLot), as for stays.
 */
export type ListChange =
  | { list: "vehicles"; key: string; source: ListChangeSource; entry: Vehicle | undefined }
  | { list: "carGroups"; key: string; source: ListChangeSource; entry: CarGroup | undefined }
  | { list: "blacklist"; key: string; source: ListChangeSource; entry: BlacklistEntry | undefined };
export type ListChangeSource = ChangeSource;
/** An entry another box wrote (or its removal), to apply here. */
export type ListEntryFromLot = Omit<ListChange, "source">;

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

function newUuid(): string {
  return randomBytes(16).toString("hex").toUpperCase();
}

function contains(haystack: string, needle: string | undefined): boolean {
  return needle === undefined || needle === "" || haystack.toUpperCase().includes(needle.toUpperCase());
}

export class Lists {
  readonly doc: DurableDoc<ListsDoc>;
  readonly vehicles: Collection<Vehicle, unknown, ListsDoc>;
  readonly carGroups: Collection<CarGroup, unknown, ListsDoc>;
  readonly blacklist: Collection<BlacklistEntry, unknown, ListsDoc>;
  private readonly vehiclesByPlateIndex = new PlateIndex(
    () => this.vehicles.keys(),
    (key) => this.vehicles.get(key)?.carNum,
  );
  private readonly blacklistByPlate = new PlateIndex(
    () => this.blacklist.keys(),
    (key) => this.blacklist.get(key)?.carNum,
  );
  private vehiclesById: Map<number, string> | undefined;
  /** The list changes told after their commits, with who made them (entries from the lot are the lot's). */
  private readonly notices: ChangeNotices<{ list: ListName; key: string }, ListChange>;

  constructor(
    private readonly part: StorePart,
    options: { batchFlushMs?: number } = {},
  ) {
    this.doc = new DurableDoc<ListsDoc>({
      ...part.docOptions,
      path: join(part.dir, "lists.json"),
      schema: listsDocSchema,
      version: LISTS_DOC_VERSION,
      initial: () => ({ version: LISTS_DOC_VERSION, seq: 0, vehicles: {}, carGroups: {}, blacklist: {}, nextId: { vehicle: 1, carGroup: 1, blacklist: 1 } }),
      flushIntervalMs: options.batchFlushMs ?? 60_000,
      journal: true,
    });
    this.notices = new ChangeNotices(
      this.doc,
      ({ list, key }, source) => ({ list, key, source, entry: this.collectionOf(list).get(key) }) as ListChange,
      ({ list, key }) => `${list} ${key}`,
      part.log,
    );
    this.vehicles = new Collection<Vehicle, unknown, ListsDoc>(
      "vehicles",
      this.doc,
      "vehicles",
      vehicleSchema,
      (v) => v.uuId,
      (key, before, after) => {
        this.vehiclesByPlateIndex.change(key, before?.carNum, after?.carNum);
        if (key !== undefined) this.changed("vehicles", key);
        if (!this.vehiclesById) return;
        if (key === undefined) this.vehiclesById = undefined;
        else {
          if (before) this.vehiclesById.delete(before.id);
          if (after) this.vehiclesById.set(after.id, after.uuId);
        }
      },
    );
    this.carGroups = new Collection<CarGroup, unknown, ListsDoc>(
      "carGroups",
      this.doc,
      "carGroups",
      carGroupSchema,
      (g) => g.carGroupUuid,
      (key) => {
        if (key !== undefined) this.changed("carGroups", key);
      },
    );
    this.blacklist = new Collection<BlacklistEntry, unknown, ListsDoc>(
      "blacklist",
      this.doc,
      "blacklist",
      blacklistEntrySchema,
      (b) => b.uuid,
      (key, before, after) => {
        this.blacklistByPlate.change(key, before?.carNum, after?.carNum);
        if (key !== undefined) this.changed("blacklist", key);
      },
    );
  }

  /** After the document (re)opened: the indexes are rebuilt (by `warmIndexes`, or on first use). */
  resetIndexes(): void {
    this.vehiclesByPlateIndex.reset();
    this.blacklistByPlate.reset();
    this.vehiclesById = undefined;
  }

  /** Builds the plate indexes in the background, a slice at a time. */
  async warmIndexes(): Promise<void> {
    await this.vehiclesByPlateIndex.warm();
    await this.blacklistByPlate.warm();
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
    this.part.ensureOpen();
    const existing = this.getVehicle({ ...(input.uuId ? { uuId: input.uuId } : {}), ...(input.id ? { id: input.id } : {}) });
    const now = this.part.clock.now();
    const lists = this.doc.data;
    const id = existing?.id ?? (input.id && input.id > 0 ? input.id : lists.nextId.vehicle);
    const uuId = existing?.uuId ?? (input.uuId || newUuid());
    const vehicle = this.vehicles.parse({ ...input, id, uuId, createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now });
    const samePlate = this.vehiclesByPlate(vehicle.carNum).filter((v) => v.uuId !== uuId);
    if (samePlate.length > 0) {
      throw new StoreError(StoreErrorCode.Duplicate, `plate ${vehicle.carNum} is already registered (uuId ${samePlate[0]!.uuId})`);
    }
    if (id >= lists.nextId.vehicle) this.doc.set("nextId", "vehicle", id + 1);
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
    return this.vehiclesByPlateIndex
      .keys(plate)
      .map((k) => this.vehicles.get(k))
      .filter((v): v is Vehicle => !!v);
  }

  async deleteVehicle(key: { uuId?: string; id?: number }): Promise<boolean> {
    this.part.ensureOpen();
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
    this.part.ensureOpen();
    // The collection tells a clear without its keys: each removal is told here.
    for (const v of this.vehicles.values()) this.changed("vehicles", v.uuId);
    const count = await this.vehicles.clear();
    this.part.log?.warn({ count }, "all fixed vehicles cleared");
    return count;
  }

  // ---- car groups ---------------------------------------------------------------------

  /** Adds or replaces a car group, found by carGroupUuid then carGroupID. */
  async upsertCarGroup(input: CarGroupInput): Promise<CarGroup> {
    this.part.ensureOpen();
    const existing = this.getCarGroup({
      ...(input.carGroupUuid ? { carGroupUuid: input.carGroupUuid } : {}),
      ...(input.carGroupID ? { carGroupID: input.carGroupID } : {}),
    });
    const lists = this.doc.data;
    const now = this.part.clock.now();
    const carGroupID = existing?.carGroupID ?? (input.carGroupID && input.carGroupID > 0 ? input.carGroupID : lists.nextId.carGroup);
    const carGroupUuid = existing?.carGroupUuid ?? (input.carGroupUuid || newUuid());
    const group = this.carGroups.parse({ ...input, carGroupID, carGroupUuid, createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now });
    if (carGroupID >= lists.nextId.carGroup) this.doc.set("nextId", "carGroup", carGroupID + 1);
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
    this.part.ensureOpen();
    const group = this.getCarGroup(key);
    return group ? this.carGroups.delete(group.carGroupUuid) : false;
  }

  listCarGroups(page?: PageRequest): Page<CarGroup> {
    return this.carGroups.list(undefined, page);
  }

  // ---- blacklist ----------------------------------------------------------------------

  /** Adds or replaces a blacklist entry (found by uuid, then id). */
  async addBlacklist(input: BlacklistInput): Promise<BlacklistEntry> {
    this.part.ensureOpen();
    const existing = (input.uuid ? this.blacklist.get(input.uuid) : undefined) ?? (input.id && input.id > 0 ? this.blacklist.find((b) => b.id === input.id) : undefined);
    const lists = this.doc.data;
    const now = this.part.clock.now();
    const id = existing?.id ?? (input.id && input.id > 0 ? input.id : lists.nextId.blacklist);
    const uuid = existing?.uuid ?? (input.uuid || newUuid());
    const entry = this.blacklist.parse({ ...input, id, uuid, createdAtMs: existing?.createdAtMs ?? now, updatedAtMs: now });
    if (id >= lists.nextId.blacklist) this.doc.set("nextId", "blacklist", id + 1);
    return this.blacklist.put(entry);
  }

  /** Removes entries by uuid, id or plate; returns how many were removed. */
  async deleteBlacklist(key: { uuid?: string; id?: number; carNum?: string }): Promise<number> {
    this.part.ensureOpen();
    const plate = key.carNum !== undefined ? plateKey(key.carNum) : undefined;
    const doomed = this.blacklist
      .values()
      .filter((b) => (key.uuid !== undefined && b.uuid === key.uuid) || (key.id !== undefined && b.id === key.id) || (plate !== undefined && plateKey(b.carNum) === plate));
    if (doomed.length === 0) return 0;
    for (const b of doomed) {
      this.doc.del("blacklist", b.uuid);
      this.blacklistByPlate.change(b.uuid, b.carNum, undefined);
      this.changed("blacklist", b.uuid);
    }
    await this.doc.commit();
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
  blacklistFor(plate: string, atMs: number = this.part.clock.now()): BlacklistEntry[] {
    return this.blacklistByPlate
      .keys(plate)
      .map((k) => this.blacklist.get(k))
      .filter((b): b is BlacklistEntry => !!b && (b.untilMs === null || b.untilMs > atMs));
  }

  // ---- changes, and entries from the lot -------------------------------------------------

  /**
   * Listens to list changes; told once per entry per commit, after the commit (as the in-park
   * changes are). Returns the unsubscribe function.
   */
  onChange(listener: (change: ListChange) => void): () => void {
    return this.notices.listen(listener);
  }

  /**
   * Writes other boxes' versions of entries (or their removals) here, in order, in one durable
   * commit (a lot's first sync is thousands of entries: one fsync, not one each), told as "lot"
   * changes (never published again). An entry is taken whole, its id and times as its box
   * wrote them; the next local id moves past its id. A plate registered here under another
   * uuId stays too (each box then holds both: the lot converges on the same lists) and is
   * logged. Resolves with how many changed what the store held; an entry the store cannot take
   * is logged and skipped.
   */
  async applyFromLot(changes: readonly ListEntryFromLot[]): Promise<number> {
    this.part.ensureOpen();
    let applied = 0;
    const batched = { durable: false } as const;
    await this.fromLot(() => {
      for (const change of changes) {
        try {
          if (this.applyOneFromLot(change, batched)) applied++;
        } catch (error) {
          this.part.log?.error({ err: error, list: change.list, key: change.key }, "a list entry of the lot cannot be stored; skipped");
        }
      }
      return applied > 0 ? this.doc.commit() : Promise.resolve();
    });
    return applied;
  }

  /** One entry from the lot into the document (committed by the caller); false when it holds exactly this. */
  private applyOneFromLot(change: ListEntryFromLot, batched: WriteOptions): boolean {
    const collection = this.collectionOf(change.list) as Collection<Vehicle | CarGroup | BlacklistEntry, unknown, ListsDoc>;
    const held = collection.get(change.key);
    if (change.entry === undefined) {
      if (held === undefined) return false;
      void collection.delete(change.key, batched);
      return true;
    }
    const entry = collection.parse(change.entry);
    if (held !== undefined && JSON.stringify(held) === JSON.stringify(entry)) return false;
    if (change.list === "vehicles") {
      const vehicle = entry as Vehicle;
      const others = this.vehiclesByPlate(vehicle.carNum).filter((v) => v.uuId !== vehicle.uuId);
      if (others.length > 0) this.part.log?.warn({ carNum: vehicle.carNum, uuId: vehicle.uuId, alsoUuId: others[0]!.uuId }, "a plate registered twice in the lot");
    }
    this.bumpNextId(change.list, change.list === "carGroups" ? (entry as CarGroup).carGroupID : (entry as Vehicle | BlacklistEntry).id);
    // Parsed above, so the put cannot fail its validation; with `durable: false` it only batches.
    void collection.put(entry, batched);
    return true;
  }

  private collectionOf(list: ListName) {
    return list === "vehicles" ? this.vehicles : list === "carGroups" ? this.carGroups : this.blacklist;
  }

  private bumpNextId(list: ListName, id: number): void {
    const name = list === "vehicles" ? "vehicle" : list === "carGroups" ? "carGroup" : "blacklist";
    if (id >= this.doc.data.nextId[name]) this.doc.set("nextId", name, id + 1);
  }

  private fromLot<T>(write: () => Promise<T>): Promise<T> {
    return this.notices.fromLot(write);
  }

  private changed(list: ListName, key: string): void {
    this.notices.changed({ list, key });
  }

  private findVehicleById(id: number): Vehicle | undefined {
    if (!this.vehiclesById) {
      this.vehiclesById = new Map(this.vehicles.values().map((v) => [v.id, v.uuId]));
    }
    const uuId = this.vehiclesById.get(id);
    return uuId === undefined ? undefined : this.vehicles.get(uuId);
  }
}
