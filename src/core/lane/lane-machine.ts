// Over 600 lines on purpose: the lane's states and every transition between them, read together.
/**
 * Lane transaction machine, shared by entry and exit lanes (docs/architecture.md "How one car
 * travels through the box").
 * Pure: `stepLaneLogic(state, input, settings, view) → { state, effects }`. Most callers want
 * `stepLane` (lane.ts), which composes this with the loop filters and the barrier machine.
 *
 * One transaction (`Tx`, id `txId`) per vehicle. Phases:
 *   plateOnly        a plate was read with no vehicle on loopA; kept `plateWindowMs`
 *   waiting          vehicle on loopA, no plate yet (after `plateWindowMs`: one `plateTimeout`)
 *   deciding         vehicle + plate: `requestDecision` sent (exactly once per transaction)
 *   denied           decision deny; the car is expected to back out (or the attendant opens)
 *   awaitingPayment  decision await; a `settle` input opens
 *   allowed          barrier asked to open; waiting for the car to reach loopB
 *   leftA            allowed, left loopA, not yet on loopB: `backoutGraceMs` to get there
 *   passing          on loopB; loopB clearing ends it as `passed`
 *
 * Inputs (`LaneLogicInput`):
 *   { kind: "presence", loop: "A" | "B", occupied, atMs }         debounced loop presence
 *   { kind: "plate", plate, color?, confidence?, atMs, source }
 *   { kind: "decision", txId, decision: { verdict: "allow"|"deny"|"await", reason, ...data }, atMs }
 *   { kind: "settle", txId, reason, atMs, data? }                 payment arrived for an await
 *   { kind: "cancel", txId, atMs, reason?, operator? }            attendant cancels
 *   { kind: "open", reason, atMs, operator? }                     attendant open (button, API)
 *   { kind: "close", reason, atMs, operator? }                    attendant close
 *   { kind: "timer", id, atMs }
 *
 * Effects (`LaneLogicEffect`):
 *   { kind: "requestDecision", txId, laneId, direction, plate, plateRaw, color?, confidence?, source, atMs }
 *   { kind: "barrier", command: BarrierCommand }     routed into the barrier machine by lane.ts
 *   { kind: "event", type: LaneEventType, laneId, atMs, txId?, ... }
 *   { kind: "display", laneId, message, data }       catalogue key + data for the LED/voice board
 *   { kind: "startTimer" | "cancelTimer", ... }
 *
 * Every transaction ends with exactly one terminal event: `passed`, `backedOut`, `tailgated`,
 * `cancelled` or `expired`. A decision for a transaction that is not `deciding` (unknown, ended,
 * already decided) is ignored with a `decisionIgnored` event: nothing is decided twice.
 *
 * Judgement calls, for the integrator:
 * - A late plate (after `plateWindowMs`) still attaches while the car waits on loopA; the
 *   window only decides when a plate read with no car is dropped, and when `plateTimeout` fires.
 * - A read of a plate seen within `dedupeWindowMs` (active transaction, or one that passed) is
 *   a `duplicateRead`. A car that backed out or was cancelled may be read again at once.
 * - Tailgate: loopB occupied while no passage is owed and the barrier is not closed raises one
 *   `tailgate` event per loopB occupancy; the waiting transaction of the car that follows ends
 *   as `tailgated` when it leaves loopA while loopB is occupied.
 * - An attendant open with no car on loopA creates a manual transaction (no plate) that waits
 *   `recloseMs` for its passage.
 * - A passing car that clears loopB while still on loopA reversed: it is `allowed` again. The
 *   barrier counts that loopB episode as a passage and closes; if the car then moves up again
 *   it re-opens under it (anti-smash) or, if the arm is already down, waits for the attendant.
 * - The reclose timer brings the arm down even if the allowed car still sits on loopA; the
 *   transaction stays `allowed` and an attendant `open` lifts again for it.
 * - Loops alone cannot tell two cars on loopB at once apart: a car that left loopA while loopB
 *   was busy gets its backout grace from the moment loopB clears.
 */
