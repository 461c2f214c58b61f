import { join } from "node:path";
import { DAY_MS } from "../core/time/zone.js";
import type { TimerHandle } from "../kernel/clock.js";
import { Collection, type Page, type PageRequest, type WriteOptions } from "./collection.js";
import { ChangeNotices, type ChangeSource } from "./change-notices.js";
import { DurableDoc } from "./durable-doc.js";
import { StoreError, StoreErrorCode, storeErrorFromFs, type StoreAlarm } from "./errors.js";
import { DEFAULT_CLOCK_FLOOR_MS, type History, type HistoryLine } from "./history.js";
import { PlateIndex } from "./plate-index.js";
import {
  INPARK_DOC_VERSION,
  couponSchema,
  exitInfoSchema,
  finishedStaySchema,
  inParkDocSchema,
  inParkRecordSchema,
  paymentSchema,
  type Coupon,
  type ExitInfoInput,
  type FinishedStay,
  type InParkDoc,
  type InParkRecord,
  type InParkRecordInput,
  type Payment,
  type PaymentInput,
} from "./records.js";
import type { StorePart } from "./store-part.js";

/*
 * The stays: `inpark.json` (in-park records, stays being finished, payments received) and
 * the finished stays and events in the history. Everything here that a car's passage
 * depends on is durable before the method resolves; the lane moves the barrier after that.
 */

export interface StaysOptions {
  /** The removal of a finished stay from inpark.json is batched within this. Default 1 s. */
  inParkFlushMs?: number;
  /** Retry period for a failed history append. Default 5 s. */
  retryMs?: number;
  /** Payments are remembered (for idempotency on orderNo) this long. Default 90 days. */
  paymentRetentionDays?: number;
  clockFloorMs?: number;
}

export interface PaymentResult {
  /** The orderNo was already recorded; nothing changed. */
  duplicate: boolean;
  payment: Payment;
  /** The in-park stay the payment was applied to as a prepayment, if any. */
  appliedTo?: string;
}

/**
 * A change of the in-park set, told after its write was committed. `source` says who made
 * it: "local" (the lanes, the platform, an operator at this box) or "lot" (a replica of
 * another box's stay applied with upsertReplica / removeReplica), so a listener that shares
 * the stays with other boxes publishes only its own changes and never echoes theirs.
 */
export type InParkChange =
  | { kind: "upsert"; source: InParkChangeSource; record: InParkRecord }
  | { kind: "finished"; source: InParkChangeSource; stay: FinishedStay }
  | { kind: "removed"; source: InParkChangeSource; recordNo: string };
export type InParkChangeSource = ChangeSource;

export class Stays {
  readonly doc: DurableDoc<InParkDoc>;
  readonly inPark: Collection<InParkRecord, InParkRecordInput, InParkDoc>;
  readonly payments: Collection<Payment, PaymentInput, InParkDoc>;
  /** The last event line waiting for an in-park commit before it is appended (appendEvent). */
  private eventTail: Promise<void> | undefined;
  private historyAlarm: StoreAlarm | null = null;
  private historyRetry: TimerHandle | undefined;
  private readonly byPlate = new PlateIndex(
    () => this.inPark.keys(),
    (recordNo) => this.inPark.get(recordNo)?.plate,
  );
  /** The in-park changes told after their commits, with who made them (replica writes are the lot's). */
  private readonly notices: ChangeNotices<string, InParkChange>;

  constructor(
    private readonly part: StorePart,
    private readonly history: History,
    private readonly options: StaysOptions = {},
  ) {
    this.doc = new DurableDoc<InParkDoc>({
      ...part.docOptions,
      path: join(part.dir, "inpark.json"),
      schema: inParkDocSchema,
      version: INPARK_DOC_VERSION,
      initial: () => ({ version: INPARK_DOC_VERSION, seq: 0, inPark: {}, finishing: {}, payments: {} }),
      flushIntervalMs: options.inParkFlushMs ?? 1000,
      journal: true,
    });
    this.notices = new ChangeNotices(
      this.doc,
      (recordNo: string, source): InParkChange => {
        const record = this.inPark.get(recordNo);
        const finishing = this.doc.data.finishing[recordNo];
        return record ? { kind: "upsert", source, record } : finishing ? { kind: "finished", source, stay: finishing } : { kind: "removed", source, recordNo };
      },
      (recordNo) => recordNo,
      part.log,
    );
    this.inPark = new Collection(
      "inPark",
      this.doc,
      "inPark",
      inParkRecordSchema,
      (r) => r.recordNo,
      (key, before, after) => {
        this.byPlate.change(key, before?.plate, after?.plate);
        if (key === undefined) for (const k of Object.keys(this.doc.data.inPark)) this.changed(k);
        else this.changed(key);
      },
    );
    this.payments = new Collection("payments", this.doc, "payments", paymentSchema, (p) => p.orderNo);
  }

