import { join } from "node:path";
import { z } from "zod";
import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import { DurableDoc } from "../store/durable-doc.js";
import type { OutboxSender } from "../outbox/outbox.js";
import { formatWireTime } from "../platform/wire.js";

/**
 * The refunds the lot owes its drivers: a stay paid twice (cash taken while the platform could
 * not be asked, then the platform's 200 for the same bill; or two bills of one car both
 * collected online). Each entry is durable before it is announced, survives restarts, and is
 * shaped so an attendant's totals (a later shift report) can sum it: amounts in fen, who owes
 * it (`refundVia`), when it was found and when it was paid back.
 */

const fen = z.int().min(0);
const ms = z.number().int();

const paymentSchema = z.strictObject({
  /** 4 cash, else the platform's payType. */
  payType: z.int().min(0),
  amountFen: fen,
  orderNo: z.string(),
  payTimeMs: ms.nullable(),
  /** Path of the payment: cash, platform, scanner. */
  path: z.string(),
  operator: z.string(),
  /** The pre-leave bill it paid (platform payments). */
  plateId: z.string().optional(),
});

export const refundEntrySchema = z.strictObject({
  id: z.string().min(1),
  /**
   * double-payment: a stay paid twice. provisional-overcharge: the flat no-record amount taken
   * while the lot was apart was more than the stay it turned out to be (src/lot/provisional-exits.ts);
   * `first` is that collection, `second` the part of it owed back.
   */
  kind: z.enum(["double-payment", "provisional-overcharge"]),
  laneId: z.string(),
  plate: z.string(),
  recordNo: z.string(),
  /** What the exit settled with first (the one the stay was reported with). */
  first: paymentSchema,
  /** The second collection, found afterwards. */
  second: paymentSchema,
  /** Owed back to the driver. */
  amountFen: fen,
  /** cash: the attendant hands back cash; platform: refunded through the platform. */
  refundVia: z.enum(["cash", "platform"]),
  foundAtMs: ms,
  state: z.enum(["owed", "refunded"]),
  refundedAtMs: ms.optional(),
  refundedBy: z.string().optional(),
});
export type RefundEntry = z.infer<typeof refundEntrySchema>;
export type RefundPayment = z.infer<typeof paymentSchema>;

const REFUNDS_DOC_VERSION = 1;
const refundsDocSchema = z.object({
  version: z.literal(REFUNDS_DOC_VERSION),
  seq: z.int().min(0),
  refunds: z.record(z.string(), refundEntrySchema),
});
type RefundsDoc = z.infer<typeof refundsDocSchema>;

export interface RefundTotals {
  owedCount: number;
  owedFen: number;
  /** Of what is owed, what the attendant pays back in cash. */
  owedCashFen: number;
  refundedCount: number;
  refundedFen: number;
}

export class RefundErrorCode {
  static readonly NotFound = "E_REFUND_NOT_FOUND";
  static readonly AlreadyRefunded = "E_REFUND_ALREADY_REFUNDED";
}

export class RefundError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The refunds-owed ledger, one journaled document `<store>/refunds.json`. */
export class RefundLedger {
  private readonly doc: DurableDoc<RefundsDoc>;
  private open = false;
  private markOpened: () => void = () => undefined;
  /** Resolves once the ledger is read (the report sender waits for it at boot). */
  readonly opened: Promise<void> = new Promise((resolve) => (this.markOpened = resolve));

  constructor(
    dir: string,
    private readonly clock: Clock,
    log: Logger,
  ) {
    this.doc = new DurableDoc<RefundsDoc>({
      path: join(dir, "refunds.json"),
      schema: refundsDocSchema,
      version: REFUNDS_DOC_VERSION,
      initial: () => ({ version: REFUNDS_DOC_VERSION, seq: 0, refunds: {} }),
      journal: true,
      clock,
      log,
    });
  }

  async start(): Promise<void> {
    await this.doc.open();
    this.open = true;
    this.markOpened();
  }

  async stop(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.doc.close();
  }

