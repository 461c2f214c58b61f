import { join } from "node:path";
import { z } from "zod";
import type { Clock } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import { DurableDoc } from "../store/durable-doc.js";
import type { LotStore } from "../store/lot-store.js";
import { formatWireTime } from "../platform/wire.js";
import { gatherSources, type RefundsView } from "./shift-sources.js";
import { buildShiftReport, totalsOf, type ReportContext, type ShiftReport, type ShiftTotals } from "./shift-report.js";

/**
 * The attendants' shifts: one open shift per box at a time, started and ended by a person, and
 * the report of every ended shift.
 *
 * On disk: `<store>/shifts.json` (a journaled DurableDoc) holds the open shift and a header of
 * each ended one (who, when, the headline totals, whether the report went to the fleet); the
 * full report of an ended shift is one durable line of the lot's history (`t: "shift"`), so it
 * is kept as long as the stays it sums and pruned with them. An open shift stays open across a
 * restart. Ending writes the report line first and then the header: a crash between the two
 * leaves the shift open, and ending it again writes a fresh line (the newest line wins).
 */

const SHIFTS_DOC_VERSION = 1;

const fen = z.int();
const totalsSchema = z.strictObject({
  cashCount: z.int().min(0),
  cashFen: fen,
  releases: z.int().min(0),
  releasesDueFen: fen,
  opens: z.int().min(0),
  refundsFoundCount: z.int().min(0),
  refundsFoundFen: fen,
  refundsOwedCount: z.int().min(0),
  refundsOwedFen: fen,
  refundedInShiftFen: fen,
  drawerFen: fen,
});

const openShiftSchema = z.strictObject({
  id: z.string().min(1),
  operator: z.string(),
  startedAtMs: z.int(),
});
export type OpenShift = z.infer<typeof openShiftSchema>;

const endedShiftSchema = openShiftSchema.extend({
  endedAtMs: z.int(),
  endedBy: z.string(),
  totals: totalsSchema,
  /** Handed to the fleet link's event spool (the link sends it when it can). */
  published: z.boolean(),
});
export type EndedShift = z.infer<typeof endedShiftSchema>;

const shiftsDocSchema = z.object({
  version: z.literal(SHIFTS_DOC_VERSION),
  seq: z.int().min(0),
  /** At most one entry, under the key "current". */
  open: z.record(z.string(), openShiftSchema),
  ended: z.record(z.string(), endedShiftSchema),
  /** Counter behind the shift ids. */
  counters: z.record(z.string(), z.int().min(0)),
});
type ShiftsDoc = z.infer<typeof shiftsDocSchema>;

export class ShiftErrorCode {
  static readonly AlreadyOpen = "E_SHIFT_OPEN";
  static readonly NoneOpen = "E_NO_OPEN_SHIFT";
  static readonly NotFound = "E_SHIFT_NOT_FOUND";
  static readonly ReportGone = "E_SHIFT_REPORT_GONE";
  static readonly NotStarted = "E_SHIFTS_NOT_STARTED";
}

export class ShiftError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ShiftBookOptions {
  dir: string;
  store: LotStore;
  refunds: RefundsView;
  context: ReportContext;
  clock: Clock;
  log: Logger;
  /** Ended shift headers kept (the oldest go first). Default 2000: about two years of three shifts a day. */
  keepEnded?: number;
}

export type ShiftEndedListener = (report: ShiftReport, header: EndedShift) => void;

const CURRENT = "current";

