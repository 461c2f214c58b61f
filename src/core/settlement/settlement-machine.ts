// Over 600 lines on purpose: every payment path of an exit is one machine; its transitions are read
// together to see that no bill is paid twice and no payment is lost.
/**
 * The settlement machine of one exit: `stepSettlement(state, input, settings) → { state, effects }`.
 * Pure, like the lane machine: time arrives as `atMs`, a timer is an effect, and every write,
 * platform call, board message, event and open is an effect the lanes' executor runs in order.
 *
 * Phases:
 *   deciding    the exit's bill is being made (a hand release may already settle it)
 *   awaiting    a fee is due: the platform's pre-leave bill is out, and the scanner, the
 *               attendant's cash, a remote release and the platform's payment notice can settle
 *   settled     paid or released, once; a second payment is a refund owed, never a second settlement
 *   denied      a list entry refuses the exit: billed and held; an attendant's open releases it
 *   kept        restored from a stay that holds its settlement: waits for its car (read again
 *               within the grace: opens on it) or for the hold to end (finished as left)
 *   recovering  restored from a stay with a pending bill and no settlement: the same bill
 *               (same plateId) is asked again until the platform answers
 *   reported    the exit report is queued: the machine's work is done
 *   closed      nothing more to do (not paid on recovery; or the car backed out unsettled)
 *
 * Inputs (`SettlementInput`):
 *   { kind: "billed", atMs, dueFen, payableFen, discountFen, prepaidFen, plateId }  the bill is known
 *   { kind: "answer", callId, outcome, late, atMs }     a platform answer to one sendBill call;
 *       `late: false` and a failed "timeout" on a call sent with listenMs keeps the call open
 *       for its late answer (`late: true`), which always comes (an answer or the final failure)
 *   { kind: "scan", code, plateId, atMs }               the scanner gun read a payment code
 *   { kind: "cash", operator, reason, orderNo, atMs }   the attendant confirms cash
 *   { kind: "release", operator, reason, atMs }         the attendant releases by hand (the open follows)
 *   { kind: "manualOpened", operator, reason, atMs }    the lane already opened by hand
 *   { kind: "remote", type, operator, openGateCase?, atMs }  the platform's remoteDev on the plateId
 *   { kind: "notice", payment, atMs, keptWhileDeciding? }  the platform's payment notice (4.2)
 *   { kind: "platformUp", atMs }                        the platform answered something
 *   { kind: "readAgain", atMs, graceMinutes }           a kept stay's car is read at an exit
 *   { kind: "heldSettlement", settlement, atMs }        the stay read at this exit holds a settlement within its grace
 *   { kind: "passed", atMs } / { kind: "abandoned", why, atMs }   the lane transaction ended
 *   { kind: "writeFailed", atMs }                       a durable write of this step failed
 *   { kind: "superseded", atMs }                        a restored machine's stay moved on without it
 *   { kind: "timer", id, atMs }
 *
 * Effects (`SettlementEffect`) run in order; a durable one (writePending, writeSettlement,
 * makeStay, refundOwed, report) is on disk before the next effect runs, and when it fails the
 * executor runs nothing more of that step and feeds `writeFailed`. Hence "durable before the
 * open": a settlement only the box knows (cash, a hand or remote release, a notice the
 * platform will not repeat) is written before `open`; the platform's 200 to the pre-leave bill
 * opens first (the pending bill is on disk, and the platform answers the same plateId again
 * after a restart), then is written.
 */
import { startTimer, cancelTimer, type TimerInput } from "../loops/timers.js";
import { manualSettlement, noticeSettlement, remoteSettlement, type PaymentPath, type Settlement, type StoredSettlement } from "./settlement.js";
import type {
  BillCall,
  BillOutcome,
  CallPurpose,
  CommandReply,
  DurableExit,
  SettlementEffect,
  SettlementInput,
  SettlementSettings,
  SettlementState,
  SettlementStep,
} from "./settlement-types.js";

export type * from "./settlement-types.js";

/** A new exit: its stay matched (or none), its bill still being made. */
export function initSettlement(exit: { txId: string; plate: string; recordNo: string | undefined; atMs: number; attendant?: boolean }): SettlementState {
  return {
    seq: 0,
    phase: "deciding",
    txId: exit.txId,
    plate: exit.plate,
    recordNo: exit.recordNo,
    atMs: exit.atMs,
    payableFen: 0,
    discountFen: 0,
    prepaidFen: 0,
    dueFen: 0,
    path: exit.attendant ? "attendant" : "awaiting-payment",
    plateId: undefined,
    bills: [],
    calls: [],
    settlement: undefined,
    paidOnline: false,
    onLane: true,
    cashCheck: undefined,
    refunds: [],
    recoverAttempt: 0,
    timer: null,
    settledAtMs: undefined,
    madeStay: false,
    openedBeforeWrite: false,
  };
}

/**
 * The machine restarted from what a stay holds. A settlement: held for its car (a timer ends
 * the hold). A pending bill alone: the same bill is asked again. Neither: nothing to do.
 */
