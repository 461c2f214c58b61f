/**
 * How a stay is settled at the exit, and how a stay keeps that settlement (`extra.settlement`)
 * so a car read again after a restart or a back-out is not billed twice. Pure: the settlement
 * machine (settlement-machine.ts) makes settlements, the lanes write and read them.
 */
import type { PrepaymentView, StayView } from "../stays/stay-views.js";

export type PaymentPath = "free" | "prepaid" | "platform" | "scanner" | "cash" | "cash-fallback" | "remote" | "remote-free" | "manual" | "attendant" | "awaiting-payment";

/** How a stay was settled at the exit (leaveNotify `releaseType`, `payType`). */
export interface Settlement {
  /** 0 normal, 1 free, 2 abnormal, 3 manual (leaveNotify's releaseType dictionary). */
  releaseType: 0 | 1 | 2 | 3;
  /** 0 nothing collected, 1 WeChat, 2 Alipay, 3 balance, 4 cash. */
  payType: number;
  /** Collected at the exit, fen. */
  paidFen: number;
  orderNo: string;
  payTimeMs: number | null;
  operator: string;
  path: PaymentPath;
}

/**
 * A settlement as the stay keeps it: how it was settled, when, where and the bill it paid, so
 * a stay whose car left during a stop can still be reported as it was settled.
 */
export interface StoredSettlement extends Settlement {
  settledAtMs: number;
  laneId: string;
  /** The exit read the bill was made for (the report's leaveTime if the car is not seen again). */
  billAtMs: number;
  payableFen: number;
  discountFen: number;
  prepaidFen: number;
}

/** A hand release: nothing collected, the operator named (leaveNotify releaseType 3). */
export function manualSettlement(operator: string): Settlement {
  return { releaseType: 3, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator, path: "manual" };
}

/** The platform's payment notice for a stay (4.2) settles it as a platform payment. */
export function noticeSettlement(payment: { payType: number; amountFen: number; orderNo: string; payTimeMs: number }): Settlement {
  return { releaseType: 0, payType: payment.payType, paidFen: payment.amountFen, orderNo: payment.orderNo, payTimeMs: payment.payTimeMs, operator: "", path: "platform" };
}

/** The platform's remote release (remoteDev type 0 open, type 2 free; openGateCase > 1 abnormal). */
export function remoteSettlement(command: { type: number; operator: string; openGateCase?: number | null | undefined }, atMs: number): Settlement {
  const free = command.type === 2;
  return {
    releaseType: free ? (command.openGateCase && command.openGateCase > 1 ? 2 : 1) : 0,
    payType: 0,
    paidFen: 0,
    orderNo: "",
    payTimeMs: free ? null : atMs,
    operator: command.operator,
    path: free ? "remote-free" : "remote",
  };
}

/** The stay's ending as the store records it (`finishStay` reason). */
export function finishReason(settlement: Settlement): "cash-fallback" | "manual" | "free" | "normal" {
  return settlement.path === "cash-fallback" ? "cash-fallback" : settlement.releaseType === 3 ? "manual" : settlement.releaseType > 0 ? "free" : "normal";
}

/** The settlement a stay holds (`extra.settlement`), read defensively: it is free-form extra. */
export function storedSettlementOf(record: Pick<StayView, "enterAtMs" | "pendingExit" | "extra">): StoredSettlement | undefined {
  const raw = record.extra?.settlement as Partial<StoredSettlement> | undefined;
  if (!raw || typeof raw !== "object") return undefined;
  if (typeof raw.releaseType !== "number" || typeof raw.payType !== "number" || typeof raw.paidFen !== "number" || typeof raw.path !== "string") return undefined;
  const num = (value: unknown, fallback: number): number => (typeof value === "number" && Number.isFinite(value) ? value : fallback);
  // Written before these fields existed: the pending bill says the rest.
  const pending = record.pendingExit;
  const settledAtMs = num(raw.settledAtMs, num(raw.payTimeMs, num(pending?.atMs, record.enterAtMs)));
  return {
    releaseType: raw.releaseType,
    payType: raw.payType,
    paidFen: raw.paidFen,
    orderNo: typeof raw.orderNo === "string" ? raw.orderNo : "",
    payTimeMs: typeof raw.payTimeMs === "number" ? raw.payTimeMs : null,
    operator: typeof raw.operator === "string" ? raw.operator : "",
    path: raw.path,
    settledAtMs,
    laneId: typeof raw.laneId === "string" ? raw.laneId : (pending?.laneId ?? ""),
    billAtMs: num(raw.billAtMs, num(pending?.atMs, settledAtMs)),
    payableFen: num(raw.payableFen, num(pending?.payableFen, raw.paidFen)),
    discountFen: num(raw.discountFen, num(pending?.discountFen, 0)),
    prepaidFen: num(raw.prepaidFen, 0),
  };
}

/**
 * What a settlement collected becomes once it no longer lets the car out: a prepayment of the
 * stay (once: keyed by its orderNo, or `<recordNo>-exit` when it had none).
 */
export function prepaymentsWithSettlement(
  record: Pick<StayView, "recordNo" | "prepayments">,
  settlement: Pick<StoredSettlement, "paidFen" | "orderNo" | "settledAtMs" | "payType">,
): PrepaymentView[] {
  const orderNo = settlement.orderNo || `${record.recordNo}-exit`;
  if (settlement.paidFen <= 0 || record.prepayments.some((p) => p.orderNo === orderNo)) return [...record.prepayments];
  return [...record.prepayments, { orderNo, amountFen: settlement.paidFen, payAtMs: settlement.settledAtMs, payType: String(settlement.payType) }];
}

/**
 * A stay read at an exit that already holds a settlement. Within the tariff's post-payment
 * grace the car leaves on it (no second bill). Past the grace the settlement is dropped from
 * the stay and what it collected becomes a prepayment (the caller writes `extra` and
 * `prepayments` durably, then bills the stay again, as after an in-lot payment).
 */
export type EarlierSettlement =
  | { kind: "none" }
  | { kind: "within-grace"; settlement: StoredSettlement }
  | { kind: "expired"; settlement: StoredSettlement; extra: Record<string, unknown>; prepayments: PrepaymentView[] };

export function earlierSettlement(record: StayView, atMs: number, graceMinutes: number): EarlierSettlement {
  const settlement = storedSettlementOf(record);
  if (!settlement) return { kind: "none" };
  if (atMs - settlement.settledAtMs <= graceMinutes * 60_000) return { kind: "within-grace", settlement };
  const { settlement: _expired, ...extra } = record.extra ?? {};
  // The orderNo-less key (`<recordNo>-exit`) is only the prepayment's name: a settlement
  // without an orderNo is never matched against an existing prepayment.
  const prepayments =
    settlement.paidFen > 0 && !record.prepayments.some((p) => p.orderNo === settlement.orderNo)
      ? [
          ...record.prepayments,
          { orderNo: settlement.orderNo || `${record.recordNo}-exit`, amountFen: settlement.paidFen, payAtMs: settlement.settledAtMs, payType: String(settlement.payType) },
        ]
      : [...record.prepayments];
  return { kind: "expired", settlement, extra, prepayments };
}