import { cancelTimer, startTimer, type TimerEffect, type TimerInput } from "../loops/timers.js";
import type { BarrierPosition } from "../barrier/barrier-machine.js";
import { isNoPlate, normalisePlate } from "../plates/normalise.js";

export type LaneDirection = "in" | "out";

export interface LaneLogicSettings {
  laneId: string;
  direction: LaneDirection;
  plateWindowMs: number;
  dedupeWindowMs: number;
  backoutGraceMs: number;
  recloseMs: number;
}

export type TxPhase = "plateOnly" | "waiting" | "deciding" | "denied" | "awaitingPayment" | "allowed" | "leftA" | "passing";

export interface Tx {
  readonly txId: string;
  readonly phase: TxPhase;
  /** The vehicle of this transaction is the one on loopA now. */
  readonly onLoopA: boolean;
  readonly plate: string | null;
  readonly plateRaw: string | null;
  readonly color: string | null;
  readonly confidence: number | null;
  readonly source: string | null;
  readonly plateAtMs: number | null;
  readonly arrivedAtMs: number | null;
  readonly decisionRequested: boolean;
  readonly verdict: "allow" | "deny" | "await" | null;
  readonly reason: string | null;
  readonly manual: boolean;
  readonly timer: string | null;
}

export interface LaneLogicState {
  readonly seq: number;
  readonly loopA: boolean;
  readonly loopB: boolean;
  readonly txs: readonly Tx[];
  /** Accepted plates within the dedupe window. */
  readonly recent: readonly { plate: string; atMs: number; txId: string }[];
  readonly lastPassedTxId: string | null;
  /** A tailgate was already reported for the current loopB occupancy. */
  readonly tailgateReported: boolean;
}

export interface AllowDecision {
  verdict: "allow";
  reason: string;
  [extra: string]: unknown;
}
export interface DenyDecision {
  verdict: "deny";
  reason: string;
  [extra: string]: unknown;
}
export interface AwaitDecision {
  verdict: "await";
  reason: string;
  [extra: string]: unknown;
}
export type LaneDecision = AllowDecision | DenyDecision | AwaitDecision;

export interface PlateInput {
  kind: "plate";
  plate: string;
  color?: string;
  confidence?: number;
  atMs: number;
  source: string;
}

export type LaneLogicInput =
  | { kind: "presence"; loop: "A" | "B"; occupied: boolean; atMs: number }
  | PlateInput
  | { kind: "decision"; txId: string; decision: LaneDecision; atMs: number }
  | { kind: "settle"; txId: string; reason: string; atMs: number; data?: Record<string, unknown> }
  | { kind: "cancel"; txId: string; atMs: number; reason?: string; operator?: string }
  | { kind: "open"; reason: string; atMs: number; operator?: string }
  | { kind: "close"; reason: string; atMs: number; operator?: string }
  | TimerInput;

export type BarrierCommand = { kind: "open"; reason: string; txId?: string } | { kind: "close"; reason: string } | { kind: "withdraw"; reason: string; txId?: string };

export interface RequestDecisionEffect {
  kind: "requestDecision";
  txId: string;
  laneId: string;
  direction: LaneDirection;
  /** Normalised plate (normalisePlate). */
  plate: string;
  plateRaw: string;
  color?: string;
  confidence?: number;
  source: string;
  atMs: number;
}