export function restoreSettlement(durable: DurableExit, atMs: number, settings: SettlementSettings): SettlementStep {
  const base = initSettlement({ txId: `restore-${durable.recordNo}`, plate: durable.plate, recordNo: durable.recordNo, atMs });
  const s = durable.settlement;
  if (s) {
    const timer = `settlement/hold/1`;
    const state: SettlementState = {
      ...base,
      seq: 1,
      phase: "kept",
      atMs: s.billAtMs,
      settledAtMs: s.settledAtMs,
      payableFen: s.payableFen,
      discountFen: s.discountFen,
      prepaidFen: s.prepaidFen,
      dueFen: s.paidFen > 0 ? s.paidFen : Math.max(0, s.payableFen - s.discountFen - s.prepaidFen),
      path: s.path,
      settlement: settlementOnly(s),
      onLane: false,
      timer,
    };
    return { state, effects: [startTimer(timer, settings.settledHoldMs)] };
  }
  const p = durable.pendingExit;
  if (!p) return { state: { ...base, phase: "closed", onLane: false }, effects: [] };
  const state: SettlementState = {
    ...base,
    phase: "recovering",
    atMs: p.atMs,
    payableFen: p.payableFen,
    discountFen: p.discountFen,
    prepaidFen: Math.max(0, p.payableFen - p.discountFen - p.dueFen),
    dueFen: p.dueFen,
    path: "platform",
    plateId: p.plateId,
    onLane: false,
  };
  return send(state, p.plateId, "platform", undefined, "recover", settings.preLeaveMs, settings, atMs, []);
}

export function stepSettlement(state: SettlementState, input: SettlementInput, settings: SettlementSettings): SettlementStep {
  const effects: SettlementEffect[] = [];
  switch (input.kind) {
    case "billed":
      return billed(state, input, settings, effects);
    case "answer":
      return answered(state, input, settings, effects);
    case "scan": {
      if (state.phase !== "awaiting" || !state.onLane || state.recordNo === undefined)
        return { state, effects: [emitOf(state, "scan-ignored", { reason: "no car awaiting payment" })] };
      const next: SettlementState = { ...state, plateId: input.plateId };
      effects.push(pendingWrite(next, settings), emitOf(next, "scan", { plateId: input.plateId, code: `****${input.code.slice(-4)}` }));
      return send(next, input.plateId, "scanner", input.code, "scan", settings.preLeaveMs, settings, input.atMs, effects);
    }
    case "cash":
      return cash(state, input, settings, effects);
    case "release":
      if (!isOpenToSettle(state)) return { state, effects };
      return settle(state, manualSettlement(input.operator), input.reason, { openFirst: false }, input.atMs, settings, effects);
    case "manualOpened":
      return manualOpened(state, input, settings, effects);
    case "remote": {
      if (state.phase !== "awaiting" || !state.onLane) return { state, effects };
      if (input.type === 1) return { state, effects: [emitOf(state, "remote-cancel", { operator: input.operator })] };
      const free = input.type === 2;
      const reason = free ? `free release (case ${input.openGateCase ?? "?"})` : "remote release";
      return settle(state, remoteSettlement(input, input.atMs), reason, { openFirst: false }, input.atMs, settings, effects);
    }
    case "notice":
      // While the bill is made the lanes keep the notice for it, and feed it again once the bill
      // says it settles the exit (exitBillOutcome "early-payment", `keptWhileDeciding`).
      if (state.phase === "deciding" && input.keptWhileDeciding !== true) return { state, effects };
      if (!isOpenToSettle(state))
        return { state, effects: [{ kind: "emit", event: { type: "prepayment", plate: state.plate, recordNo: state.recordNo, feeFen: input.payment.amountFen } }] };
      return settle(state, noticeSettlement(input.payment), "payment notice", { openFirst: false }, input.atMs, settings, effects);
    case "platformUp": {
      let next = state;
      for (const bill of state.bills) {
        // A bill that itself got an HTTP answer waits out its backoff (no ping-pong of errors).
        if (!bill.reaskTimer || (bill.lastFailure !== "timeout" && bill.lastFailure !== "refused")) continue;
        effects.push(cancelTimer(bill.reaskTimer));
        next = withBill(next, bill.plateId, { reaskTimer: null });
        next = reask(next, bill.plateId, settings, input.atMs, effects).state;
      }
      return { state: next, effects };
    }
    case "readAgain": {
      if (state.phase !== "kept" || !state.settlement) return { state, effects };
      const stored = state.settlement;
      if (state.timer) effects.push(cancelTimer(state.timer));
      // Past the grace the lanes bill the stay again (what it collected is a prepayment:
      // earlierSettlement): this machine is done. Within it, the car leaves on that settlement.
      if (input.atMs - (state.settledAtMs ?? state.atMs) > input.graceMinutes * 60_000) {
        effects.push(emitOf(state, "settled-earlier-expired", { path: stored.path, settledAtMs: state.settledAtMs }));
        return { state: { ...state, phase: "closed", timer: null }, effects };
      }
      const next: SettlementState = { ...state, phase: "settled", onLane: true, timer: null };
      effects.push(
        emitOf(next, "settled-earlier", { path: stored.path }),
        { kind: "open", reason: stored.path, operator: stored.operator },
        { kind: "show", message: { kind: "paid", plate: state.plate } },
      );
      return { state: next, effects };
    }
    case "heldSettlement":
      return heldSettlement(state, input.settlement, effects);
    case "passed":
      return passed(state, input.atMs, false, settings, effects);
    case "abandoned": {
      if (!state.onLane) return { state, effects };
      const next: SettlementState = { ...state, onLane: false };
      // A stay made only to report this exit goes: the car did not leave.
      if (state.madeStay) effects.push({ kind: "cancelMadeStay", why: input.why });
      // The stay stays in the lot with its bill; a later read bills it again.
      else if (state.recordNo !== undefined) effects.push({ kind: "clearPending", recordNo: state.recordNo });
      return { state: next, effects };
    }
    case "writeFailed":
      // Not durable: the barrier stays down and the car waits, so the attendant can try again.
      // (Opened already, on the platform's 200 or by hand: the settlement stands.)
      if (state.phase !== "settled" || state.paidOnline || state.openedBeforeWrite) return { state, effects };
      return { state: { ...state, phase: "awaiting", settlement: undefined }, effects };
    case "superseded":
      // Restored at start (kept or recovering), and the stay moved on without this machine: a
      // new exit of its car decides now, or the stay is gone. Nothing more to do here.
      if (state.phase !== "kept" && state.phase !== "recovering") return { state, effects };
      if (state.timer) effects.push(cancelTimer(state.timer));
      return { state: { ...state, phase: "closed", timer: null }, effects };
    case "timer":
      return timer(state, input, settings, effects);
  }
}

