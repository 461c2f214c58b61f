import type { IClientPublishOptions } from "mqtt";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { ListChange, ListEntryFromLot, LotStore } from "../store/lot-store.js";
import type { ListName } from "../store/lists.js";
import type { HlcClock } from "./hlc.js";
import { decodeListEntry, kindOfList, listKinds, listTopics, type ListKind, type ListPayload, type ListTopics } from "./lot-list-payloads.js";
import { LOT_PAYLOAD_VERSION, LotPayloadError } from "./lot-payloads.js";
import { LotListView } from "./lot-list-view.js";

/** What the lists need of the lot's broker client (src/lot/lot-share.ts). */
export interface LotListsHost {
  deviceId: string;
  store: LotStore;
  hlc: HlcClock;
  clock: Clock;
  log: Logger;
  /** `<topicRoot>/lot/<parkCode>` */
  base: string;
  /** How long a tombstone stays retained (`lot.share.leftExpiryS`, as a finished stay). */
  tombstoneExpiryS: number;
  protocolVersion: 4 | 5;
  connected(): boolean;
  /** Publishes on the lot's broker; rejects when it is away or the publish failed. */
  publish(topic: string, text: string, options: IClientPublishOptions): Promise<void>;
  /** A message not taken: logged and counted under its code. */
  reject(topic: string, code: string, message: string): void;
}

const LISTS: readonly ListName[] = ["blacklist", "vehicles", "carGroups"];

/**
 * The lists shared by the lot (docs/mqtt.md "Lists shared by the lot"): every durable change of
 * a list entry at this box — from the platform's section 4, the local API, provisioning — is
 * published as a retained version of the entry (a tombstone for a removal), and the newest
 * version of every entry the lot holds is written into this box's store, so the blacklist,
 * the fixed vehicles and the car groups are the same at every gate.
 *
 * No echo: what the store applied from the lot is told as a "lot" change and never published
 * again; a version this box wrote comes back from the broker and changes nothing. Unlike a
 * stay, an entry has no owner: any box may write any entry, and the newest write wins.
 */
export class LotLists {
  readonly view = new LotListView();
  readonly topics: ListTopics;
  readonly counters = { listsReceived: 0, listsApplied: 0, listsPublished: 0, listsPublishFailed: 0, listsStoreErrors: 0 };
  /** Versions written while the broker was away, sent at the next connect (newest per entry). */
  private readonly unsent = new Map<string, ListPayload>();
  /** Store writes from the lot, one after the other: versions of an entry land in order. */
  private storeChain: Promise<void> = Promise.resolve();
  /** Versions from the lot waiting for the next store write, in arrival order. */
  private readonly toStore: ListEntryFromLot[] = [];
  private unsubscribe: (() => void) | undefined;
  private pruneTimer: TimerHandle | undefined;

  constructor(private readonly host: LotListsHost) {
    this.topics = listTopics(host.base);
  }