export type LaneEventType =
  // transactions
  | "vehicleArrived"
  | "plateRead"
  | "duplicateRead"
  | "plateIgnored"
  | "plateTimeout"
  | "decided"
  | "settled"
  | "decisionIgnored"
  | "settleIgnored"
  | "cancelIgnored"
  | "passageStarted"
  | "passed"
  | "backedOut"
  | "tailgated"
  | "cancelled"
  | "expired"
  // lane
  | "tailgate"
  | "unexpectedVehicle"
  | "manualOpen"
  | "manualClose"
  | "cashConfirmPressed"
  | "presence"
  | "detectorFault"
  | "detectorRecovered"
  | "inputIgnored"
  // barrier (passed through from the barrier machine by lane.ts)
  | "barrierOpening"
  | "barrierOpened"
  | "barrierClosing"
  | "barrierClosed"
  | "barrierReopened"
  | "barrierFault"
  | "closeDeferred";

export interface LaneEvent {
  kind: "event";
  type: LaneEventType;
  laneId: string;
  atMs: number;
  txId?: string;
  plate?: string;
  reason?: string;
  verdict?: "allow" | "deny" | "await";
  /** Why an input was ignored. */
  why?: string;
  loop?: "A" | "B";
  occupied?: boolean;
  source?: string;
  operator?: string;
  precedingTxId?: string;
  suspectTxId?: string;
  manual?: boolean;
  commanded?: boolean;
  during?: "opening" | "closing";
  heldMs?: number;
  /** Decision or settlement data handed through from the policy. */
  data?: Record<string, unknown>;
}

/** Event fields as the machines build them (undefined fields are dropped). */
export type LaneEventFields = { [K in Exclude<keyof LaneEvent, "kind" | "type" | "laneId" | "atMs">]?: LaneEvent[K] | undefined };

export type DisplayMessage = "allowed" | "denied" | "awaitingPayment" | "plateTimeout" | "paid";

export interface DisplayEffect {
  kind: "display";
  laneId: string;
  message: DisplayMessage;
  data: Record<string, unknown>;
}

export type LaneLogicEffect = RequestDecisionEffect | { kind: "barrier"; command: BarrierCommand } | LaneEvent | DisplayEffect | TimerEffect;

/** What the lane machine may see of the barrier (read-only; lane.ts passes it). */
export interface BarrierView {
  position: BarrierPosition;
}

export interface LaneLogicStep {
  state: LaneLogicState;
  effects: LaneLogicEffect[];
}

export function initLaneLogic(): LaneLogicState {
  return { seq: 0, loopA: false, loopB: false, txs: [], recent: [], lastPassedTxId: null, tailgateReported: false };
}

export const activeTransactions = (state: LaneLogicState): readonly Tx[] => state.txs;

export function stepLaneLogic(state: LaneLogicState, input: LaneLogicInput, settings: LaneLogicSettings, view: BarrierView): LaneLogicStep {
  const ctx = new Step(state, settings, view, input.atMs);
  switch (input.kind) {
    case "presence":
      if (input.loop === "A") {
        if (input.occupied) ctx.loopAOccupied();
        else ctx.loopAClear();
      } else if (input.occupied) ctx.loopBOccupied();
      else ctx.loopBClear();
      break;
    case "plate":
      ctx.plate(input);
      break;
    case "decision":
      ctx.decision(input.txId, input.decision);
      break;
    case "settle":
      ctx.settle(input.txId, input.reason, input.data);
      break;
    case "cancel":
      ctx.cancel(input.txId, input.reason, input.operator);
      break;
    case "open":
      ctx.attendantOpen(input.reason, input.operator);
      break;
    case "close":
      ctx.attendantClose(input.reason, input.operator);
      break;
    case "timer":
      ctx.timer(input.id);
      break;
  }
  return { state: ctx.s, effects: ctx.fx };
}

/** One step's working copy: state is replaced, never mutated, so callers' states stay valid. */
class Step {
  readonly fx: LaneLogicEffect[] = [];

  constructor(
    public s: LaneLogicState,
    private readonly settings: LaneLogicSettings,
    private readonly view: BarrierView,
    private readonly atMs: number,
  ) {}

  // ---- loops ----