// ---- the bill -------------------------------------------------------------------------------

function billed(state: SettlementState, input: Extract<SettlementInput, { kind: "billed" }>, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  if (state.phase !== "deciding") return { state, effects };
  const next: SettlementState = { ...state, dueFen: input.dueFen, payableFen: input.payableFen, discountFen: input.discountFen, prepaidFen: input.prepaidFen };
  // Held by a list entry with its stay billed: an attendant who releases it reports that bill.
  if (input.denied) return { state: { ...next, phase: "denied" }, effects: [{ kind: "decide", verdict: "deny", reason: "blacklisted" }] };
  if (input.dueFen === 0) {
    const path: PaymentPath = input.prepaidFen > 0 ? "prepaid" : "free";
    return settle(next, { releaseType: 0, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator: "", path }, path, { openFirst: false }, input.atMs, settings, effects);
  }
  if (!state.onLane) return { state: next, effects };
  const awaiting: SettlementState = { ...next, phase: "awaiting", path: "platform", plateId: input.plateId };
  // The bill goes on the wire first; its durable copy is written while it is in flight, and
  // the board, the event and the lane's "await" follow.
  const sent = send(awaiting, input.plateId, "platform", undefined, "bill", settings.preLeaveMs, settings, input.atMs, effects);
  sent.effects.push(
    { ...pendingWrite(sent.state, settings), whileBillInFlight: true },
    { kind: "show", message: { kind: "feeDue", plate: state.plate, feeFen: input.dueFen } },
    emitOf(sent.state, "fee-due", { feeFen: input.dueFen, plateId: input.plateId }),
    { kind: "decide", verdict: "await", reason: "fee-due", feeFen: input.dueFen },
  );
  return sent;
}

function pendingWrite(state: SettlementState, settings: SettlementSettings): Extract<SettlementEffect, { kind: "writePending" }> {
  return {
    kind: "writePending",
    recordNo: state.recordNo ?? "",
    pending: { laneId: settings.laneId, plateId: state.plateId ?? "", atMs: state.atMs, payableFen: state.payableFen, discountFen: state.discountFen, dueFen: state.dueFen },
  };
}

/** Sends one call of a bill (new, re-ask, check before cash, recovery). */
function send(
  state: SettlementState,
  plateId: string,
  path: "platform" | "scanner",
  sweepCode: string | undefined,
  purpose: CallPurpose,
  deadlineMs: number,
  settings: SettlementSettings,
  atMs: number,
  effects: SettlementEffect[],
): SettlementStep {
  const seq = state.seq + 1;
  const callId = `${purpose}/${plateId}/${seq}`;
  // A recovery call listens for nothing late: it is asked again until answered.
  const listens = purpose !== "recover" && settings.lateAnswerMs > deadlineMs;
  const existing = state.bills.find((b) => b.plateId === plateId);
  const bill: BillCall = existing ?? {
    plateId,
    path,
    sweepCode,
    open: 0,
    unanswered: false,
    answered: false,
    lastFailure: undefined,
    reasks: 0,
    reaskTimer: null,
    listenUntilMs: 0,
  };
  const updated: BillCall = { ...bill, open: bill.open + 1, listenUntilMs: Math.max(bill.listenUntilMs, atMs + Math.max(settings.lateAnswerMs, deadlineMs)) };
  const bills = existing ? state.bills.map((b) => (b.plateId === plateId ? updated : b)) : [...state.bills, updated];
  effects.push({ kind: "sendBill", callId, plateId, path: bill.path, sweepCode: bill.sweepCode, deadlineMs, listenMs: listens ? settings.lateAnswerMs : undefined });
  return { state: { ...state, seq, bills, calls: [...state.calls, { callId, plateId, purpose, listens, timedOut: false }] }, effects };
}

