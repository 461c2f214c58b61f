/**
 * The shift report, pure: what one attendant's shift took and let through, built from items the
 * box already keeps durably (settled stays, the audit trail, the refunds ledger) and a time
 * window. No clock, no IO: the book (shift-book.ts) gathers the items, this file only sorts them
 * into the window and sums them, so every total is the sum of the items listed beside it.
 *
 * An item belongs to the shift whose window [startedAtMs, endedAtMs) holds its time: shifts
 * follow each other, so an item is in exactly one of them (or in none, between shifts).
 */

/** Cash taken at an exit (a stay settled with pay type 4). */
export interface CashItem {
  recordNo: string;
  plate: string;
  laneId: string;
  amountFen: number;
  /** When the cash was taken (the settlement's pay time). */
  atMs: number;
  operator: string;
  orderNo: string;
  /** cash: the attendant's button; cash-fallback: the platform could not take the bill. */
  path: string;
}

/** An exit let out by hand with nothing collected (leaveNotify releaseType 3). */
export interface ReleaseItem {
  recordNo: string;
  plate: string;
  laneId: string;
  atMs: number;
  operator: string;
  /** As typed by the attendant (the audit trail); "" when the audit line was not kept. */
  reason: string;
  /** What the bill still asked for when the car was let out. */
  dueFen: number;
}

/** A barrier opened by hand (API, fleet, the booth button, the platform's manual raise). */
export interface OpenItem {
  laneId: string;
  atMs: number;
  operator: string;
  reason: string;
  plate: string;
}

/** A refund from the ledger, as far as the report needs it. */
export interface RefundSource {
  id: string;
  laneId: string;
  plate: string;
  recordNo: string;
  amountFen: number;
  refundVia: "cash" | "platform";
  foundAtMs: number;
  refundedAtMs?: number | undefined;
  refundedBy?: string | undefined;
}

export interface RefundItem extends RefundSource {
  /** Still owed at the end of the window (at the time of asking, for an open shift). */
  owedAtEnd: boolean;
  /** Paid back during this shift. */
  refundedInShift: boolean;
}

export interface FenTotal {
  count: number;
  totalFen: number;
}

export interface ShiftWindow {
  shiftId: string;
  operator: string;
  startedAtMs: number;
  /** null while the shift is open. */
  endedAtMs: number | null;
  endedBy?: string | undefined;
  /** The end of the window: endedAtMs, or the moment of asking while open. */
  asOfMs: number;
}

export interface ShiftReport {
  v: 1;
  shiftId: string;
  deviceId: string;
  lot: { name: string; parkCode: string; timeZone: string };
  operator: string;
  endedBy?: string | undefined;
  startedAtMs: number;
  endedAtMs: number | null;
  asOfMs: number;
  cash: FenTotal & { lanes: Array<FenTotal & { laneId: string }>; items: CashItem[] };
  releases: { count: number; dueFen: number; lanes: Array<{ laneId: string; count: number; dueFen: number }>; items: ReleaseItem[] };
  opens: { count: number; lanes: Array<{ laneId: string; count: number }>; items: OpenItem[] };
  refunds: {
    /** Found during the shift (paid twice within it). */
    found: FenTotal & { items: RefundItem[] };
    /** Found before the shift and still owed when it began. */
    carried: FenTotal & { items: RefundItem[] };
    /** Of found and carried, what is still owed at the end; `cashFen` the part paid back in cash. */
    owedAtEnd: FenTotal & { cashFen: number };
    /** Of found and carried, what was paid back during the shift. */
    refundedInShift: FenTotal & { cashFen: number };
  };
  /** The cash the drawer should hold: cash taken less cash refunds handed back during the shift. */
  drawerFen: number;
}

export interface ReportSources {
  cash: readonly CashItem[];
  releases: readonly ReleaseItem[];
  opens: readonly OpenItem[];
  refunds: readonly RefundSource[];
}

export interface ReportContext {
  deviceId: string;
  lot: { name: string; parkCode: string; timeZone: string };
  /** The configured lanes, listed in the per-lane totals even when nothing happened on them. */
  laneIds: readonly string[];
}

/** Whether `atMs` lies in the shift's window [startedAtMs, asOfMs). */
export function inWindow(window: Pick<ShiftWindow, "startedAtMs" | "asOfMs">, atMs: number): boolean {
  return atMs >= window.startedAtMs && atMs < window.asOfMs;
}