export class ShiftBook implements Component {
  readonly name = "shifts";
  private readonly doc: DurableDoc<ShiftsDoc>;
  private readonly listeners = new Set<ShiftEndedListener>();
  private open = false;
  /** Start and end one at a time: two presses of "end" must not write two reports. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ShiftBookOptions) {
    this.doc = new DurableDoc<ShiftsDoc>({
      path: join(options.dir, "shifts.json"),
      schema: shiftsDocSchema,
      version: SHIFTS_DOC_VERSION,
      initial: () => ({ version: SHIFTS_DOC_VERSION, seq: 0, open: {}, ended: {}, counters: {} }),
      journal: true,
      clock: options.clock,
      log: options.log,
    });
  }

  async start(): Promise<void> {
    await this.doc.open();
    this.open = true;
    const current = this.current();
    if (current) this.options.log.info({ shiftId: current.id, operator: current.operator }, "shift still open from before the restart");
    // Reports a stop or a crash kept from the fleet go now (the link started before us).
    for (const header of this.endedList()
      .filter((h) => !h.published)
      .reverse()) {
      // A report that cannot be read now is announced at the next start (it stays unpublished).
      const report = await this.report(header.id).catch(() => undefined);
      if (report) this.announce(report, header);
    }
  }

  async stop(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    // Only waits for queued work to settle; each step's failure went to its own caller.
    await this.chain.catch(() => undefined);
    await this.doc.close();
  }

  /** Called with every ended shift's report, and at start for those not yet handed to the fleet. */
  onEnded(listener: ShiftEndedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  current(): OpenShift | undefined {
    const shift = this.doc.data.open[CURRENT];
    return shift ? { ...shift } : undefined;
  }

  /** Starts a shift; refused (E_SHIFT_OPEN) while one is open: the attendant ends it first, so no report is cut short by accident. */
  startShift(operator: string): Promise<OpenShift> {
    return this.serial(async () => {
      this.ensureOpen();
      const open = this.current();
      if (open) throw new ShiftError(ShiftErrorCode.AlreadyOpen, `shift ${open.id} of ${open.operator} is open since ${this.lotTime(open.startedAtMs)}; end it first`);
      const startedAtMs = this.options.clock.now();
      const n = (this.doc.data.counters.shift ?? 0) + 1;
      const shift: OpenShift = { id: `${this.lotTime(startedAtMs).replace(/\D/g, "")}-${n}`, operator, startedAtMs };
      this.doc.set("counters", "shift", n);
      this.doc.set("open", CURRENT, shift);
      await this.doc.commit();
      this.options.log.info({ shiftId: shift.id, operator }, "shift started");
      return { ...shift };
    });
  }

  /** Ends the open shift: its report is written durably, then the shift is closed and the report announced. */
  endShift(endedBy: string | undefined): Promise<{ header: EndedShift; report: ShiftReport }> {
    return this.serial(async () => {
      this.ensureOpen();
      const open = this.current();
      if (!open) throw new ShiftError(ShiftErrorCode.NoneOpen, "no shift is open");
      const endedAtMs = Math.max(this.options.clock.now(), open.startedAtMs);
      const by = endedBy ?? open.operator;
      const report = await this.compute(open, endedAtMs, by);
      await this.options.store.history.append({ t: "shift", atMs: endedAtMs, shiftId: open.id, report }, true);
      const header: EndedShift = { ...open, endedAtMs, endedBy: by, totals: totalsOf(report), published: false };
      this.doc.del("open", CURRENT);
      this.doc.set("ended", open.id, header);
      this.trim();
      await this.doc.commit();
      this.options.log.info({ shiftId: open.id, operator: open.operator, endedBy: by, totals: header.totals }, "shift ended");
      this.announce(report, header);
      return { header: { ...header }, report };
    });
  }

  /** The open shift with its running report (up to now), or undefined. */
  async running(): Promise<ShiftReport | undefined> {
    this.ensureOpen();
    const open = this.current();
    return open ? this.compute(open, null, undefined) : undefined;
  }

  /** Ended shifts, newest first; optionally only those that started in [fromMs, toMs). */
  endedList(filter: { fromMs?: number; toMs?: number } = {}): EndedShift[] {
    return Object.values(this.doc.data.ended)
      .filter((h) => (filter.fromMs === undefined || h.startedAtMs >= filter.fromMs) && (filter.toMs === undefined || h.startedAtMs < filter.toMs))
      .sort((a, b) => b.startedAtMs - a.startedAtMs || (a.id < b.id ? 1 : -1))
      .map((h) => structuredClone(h));
  }

  /** The report of a shift: the open one computed now, an ended one as it was written when it ended. */
  async report(id: string): Promise<ShiftReport> {
    this.ensureOpen();
    const open = this.current();
    if (open && open.id === id) return this.compute(open, null, undefined);
    const header = this.doc.data.ended[id];
    if (!header) throw new ShiftError(ShiftErrorCode.NotFound, `no shift ${id}`);
    const lines = await this.options.store.history.recent((line) => line.t === "shift" && line.shiftId === id, {
      limit: 1,
      sinceMs: header.endedAtMs,
      prefilter: `"shiftId":${JSON.stringify(id)}`,
    });
    const report = lines[0]?.report as ShiftReport | undefined;
    if (!report) throw new ShiftError(ShiftErrorCode.ReportGone, `the report of shift ${id} is no longer in the history (pruned); its totals are in the shift list`);
    return report;
  }

  /** Marks an ended shift's report as handed to the fleet (written with the next batch). */
  markPublished(id: string): void {
    const header = this.doc.data.ended[id];
    if (!this.open || !header || header.published) return;
    this.doc.set("ended", id, { ...header, published: true });
    this.doc.commitLater();
  }

  status(): { open: OpenShift | null; ended: number; lastEnded: { id: string; endedAtMs: number; totals: ShiftTotals } | null } {
    if (!this.open) return { open: null, ended: 0, lastEnded: null };
    const last = this.endedList()[0];
    return {
      open: this.current() ?? null,
      ended: Object.keys(this.doc.data.ended).length,
      lastEnded: last ? { id: last.id, endedAtMs: last.endedAtMs, totals: last.totals } : null,
    };
  }

  lotTime(atMs: number): string {
    return formatWireTime(atMs, this.options.context.lot.timeZone);
  }

  private async compute(open: OpenShift, endedAtMs: number | null, endedBy: string | undefined): Promise<ShiftReport> {
    const asOfMs = endedAtMs ?? Math.max(this.options.clock.now() + 1, open.startedAtMs);
    const sources = await gatherSources(this.options.store, this.options.refunds, open.startedAtMs);
    return buildShiftReport({ shiftId: open.id, operator: open.operator, startedAtMs: open.startedAtMs, endedAtMs, endedBy, asOfMs }, sources, this.options.context);
  }

  private announce(report: ShiftReport, header: EndedShift): void {
    for (const listener of this.listeners) {
      try {
        listener(report, header);
      } catch (error) {
        this.options.log.error({ err: error, shiftId: header.id }, "shift report listener failed");
      }
    }
  }

  private trim(): void {
    const keep = this.options.keepEnded ?? 2000;
    const all = this.endedList();
    for (const old of all.slice(keep)) this.doc.del("ended", old.id);
  }

  private ensureOpen(): void {
    if (!this.open) throw new ShiftError(ShiftErrorCode.NotStarted, "the shift book is not open (starting or stopping)");
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    // Keeps the queue going after a failed step; the caller gets that failure through `next`.
    this.chain = next.catch(() => undefined);
    return next;
  }
}