function withBill(state: SettlementState, plateId: string, change: Partial<BillCall>): SettlementState {
  return { ...state, bills: state.bills.map((b) => (b.plateId === plateId ? { ...b, ...change } : b)) };
}

function heard(bill: BillCall, outcome: BillOutcome): Partial<BillCall> {
  if (outcome.kind === "paid" || outcome.kind === "unpaid") return { answered: true, lastFailure: undefined };
  if (outcome.kind === "failed") return { unanswered: true, lastFailure: outcome.reason };
  return {};
}

function answered(state: SettlementState, input: Extract<SettlementInput, { kind: "answer" }>, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  const call = state.calls.find((c) => c.callId === input.callId);
  if (!call || (input.late && !call.timedOut) || (!input.late && call.timedOut)) return { state, effects };
  const bill = state.bills.find((b) => b.plateId === call.plateId)!;
  const outcome = input.outcome;
  const keepsListening = !input.late && call.listens && outcome.kind === "failed" && outcome.reason === "timeout";
  let next: SettlementState = {
    ...withBill(state, bill.plateId, { ...heard(bill, outcome), open: keepsListening ? bill.open : bill.open - 1 }),
    calls: keepsListening ? state.calls.map((c) => (c.callId === call.callId ? { ...c, timedOut: true } : c)) : state.calls.filter((c) => c.callId !== call.callId),
  };
  const current = next.bills.find((b) => b.plateId === bill.plateId)!;
  if (input.late) {
    // What a call heard after its deadline: a 200 settles the waiting car or is a second payment.
    return outcome.kind === "paid" ? billPaid(next, current, outcome, input.atMs, settings, effects) : { state: next, effects };
  }
  switch (call.purpose) {
    case "recover":
      return recovered(next, outcome, input.atMs, settings, effects);
    case "check":
      return checkAnswered(next, current, outcome, input.atMs, settings, effects);
    case "reask":
      if (outcome.kind === "paid") return billPaid(next, current, outcome, input.atMs, settings, effects);
      if (outcome.kind === "unpaid") {
        // Heard at last: not paid. The cash prompt stays; the driver may still pay.
        if (next.phase === "awaiting") effects.push(emitOf(next, "awaiting-payment", { feeFen: next.dueFen, reason: outcome.msg }));
        return { state: next, effects };
      }
      if (outcome.kind === "failed") return scheduleReask(next, current, settings, effects);
      return { state: next, effects };
    case "bill":
    case "scan": {
      // Paid another way while the bill was on its way: a 200 now is money taken twice.
      if (outcome.kind === "paid" && next.phase !== "awaiting") return billPaid(next, current, outcome, input.atMs, settings, effects);
      if (next.phase !== "awaiting") return { state: next, effects };
      if (call.purpose === "scan" && outcome.kind === "unpaid") {
        effects.push(emitOf(next, "scan-refused", { reason: outcome.msg }), { kind: "show", message: { kind: "feeDue", plate: next.plate, feeFen: next.dueFen } });
        return { state: next, effects };
      }
      const after = afterPreLeave(next, outcome, current.path, input.atMs, settings, effects);
      next = after.state;
      if (outcome.kind === "failed")
        return scheduleReask(
          next,
          next.bills.find((b) => b.plateId === call.plateId)!,
          settings,
          after.effects,
        );
      return after;
    }
  }
}

function afterPreLeave(
  state: SettlementState,
  outcome: BillOutcome,
  path: "platform" | "scanner",
  atMs: number,
  settings: SettlementSettings,
  effects: SettlementEffect[],
): SettlementStep {
  if (outcome.kind === "paid") {
    const settlement: Settlement = {
      releaseType: 0,
      payType: Number(outcome.payType ?? (path === "scanner" ? 1 : 0)) || 0,
      paidFen: state.dueFen,
      orderNo: outcome.orderNo,
      payTimeMs: outcome.payTimeMs ?? atMs,
      operator: "",
      path,
    };
    // Frictionless (not a scanned code, whose credential is never kept): the platform gives
    // this answer again for the same plateId, so it is written just after the open.
    return settle(state, settlement, path, { openFirst: path === "platform" }, atMs, settings, effects);
  }
  if (outcome.kind === "unpaid") {
    effects.push(emitOf(state, "awaiting-payment", { feeFen: state.dueFen, reason: outcome.msg }));
    return { state: { ...state, path: "awaiting-payment" }, effects };
  }
  if (outcome.kind === "aborted") return { state, effects };
  // The platform cannot take the payment now: cash at once; the report says cash.
  if (path === "scanner") effects.push(emitOf(state, "scan-failed", { reason: outcome.reason }));
  effects.push(
    { kind: "show", message: { kind: "payCash", plate: state.plate, feeFen: state.dueFen } },
    emitOf(state, "cash-fallback", { feeFen: state.dueFen, reason: outcome.reason }),
  );
  return { state: { ...state, path: "cash-fallback" }, effects };
}