  /** Builds the in-park plate index in the background, a slice at a time. */
  warmIndexes(): Promise<void> {
    return this.byPlate.warm();
  }

  /**
   * After the document and the history opened: forgets payments past their retention and
   * finishes the stays a crash left half-moved into history.
   */
  async recover(): Promise<void> {
    this.byPlate.reset();
    // Payments are remembered for idempotency; forget old ones, but never by a wrong clock.
    const now = this.part.clock.now();
    if (now >= (this.options.clockFloorMs ?? DEFAULT_CLOCK_FLOOR_MS)) {
      const cutoff = now - (this.options.paymentRetentionDays ?? 90) * DAY_MS;
      let dropped = 0;
      for (const [orderNo, p] of Object.entries(this.doc.data.payments)) {
        if (p.receivedAtMs < cutoff) {
          this.doc.del("payments", orderNo);
          dropped++;
        }
      }
      if (dropped > 0) this.doc.commitLater();
    }

    const finishing = Object.values(this.doc.data.finishing);
    if (finishing.length > 0) {
      this.part.log?.info({ stays: finishing.length }, "moving stays finished before the last stop into history");
      await this.moveToHistory(finishing);
    }
  }

  /** Stops the history retry and closes the document; event lines still waiting go in first. */
  async close(): Promise<void> {
    if (this.historyRetry) this.part.clock.clearTimeout(this.historyRetry);
    this.historyRetry = undefined;
    await this.doc.close();
  }

  /** Event lines still waiting for an in-park commit (to await before the history closes). */
  async eventsWritten(): Promise<void> {
    // Only waiting: each event line's error went to the caller that appended it.
    await this.eventTail?.catch(() => undefined);
  }

  alarm(): StoreAlarm | null {
    return this.historyAlarm;
  }

  finishingCount(): number {
    return Object.keys(this.doc.data.finishing).length;
  }

  // ---- in-park records ----------------------------------------------------------------

  /** A new stay; durable when it resolves. E_STORE_DUPLICATE if the recordNo is known. */
  async add(record: InParkRecordInput): Promise<InParkRecord> {
    this.part.ensureOpen();
    if (Object.hasOwn(this.doc.data.finishing, record.recordNo)) {
      throw new StoreError(StoreErrorCode.Duplicate, `stay ${record.recordNo} already exists (finished)`);
    }
    return this.inPark.insert(record);
  }

  /** In-park stays of a plate, exact after normalisation (fuzzy matching is the lane's). */
  findByPlate(plate: string): InParkRecord[] {
    return this.byPlate
      .keys(plate)
      .map((k) => this.inPark.get(k))
      .filter((r): r is InParkRecord => !!r);
  }

  list(filter?: (record: InParkRecord) => boolean, page?: PageRequest): Page<InParkRecord> {
    return this.inPark.list(filter, page);
  }

