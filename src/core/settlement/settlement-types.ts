/**
 * The settlement machine's state, inputs and effects (settlement-machine.ts steps them).
 */
import type { TimerEffect, TimerInput } from "../loops/timers.js";
import type { PaymentPath, Settlement, StoredSettlement } from "./settlement.js";

export interface SettlementSettings {
  laneId: string;
  /** The pre-leave bill's deadline (the car waits this long for the platform's answer). */
  preLeaveMs: number;
  /** How long a call keeps listening for a late answer after its deadline (≤ deadline: none). */
  lateAnswerMs: number;
  /** The deadline of the check before cash. */
  cashCheckMs: number;
  /** Re-asks of a timed-out bill: the ceiling doubles from the first to the max. */
  reaskFirstMs: number;
  reaskMaxMs: number;
  /** The hold of a settled stay found at start (settledHoldMs). */
  settledHoldMs: number;
  /** A report held for a late-answer window goes this long after the window closes. */
  reportAfterWindowMs: number;
}

/** A platform answer to one pre-leave bill call. */
export type BillOutcome =
  | { kind: "paid"; payType: number | undefined; orderNo: string; payTimeMs: number | null }
  /** A business code: the platform heard the bill and says it is not paid. */
  | { kind: "unpaid"; msg: string }
  /** Timeout, refused, HTTP error, garbage: the platform cannot take the payment now. */
  | { kind: "failed"; reason: string }
  | { kind: "aborted" };

export type CallPurpose = "bill" | "scan" | "reask" | "check" | "recover";

/** One pre-leave bill (a plateId) and what the lane heard of it. */
export interface BillCall {
  readonly plateId: string;
  readonly path: "platform" | "scanner";
  readonly sweepCode: string | undefined;
  /** Calls still open (answered late or not at all yet). */
  readonly open: number;
  /** A call failed with no answer, and none answered since. */
  readonly unanswered: boolean;
  readonly answered: boolean;
  readonly lastFailure: string | undefined;
  readonly reasks: number;
  readonly reaskTimer: string | null;
  /** When the last window of its calls closes: a late 200 can come until then. */
  readonly listenUntilMs: number;
}

export interface OpenCall {
  readonly callId: string;
  readonly plateId: string;
  readonly purpose: CallPurpose;
  /** Sent with listenMs: a timeout at the deadline leaves it open for its late answer. */
  readonly listens: boolean;
  readonly timedOut: boolean;
}

export interface SettlementState {
  readonly seq: number;
  readonly phase: "deciding" | "denied" | "awaiting" | "settled" | "kept" | "recovering" | "reported" | "closed";
  readonly txId: string;
  readonly plate: string;
  /** The stay billed (undefined: a car with no record, released by the attendant). */
  readonly recordNo: string | undefined;
  /** The exit read the bill is for. */
  readonly atMs: number;
  readonly payableFen: number;
  readonly discountFen: number;
  readonly prepaidFen: number;
  readonly dueFen: number;
  readonly path: PaymentPath;
  readonly plateId: string | undefined;
  readonly bills: readonly BillCall[];
  readonly calls: readonly OpenCall[];
  readonly settlement: Settlement | undefined;
  /** The barrier opened for the settlement (or the car left on a hand open). */
  readonly paidOnline: boolean;
  /** The car is still on the lane (false once it backed out or was cancelled). */
  readonly onLane: boolean;
  /** The attendant's cash waits for the platform to be asked once more. */
  readonly cashCheck:
    { operator: string; reason: string; orderNo: string; atMs: number; plateIds: readonly string[]; results: ReadonlyArray<{ plateId: string; outcome: BillOutcome }> } | undefined;
  /** Refund ids owed for this stay (a second payment). */
  readonly refunds: readonly string[];
  readonly recoverAttempt: number;
  readonly timer: string | null;
  /** When a kept settlement was made (its post-payment grace counts from then). */
  readonly settledAtMs: number | undefined;
  /** The stay was made at the release (makeStay): a back-out cancels it. */
  readonly madeStay: boolean;
  /**
   * The barrier moved before the settlement was written (the platform's 200 to the pre-leave
   * bill, or a lane opened by hand): a write that fails then cannot hold the car back, so the
   * settlement stands for its report.
   */
  readonly openedBeforeWrite: boolean;
}