// ---- re-asks --------------------------------------------------------------------------------

function waitingOn(state: SettlementState, bill: BillCall): boolean {
  return state.phase === "awaiting" && state.onLane && !bill.answered;
}

/** The ceiling of an exponential backoff: `firstMs` doubled per attempt, at most `maxMs`. */
export function reaskDelayMs(attempt: number, firstMs: number, maxMs: number): number {
  if (attempt <= 0) return 0;
  return Math.min(maxMs, firstMs * 2 ** Math.min(attempt - 1, 40));
}

function scheduleReask(state: SettlementState, bill: BillCall, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  if (bill.reaskTimer || !waitingOn(state, bill)) return { state, effects };
  const seq = state.seq + 1;
  const id = `settlement/reask/${bill.plateId}/${seq}`;
  effects.push(startTimer(id, reaskDelayMs(bill.reasks + 1, settings.reaskFirstMs, settings.reaskMaxMs)));
  return { state: withBill({ ...state, seq }, bill.plateId, { reaskTimer: id }), effects };
}

function reask(state: SettlementState, plateId: string, settings: SettlementSettings, atMs: number, effects: SettlementEffect[]): SettlementStep {
  const bill = state.bills.find((b) => b.plateId === plateId);
  if (!bill || !waitingOn(state, bill)) return { state, effects };
  const next = withBill(state, plateId, { reasks: bill.reasks + 1 });
  effects.push(emitOf(next, "bill-reasked", { plateId, attempt: bill.reasks + 1 }));
  return send(next, plateId, bill.path, bill.sweepCode, "reask", settings.preLeaveMs, settings, atMs, effects);
}

function timer(state: SettlementState, input: TimerInput, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  const bill = state.bills.find((b) => b.reaskTimer === input.id);
  if (bill) return reask(withBill(state, bill.plateId, { reaskTimer: null }), bill.plateId, settings, input.atMs, effects);
  if (input.id !== state.timer) return { state, effects };
  const next: SettlementState = { ...state, timer: null };
  if (state.phase === "kept") {
    // Its car was not read again since the start: it left during the stop.
    effects.push(emitOf(next, "settled-stay-finished", { path: state.path, reason: "not seen since the start" }));
    return passed({ ...next, phase: "settled" }, state.atMs, true, settings, effects);
  }
  if (state.phase === "recovering" && state.plateId) return send(next, state.plateId, "platform", undefined, "recover", settings.preLeaveMs, settings, input.atMs, effects);
  return { state: next, effects };
}

// ---- payments -------------------------------------------------------------------------------

function isOpenToSettle(state: SettlementState): boolean {
  return state.phase === "deciding" || state.phase === "awaiting";
}

/**
 * The platform collected a bill of this exit. The car still waiting: it leaves on that payment
 * and the board says "paid online". Settled already: the driver paid twice, a refund owed.
 */
function billPaid(
  state: SettlementState,
  bill: BillCall,
  outcome: Extract<BillOutcome, { kind: "paid" }>,
  atMs: number,
  settings: SettlementSettings,
  effects: SettlementEffect[],
): SettlementStep {
  if (state.phase === "awaiting") {
    const next: SettlementState = { ...state, paidOnline: true };
    effects.push(emitOf(next, "late-payment", { plateId: bill.plateId, path: bill.path, feeFen: state.dueFen }));
    return afterPreLeave(next, outcome, bill.path, atMs, settings, effects);
  }
  const first = state.settlement;
  if (!first || (state.phase !== "settled" && state.phase !== "reported")) return { state, effects };
  // The same payment heard twice (the on-time answer and a re-ask's): nothing new.
  if ((first.path === "platform" || first.path === "scanner") && (first.orderNo === outcome.orderNo || outcome.orderNo === "")) return { state, effects };
  const second = {
    payType: Number(outcome.payType ?? (bill.path === "scanner" ? 1 : 0)) || 0,
    amountFen: state.dueFen,
    orderNo: outcome.orderNo,
    payTimeMs: outcome.payTimeMs ?? atMs,
    path: bill.path,
  };
  if (first.paidFen <= 0 || state.recordNo === undefined) {
    // Released by hand or for free, then paid on the platform: paid once, not a refund.
    effects.push(emitOf(state, "late-platform-payment", { plateId: bill.plateId, feeFen: second.amountFen, orderNo: outcome.orderNo, settledBy: first.path }));
    return { state, effects };
  }
  const id = `${state.recordNo}:${bill.plateId}`;
  if (state.refunds.includes(id)) return { state, effects };
  const viaCash = first.path === "cash" || first.path === "cash-fallback";
  effects.push({
    kind: "refundOwed",
    // Cash taken blind is handed back by the attendant; a second online collection is refunded
    // through the platform.
    refund: { id, recordNo: state.recordNo, plateId: bill.plateId, amountFen: viaCash ? first.paidFen : second.amountFen, refundVia: viaCash ? "cash" : "platform", first, second },
  });
  return { state: { ...state, refunds: [...state.refunds, id] }, effects };
}

