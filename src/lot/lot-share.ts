import { commonJsExports } from "../kernel/commonjs-exports.js";
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from "mqtt";
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import { withTimeout } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import { addBrokerCredentials, type MqttConfig } from "../fleet/config.js";
import type { InParkChange, LotStore } from "../store/lot-store.js";
import type { FinishedStay } from "../store/records.js";
import { HlcClock, compareHlc } from "./hlc.js";
import type { LotShareConfig } from "./config.js";
import { decodeBox, decodeStay, inParkPayload, leftPayload, recordOfPayload, sameContent, type BoxPayload, type StayPayload } from "./lot-payloads.js";
import { lotTopics, type LotTopics } from "./lot-topics.js";
import { LotView, type LotBox } from "./lot-view.js";
import { lotWhole } from "./reconcile.js";
import { LotLists } from "./lot-lists.js";
import { LotRequests, type ForwardedCommand } from "./lot-requests.js";
import type { LaneAnswer } from "../platform/ports.js";

/** How the share makes its MQTT client; tests may hand in their own. */
export type LotConnectFn = (url: string, options: IClientOptions) => MqttClient;

export interface LotShareOptions {
  share: LotShareConfig;
  /** The broker: `lot.share.mqtt`, else the box's `mqtt` section. */
  mqtt: MqttConfig;
  deviceId: string;
  parkCode: string;
  lanes: BoxPayload["lanes"];
  store: LotStore;
  clock: Clock;
  log: Logger;
  connect?: LotConnectFn;
  /** Decides a `remoteDev` another box of the lot forwards to this one (docs/mqtt.md "Forwarded remote control"). */
  remoteControl?: (command: ForwardedCommand) => Promise<LaneAnswer>;
}

export type LotViewState = "live" | "stale";

export interface LotShareStatus {
  view: LotViewState;
  staleSinceMs?: number;
  broker: "connected" | "disconnected";
  boxes: LotBox[];
  counters: Record<string, number>;
}

/** mqtt.js reconnects on its own at this period (the persistent session keeps what we missed). */
const RECONNECT_MS = 1000;
/** MQTT 5 session expiry: a box away this long is sent what it missed when it is back. */
const SESSION_EXPIRY_S = 3600;

/**
 * One lot, many boxes (docs/mqtt.md "Sharing one lot between boxes"). Publishes every durable
 * change of this box's in-park set as a retained version of the stay, and writes the newest
 * version of every other box's stays into this box's store as replicas, so the box's own exit
 * decision, duplicate-entry rule, free-space count and section-4 answers see the whole lot.
 *
 * No echo: what the store applied from the lot is told as a "lot" change and never published
 * again; a version this box wrote comes back from the broker and changes nothing.
 */
export class LotShare implements Component {
  readonly name = "lot-share";
  readonly view = new LotView();
  private readonly topics: LotTopics;
  private readonly hlc: HlcClock;
  private readonly log: Logger;
  private readonly clock: Clock;
  private client: MqttClient | undefined;
  private connected = false;
  private viewState: LotViewState = "stale";
  private staleSinceMs: number;
  private quietTimer: TimerHandle | undefined;
  private pruneTimer: TimerHandle | undefined;
  /** Versions written while the broker was away, sent at the next connect (newest per stay). */
  private readonly unsent = new Map<string, StayPayload>();
  /** Store writes from the lot, one after the other: versions of a stay land in order. */
  private storeChain: Promise<void> = Promise.resolve();
  private readonly liveWaiters = new Set<() => void>();
  private readonly liveListeners = new Set<() => void>();
  /** Told every valid version of a stay another box wrote, winning or not (entry-first.ts). */
  private readonly versionListeners = new Set<(stay: StayPayload) => void>();
  /** Other boxes offline, and since when (see noteOffline): how long a box keeps the lot apart. */
  private readonly offlineSinceMs = new Map<string, number>();
  private unsubscribeStore: (() => void) | undefined;
  private readonly counters: Record<string, number> = { received: 0, applied: 0, published: 0, publishFailed: 0, rejected: 0, storeErrors: 0 };
  private stopping = false;
  /** The lists the lot shares (blacklist, vehicles, car groups): lot-lists.ts. */
  private readonly lists: LotLists;
  private readonly requests: LotRequests;

