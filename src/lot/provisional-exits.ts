import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import type { FuzzyPolicy } from "../core/exit/stay-match.js";
import type { Bill } from "../core/fees/index.js";
import type { Outbox, OutboxEntry } from "../outbox/outbox.js";
import { formatWireTime } from "../platform/wire.js";
import type { InParkChange, LotStore } from "../store/lot-store.js";
import type { FinishedStay, InParkRecord } from "../store/records.js";
import type { RefundLedger } from "../lanes/refunds.js";
import type { LotShareConfig } from "./config.js";
import type { LotShare } from "./lot-share.js";
import { duplicateLosers, leaveNotBeforeEnter, matchProvisionalExit, settleProvisional } from "./reconcile.js";

/*
 * After a partition (docs/mqtt.md "Partitions and reconciliation"): what a box does once its
 * lot view is live again.
 *
 * - A provisional exit (a no-record exit taken while the view was stale; its enter and leave
 *   reports held in the outbox) is matched with a stay of the lot of the same plate entered
 *   before it. Found: that stay is finished here with the exit's time and reported once (one
 *   leaveNotify with its own recordNo and its true bill); the flat amount counts as paid, what
 *   it exceeds the true fee by is a refund owed, what it falls short by is written off; the
 *   provisional reports are dropped. Not found once the view has been live `provisionalWaitMs`
 *   with every box online: its held reports go as an ordinary no-record exit.
 * - The same plate in the park twice (entered at two gates while apart): `duplicateLosers`
 *   decides, and each box cancels the losers it entered itself.
 *
 * Every step is durable before the next and a rerun after a crash picks up where it stopped:
 * a durable setting names the stay a provisional exit was matched with before anything else.
 */

export interface ProvisionalExitsOptions {
  deviceId: string;
  share: LotShareConfig;
  lot: Pick<LotShare, "viewNow" | "onLive" | "view" | "apart">;
  store: LotStore;
  outbox: Pick<Outbox, "list" | "get" | "enqueue" | "discard">;
  refunds: Pick<RefundLedger, "add">;
  /** The lanes' bill of a stay at an exit (the tariff, the stay's prepayments and coupons). */
  billFor: (record: InParkRecord, atMs: number, laneId: string) => Promise<Bill>;
  fuzzy: FuzzyPolicy;
  duplicateEntry: "replace" | "deny";
  timeZone: string;
  clock: Clock;
  log: Logger;
}

/** The durable note "provisional exit P is the lot's stay S" (settings key prefix). */
const MATCH_KEY = "lot.provisional.";
/** Lot stays arriving in a burst are reconciled once, this long after the last. */
const SETTLE_MS = 50;
/** While provisional exits wait, the lot (a box back online, the bound) is looked at this often. */
const POLL_MS = 5000;
/** A provisional stay just finished is looked for this long after (its history line is written by then). */
const FINISHED_LOOK_MS = 500;

/**
 * Held reports go now, in their order: each queued again under `<key>:released` (behind the
 * held ones of its record, so it waits for them), then the held ones dropped. `notBeforeMs`:
 * not before this still (a bill's late-answer window). Also used by entry-first.ts.
 */
export async function releaseHeld(outbox: Pick<Outbox, "enqueue" | "discard">, held: readonly OutboxEntry[], reason: string, notBeforeMs?: number): Promise<void> {
  for (const entry of held) {
    await outbox.enqueue({
      recordNo: entry.recordNo,
      kind: entry.kind,
      service: entry.service,
      biz: entry.biz,
      key: `${entry.key}:released`,
      ...(notBeforeMs !== undefined ? { notBeforeMs } : {}),
    });
  }
  for (const entry of held) await outbox.discard(entry.key, reason);
}

export class ProvisionalExits implements Component {
  readonly name = "lot-provisional";
  private wholeSinceMs: number | undefined;
  private chain: Promise<void> = Promise.resolve();
  private timer: TimerHandle | undefined;
  private timerDueAtMs = 0;
  private unsubscribes: Array<() => void> = [];
  private stopped = false;
  readonly counters = { reconciled: 0, released: 0, duplicatesEnded: 0, refundsOwed: 0 };