  start(): void {
    this.unsubscribe = this.host.store.onListChange((change) => this.onStoreChange(change));
    this.schedulePrune();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.pruneTimer) this.host.clock.clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
  }

  /** The store writes of versions received so far are done. */
  drained(): Promise<void> {
    return this.storeChain;
  }

  /** After every connect, before the subscriptions: what was written while away goes out. */
  sendUnsent(): void {
    for (const version of [...this.unsent.values()]) this.publish(version);
  }

  /** A message on a `lists/` topic (`retained`: part of the retained set). */
  onMessage(topic: string, payload: Buffer, retained: boolean): void {
    // An empty retained message clears a topic (a tombstone whose time is up): nothing to take.
    if (payload.length === 0) return;
    this.counters.listsReceived++;
    const where = this.topics.parse(topic);
    if (!where.ok) return this.host.reject(topic, LotPayloadError.TopicMismatch, where.message);
    const decoded = decodeListEntry(payload, where.kind, where.key);
    if (!decoded.ok) return this.host.reject(topic, decoded.code, decoded.message);
    const version = decoded.value;
    this.host.hlc.observe(version.hlc);
    if (version.deleted && retained && this.host.protocolVersion === 4 && version.hlc.wallMs < this.expiredBeforeMs()) {
      // 3.1.1 has no message expiry: the first box to see an old tombstone clears it.
      this.host.publish(topic, "", { qos: 1, retain: true }).catch((error: unknown) => this.host.log.debug({ err: error, topic }, "expired list tombstone not cleared"));
    }
    if (this.view.apply(version)) this.applyToStore(version);
  }

  /**
   * Once the retained set is in: an entry this box holds that the lot lacks (a box that kept
   * its lists before the lot shared them, a crash between the store's write and the publish, a
   * broker restarted without persistence) is published; so is this box's own last write that
   * the lot holds otherwise, and the removal of an entry whose last version is this box's and
   * that its store no longer holds.
   */
  reconcile(): void {
    const { store, deviceId } = this.host;
    let sent = 0;
    const heldHere = new Set<string>();
    for (const list of LISTS) {
      const kind = kindOfList(list);
      for (const { key, entry } of entriesOf(store, list)) {
        heldHere.add(`${kind}/${key}`);
        const held = this.view.get(kind, key);
        if (held && (held.hlc.deviceId !== deviceId || (!held.deleted && sameEntry(held.entry, entry)))) continue;
        this.publishOwn(versionOf(kind, key, entry, this.host.hlc));
        sent++;
      }
    }
    for (const held of this.view.all()) {
      if (held.deleted || held.hlc.deviceId !== deviceId || heldHere.has(`${held.kind}/${held.key}`)) continue;
      this.publishOwn(versionOf(held.kind, held.key, undefined, this.host.hlc));
      sent++;
    }
    if (sent > 0) this.host.log.info({ entries: sent }, "list entries the lot lacked published");
  }

  // ---- from the lot into the store -----------------------------------------------------

  /**
   * A winning version from another box goes into this box's store. Versions wait in arrival
   * order and go in as one commit per batch (the retained burst of a big lot is one fsync).
   */
  private applyToStore(version: ListPayload): void {
    // A version this box wrote is already what its store holds.
    if (version.hlc.deviceId === this.host.deviceId) return;
    this.toStore.push({ list: listKinds[version.kind], key: version.key, entry: version.entry });
    if (this.toStore.length > 1) return;
    this.storeChain = this.storeChain.then(async () => {
      const batch = this.toStore.splice(0);
      try {
        this.counters.listsApplied += await this.host.store.applyListsFromLot(batch);
      } catch (error) {
        this.counters.listsStoreErrors++;
        this.host.log.error({ err: error, entries: batch.length }, "list entries of the lot were not written to the store");
      }
    });
  }

  // ---- this box's changes --------------------------------------------------------------

  private onStoreChange(change: ListChange): void {
    // The lot's own versions, written here, are never published again.
    if (change.source !== "local") return;
    const kind = kindOfList(change.list);
    const held = this.view.get(kind, change.key);
    if (held && held.deleted === (change.entry === undefined) && sameEntry(held.entry, change.entry)) return;
    this.publishOwn(versionOf(kind, change.key, change.entry, this.host.hlc));
  }

  private publishOwn(version: ListPayload): void {
    this.view.apply(version);
    this.publish(version);
  }

  private publish(version: ListPayload): void {
    const id = `${version.kind}/${version.key}`;
    if (!this.host.connected()) {
      this.unsent.set(id, version);
      return;
    }
    const options: IClientPublishOptions = { qos: 1, retain: true };
    if (version.deleted && this.host.protocolVersion === 5) options.properties = { messageExpiryInterval: this.host.tombstoneExpiryS };
    this.unsent.delete(id);
    this.host.publish(this.topics.entry(version.kind, version.key), JSON.stringify(version), options).then(
      () => this.counters.listsPublished++,
      (error: unknown) => {
        this.counters.listsPublishFailed++;
        // Kept for the next connect unless a newer version of the entry came meanwhile.
        if (!this.unsent.has(id)) this.unsent.set(id, version);
        this.host.log.warn({ err: error, kind: version.kind, key: version.key }, "list entry not published; sent again at the next connect");
      },
    );
  }

  private expiredBeforeMs(): number {
    return this.host.clock.now() - this.host.tombstoneExpiryS * 1000;
  }

  private schedulePrune(): void {
    // Tombstones are kept in memory as long as the broker retains them, then forgotten.
    const everyMs = Math.min(this.host.tombstoneExpiryS * 1000, 3_600_000);
    this.pruneTimer = this.host.clock.setTimeout(() => {
      this.view.forgetDeleted(this.expiredBeforeMs());
      this.schedulePrune();
    }, everyMs);
  }
}

type Entry = ListPayload["entry"];

function entriesOf(store: LotStore, list: ListName): Array<{ key: string; entry: NonNullable<Entry> }> {
  if (list === "vehicles") return store.listVehicles().items.map((entry) => ({ key: entry.uuId, entry }));
  if (list === "carGroups") return store.listCarGroups().items.map((entry) => ({ key: entry.carGroupUuid, entry }));
  return store.listBlacklist().items.map((entry) => ({ key: entry.uuid, entry }));
}

function sameEntry(a: Entry, b: Entry): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** A new version of an entry (`entry` undefined: its tombstone), stamped now. */
function versionOf(kind: ListKind, key: string, entry: Entry, hlc: HlcClock): ListPayload {
  return { v: LOT_PAYLOAD_VERSION, kind, key, deleted: entry === undefined, ...(entry === undefined ? {} : { entry }), hlc: hlc.now() } as ListPayload;
}