  constructor(private readonly options: LotShareOptions) {
    this.topics = lotTopics(options.mqtt.topicRoot, options.parkCode);
    this.hlc = new HlcClock(options.deviceId, () => options.clock.now());
    this.log = options.log;
    this.clock = options.clock;
    this.staleSinceMs = options.clock.now();
    this.lists = new LotLists({
      deviceId: options.deviceId,
      store: options.store,
      hlc: this.hlc,
      clock: options.clock,
      log: options.log,
      base: this.topics.base,
      tombstoneExpiryS: options.share.leftExpiryS,
      protocolVersion: options.mqtt.protocolVersion,
      connected: () => this.connected,
      publish: (topic, text, publishOptions) => this.publishRaw(this.client, topic, text, publishOptions),
      reject: (topic, code, message) => this.reject(topic, code, message),
    });
    this.requests = new LotRequests({
      deviceId: options.deviceId,
      base: this.topics.base,
      view: this.view,
      link: {
        protocolVersion: options.mqtt.protocolVersion,
        connected: () => this.connected,
        publish: (topic, text, publishOptions) => this.publishRaw(this.client, topic, text, publishOptions),
        reject: (topic, code, message) => this.reject(topic, code, message),
      },
      waitMs: options.share.forwardWaitMs,
      ...(options.remoteControl ? { remoteControl: options.remoteControl } : {}),
      clock: options.clock,
      log: options.log,
    });
  }

  /** 4.12 for a channel of another box of the lot; undefined when no box announced it. */
  forwardRemoteControl(command: ForwardedCommand): Promise<LaneAnswer> | undefined {
    return this.requests.forward(command);
  }

  /** Connects and waits (at most `startWaitMs`) for the lot's retained set; never fails on the broker. */
  async start(): Promise<void> {
    this.stopping = false;
    this.unsubscribeStore = this.options.store.onInParkChange((change) => this.onStoreChange(change));
    this.lists.start();
    const connect = this.options.connect ?? commonJsExports(await import("mqtt"), "connect").connect;
    const options = await this.clientOptions();
    const client = connect(this.options.mqtt.url, options);
    this.client = client;
    client.on("connect", () => this.onConnected(client));
    client.on("message", (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on("close", () => this.onDisconnected());
    // While stopping, an acknowledgement racing the disconnect ("write after end") is expected.
    client.on("error", (error) => (this.stopping ? this.log.debug({ err: error }, "lot broker error while stopping") : this.log.warn({ err: error }, "lot broker error")));
    this.schedulePrune();
    if (this.options.share.startWaitMs > 0) await this.whenLive(this.options.share.startWaitMs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribeStore?.();
    this.lists.stop();
    this.requests.stop();
    for (const timer of [this.quietTimer, this.pruneTimer]) if (timer) this.clock.clearTimeout(timer);
    this.quietTimer = this.pruneTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (this.connected) {
        // A clean disconnect discards the will: say "offline" ourselves first.
        await withTimeout(
          this.publishRaw(client, this.topics.box(this.options.deviceId), JSON.stringify(this.boxPayload(false)), { qos: 1, retain: true }),
          500,
          "lot offline status",
        );
      }
      await withTimeout(this.drained(), 1000, "lot store writes");
      await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), 500, "lot broker disconnect");
    } catch (error) {
      this.log.warn({ err: error }, "lot share did not stop cleanly; closing the socket");
      client.end(true);
    }
    this.connected = false;
  }

