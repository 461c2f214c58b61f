import type { LotStore } from "../store/lot-store.js";
import type { HistoryLine } from "../store/history.js";
import { finishedStaySchema, type InParkRecord } from "../store/records.js";
import { storedSettlementOf } from "../core/settlement/settlement.js";
import type { RefundEntry } from "../lanes/refunds.js";
import type { CashItem, OpenItem, ReleaseItem, ReportSources } from "./shift-report.js";

/** What the sources need of the refunds ledger. */
export interface RefundsView {
  readonly opened: Promise<void>;
  list(): RefundEntry[];
}

/**
 * A settled stay may leave after its settlement (a car paid at the booth, then backed out and
 * came back) or be reported with the bill's time when the car left during a stop: stays whose
 * history line is this much older than the window are still read.
 */
const settleToLeaveSlackMs = 24 * 3_600_000;
/** The history is scanned newest first; a shift's window is hours, so this is never reached in practice. */
const maxLines = 200_000;

/**
 * Gathers the report's items for a window starting at `sinceMs` from what the box keeps
 * durably: the stays (in the lot with a settlement, and finished ones in the history) carry the
 * settlement — cash, or a release by hand with the operator; the history's audit lines carry
 * the attendant's reasons and every hand open; the ledger has the refunds. The report builder
 * cuts the window; these only need to include everything that might fall in it.
 */
export async function gatherSources(store: LotStore, refunds: RefundsView, sinceMs: number): Promise<ReportSources> {
  const from = sinceMs - settleToLeaveSlackMs;
  const [stayLines, eventLines] = await Promise.all([
    store.history.recent((line) => line.t === "stay" && line.atMs >= from, { limit: maxLines, sinceMs: from, prefilter: '"t":"stay"' }),
    store.history.recent((line) => line.t === "event" && line.atMs >= sinceMs && (line.type === "payment" || line.type === "attendant-command" || line.type === "manual-open"), {
      limit: maxLines,
      sinceMs,
      prefilter: '"t":"event"',
    }),
  ]);

  // A stay is one record: the newest line of it wins (history may hold it twice after a crash),
  // and a stay still in the lot is newer than any line of it.
  const stays = new Map<string, InParkRecord>();
  for (const line of stayLines) {
    if (typeof line.recordNo !== "string" || stays.has(line.recordNo)) continue;
    const parsed = finishedStaySchema.safeParse(line.stay);
    if (parsed.success) stays.set(line.recordNo, parsed.data);
  }
  for (const record of store.listInPark((r) => storedSettlementOf(r) !== undefined).items) stays.set(record.recordNo, record);

  const manualReasons = new Map<string, string>();
  const opens: OpenItem[] = [];
  for (const line of eventLines) {
    if (line.type === "payment" && line.path === "manual" && typeof line.recordNo === "string" && !manualReasons.has(line.recordNo)) {
      manualReasons.set(line.recordNo, text(line, "reason"));
    }
    // A hand open is audited where the person acted: the API's and the fleet's `attendant-command`
    // (command "open"), the booth button's `manual-open` (operator "button", no command line).
    if ((line.type === "attendant-command" && line.command === "open") || (line.type === "manual-open" && line.operator === "button")) {
      opens.push({ laneId: text(line, "laneId"), atMs: line.atMs, operator: text(line, "operator"), reason: text(line, "reason"), plate: text(line, "plate") });
    }
  }

  const cash: CashItem[] = [];
  const releases: ReleaseItem[] = [];
  for (const record of stays.values()) {
    const settlement = storedSettlementOf(record);
    if (!settlement) continue;
    const laneId = settlement.laneId || ("exit" in record && typeof record.exit === "object" && record.exit ? String((record.exit as { laneId?: unknown }).laneId ?? "") : "");
    if (settlement.payType === 4 && settlement.paidFen > 0) {
      cash.push({
        recordNo: record.recordNo,
        plate: record.plate,
        laneId,
        amountFen: settlement.paidFen,
        atMs: settlement.payTimeMs ?? settlement.settledAtMs,
        operator: settlement.operator,
        orderNo: settlement.orderNo,
        path: settlement.path,
      });
    } else if (settlement.releaseType === 3) {
      releases.push({
        recordNo: record.recordNo,
        plate: record.plate,
        laneId,
        atMs: settlement.settledAtMs,
        operator: settlement.operator,
        reason: manualReasons.get(record.recordNo) ?? "",
        dueFen: Math.max(0, settlement.payableFen - settlement.discountFen - settlement.prepaidFen),
      });
    }
  }

  await refunds.opened;
  const refundItems = refunds.list().map((r) => ({
    id: r.id,
    laneId: r.laneId,
    plate: r.plate,
    recordNo: r.recordNo,
    amountFen: r.amountFen,
    refundVia: r.refundVia,
    foundAtMs: r.foundAtMs,
    ...(r.refundedAtMs === undefined ? {} : { refundedAtMs: r.refundedAtMs }),
    ...(r.refundedBy === undefined ? {} : { refundedBy: r.refundedBy }),
  }));
  return { cash, releases, opens, refunds: refundItems };
}

function text(line: HistoryLine, key: string): string {
  const value = line[key];
  return typeof value === "string" ? value : "";
}