  /** Adds an entry durably; the same id twice keeps the first (a repeated answer is one refund). */
  async add(entry: Omit<RefundEntry, "state" | "foundAtMs"> & { foundAtMs?: number }): Promise<{ entry: RefundEntry; added: boolean }> {
    const prior = this.doc.data.refunds[entry.id];
    if (prior) return { entry: structuredClone(prior), added: false };
    const full = refundEntrySchema.parse({ ...entry, foundAtMs: entry.foundAtMs ?? this.clock.now(), state: "owed" });
    this.doc.set("refunds", full.id, full);
    await this.doc.commit();
    return { entry: structuredClone(full), added: true };
  }

  /** Marks an owed refund as paid back (by whom), durably. */
  async markRefunded(id: string, operator: string): Promise<RefundEntry> {
    const prior = this.doc.data.refunds[id];
    if (!prior) throw new RefundError(RefundErrorCode.NotFound, `no refund ${id}`);
    if (prior.state === "refunded") throw new RefundError(RefundErrorCode.AlreadyRefunded, `refund ${id} was paid back already`);
    const next: RefundEntry = { ...prior, state: "refunded", refundedAtMs: this.clock.now(), refundedBy: operator };
    this.doc.set("refunds", id, next);
    await this.doc.commit();
    return structuredClone(next);
  }

  /** Entries, newest first; optionally only one state or those found in [fromMs, toMs). */
  list(filter: { state?: RefundEntry["state"]; fromMs?: number; toMs?: number } = {}): RefundEntry[] {
    return Object.values(this.doc.data.refunds)
      .filter(
        (e) =>
          (filter.state === undefined || e.state === filter.state) &&
          (filter.fromMs === undefined || e.foundAtMs >= filter.fromMs) &&
          (filter.toMs === undefined || e.foundAtMs < filter.toMs),
      )
      .sort((a, b) => b.foundAtMs - a.foundAtMs || (a.id < b.id ? -1 : 1))
      .map((e) => structuredClone(e));
  }

  /** The first double payment found for a stay, if any (the one its exit report carries). */
  forRecord(recordNo: string): RefundEntry | undefined {
    let first: RefundEntry | undefined;
    for (const e of Object.values(this.doc.data.refunds)) {
      // An overcharge is no second payment: the exit report carries no double-payment fields for it.
      if (e.recordNo !== recordNo || e.kind !== "double-payment") continue;
      if (!first || e.foundAtMs < first.foundAtMs || (e.foundAtMs === first.foundAtMs && e.id < first.id)) first = e;
    }
    return first ? structuredClone(first) : undefined;
  }

  totals(entries: readonly RefundEntry[] = this.list()): RefundTotals {
    const totals: RefundTotals = { owedCount: 0, owedFen: 0, owedCashFen: 0, refundedCount: 0, refundedFen: 0 };
    for (const e of entries) {
      if (e.state === "owed") {
        totals.owedCount++;
        totals.owedFen += e.amountFen;
        if (e.refundVia === "cash") totals.owedCashFen += e.amountFen;
      } else {
        totals.refundedCount++;
        totals.refundedFen += e.amountFen;
      }
    }
    return totals;
  }
}

/** The exit report's [OURS] double-payment fields (docs/protocol.md 3.2) for a refund entry. */
export function doublePaymentFields(entry: RefundEntry, timeZone: string): Record<string, number | string> {
  return {
    doublePaid: 1,
    secondPayType: entry.second.payType,
    secondPaidFee: entry.second.amountFen,
    secondOrderNo: entry.second.orderNo,
    secondPayTime: entry.second.payTimeMs === null ? "" : formatWireTime(entry.second.payTimeMs, timeZone),
    refundFee: entry.amountFen,
  };
}

/**
 * The outbox's sender with every exit report completed from the ledger as it goes out: a
 * second payment heard after the car left (a late 200 within its bill's late-answer window,
 * while the report waits out that window: notBeforeMs) is in the report the platform gets,
 * although the queued copy was written before it. The ledger is durable, so a report re-sent
 * after a restart says the same. A report that already carries the fields is left as it is.
 */
export function withDoublePaymentFields(send: OutboxSender, ledger: RefundLedger, timeZone: string): OutboxSender {
  return async (entry, options) => {
    if (entry.kind !== "leave" || entry.biz.doublePaid !== undefined) return send(entry, options);
    await ledger.opened;
    const doubly = ledger.forRecord(entry.recordNo);
    return send(doubly ? { ...entry, biz: { ...entry.biz, ...doublePaymentFields(doubly, timeZone) } } : entry, options);
  };
}