  loopAOccupied(): void {
    if (this.s.loopA) return;
    this.s = { ...this.s, loopA: true };
    const waitingPlate = this.s.txs.find((t) => t.phase === "plateOnly");
    if (waitingPlate) {
      this.cancelTxTimer(waitingPlate);
      const tx = this.update(waitingPlate.txId, { onLoopA: true, arrivedAtMs: this.atMs, timer: null });
      this.event("vehicleArrived", { txId: tx.txId, plate: tx.plate ?? undefined });
      this.requestDecision(tx);
      return;
    }
    const tx = this.createTx({ phase: "waiting", onLoopA: true, arrivedAtMs: this.atMs });
    this.event("vehicleArrived", { txId: tx.txId });
    this.setTxTimer(tx, "plate", this.settings.plateWindowMs);
  }

  loopAClear(): void {
    if (!this.s.loopA) return;
    this.s = { ...this.s, loopA: false };
    const front = this.front();
    if (!front) return;
    switch (front.phase) {
      case "waiting":
      case "deciding":
      case "denied":
      case "awaitingPayment": {
        // It went forward behind another car (loopB busy, arm up) or it backed out.
        if (this.s.loopB && this.view.position !== "closed") {
          this.end(front, "tailgated", { precedingTxId: this.s.lastPassedTxId ?? undefined });
        } else {
          this.end(front, "backedOut", {});
        }
        return;
      }
      case "allowed": {
        const tx = this.update(front.txId, { onLoopA: false, phase: "leftA" });
        this.setTxTimer(tx, "grace", this.settings.backoutGraceMs);
        return;
      }
      default:
        this.update(front.txId, { onLoopA: false });
    }
  }

  loopBOccupied(): void {
    if (this.s.loopB) return;
    this.s = { ...this.s, loopB: true, tailgateReported: false };
    if (this.s.txs.some((t) => t.phase === "passing")) return;
    const candidate = this.s.txs.find((t) => t.phase === "leftA") ?? this.s.txs.find((t) => t.phase === "allowed");
    if (candidate) {
      this.cancelTxTimer(candidate);
      const tx = this.update(candidate.txId, { phase: "passing", timer: null });
      this.event("passageStarted", { txId: tx.txId, plate: tx.plate ?? undefined, manual: tx.manual });
      return;
    }
    if (this.view.position === "closed") {
      this.event("unexpectedVehicle", { loop: "B" });
      return;
    }
    // Nothing owed and the arm is up or moving: a car followed the last one (防跟车).
    const suspect = this.front();
    this.s = { ...this.s, tailgateReported: true };
    this.event("tailgate", {
      precedingTxId: this.s.lastPassedTxId ?? undefined,
      suspectTxId: suspect?.txId,
      plate: suspect?.plate ?? undefined,
    });
  }

  loopBClear(): void {
    if (!this.s.loopB) return;
    this.s = { ...this.s, loopB: false, tailgateReported: false };
    const passing = this.s.txs.find((t) => t.phase === "passing");
    if (passing) {
      if (passing.onLoopA) {
        // Still on loopA: it reversed off loopB. Its allowance stands.
        this.update(passing.txId, { phase: "allowed" });
      } else {
        this.end(passing, "passed", {});
        this.s = { ...this.s, lastPassedTxId: passing.txId };
      }
    }
    // Cars that left loopA while the loop was busy get their grace from now.
    for (const waiting of this.s.txs) {
      if (waiting.phase === "leftA" && waiting.timer === null) this.setTxTimer(waiting, "grace", this.settings.backoutGraceMs);
    }
  }

  // ---- plate reads ----