/** The exit report and the stay's finish, as one effect: queued durably, once. */
export interface ExitReport {
  /** Undefined: the stay made at the release (makeStay). */
  recordNo: string | undefined;
  settlement: Settlement;
  leaveAtMs: number;
  payableFen: number;
  discountFen: number;
  prepaidFen: number;
  /** Collected at the exit. */
  collectedFen: number;
  /** Due at the exit and let go without collecting it (a hand, free or remote release). */
  releasedFen: number;
  /** Held until the late-answer window of a bill the platform never answered closes. */
  notBeforeMs: number | undefined;
  /** A settled stay finished as left after a restart (its car was not read again). */
  settledLeftover: boolean;
}

export type CommandReply = { ok: true; detail: string } | { ok: false; code: "E_NO_VEHICLE" | "E_PAID_ONLINE"; message: string };

export type SettlementMessage =
  { kind: "feeDue"; plate: string; feeFen: number } | { kind: "payCash"; plate: string; feeFen: number } | { kind: "paid"; plate: string } | { kind: "paidOnline"; plate: string };

export type SettlementEffect =
  | { kind: "sendBill"; callId: string; plateId: string; path: "platform" | "scanner"; sweepCode: string | undefined; deadlineMs: number; listenMs: number | undefined }
  /**
   * `whileBillInFlight`: the new bill's own copy, written while the bill is on the wire; the
   * board, the event and the lane's "await" do not wait for it (the car waits for the slower of
   * the two, not both), but every later write and the open do.
   */
  | {
      kind: "writePending";
      recordNo: string;
      pending: { laneId: string; plateId: string; atMs: number; payableFen: number; discountFen: number; dueFen: number };
      whileBillInFlight?: boolean;
    }
  | { kind: "writeSettlement"; recordNo: string; settlement: StoredSettlement }
  /** A car with no stay released by the attendant: its stay is made, holding the settlement. */
  | { kind: "makeStay"; plate: string; settlement: StoredSettlement }
  | { kind: "open"; reason: PaymentPath; operator: string }
  | { kind: "show"; message: SettlementMessage }
  | { kind: "emit"; event: { type: string; [key: string]: unknown } }
  | {
      kind: "refundOwed";
      refund: {
        id: string;
        recordNo: string;
        plateId: string;
        amountFen: number;
        refundVia: "cash" | "platform";
        first: Settlement;
        second: { payType: number; amountFen: number; orderNo: string; payTimeMs: number; path: "platform" | "scanner" };
      };
    }
  | { kind: "report"; report: ExitReport }
  | { kind: "clearPending"; recordNo: string }
  | { kind: "cancelMadeStay"; why: string }
  /** The lane machine's answer to its requestDecision (the car waits for a payment). */
  | { kind: "decide"; verdict: "await" | "deny"; reason: string; feeFen?: number }
  | { kind: "reply"; reply: CommandReply }
  | TimerEffect;

export type SettlementInput =
  | { kind: "billed"; atMs: number; dueFen: number; payableFen: number; discountFen: number; prepaidFen: number; plateId: string; denied?: boolean }
  | { kind: "answer"; callId: string; outcome: BillOutcome; late: boolean; atMs: number }
  | { kind: "scan"; code: string; plateId: string; atMs: number }
  | { kind: "cash"; operator: string; reason: string; orderNo: string; atMs: number }
  | { kind: "release"; operator: string; reason: string; atMs: number }
  | { kind: "manualOpened"; operator: string; reason: string; atMs: number }
  | { kind: "remote"; type: number; operator: string; openGateCase?: number; atMs: number }
  /** `keptWhileDeciding`: a notice the lanes kept while the bill was made, fed again once the bill says it settles the exit. */
  | { kind: "notice"; payment: { payType: number; amountFen: number; orderNo: string; payTimeMs: number }; atMs: number; keptWhileDeciding?: boolean }
  | { kind: "platformUp"; atMs: number }
  | { kind: "readAgain"; atMs: number; graceMinutes: number }
  /** The stay read at this deciding exit holds a settlement within its post-payment grace. */
  | { kind: "heldSettlement"; settlement: StoredSettlement; atMs: number }
  | { kind: "passed"; atMs: number }
  | { kind: "abandoned"; why: string; atMs: number }
  | { kind: "writeFailed"; atMs: number }
  /** A restored machine's stay moved on without it (its car read again, or the stay gone). */
  | { kind: "superseded"; atMs: number }
  | TimerInput;

export interface SettlementStep {
  state: SettlementState;
  effects: SettlementEffect[];
}

/** What a stay keeps on disk of its exit: the pending bill and the settlement. */
export interface DurableExit {
  recordNo: string;
  plate: string;
  pendingExit: { laneId: string; plateId: string; atMs: number; payableFen: number; discountFen: number; dueFen: number } | undefined;
  settlement: StoredSettlement | undefined;
}