  update(recordNo: string, patch: Partial<InParkRecord>, options: WriteOptions = {}): Promise<InParkRecord> {
    this.part.ensureOpen();
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
  async finish(recordNo: string, exit: ExitInfoInput): Promise<FinishedStay> {
    this.part.ensureOpen();
    const data = this.doc.data;
    let stay = data.finishing[recordNo];
    if (!stay) {
      const record = data.inPark[recordNo];
      if (!record) throw new StoreError(StoreErrorCode.NotFound, `no in-park stay ${recordNo}`);
      const parsedExit = exitInfoSchema.safeParse(exit);
      if (!parsedExit.success) {
        throw new StoreError(StoreErrorCode.Invalid, `exit of ${recordNo}: ${parsedExit.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      }
      stay = finishedStaySchema.parse({ ...record, exit: parsedExit.data, finishedAtMs: this.part.clock.now() });
      this.doc.del("inPark", recordNo);
      this.doc.set("finishing", recordNo, stay);
      this.byPlate.change(recordNo, record.plate, undefined);
      this.changed(recordNo);
      await this.doc.commit();
    }
    await this.moveToHistory([stay]);
    return stay;
  }

  /** A stay that never happened (the car backed out): ends it with reason "cancelled". */
  cancel(recordNo: string, details: { reason?: string; operator?: string; atMs?: number } = {}): Promise<FinishedStay> {
    const record = this.inPark.get(recordNo);
    return this.finish(recordNo, {
      laneId: record?.laneId ?? "",
      leaveAtMs: details.atMs ?? this.part.clock.now(),
      reason: details.reason ?? "cancelled",
      ...(details.operator !== undefined ? { operator: details.operator } : {}),
    });
  }

  /** Grants a coupon to an in-park stay; idempotent on couponId. */
  async addCoupon(recordNo: string, coupon: Omit<Coupon, "grantedAtMs"> & { grantedAtMs?: number }): Promise<InParkRecord> {
    this.part.ensureOpen();
    const record = this.inPark.get(recordNo);
    if (!record) throw new StoreError(StoreErrorCode.NotFound, `no in-park stay ${recordNo}`);
    if (record.coupons.some((c) => c.couponId === coupon.couponId)) return record;
    const parsed = couponSchema.safeParse({ grantedAtMs: this.part.clock.now(), ...coupon });
    if (!parsed.success) throw new StoreError(StoreErrorCode.Invalid, `coupon: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    return this.inPark.patch(recordNo, { coupons: [...record.coupons, parsed.data] });
  }

  /**
   * Records a payment; idempotent on `orderNo` (a repeated notice changes nothing and says
   * so). When a "stay" payment names an in-park stay (recordNo, else the only stay of its plate) it is
   * also added to that stay's prepayments, in the same durable write. Reply 200 to the
   * platform only after this resolves (docs/protocol.md §4.2).
   */
  async recordPayment(input: Omit<PaymentInput, "receivedAtMs"> & { receivedAtMs?: number }): Promise<PaymentResult> {
    this.part.ensureOpen();
    const existing = this.payments.get(input.orderNo);
    if (existing) return { duplicate: true, payment: existing };
    const payment = this.payments.parse({ receivedAtMs: this.part.clock.now(), ...input });
    let stay: InParkRecord | undefined;
    // A monthly fee, a group recharge or a refund names the car, never pays for its stay.
    if (payment.kind !== "stay") stay = undefined;
    else if (payment.recordNo) stay = this.inPark.get(payment.recordNo);
    else if (payment.plate) {
      const stays = this.findByPlate(payment.plate);
      if (stays.length === 1) stay = stays[0];
    }
    this.doc.set("payments", payment.orderNo, payment);
    if (stay && !stay.prepayments.some((p) => p.orderNo === payment.orderNo)) {
      this.changed(stay.recordNo);
      this.doc.set("inPark", stay.recordNo, {
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
    await this.doc.commit();
    return { duplicate: false, payment, ...(stay ? { appliedTo: stay.recordNo } : {}) };
  }

  // ---- the lot's replicas and the change notification ---------------------------------

  /**
   * Listens to in-park changes; told once per stay per commit, after the commit (a change
   * is never told before it is durable, unless the disk refused it: then it is told as the
   * store holds it in memory). Returns the unsubscribe function.
   */
  onChange(listener: (change: InParkChange) => void): () => void {
    return this.notices.listen(listener);
  }

  /**
   * Writes another box's version of a stay into the in-park set, durably, without a change
   * told as "local" (no platform report, no re-publishing). A replica holds no pending exit or
   * settlement of the other box's lane (this box's recovery must not act on them); its entry
   * report is the other box's to send ("delivered" once the lot says it was, else "queued"). A stay of this box's own
   * keeps its local fields and takes the other box's edits (plate, entry time, types, payments,
   * coupons).
   */
  async upsertReplica(record: InParkRecord, replicaOf: NonNullable<InParkRecord["replicaOf"]>): Promise<InParkRecord> {
    this.part.ensureOpen();
    if (Object.hasOwn(this.doc.data.finishing, record.recordNo)) return this.doc.data.finishing[record.recordNo]!;
    const current = this.inPark.get(record.recordNo);
    const { pendingExit: _pendingExit, replicaOf: _replicaOf, extra, ...fields } = record;
    const { settlement: _settlement, ...extraKept } = extra ?? {};
    const next: InParkRecordInput =
      current && !current.replicaOf
        ? {
            ...current,
            plate: fields.plate,
            plateColor: fields.plateColor,
            enterAtMs: fields.enterAtMs,
            vehicleType: fields.vehicleType,
            carType: fields.carType,
            carSubType: fields.carSubType,
            inChannelId: fields.inChannelId,
            operator: fields.operator,
            updatedAtMs: fields.updatedAtMs,
            prepayments: fields.prepayments,
            coupons: fields.coupons,
          }
        : {
            ...fields,
            // Once the lot said the entering box's entry report was delivered, it stays so (a
            // later version from a box that had not heard yet does not take it back).
            entryReport: fields.entryReport === "delivered" || current?.entryReport === "delivered" ? "delivered" : "queued",
            replicaOf,
            ...(Object.keys(extraKept).length > 0 ? { extra: extraKept } : {}),
          };
    return this.asReplicaWrite(() => this.inPark.put(next));
  }

  /**
   * Removes a stay another box finished (or a replica it withdrew) from the in-park set,
   * durably, without history (the finishing box keeps it) and without a "local" change.
   * False when the stay is not here.
   */
  removeReplica(recordNo: string): Promise<boolean> {
    this.part.ensureOpen();
    return this.asReplicaWrite(() => this.inPark.delete(recordNo));
  }

  private asReplicaWrite<T>(write: () => Promise<T>): Promise<T> {
    return this.notices.fromLot(write);
  }

  private changed(recordNo: string): void {
    this.notices.changed(recordNo);
  }

  // ---- history ------------------------------------------------------------------------

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
    this.part.ensureOpen();
    const { type, ...rest } = event;
    const atMs = this.part.clock.now();
    // After the in-park commits in flight: an event line is not durable, and its write beside
    // a decision's fsync would only slow that fsync (one car waits on it, nobody on the line).
    // A line that comes while earlier ones wait queues behind them: the history keeps order.
    const commits = this.doc.commitsInFlight();
    const before = this.eventTail;
    if (!commits && !before) return this.history.append({ t: "event", atMs, type, ...rest }, false);
    const line = (async () => {
      // Only keeping the order: the earlier line's error went to its own caller.
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

  private async moveToHistory(stays: FinishedStay[]): Promise<void> {
    const lines: HistoryLine[] = stays.map((stay) => ({ t: "stay", atMs: stay.exit.leaveAtMs, recordNo: stay.recordNo, plate: stay.plate, stay }));
    try {
      await this.history.appendMany(lines, true);
    } catch (error) {
      const cause = storeErrorFromFs(error, this.history.dir, "appending finished stays");
      if (!this.historyAlarm) {
        this.historyAlarm = { code: cause.code, message: `${cause.message}; finished stays are kept in inpark.json until history accepts them`, sinceMs: this.part.clock.now() };
        this.part.log?.error({ err: cause }, "history append failed; retrying");
      }
      this.scheduleHistoryRetry();
      return;
    }
    if (this.historyAlarm) {
      this.part.log?.info("history appends recovered");
      this.historyAlarm = null;
    }
    for (const stay of stays) this.doc.del("finishing", stay.recordNo);
    this.doc.commitLater();
  }

  private scheduleHistoryRetry(): void {
    if (this.historyRetry || !this.part.isOpen()) return;
    this.historyRetry = this.part.clock.setTimeout(() => {
      this.historyRetry = undefined;
      const pending = Object.values(this.doc.data.finishing);
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