  plate(input: PlateInput): void {
    const plate = typeof input.plate === "string" ? normalisePlate(input.plate) : "";
    const source = typeof input.source === "string" ? input.source : "unknown";
    if (plate.length < 2 || isNoPlate(plate)) {
      this.event("plateIgnored", { why: "noPlate", source });
      return;
    }
    this.pruneRecent();
    const active = this.s.txs.find((t) => t.plate === plate);
    const recent = this.s.recent.find((r) => r.plate === plate);
    if (active || recent) {
      this.event("duplicateRead", { plate, source, txId: active?.txId ?? recent?.txId });
      return;
    }
    const details = {
      plate,
      plateRaw: input.plate,
      color: typeof input.color === "string" ? input.color : null,
      confidence: typeof input.confidence === "number" && Number.isFinite(input.confidence) ? input.confidence : null,
      source,
      plateAtMs: this.atMs,
    };
    const front = this.front();
    let tx: Tx;
    if (front && front.plate === null) {
      this.cancelTxTimer(front);
      tx = this.update(front.txId, { ...details, timer: null });
    } else if (this.s.loopA && !front) {
      // The car on loopA lost its transaction (attendant cancel): this read starts a new one.
      tx = this.createTx({ ...details, phase: "waiting", onLoopA: true, arrivedAtMs: this.atMs });
    } else {
      const older = this.s.txs.find((t) => t.phase === "plateOnly");
      if (older) this.end(older, "expired", { why: "replaced" });
      tx = this.createTx({ ...details, phase: "plateOnly", onLoopA: false });
      this.setTxTimer(tx, "plate", this.settings.plateWindowMs);
    }
    this.s = { ...this.s, recent: [...this.s.recent, { plate, atMs: this.atMs, txId: tx.txId }] };
    this.event("plateRead", { txId: tx.txId, plate, source });
    if (tx.onLoopA) this.requestDecision(this.tx(tx.txId)!);
  }

  // ---- decisions ----

  decision(txId: string, decision: LaneDecision): void {
    const tx = this.tx(txId);
    if (!tx) return this.event("decisionIgnored", { txId, why: "unknownTransaction" });
    if (tx.phase !== "deciding") return this.event("decisionIgnored", { txId, why: tx.verdict ? "alreadyDecided" : "notDeciding" });
    const verdict = decision?.verdict;
    const reason = decision?.reason;
    if ((verdict !== "allow" && verdict !== "deny" && verdict !== "await") || typeof reason !== "string" || reason.length === 0) {
      return this.event("decisionIgnored", { txId, why: "badDecision" });
    }
    const { verdict: _v, reason: _r, ...data } = decision;
    const display = { plate: tx.plate, reason, direction: this.settings.direction, ...data };
    if (verdict === "allow") {
      this.update(txId, { phase: "allowed", verdict, reason });
      this.event("decided", { txId, plate: tx.plate ?? undefined, verdict, reason, data });
      this.fx.push({ kind: "barrier", command: { kind: "open", reason, txId } });
      this.display("allowed", display);
    } else if (verdict === "deny") {
      this.update(txId, { phase: "denied", verdict, reason });
      this.event("decided", { txId, plate: tx.plate ?? undefined, verdict, reason, data });
      this.display("denied", display);
    } else {
      this.update(txId, { phase: "awaitingPayment", verdict, reason });
      this.event("decided", { txId, plate: tx.plate ?? undefined, verdict, reason, data });
      this.display("awaitingPayment", display);
    }
  }

  settle(txId: string, reason: string, data: Record<string, unknown> | undefined): void {
    const tx = this.tx(txId);
    if (!tx) return this.event("settleIgnored", { txId, why: "unknownTransaction" });
    if (tx.phase !== "awaitingPayment") return this.event("settleIgnored", { txId, why: `phase ${tx.phase}` });
    if (typeof reason !== "string" || reason.length === 0) return this.event("settleIgnored", { txId, why: "noReason" });
    this.update(txId, { phase: "allowed", reason });
    this.event("settled", { txId, plate: tx.plate ?? undefined, reason, ...(data ? { data } : {}) });
    this.fx.push({ kind: "barrier", command: { kind: "open", reason, txId } });
    this.display("paid", { plate: tx.plate, reason, direction: this.settings.direction, ...(data ?? {}) });
  }