function cash(state: SettlementState, input: Extract<SettlementInput, { kind: "cash" }>, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  if (state.cashCheck) return { state, effects };
  if (state.phase === "settled" && (state.settlement?.path === "platform" || state.settlement?.path === "scanner") && state.onLane) {
    effects.push(emitOf(state, "cash-refused", { operator: input.operator, reason: "paid-online" }), { kind: "reply", reply: paidOnlineReply(state.plate) });
    return { state, effects };
  }
  if (state.phase !== "awaiting" || !state.onLane) return { state, effects: [{ kind: "reply", reply: noVehicle }] };
  if (state.recordNo === undefined && state.path === "attendant") {
    // No entry record and nothing billed: the confirmation is a hand release, not cash of nothing.
    const step = settle(state, manualSettlement(input.operator), input.reason || "attendant release", { openFirst: false }, input.atMs, settings, effects);
    step.effects.push({ kind: "reply", reply: { ok: true, detail: `released ${step.state.plate} by hand` } });
    return step;
  }
  const unanswered = state.bills.filter((b) => b.unanswered && !b.answered);
  if (unanswered.length === 0) return takeCash(state, input, false, settings, effects);
  // A bill whose call timed out may have been paid on the platform meanwhile: ask once more
  // (same plateId, short deadline) before taking the driver's cash.
  effects.push(emitOf(state, "cash-check", { plateIds: unanswered.map((b) => b.plateId) }));
  let next: SettlementState = {
    ...state,
    cashCheck: { operator: input.operator, reason: input.reason, orderNo: input.orderNo, atMs: input.atMs, plateIds: unanswered.map((b) => b.plateId), results: [] },
  };
  for (const bill of unanswered)
    next = send(next, bill.plateId, bill.path, bill.sweepCode, "check", Math.min(settings.cashCheckMs, settings.preLeaveMs), settings, input.atMs, effects).state;
  return { state: next, effects };
}

function checkAnswered(state: SettlementState, bill: BillCall, outcome: BillOutcome, atMs: number, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  const check = state.cashCheck;
  if (!check) return outcome.kind === "paid" ? billPaid(state, bill, outcome, atMs, settings, effects) : { state, effects };
  const results = [...check.results, { plateId: bill.plateId, outcome }];
  if (results.length < check.plateIds.length) return { state: { ...state, cashCheck: { ...check, results } }, effects };
  let next: SettlementState = { ...state, cashCheck: undefined };
  // All heard: the first bill (in the order asked) the platform says is paid settles the car.
  const paid = check.plateIds.map((plateId) => results.find((r) => r.plateId === plateId)!).find((r) => r.outcome.kind === "paid");
  if (paid && paid.outcome.kind === "paid" && next.phase === "awaiting") {
    next = billPaid(
      next,
      next.bills.find((b) => b.plateId === paid.plateId)!,
      paid.outcome,
      atMs,
      settings,
      effects,
    ).state;
  }
  // Only when the platform cannot be asked is the cash taken blind (a 200 for the bill
  // afterwards is then a double payment).
  const blind = results.every((r) => r.outcome.kind !== "paid" && r.outcome.kind !== "unpaid");
  if (next.phase === "settled" && (next.settlement?.path === "platform" || next.settlement?.path === "scanner")) {
    effects.push(emitOf(next, "cash-refused", { operator: check.operator, reason: "paid-online" }), { kind: "reply", reply: paidOnlineReply(next.plate) });
    return { state: next, effects };
  }
  if (next.phase !== "awaiting" || !next.onLane) return { state: next, effects: [...effects, { kind: "reply", reply: noVehicle }] };
  return takeCash(next, check, blind, settings, effects);
}

function takeCash(
  state: SettlementState,
  input: { operator: string; reason: string; orderNo: string; atMs: number },
  blind: boolean,
  settings: SettlementSettings,
  effects: SettlementEffect[],
): SettlementStep {
  if (blind) effects.push(emitOf(state, "cash-blind", { feeFen: state.dueFen, operator: input.operator }));
  const settlement: Settlement = { releaseType: 0, payType: 4, paidFen: state.dueFen, orderNo: input.orderNo, payTimeMs: input.atMs, operator: input.operator, path: "cash" };
  const step = settle(state, settlement, input.reason || "cash", { openFirst: false }, input.atMs, settings, effects);
  step.effects.push({ kind: "reply", reply: { ok: true, detail: `cash ${state.dueFen} fen for ${state.plate}${blind ? " (platform not reachable)" : ""}` } });
  return step;
}