export function buildShiftReport(window: ShiftWindow, sources: ReportSources, context: ReportContext): ShiftReport {
  const byTime = <T extends { atMs: number }>(items: readonly T[]): T[] => items.filter((item) => inWindow(window, item.atMs)).sort((a, b) => a.atMs - b.atMs);
  const cash = byTime(sources.cash);
  const releases = byTime(sources.releases);
  const opens = byTime(sources.opens);

  const laneIds = [...new Set([...context.laneIds, ...cash.map((i) => i.laneId), ...releases.map((i) => i.laneId), ...opens.map((i) => i.laneId)])];
  const end = window.asOfMs;
  const refundItem = (r: RefundSource): RefundItem => ({
    ...r,
    owedAtEnd: r.refundedAtMs === undefined || r.refundedAtMs >= end,
    refundedInShift: r.refundedAtMs !== undefined && inWindow(window, r.refundedAtMs),
  });
  const byFound = (a: RefundSource, b: RefundSource) => a.foundAtMs - b.foundAtMs || (a.id < b.id ? -1 : 1);
  const found = sources.refunds
    .filter((r) => inWindow(window, r.foundAtMs))
    .sort(byFound)
    .map(refundItem);
  // Owed when the shift began: found earlier and not paid back before the start.
  const carried = sources.refunds
    .filter((r) => r.foundAtMs < window.startedAtMs && (r.refundedAtMs === undefined || r.refundedAtMs >= window.startedAtMs))
    .sort(byFound)
    .map(refundItem);
  const both = [...found, ...carried];
  const owed = both.filter((r) => r.owedAtEnd);
  const refunded = both.filter((r) => r.refundedInShift);
  const cashFen = (items: readonly RefundItem[]) => sum(items.filter((r) => r.refundVia === "cash").map((r) => r.amountFen));
  const refundedInShift = { count: refunded.length, totalFen: sum(refunded.map((r) => r.amountFen)), cashFen: cashFen(refunded) };
  const cashTotalFen = sum(cash.map((i) => i.amountFen));

  return {
    v: 1,
    shiftId: window.shiftId,
    deviceId: context.deviceId,
    lot: { ...context.lot },
    operator: window.operator,
    ...(window.endedBy === undefined ? {} : { endedBy: window.endedBy }),
    startedAtMs: window.startedAtMs,
    endedAtMs: window.endedAtMs,
    asOfMs: window.asOfMs,
    cash: {
      count: cash.length,
      totalFen: cashTotalFen,
      lanes: laneIds.map((laneId) => {
        const mine = cash.filter((i) => i.laneId === laneId);
        return { laneId, count: mine.length, totalFen: sum(mine.map((i) => i.amountFen)) };
      }),
      items: cash,
    },
    releases: {
      count: releases.length,
      dueFen: sum(releases.map((i) => i.dueFen)),
      lanes: laneIds.map((laneId) => {
        const mine = releases.filter((i) => i.laneId === laneId);
        return { laneId, count: mine.length, dueFen: sum(mine.map((i) => i.dueFen)) };
      }),
      items: releases,
    },
    opens: {
      count: opens.length,
      lanes: laneIds.map((laneId) => ({ laneId, count: opens.filter((i) => i.laneId === laneId).length })),
      items: opens,
    },
    refunds: {
      found: { count: found.length, totalFen: sum(found.map((r) => r.amountFen)), items: found },
      carried: { count: carried.length, totalFen: sum(carried.map((r) => r.amountFen)), items: carried },
      owedAtEnd: { count: owed.length, totalFen: sum(owed.map((r) => r.amountFen)), cashFen: cashFen(owed) },
      refundedInShift,
    },
    drawerFen: cashTotalFen - refundedInShift.cashFen,
  };
}

/** The headline figures of a report (kept with every ended shift and listed by GET /api/shifts). */
export interface ShiftTotals {
  cashCount: number;
  cashFen: number;
  releases: number;
  releasesDueFen: number;
  opens: number;
  refundsFoundCount: number;
  refundsFoundFen: number;
  refundsOwedCount: number;
  refundsOwedFen: number;
  refundedInShiftFen: number;
  drawerFen: number;
}

export function totalsOf(report: ShiftReport): ShiftTotals {
  return {
    cashCount: report.cash.count,
    cashFen: report.cash.totalFen,
    releases: report.releases.count,
    releasesDueFen: report.releases.dueFen,
    opens: report.opens.count,
    refundsFoundCount: report.refunds.found.count,
    refundsFoundFen: report.refunds.found.totalFen,
    refundsOwedCount: report.refunds.owedAtEnd.count,
    refundsOwedFen: report.refunds.owedAtEnd.totalFen,
    refundedInShiftFen: report.refunds.refundedInShift.totalFen,
    drawerFen: report.drawerFen,
  };
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