  /** Resolves once the view is live, or after `timeoutMs` (then it is stale). */
  whenLive(timeoutMs: number): Promise<void> {
    if (this.viewState === "live") return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.clock.clearTimeout(timer);
        this.liveWaiters.delete(done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, timeoutMs);
      this.liveWaiters.add(done);
    });
  }

  /** Whether the view is live (the retained set is in and the broker connected) or stale. */
  get viewNow(): LotViewState {
    return this.viewState;
  }

  /**
   * The lot is apart: this box's view is stale, or another box of the lot is cut off (its will
   * said offline) — a car may have entered where this box cannot hear (src/lot/reconcile.ts `lotWhole`).
   */
  apart(): boolean {
    if (this.viewState === "stale") return true;
    const boxes = this.view.allBoxes().map((box) => ({ online: box.online, lastSeenMs: this.offlineSinceMs.get(box.deviceId) ?? box.lastSeenMs }));
    return !lotWhole(boxes, this.clock.now(), this.options.share.provisionalHoldS * 1000);
  }

  /**
   * When another box went offline, by this box's clock: heard live, now; from the retained
   * set, the time in the status (a clean stop's own time; a will carries its connect time,
   * the earliest the box can have gone).
   */
  private noteOffline(box: BoxPayload, retained: boolean): void {
    if (box.online) this.offlineSinceMs.delete(box.deviceId);
    else if (!this.offlineSinceMs.has(box.deviceId)) this.offlineSinceMs.set(box.deviceId, retained ? box.seenAtMs : this.clock.now());
  }

  /** Calls `listener` at every turn to live (after the box's own stays are reconciled); returns the unsubscribe. */
  onLive(listener: () => void): () => void {
    this.liveListeners.add(listener);
    return () => this.liveListeners.delete(listener);
  }

  /** Calls `listener` with every valid version of a stay another box wrote (also one that loses); returns the unsubscribe. */
  onVersion(listener: (stay: StayPayload) => void): () => void {
    this.versionListeners.add(listener);
    return () => this.versionListeners.delete(listener);
  }

  /**
   * This box's entry report of its stay `recordNo` was delivered: a version saying so
   * (`entryReported`), unless the one the lot holds says it already. Also for a stay that has
   * left at another box meanwhile: the exit box waits for this to send its leave report.
   */
  entryReported(recordNo: string): void {
    const held = this.view.stay(recordNo);
    if (!held || held.entryReported === true || held.enterDeviceId !== this.options.deviceId) return;
    // Finished here: its leave report is in this box's outbox, behind the entry report already.
    if (held.state === "left" && held.settlement?.exitDeviceId === this.options.deviceId) return;
    this.publishOwn({ ...held, entryReported: true, hlc: this.hlc.now() });
  }

  /** The store writes of versions received so far are done. */
  drained(): Promise<void> {
    return Promise.all([this.storeChain, this.lists.drained()]).then(() => undefined);
  }

  status(): LotShareStatus {
    return {
      view: this.viewState,
      ...(this.viewState === "stale" ? { staleSinceMs: this.staleSinceMs } : {}),
      broker: this.connected ? "connected" : "disconnected",
      boxes: this.view.allBoxes(),
      counters: { ...this.counters, ...this.requests.counters(), ...this.lists.counters },
    };
  }

  // ---- the broker -----------------------------------------------------------------------

  private async clientOptions(): Promise<IClientOptions> {
    const config = this.options.mqtt;
    const version = config.protocolVersion;
    const options: IClientOptions = {
      protocolVersion: version,
      clientId: `${this.options.deviceId}-lot`,
      // A persistent session: QoS 1 versions published while this box was away wait for it.
      clean: false,
      keepalive: config.keepaliveS,
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: 10_000,
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: this.topics.box(this.options.deviceId), payload: Buffer.from(JSON.stringify(this.boxPayload(false))), qos: 1, retain: true },
      rejectUnauthorized: config.rejectUnauthorized,
    };
    if (version === 5) options.properties = { sessionExpiryInterval: SESSION_EXPIRY_S };
    const reading = addBrokerCredentials(options, config);
    if (reading) await reading;
    return options;
  }

  private boxPayload(online: boolean): BoxPayload {
    return { v: 1, deviceId: this.options.deviceId, lanes: this.options.lanes, online, seenAtMs: this.clock.now() };
  }

  private onConnected(client: MqttClient): void {
    if (this.client !== client) return;
    this.connected = true;
    this.log.info({ broker: this.options.mqtt.url }, "lot broker connected");
    const self = this.boxPayload(true);
    this.view.applyBox(self);
    this.publishRaw(client, this.topics.box(this.options.deviceId), JSON.stringify(self), { qos: 1, retain: true }).catch((error: unknown) =>
      this.log.warn({ err: error }, "lot box status not published"),
    );
    for (const payload of [...this.unsent.values()]) this.publish(payload);
    this.lists.sendUnsent();
    // Every subscribe is answered with the retained set: the lot as the broker holds it.
    client.subscribe(
      { [this.topics.staysFilter]: { qos: 1 }, [this.topics.boxesFilter]: { qos: 1 }, [this.lists.topics.filter]: { qos: 1 }, ...this.requests.subscriptions() },
      (error) => {
        if (error) {
          this.log.error({ err: error }, "lot subscriptions refused");
          return;
        }
        this.restartQuietTimer();
      },
    );
  }

  private onDisconnected(): void {
    if (!this.connected) return;
    this.connected = false;
    if (this.quietTimer) this.clock.clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    if (this.viewState === "live") {
      this.viewState = "stale";
      this.staleSinceMs = this.clock.now();
      if (!this.stopping) this.log.warn("lot broker lost; the lot view is stale");
    }
  }

  /** The retained burst is over once the broker has been quiet for `quietMs` after the SUBACK. */
  private restartQuietTimer(): void {
    if (this.viewState === "live" || !this.connected) return;
    if (this.quietTimer) this.clock.clearTimeout(this.quietTimer);
    this.quietTimer = this.clock.setTimeout(() => {
      this.quietTimer = undefined;
      void this.goLive();
    }, this.options.share.quietMs);
  }

  private async goLive(): Promise<void> {
    await this.drained();
    if (!this.connected) return;
    this.reconcileOwn();
    this.lists.reconcile();
    this.viewState = "live";
    this.log.info({ stays: this.view.inPark().length, boxes: this.view.allBoxes().length }, "lot view live");
    for (const done of [...this.liveWaiters]) done();
    for (const listener of [...this.liveListeners]) listener();
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.requests.take(topic, payload, packet)) return;
    if (this.lists.topics.owns(topic)) {
      this.lists.onMessage(topic, payload, packet.retain);
      this.restartQuietTimer();
      return;
    }
    const what = this.topics.parse(topic);
    // An empty retained message clears a topic (a finished stay whose time is up): nothing to take.
    if (!what || payload.length === 0) return;
    this.counters.received!++;
    if (what.kind === "box") {
      const box = decodeBox(payload, what.deviceId);
      if (!box.ok) return this.reject(topic, box.code, box.message);
      if (box.value.deviceId !== this.options.deviceId) {
        this.view.applyBox(box.value);
        this.noteOffline(box.value, packet.retain);
      }
      this.restartQuietTimer();
      return;
    }
    const decoded = decodeStay(payload, what.recordNo);
    if (!decoded.ok) return this.reject(topic, decoded.code, decoded.message);
    const stay = decoded.value;
    this.hlc.observe(stay.hlc);
    if (stay.hlc.deviceId !== this.options.deviceId) for (const listener of [...this.versionListeners]) listener(stay);
    if (stay.state === "left" && packet.retain && this.options.mqtt.protocolVersion === 4 && stay.hlc.wallMs < this.clock.now() - this.options.share.leftExpiryS * 1000) {
      // 3.1.1 has no message expiry: the first box to see an old finished stay clears it.
      this.publishRaw(this.client, topic, "", { qos: 1, retain: true }).catch((error: unknown) => this.log.debug({ err: error, topic }, "expired stay not cleared"));
    }
    if (this.view.applyStay(stay)) this.applyToStore(stay);
    this.restartQuietTimer();
  }

  private reject(topic: string, code: string, message: string): void {
    this.counters.rejected!++;
    this.counters[code] = (this.counters[code] ?? 0) + 1;
    this.log.warn({ topic, code, problem: message }, "lot message rejected");
  }

  /** A winning version from another box goes into this box's store (in order, one at a time). */
  private applyToStore(stay: StayPayload): void {
    // A version this box wrote is already what its store holds.
    if (stay.hlc.deviceId === this.options.deviceId) return;
    const { store } = this.options;
    this.storeChain = this.storeChain.then(async () => {
      try {
        if (stay.state === "in-park") {
          // After a restart the whole retained set comes again: a version the store holds is not rewritten.
          const held = store.getInPark(stay.recordNo)?.replicaOf;
          if (held && compareHlc(held.hlc, stay.hlc) === 0) return;
          await store.upsertReplica(recordOfPayload(stay), { deviceId: stay.enterDeviceId, hlc: stay.hlc });
        } else if (store.getInPark(stay.recordNo)) {
          await store.removeReplica(stay.recordNo);
          await store.appendEvent({
            type: "lot-stay-left",
            recordNo: stay.recordNo,
            plate: stay.plate,
            ...(stay.settlement ? { exitDeviceId: stay.settlement.exitDeviceId, exitLaneId: stay.settlement.exitLaneId } : {}),
          });
        }
        this.counters.applied!++;
      } catch (error) {
        this.counters.storeErrors!++;
        this.log.error({ err: error, recordNo: stay.recordNo }, "a stay of the lot was not written to the store");
      }
    });
  }

  // ---- this box's changes -------------------------------------------------------------

  private onStoreChange(change: InParkChange): void {
    // The lot's own versions, written here as replicas, are never published again.
    if (change.source !== "local") return;
    const me = this.options.deviceId;
    if (change.kind === "upsert") {
      const held = this.view.stay(change.record.recordNo);
      const next = inParkPayload(change.record, me, this.hlc.now());
      // Lane bookkeeping (report state, a pending exit) changes nothing the lot sees.
      if (held && held.state === "in-park" && sameContent(held, next)) return;
      this.publishOwn(next);
    } else if (change.kind === "finished") {
      this.publishOwn(leftPayload(change.stay, me, this.hlc.now()));
    } else {
      const held = this.view.stay(change.recordNo);
      if (held && held.state === "in-park") this.publishOwn({ ...held, state: "left", hlc: this.hlc.now() });
    }
  }

  private publishOwn(payload: StayPayload): void {
    this.view.applyStay(payload);
    this.publish(payload);
  }

  private publish(payload: StayPayload): void {
    const client = this.client;
    if (!client || !this.connected) {
      this.unsent.set(payload.recordNo, payload);
      return;
    }
    const options: IClientPublishOptions = { qos: 1, retain: true };
    if (payload.state === "left" && this.options.mqtt.protocolVersion === 5) options.properties = { messageExpiryInterval: this.options.share.leftExpiryS };
    this.unsent.delete(payload.recordNo);
    this.publishRaw(client, this.topics.stay(payload.recordNo), JSON.stringify(payload), options).then(
      () => this.counters.published!++,
      (error: unknown) => {
        this.counters.publishFailed!++;
        // Kept for the next connect unless a newer version of the stay came meanwhile.
        if (!this.unsent.has(payload.recordNo)) this.unsent.set(payload.recordNo, payload);
        this.log.warn({ err: error, recordNo: payload.recordNo }, "stay not published; sent again at the next connect");
      },
    );
  }

  private publishRaw(client: MqttClient | undefined, topic: string, text: string, options: IClientPublishOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!client) {
        reject(new Error("no lot broker client"));
        return;
      }
      client.publish(topic, text, options, (error) => (error ? reject(error) : resolve()));
    });
  }

  /**
   * Once the retained set is in: what this box holds of its own stays and the lot lacks (a
   * crash between the store's write and the publish, a broker that lost its retained set) is
   * published again, and an own stay the lot still shows in the park but this box finished
   * while away is published as left.
   */
  private reconcileOwn(): void {
    const { store, deviceId } = this.options;
    let sent = 0;
    for (const record of store.listInPark((r) => r.replicaOf === undefined).items) {
      const held = this.view.stay(record.recordNo);
      if (held && held.state === "left") continue;
      if (held && sameContent(held, inParkPayload(record, deviceId, held.hlc))) continue;
      this.publishOwn(inParkPayload(record, deviceId, this.hlc.now()));
      sent++;
    }
    const gone = this.view.inPark().filter((s) => s.enterDeviceId === deviceId && !store.getInPark(s.recordNo));
    for (const held of gone) {
      void this.finishedHere(held).then((stay) => this.publishOwn(stay ? leftPayload(stay, deviceId, this.hlc.now()) : { ...held, state: "left", hlc: this.hlc.now() }));
      sent++;
    }
    if (sent > 0) this.log.info({ stays: sent }, "own stays the lot lacked published again");
  }

  private async finishedHere(held: StayPayload): Promise<FinishedStay | undefined> {
    try {
      return (await this.options.store.recentStays(held.plate, { limit: 20 })).find((s) => s.recordNo === held.recordNo);
    } catch (error) {
      this.log.warn({ err: error, recordNo: held.recordNo }, "finished stay not found in history; published as left without its settlement");
      return undefined;
    }
  }

  private schedulePrune(): void {
    // Finished stays are kept in memory as long as the broker retains them, then forgotten.
    const everyMs = Math.min(this.options.share.leftExpiryS * 1000, 3_600_000);
    this.pruneTimer = this.clock.setTimeout(() => {
      this.view.forgetLeft(this.clock.now() - this.options.share.leftExpiryS * 1000);
      this.schedulePrune();
    }, everyMs);
  }
}