const noVehicle: CommandReply = { ok: false, code: "E_NO_VEHICLE", message: "no car is awaiting payment on this lane" };

function paidOnlineReply(plate: string): CommandReply {
  return { ok: false, code: "E_PAID_ONLINE", message: `${plate || "the car"} has paid online (已在线支付): take no cash` };
}

function stored(state: SettlementState, settlement: Settlement, atMs: number, settings: SettlementSettings): StoredSettlement {
  return {
    ...settlement,
    settledAtMs: atMs,
    laneId: settings.laneId,
    billAtMs: state.atMs,
    payableFen: state.payableFen || state.dueFen,
    discountFen: state.discountFen,
    prepaidFen: state.prepaidFen,
  };
}

/**
 * The stay is paid or released, once: written durably, then opened (the platform's 200 to the
 * pre-leave bill: opened, then written). A car that backed off while a 200 was on its way
 * keeps the payment on its stay (its next exit leaves on it).
 */
function settle(
  state: SettlementState,
  settlement: Settlement,
  reason: string,
  how: { openFirst: boolean },
  atMs: number,
  settings: SettlementSettings,
  effects: SettlementEffect[],
): SettlementStep {
  if (!isOpenToSettle(state)) return { state, effects };
  const next: SettlementState = { ...state, phase: "settled", settlement, path: settlement.path };
  const write: SettlementEffect | undefined =
    state.recordNo !== undefined
      ? { kind: "writeSettlement", recordNo: state.recordNo, settlement: stored(state, settlement, atMs, settings) }
      : state.path === "attendant"
        ? { kind: "makeStay", plate: plateForRelease(state), settlement: stored(state, settlement, atMs, settings) }
        : undefined;
  if (!state.onLane) {
    if (how.openFirst && state.recordNo !== undefined && settlement.paidFen > 0 && write) {
      effects.push(write);
      return { state: next, effects };
    }
    return { state, effects };
  }
  // A car with no plate read is shown and reported under the virtual plate of its new stay.
  const shown: SettlementState = write?.kind === "makeStay" ? { ...state, plate: write.plate } : state;
  const opened: SettlementEffect[] = [
    { kind: "open", reason: settlement.path, operator: settlement.operator },
    { kind: "show", message: state.paidOnline ? { kind: "paidOnline", plate: shown.plate } : { kind: "paid", plate: shown.plate } },
    emitOf(shown, "payment", {
      feeFen: settlement.paidFen,
      dueFen: state.dueFen,
      path: settlement.path,
      reason,
      ...(state.paidOnline ? { late: true } : {}),
      ...(settlement.operator ? { operator: settlement.operator } : {}),
    }),
  ];
  if (how.openFirst && write) effects.push(...opened, write);
  else effects.push(...(write ? [write] : []), ...opened);
  for (const bill of state.bills) if (bill.reaskTimer) effects.push(cancelTimer(bill.reaskTimer));
  const made = write?.kind === "makeStay";
  return {
    state: {
      ...next,
      madeStay: made,
      openedBeforeWrite: how.openFirst && write !== undefined,
      bills: next.bills.map((b) => ({ ...b, reaskTimer: null })),
      plate: made ? write.plate : state.plate,
    },
    effects,
  };
}

/** The lane opened by hand (the machine already moved): settled as a hand release, written after. */
function manualOpened(
  state: SettlementState,
  input: Extract<SettlementInput, { kind: "manualOpened" }>,
  settings: SettlementSettings,
  effects: SettlementEffect[],
): SettlementStep {
  if (!isOpenToSettle(state) && state.phase !== "denied") return { state, effects };
  const settlement = manualSettlement(input.operator);
  const plate = state.recordNo === undefined && state.path === "attendant" ? plateForRelease(state) : state.plate;
  const next: SettlementState = { ...state, phase: "settled", settlement, plate, path: "manual" };
  effects.push(emitOf(next, "payment", { feeFen: 0, dueFen: state.dueFen, path: "manual", reason: input.reason, operator: input.operator }));
  const storedNow = stored(state, settlement, input.atMs, settings);
  // The arm is already moving: the write follows, and the passage waits for it.
  if (state.recordNo !== undefined) effects.push({ kind: "writeSettlement", recordNo: state.recordNo, settlement: storedNow });
  else if (state.path === "attendant") effects.push({ kind: "makeStay", plate, settlement: storedNow });
  for (const bill of state.bills) if (bill.reaskTimer) effects.push(cancelTimer(bill.reaskTimer));
  return {
    state: { ...next, madeStay: state.recordNo === undefined && state.path === "attendant", openedBeforeWrite: true, bills: next.bills.map((b) => ({ ...b, reaskTimer: null })) },
    effects,
  };
}

/**
 * The stay read at this exit already holds a settlement (a stop cut its passage short, or the
 * car backed out after paying) and is back within the post-payment grace: it leaves on that
 * settlement, nothing written again and no second bill; the "payment" event says so.
 */
