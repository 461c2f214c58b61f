/**
 * The exit decision, in the two steps the lane takes them: first the route a read takes (held,
 * the attendant, a flat charge, or billing its stay), then, once the stay is billed, what the
 * bill means (a payment notice that came while billing, nothing due, or a fee to collect,
 * which the settlement machine then takes through its payment paths). Pure: the caller
 * matches the stay (stay-match.ts), reads the lists, bills (bill-inputs.ts) and writes.
 */
import type { Bill } from "../fees/index.js";
import type { FixedCarStanding } from "../stays/fixed-car-standing.js";
import type { CarTypes, PrepaymentView } from "../stays/stay-views.js";
import type { PaymentPath } from "../settlement/settlement.js";

export interface NoRecordPolicy {
  mode: "charge" | "attendant";
  amountFen: number;
}

export type ExitRoute =
  /** A list entry refuses the exit: held with its stay attached (an attendant may release it, billed). */
  | { kind: "held"; verdict: "deny"; reason: "blacklisted" }
  /** No stay, and the policy (or a missing read) calls the attendant. */
  | { kind: "attendant"; verdict: "await"; reason: "no-entry-record" }
  /** No stay: a stay is made at the exit for the flat amount. */
  | { kind: "charge"; amountFen: number }
  /** Its stay is billed. */
  | { kind: "bill" };

export function routeExit(plate: string, lot: { hasStay: boolean; deniedOut: boolean }, noRecord: NoRecordPolicy): ExitRoute {
  if (plate && lot.deniedOut) return { kind: "held", verdict: "deny", reason: "blacklisted" };
  if (lot.hasStay) return { kind: "bill" };
  if (noRecord.mode === "attendant" || !plate) return { kind: "attendant", verdict: "await", reason: "no-entry-record" };
  return { kind: "charge", amountFen: noRecord.amountFen };
}

export type ExitBillOutcome =
  /** A payment notice came while the bill was being made, and the bill did not count it already. */
  | { kind: "early-payment" }
  /** Nothing due: the car leaves at once (the zero bill pushed too when the policy wants it). */
  | { kind: "nothing-due"; path: Extract<PaymentPath, "free" | "prepaid">; pushZeroBill: boolean }
  /** A fee to collect: the settlement machine starts its payment paths. */
  | { kind: "fee-due"; dueFen: number };

export function exitBillOutcome(
  bill: Pick<Bill, "paidFee" | "prepaidFee">,
  stay: { prepayments: readonly Pick<PrepaymentView, "orderNo">[] },
  earlyPayment: { orderNo: string } | undefined,
  policy: { pushZeroBill: boolean },
): ExitBillOutcome {
  if (earlyPayment && !stay.prepayments.some((p) => p.orderNo === earlyPayment.orderNo)) return { kind: "early-payment" };
  if (bill.paidFee === 0) return { kind: "nothing-due", path: bill.prepaidFee > 0 ? "prepaid" : "free", pushZeroBill: policy.pushZeroBill };
  return { kind: "fee-due", dueFen: bill.paidFee };
}

/**
 * The types an exit reports: the stay's own, else a temporary car's; a registered car that
 * passes free and owes nothing (and did not enter beyond its group's spaces) reports its own.
 */
export function exitCarTypes(
  stay: { carType?: number | undefined; carSubType?: number | undefined; extra?: Record<string, unknown> | undefined },
  fixed: Pick<FixedCarStanding, "pass" | "carType" | "carSubType"> | undefined,
  dueFen: number,
  temporary: CarTypes,
): CarTypes {
  if (fixed?.pass === "free" && dueFen === 0 && stay.extra?.groupOverflow !== true) return { carType: fixed.carType, carSubType: fixed.carSubType };
  return { carType: stay.carType ?? temporary.carType, carSubType: stay.carSubType ?? temporary.carSubType };
}