  cancel(txId: string, reason: string | undefined, operator: string | undefined): void {
    const tx = this.tx(txId);
    if (!tx) return this.event("cancelIgnored", { txId, why: "unknownTransaction" });
    if (tx.phase === "passing") return this.event("cancelIgnored", { txId, why: "passing" });
    const wasOpening = tx.phase === "allowed" || tx.phase === "leftA";
    this.end(tx, "cancelled", { reason: reason ?? "attendant", operator });
    if (wasOpening) this.fx.push({ kind: "barrier", command: { kind: "withdraw", reason: "cancelled", txId } });
  }

  attendantOpen(reason: string, operator: string | undefined): void {
    const why = typeof reason === "string" && reason.length > 0 ? reason : "manual";
    const front = this.front();
    if (front && (front.phase === "waiting" || front.phase === "deciding" || front.phase === "denied" || front.phase === "awaitingPayment")) {
      this.cancelTxTimer(front);
      this.update(front.txId, { phase: "allowed", verdict: "allow", reason: why, timer: null });
      this.event("manualOpen", { txId: front.txId, plate: front.plate ?? undefined, reason: why, operator });
      this.fx.push({ kind: "barrier", command: { kind: "open", reason: why, txId: front.txId } });
      return;
    }
    if (front && (front.phase === "allowed" || front.phase === "passing")) {
      // Already allowed: lift again only if the arm came down meanwhile (reclose, attendant
      // close); an arm that is up already owes this car its passage.
      this.event("manualOpen", { txId: front.txId, plate: front.plate ?? undefined, reason: why, operator });
      if (this.view.position !== "open" && this.view.position !== "opening") {
        this.fx.push({ kind: "barrier", command: { kind: "open", reason: why, txId: front.txId } });
      }
      return;
    }
    const tx = this.createTx({ phase: "allowed", onLoopA: false, manual: true, verdict: "allow", reason: why });
    this.setTxTimer(tx, "manual", this.settings.recloseMs);
    this.event("manualOpen", { txId: tx.txId, reason: why, operator });
    this.fx.push({ kind: "barrier", command: { kind: "open", reason: why, txId: tx.txId } });
  }

  attendantClose(reason: string, operator: string | undefined): void {
    const why = typeof reason === "string" && reason.length > 0 ? reason : "manual";
    this.event("manualClose", { reason: why, operator });
    this.fx.push({ kind: "barrier", command: { kind: "close", reason: why } });
  }

  // ---- timers ----

  timer(id: string): void {
    const tx = this.s.txs.find((t) => t.timer === id);
    if (!tx) return; // stale or not ours
    const cleared = this.update(tx.txId, { timer: null });
    switch (cleared.phase) {
      case "plateOnly":
        this.end(cleared, "expired", { why: "noVehicle" });
        return;
      case "waiting":
        this.event("plateTimeout", { txId: cleared.txId });
        this.display("plateTimeout", { direction: this.settings.direction });
        return;
      case "leftA":
        if (this.s.loopB) {
          // The safety loop is busy (a car ahead): it may still be this one's turn. The grace
          // starts again once the loop clears (loopBClear), not periodically meanwhile.
          return;
        }
        this.end(cleared, "backedOut", {});
        this.fx.push({ kind: "barrier", command: { kind: "withdraw", reason: "backedOut", txId: cleared.txId } });
        return;
      case "allowed":
        if (cleared.manual && !cleared.onLoopA) {
          this.end(cleared, "expired", { why: "manualOpenUnused" });
          this.fx.push({ kind: "barrier", command: { kind: "withdraw", reason: "manualOpenUnused", txId: cleared.txId } });
        }
        return;
      default:
        return;
    }
  }

  // ---- helpers ----

  private front(): Tx | undefined {
    return this.s.txs.find((t) => t.onLoopA);
  }