function heldSettlement(state: SettlementState, held: StoredSettlement, effects: SettlementEffect[]): SettlementStep {
  if (state.phase !== "deciding") return { state, effects };
  effects.push(emitOf(state, "settled-earlier", { path: held.path, settledAtMs: held.settledAtMs }));
  if (!state.onLane) return { state, effects };
  const settlement = settlementOnly(held);
  effects.push(
    { kind: "open", reason: held.path, operator: held.operator },
    { kind: "show", message: { kind: "paid", plate: state.plate } },
    emitOf(state, "payment", {
      feeFen: held.paidFen,
      dueFen: state.dueFen,
      path: held.path,
      reason: "settled earlier",
      ...(held.operator ? { operator: held.operator } : {}),
    }),
  );
  return { state: { ...state, phase: "settled", settlement, path: held.path, settledAtMs: held.settledAtMs }, effects };
}

/** A car released with no plate read gets a virtual one (7 of [0-9A-Z] after 无), from its read time. */
export function plateForRelease(state: Pick<SettlementState, "plate" | "atMs">): string {
  return state.plate || `无${(state.atMs % 36 ** 7).toString(36).toUpperCase().padStart(7, "0")}`;
}

function recovered(state: SettlementState, outcome: BillOutcome, atMs: number, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  if (state.phase !== "recovering") return { state, effects };
  if (outcome.kind === "paid") {
    const settlement: Settlement = {
      releaseType: 0,
      payType: Number(outcome.payType ?? 0) || 0,
      paidFen: state.dueFen,
      orderNo: outcome.orderNo,
      payTimeMs: outcome.payTimeMs ?? atMs,
      operator: "",
      path: "platform",
    };
    const seq = state.seq + 1;
    const hold = `settlement/hold/${seq}`;
    effects.push(
      { kind: "writeSettlement", recordNo: state.recordNo!, settlement: stored(state, settlement, atMs, settings) },
      emitOf(state, "payment-recovered", { plateId: state.plateId, feeFen: state.dueFen, path: "platform" }),
      startTimer(hold, settings.settledHoldMs),
    );
    return { state: { ...state, seq, phase: "kept", settlement, settledAtMs: atMs, path: "platform", timer: hold }, effects };
  }
  // Not paid that way: the stay stays as it is, and its next read bills it.
  if (outcome.kind === "unpaid") return { state: { ...state, phase: "closed" }, effects };
  if (outcome.kind === "aborted") return { state, effects };
  const seq = state.seq + 1;
  const retry = `settlement/recover/${seq}`;
  effects.push(startTimer(retry, Math.min(60_000, 1000 * 2 ** Math.min(state.recoverAttempt, 6))));
  return { state: { ...state, seq, timer: retry, recoverAttempt: state.recoverAttempt + 1 }, effects };
}

// ---- the passage ----------------------------------------------------------------------------

/**
 * When the exit's report may go: just after the last late-answer window closes of the bills
 * whose call timed out and whose outcome the platform never told (cash taken blind). A bill the
 * platform did answer was settled knowingly.
 */
export function lateWindowEnd(state: Pick<SettlementState, "bills">, reportAfterWindowMs: number): number | undefined {
  let endMs: number | undefined;
  for (const bill of state.bills) if (bill.open > 0 && bill.unanswered && !bill.answered) endMs = Math.max(endMs ?? 0, bill.listenUntilMs);
  return endMs === undefined ? undefined : endMs + reportAfterWindowMs;
}

function passed(state: SettlementState, atMs: number, leftover: boolean, settings: SettlementSettings, effects: SettlementEffect[]): SettlementStep {
  if (state.phase === "reported" || state.phase === "closed") return { state, effects };
  const settlement = state.settlement ?? manualSettlement("");
  const next: SettlementState = { ...state, phase: "reported", settlement, onLane: false };
  if (state.recordNo === undefined && !state.madeStay) {
    effects.push(emitOf(next, "vehicle-left", { reason: "no record" }));
    return { state: next, effects };
  }
  const collectedFen = settlement.paidFen;
  effects.push({
    kind: "report",
    report: {
      recordNo: state.recordNo,
      settlement,
      leaveAtMs: state.atMs,
      payableFen: state.payableFen,
      discountFen: state.discountFen,
      prepaidFen: state.prepaidFen,
      collectedFen,
      releasedFen: Math.max(0, state.dueFen - collectedFen),
      notBeforeMs: collectedFen > 0 ? lateWindowEnd(state, settings.reportAfterWindowMs) : undefined,
      settledLeftover: leftover,
    },
  });
  void atMs;
  return { state: next, effects };
}

function settlementOnly(s: StoredSettlement): Settlement {
  return { releaseType: s.releaseType, payType: s.payType, paidFen: s.paidFen, orderNo: s.orderNo, payTimeMs: s.payTimeMs, operator: s.operator, path: s.path };
}

function emitOf(state: SettlementState, type: string, fields: Record<string, unknown>): SettlementEffect {
  return { kind: "emit", event: { type, plate: state.plate, recordNo: state.recordNo, ...fields } };
}