  constructor(private readonly options: ProvisionalExitsOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    const { lot, store } = this.options;
    this.unsubscribes = [
      lot.onLive(() => this.schedule(0)),
      store.onInParkChange((change: InParkChange) => {
        // A stay of another box arrived (it may be one a provisional exit waits for, or a duplicate).
        if (change.source === "lot" && change.kind === "upsert") this.schedule(SETTLE_MS);
        // A provisional exit just taken while this box is live (another box is cut off): its
        // history line follows the finish, so look a moment later (and on, while it waits).
        if (change.kind === "finished" && change.stay.provisional) this.schedule(FINISHED_LOOK_MS);
      }),
    ];
    if (lot.viewNow === "live") this.schedule(0);
    await Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.unsubscribes = [];
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  /** Runs one reconciliation now (after any running one); tests and the timer call it. */
  runNow(): Promise<void> {
    this.chain = this.chain.then(() => this.run()).catch((error: unknown) => this.options.log.error({ err: error }, "lot reconciliation failed; retried at the next change"));
    return this.chain;
  }

  /** A run in `delayMs`, unless one is due sooner already. */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    // Monotonic: after the wall clock steps forward, a run due sooner must still replace a pending poll.
    const dueAtMs = this.options.clock.monotonicMs() + delayMs;
    if (this.timer && this.timerDueAtMs <= dueAtMs) return;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timerDueAtMs = dueAtMs;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      void this.runNow();
    }, delayMs);
  }

  private live(): boolean {
    if (this.options.lot.viewNow !== "live") {
      this.wholeSinceMs = undefined;
      return false;
    }
    return true;
  }

  private async run(): Promise<void> {
    if (this.stopped || !this.live()) return;
    const now = this.options.clock.now();
    // Whole: live, and every box of the lot online (lotWhole); the release bound counts from then.
    if (this.options.lot.apart()) this.wholeSinceMs = undefined;
    else this.wholeSinceMs ??= now;
    await this.endDuplicates();
    const { exits: waiting, unread } = await this.heldProvisionalExits();
    let unmatched = unread;
    for (const exit of waiting) {
      if (this.stopped || !this.live()) return;
      const matched = await this.reconcile(exit);
      if (matched) continue;
      if (this.wholeSinceMs !== undefined && now - this.wholeSinceMs >= this.options.share.provisionalWaitMs) await this.release(exit);
      else unmatched++;
    }
    // Still waiting for a stay of the lot (or for the lot to be whole): look again by the bound (a stay arriving looks sooner).
    if (unmatched > 0) {
      const boundInMs = this.wholeSinceMs === undefined ? POLL_MS : this.wholeSinceMs + this.options.share.provisionalWaitMs - now;
      this.schedule(Math.max(SETTLE_MS, Math.min(POLL_MS, boundInMs)));
    }
  }

  /**
   * The provisional exits whose held leave report is still in the outbox (oldest first), and
   * how many held leave reports have no history line yet (a stay still finishing: looked at again).
   */
  private async heldProvisionalExits(): Promise<{ exits: FinishedStay[]; unread: number }> {
    const { outbox, store } = this.options;
    const exits: FinishedStay[] = [];
    let unread = 0;
    for (const entry of outbox.list()) {
      if (entry.notBeforeMs === undefined || (entry.key !== `${entry.recordNo}:leave` && entry.key !== `${entry.recordNo}:enter`)) continue;
      const heldLeave = entry.kind === "leave";
      // A held entry report goes with its leave (looked at below), unless there is none.
      if (!heldLeave && outbox.get(`${entry.recordNo}:leave`)) continue;
      const plate = typeof entry.biz.plateNum === "string" ? entry.biz.plateNum : "";
      const stay = (await store.recentStays(plate, { limit: 20 })).find((s) => s.recordNo === entry.recordNo);
      if (!stay) {
        if (heldLeave) unread++;
      } else if (stay.provisional && heldLeave) {
        exits.push(stay);
      } else if (stay.provisional) {
        // Finished with no exit report: the car backed out (or its plate was corrected) and the
        // made-up stay was cancelled. There is nothing to tell the platform.
        await outbox.discard(entry.key, "provisional stay cancelled at its exit");
      }
    }
    return { exits, unread };
  }

  /** Matches one provisional exit with a stay of the lot and settles it there; false when none matched. */
  private async reconcile(provisional: FinishedStay): Promise<boolean> {
    const { store, outbox, clock, log, deviceId } = this.options;
    const noted = store.getSetting<string>(MATCH_KEY + provisional.recordNo);
    let stay = noted ? store.getInPark(noted) : undefined;
    if (!noted) {
      const candidates = store
        .listInPark((r) => !r.provisional && r.recordNo !== provisional.recordNo)
        .items.map((r) => ({ ...r, enterDeviceId: r.replicaOf?.deviceId ?? deviceId }));
      stay = matchProvisionalExit({ plate: provisional.plate, leaveAtMs: provisional.exit.leaveAtMs }, candidates, this.options.fuzzy, this.options.share.clockSkewMs);
      if (!stay) return false;
      await store.setSetting(MATCH_KEY + provisional.recordNo, stay.recordNo, { durable: true });
    }
    if (stay) {
      const heldLeave = outbox.get(`${provisional.recordNo}:leave`);
      if (!heldLeave) return false;
      await this.settleOnStay(provisional, stay, heldLeave);
    }
    // The provisional record goes unreported: its held reports are dropped.
    for (const kind of ["enter", "leave"]) await outbox.discard(`${provisional.recordNo}:${kind}`, `provisional exit reconciled with the lot's stay ${noted ?? stay?.recordNo}`);
    this.counters.reconciled++;
    log.info({ provisional: provisional.recordNo, stay: noted ?? stay?.recordNo, atMs: clock.now() }, "provisional exit reconciled with a stay of the lot");
    return true;
  }

  /** Finishes the lot's stay with the provisional exit: one leave report, its true bill, the flat amount as paid. */
  private async settleOnStay(provisional: FinishedStay, stay: InParkRecord, heldLeave: OutboxEntry): Promise<void> {
    const { store, outbox, refunds, timeZone } = this.options;
    const { leaveAtMs, skewed } = leaveNotBeforeEnter(stay.enterAtMs, provisional.exit.leaveAtMs);
    if (skewed) {
      await store.appendEvent({
        type: "lot-clock-skew",
        laneId: provisional.exit.laneId,
        plate: stay.plate,
        recordNo: stay.recordNo,
        enterAtMs: stay.enterAtMs,
        readAtMs: provisional.exit.leaveAtMs,
      });
    }
    const bill = await this.options.billFor(stay, leaveAtMs, provisional.exit.laneId);
    const money = settleProvisional(provisional.exit.paidFen, bill.paidFee);
    // The held report already says how the flat amount was paid (type, time, order, channel, release): the stay's fields replace the made-up ones.
    await outbox.enqueue({
      recordNo: stay.recordNo,
      kind: "leave",
      service: heldLeave.service,
      biz: {
        ...heldLeave.biz,
        recordNo: stay.recordNo,
        plateNum: stay.plate || provisional.plate,
        ...(stay.carType !== undefined ? { carType: stay.carType } : {}),
        ...(stay.carSubType !== undefined ? { carSubType: stay.carSubType } : {}),
        enterTime: formatWireTime(stay.enterAtMs, timeZone),
        leaveTime: formatWireTime(leaveAtMs, timeZone),
        payableFee: bill.payableFee,
        discountFee: bill.discountFee,
        prepaidFee: bill.prepaidFee,
      },
    });
    const payType = typeof heldLeave.biz.payType === "number" ? heldLeave.biz.payType : 0;
    if (money.refundOwedFen > 0) {
      const orderNo = typeof heldLeave.biz.orderNo === "string" ? heldLeave.biz.orderNo : "";
      const taken = { payType, amountFen: money.takenFen, orderNo, payTimeMs: provisional.exit.leaveAtMs, path: "provisional-exit", operator: provisional.exit.operator ?? "" };
      await refunds.add({
        id: `lot-${provisional.recordNo}`,
        kind: "provisional-overcharge",
        laneId: provisional.exit.laneId,
        plate: stay.plate || provisional.plate,
        recordNo: stay.recordNo,
        first: taken,
        second: { ...taken, amountFen: money.refundOwedFen },
        amountFen: money.refundOwedFen,
        // Cash (payType 4) is handed back by the attendant; anything else through the platform.
        refundVia: payType === 4 ? "cash" : "platform",
      });
      this.counters.refundsOwed++;
    }
    await store.finishStay(stay.recordNo, {
      laneId: provisional.exit.laneId,
      leaveAtMs,
      payableFen: bill.payableFee,
      discountFen: bill.discountFee,
      prepaidFen: bill.prepaidFee,
      paidFen: money.takenFen,
      ...(provisional.exit.payType ? { payType: provisional.exit.payType } : {}),
      ...(provisional.exit.orderNo ? { orderNo: provisional.exit.orderNo } : {}),
      reason: "lot-reconciled",
      ...(provisional.exit.operator ? { operator: provisional.exit.operator } : {}),
      ...(provisional.plate !== stay.plate ? { exitPlate: provisional.plate.slice(0, 32) } : {}),
      extra: {
        provisional: {
          recordNo: provisional.recordNo,
          takenFen: money.takenFen,
          dueFen: money.dueFen,
          refundOwedFen: money.refundOwedFen,
          writtenOffFen: money.writtenOffFen,
          ...(money.writtenOffFen > 0 ? { writeOffReason: "flat no-record amount taken while the lot was apart; the driver had left" } : {}),
        },
      },
    });
    await store.appendEvent({
      type: "lot-provisional-reconciled",
      laneId: provisional.exit.laneId,
      plate: stay.plate,
      recordNo: stay.recordNo,
      provisionalRecordNo: provisional.recordNo,
      ...money,
    });
  }

  /** No stay of the lot claimed it: its held reports go now, as an ordinary no-record exit (enter, then leave). */
  private async release(provisional: FinishedStay): Promise<void> {
    const { outbox, log } = this.options;
    const held = ["enter", "leave"].map((kind) => outbox.get(`${provisional.recordNo}:${kind}`)).filter((e): e is OutboxEntry => e !== undefined);
    await releaseHeld(outbox, held, "provisional exit released: no stay of the lot claimed it");
    this.counters.released++;
    await this.options.store.appendEvent({ type: "lot-provisional-released", laneId: provisional.exit.laneId, plate: provisional.plate, recordNo: provisional.recordNo });
    log.info({ recordNo: provisional.recordNo }, "provisional exit reported as a no-record exit");
  }

  /** The same plate in the park twice: each box ends the losers it entered itself. */
  private async endDuplicates(): Promise<void> {
    const { store, deviceId, lot } = this.options;
    // A stay made at an exit lane (a no-record exit's, while its car waits to pay) is no entry:
    // it must not push out the stay the car really entered with, which reconciliation finds.
    const exitLanes = new Set(lot.view.allBoxes().flatMap((box) => box.lanes.filter((l) => l.direction === "out").map((l) => `${box.deviceId}/${l.laneId}`)));
    const inPark = lot.view.inPark().filter((s) => !exitLanes.has(`${s.enterDeviceId}/${s.enterLaneId}`));
    for (const loser of duplicateLosers(inPark, this.options.duplicateEntry)) {
      if (loser.enterDeviceId !== deviceId) continue;
      const own = store.getInPark(loser.recordNo);
      if (!own || own.replicaOf || own.provisional) continue;
      await store.cancelStay(loser.recordNo, { reason: "lot-duplicate" });
      await store.appendEvent({ type: "lot-duplicate-ended", plate: loser.plate, recordNo: loser.recordNo });
      this.counters.duplicatesEnded++;
    }
  }
}