  private tx(txId: string): Tx | undefined {
    return this.s.txs.find((t) => t.txId === txId);
  }

  private createTx(fields: Partial<Tx> & { phase: TxPhase }): Tx {
    const seq = this.s.seq + 1;
    const tx: Tx = {
      txId: `${this.settings.laneId}-${this.atMs.toString(36)}-${seq}`,
      onLoopA: false,
      plate: null,
      plateRaw: null,
      color: null,
      confidence: null,
      source: null,
      plateAtMs: null,
      arrivedAtMs: null,
      decisionRequested: false,
      verdict: null,
      reason: null,
      manual: false,
      timer: null,
      ...fields,
    };
    this.s = { ...this.s, seq, txs: [...this.s.txs, tx] };
    return tx;
  }

  private update(txId: string, fields: Partial<Tx>): Tx {
    let updated: Tx | undefined;
    const txs = this.s.txs.map((t) => (t.txId === txId ? (updated = { ...t, ...fields }) : t));
    this.s = { ...this.s, txs };
    return updated!;
  }

  private requestDecision(tx: Tx): void {
    // Only a vehicle that is still undecided gets a decision, and only once.
    if (tx.decisionRequested || tx.plate === null || (tx.phase !== "waiting" && tx.phase !== "plateOnly")) return;
    this.update(tx.txId, { phase: "deciding", decisionRequested: true });
    const effect: RequestDecisionEffect = {
      kind: "requestDecision",
      txId: tx.txId,
      laneId: this.settings.laneId,
      direction: this.settings.direction,
      plate: tx.plate,
      plateRaw: tx.plateRaw ?? tx.plate,
      source: tx.source ?? "unknown",
      atMs: this.atMs,
    };
    if (tx.color !== null) effect.color = tx.color;
    if (tx.confidence !== null) effect.confidence = tx.confidence;
    this.fx.push(effect);
  }

  private end(tx: Tx, outcome: "passed" | "backedOut" | "tailgated" | "cancelled" | "expired", fields: LaneEventFields): void {
    this.cancelTxTimer(tx);
    const txs = this.s.txs.filter((t) => t.txId !== tx.txId);
    // Only a passage keeps the plate in the dedupe window: a car that backed out or was
    // cancelled must be read again when it comes back.
    const recent = outcome === "passed" ? this.s.recent : this.s.recent.filter((r) => r.txId !== tx.txId);
    this.s = { ...this.s, txs, recent };
    this.event(outcome, { txId: tx.txId, plate: tx.plate ?? undefined, manual: tx.manual || undefined, ...fields });
  }

  private setTxTimer(tx: Tx, purpose: "plate" | "grace" | "manual", ms: number): void {
    this.cancelTxTimer(this.tx(tx.txId) ?? tx);
    const seq = this.s.seq + 1;
    const id = `lane/${purpose}/${seq}`;
    this.s = { ...this.s, seq };
    this.update(tx.txId, { timer: id });
    this.fx.push(startTimer(id, ms));
  }

  private cancelTxTimer(tx: Tx): void {
    const current = this.tx(tx.txId);
    if (current?.timer) {
      this.fx.push(cancelTimer(current.timer));
      this.update(tx.txId, { timer: null });
    }
  }

  private pruneRecent(): void {
    const since = this.atMs - this.settings.dedupeWindowMs;
    if (this.s.recent.every((r) => r.atMs > since)) return;
    this.s = { ...this.s, recent: this.s.recent.filter((r) => r.atMs > since) };
  }

  private event(type: LaneEventType, fields: LaneEventFields): void {
    const event: LaneEvent = { kind: "event", type, laneId: this.settings.laneId, atMs: this.atMs };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) (event as unknown as Record<string, unknown>)[key] = value;
    this.fx.push(event);
  }

  private display(message: DisplayMessage, data: Record<string, unknown>): void {
    this.fx.push({ kind: "display", laneId: this.settings.laneId, message, data });
  }
}
