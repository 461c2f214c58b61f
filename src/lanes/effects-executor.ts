/**
 * The settlement machine's executor: one exit's machine (core/settlement/settlement-machine.ts)
 * is stepped here and its effects run in order. The machine's state lives on the exit
 * (`ExitCtx.machine`, settlement-mirror.ts), so every input for that exit steps the same state;
 * the inputs are fed by settlement-inputs.ts.
 *
 * Paths the machine drives (input → what runs here):
 *   - the exit's bill (`billed`): nothing due, free or prepaid: written, opened, "paid",
 *     "payment"; a fee due: the pre-leave bill sent (`sendBill`), its pending copy written
 *     while it is in flight, "fee due", the lane told to wait (`decide`);
 *   - the platform's answer to a bill on time and late (`answer`): paid (opened, then written),
 *     awaiting payment, cash fallback, a re-ask with backoff (`startTimer`, `timer`), at once
 *     when the platform answers anything (`platformUp`); a 200 for an exit settled another way
 *     is a refund owed (`refundOwed`, the refunds ledger);
 *   - the scanner gun (`scan`): the new bill's pending copy written, then sent with its code;
 *   - the attendant's cash (`cash`), with the check before cash of a bill whose call went
 *     unanswered (its `sendBill` calls and their answers), and its reply (`reply`);
 *   - a hand release of a car awaiting payment (`release`), and the lane opened by hand
 *     (`manualOpened`): written, or the stay of a car with no record made (`makeStay`);
 *   - the platform's remoteDev on the bill's plateId (`remote`) and its payment notice
 *     (`notice`, also one kept while the bill was being made);
 *   - a stay read again within its grace on a settlement it already holds (`heldSettlement`):
 *     opened on it, nothing written again;
 *   - restart recovery (restoreExit, from recovery.ts): a stay holding its settlement is held
 *     for its car, then finished as left (`report`, run by the passage); a stay holding a
 *     pending bill asks the platform again with it (same plateId) until answered. Each runs on
 *     an exit of its own, on no lane, and ends (`superseded`) once its stay moves on without it.
 *   - a car's back-out (`abandoned`, from passage.ts): a stay made only to report this exit
 *     is cancelled once its write is done (`cancelMadeStay`), a pending bill cleared from the
 *     stay, which stays in the lot and is billed again at its next read (`clearPending`).
 * Not the machine's: the passage itself (passage.ts), which the machine's `report` calls.
 *
 * An effect kind this executor does not run is refused with E_EFFECT_NOT_WIRED before anything of its step runs, so a path moved here
 * half-way fails loudly instead of skipping a write or an open. A durable effect is on disk
 * before the next effect runs, with one exception the machine marks: the new bill's pending
 * copy (`whileBillInFlight`) is written beside the call, and only the next write and the open
 * wait for it. A failed settlement write stops the step and is fed back as `writeFailed`: the
 * machine puts the car back to awaiting payment unless the barrier already moved for it.
 */
import {
  restoreSettlement,
  stepSettlement,
  type CommandReply,
  type DurableExit,
  type SettlementEffect,
  type SettlementInput,
  type SettlementSettings,
  type SettlementState,
  type SettlementStep,
} from "../core/settlement/settlement-machine.js";
import { after, cancelTimer, emit, feedDecision, kebab, show, track } from "./effects.js";
import { callBill } from "./bills.js";
import { refundOwed } from "./double-payment.js";
import { REPORT_AFTER_WINDOW_MS, exitPassed } from "./passage.js";
import { openFor, stayForUnrecorded, writeStored } from "./settlement.js";
import { machineOf, mirrorBack } from "./settlement-mirror.js";
import type { ExitCtx, LanesState } from "./lane-state.js";

export class EffectNotWiredError extends Error {
  readonly code = "E_EFFECT_NOT_WIRED";
  constructor(readonly kind: SettlementEffect["kind"]) {
    super(`settlement effect "${kind}" is not run by the lanes' executor yet`);
    this.name = "EffectNotWiredError";
  }
}

const wired: ReadonlySet<SettlementEffect["kind"]> = new Set([
  "sendBill",
  "writePending",
  "writeSettlement",
  "makeStay",
  "refundOwed",
  "open",
  "show",
  "emit",
  "reply",
  "decide",
  "report",
  "startTimer",
  "cancelTimer",
  "clearPending",
  "cancelMadeStay",
]);

/** What one step left to come: the replies it gave, and the steps its platform calls will feed. */
export interface StepOutcome {
  replies: CommandReply[];
  followUps: Array<Promise<StepOutcome>>;
}

/** The machine's settings for an exit lane, from the configuration. */
function settlementSettings(lanes: LanesState, laneId: string): SettlementSettings {
  const { deadlines } = lanes.deps.config.platform;
  return {
    laneId,
    preLeaveMs: deadlines.preLeaveMs,
    lateAnswerMs: deadlines.lateAnswerMs,
    cashCheckMs: Math.min(deadlines.cashCheckMs, deadlines.preLeaveMs),
    reaskFirstMs: deadlines.reaskFirstMs,
    reaskMaxMs: deadlines.reaskMaxMs,
    settledHoldMs: lanes.deps.config.policy.exit.settledHoldMs,
    reportAfterWindowMs: REPORT_AFTER_WINDOW_MS,
  };
}

/**
 * Feeds one input to the exit's machine, keeps its new state on the exit (synchronously, so a
 * second input in the same turn sees it) and runs its effects. A step with an effect not wired
 * is refused before anything runs, and leaves the machine as it was.
 */
export async function stepExit(lanes: LanesState, ctx: ExitCtx, input: SettlementInput): Promise<StepOutcome> {
  const before = machineOf(lanes, ctx);
  const fed: SettlementInput = input.kind !== "superseded" && ctx.movedOn?.() ? { kind: "superseded", atMs: input.atMs } : input;
  return runStep(lanes, ctx, before, stepSettlement(before, fed, settlementSettings(lanes, ctx.laneId)));
}

/**
 * A machine restored at start from what a stay holds (recovery.ts): its state goes on the exit
 * and the effects of its restart run (the hold of a kept settlement, the re-ask of a pending bill).
 */
export async function restoreExit(lanes: LanesState, ctx: ExitCtx, durableExit: DurableExit): Promise<void> {
  const restored = restoreSettlement(durableExit, lanes.deps.clock.now(), settlementSettings(lanes, ctx.laneId));
  const step = { ...restored, state: { ...restored.state, txId: ctx.txId } };
  await runStep(lanes, ctx, step.state, step);
}

/** Runs one step of the exit's machine: refused whole when it holds an effect this executor does not run. */
export async function runStep(lanes: LanesState, ctx: ExitCtx, before: SettlementState, step: SettlementStep): Promise<StepOutcome> {
  const missing = step.effects.find((effect) => !wired.has(effect.kind));
  if (missing) throw new EffectNotWiredError(missing.kind);
  mirrorBack(lanes, ctx, before, step.state);
  return runEffects(lanes, ctx, step.effects, before.onLane);
}

/** Every reply of a step and of the steps that followed it (the check before cash answers later). */
export async function repliesOf(outcome: StepOutcome): Promise<CommandReply[]> {
  const later = await Promise.all(outcome.followUps.map(async (followUp) => repliesOf(await followUp)));
  return [...outcome.replies, ...later.flat()];
}

/**
 * Runs effects in order. A durable write is awaited before the next effect; a failed one stops
 * the step and is fed back as `writeFailed` (thrown on, unless the barrier already moved: then
 * only logged). A car that left the lane while a write was in flight gets nothing more of this
 * step: no open, board or event for it.
 */
async function runEffects(lanes: LanesState, ctx: ExitCtx, effects: readonly SettlementEffect[], onLane: boolean): Promise<StepOutcome> {
  const outcome: StepOutcome = { replies: [], followUps: [] };
  let opened = false;
  for (const effect of effects) {
    switch (effect.kind) {
      case "writePending":
      case "writeSettlement":
      case "makeStay":
      case "refundOwed":
        if (effect.kind === "writePending" && effect.whileBillInFlight) {
          if (!(await pendingWhileBillInFlight(lanes, ctx, effect))) return outcome;
          break;
        }
        try {
          // Any other pending bill (a scanned code's) is durable before its call goes.
          await durable(lanes, ctx, effect);
        } catch (error) {
          // (A refund the ledger did not take changes nothing about how the exit was settled.)
          if (effect.kind !== "refundOwed") await stepExit(lanes, ctx, { kind: "writeFailed", atMs: lanes.deps.clock.now() });
          if (!opened) throw error;
          lanes.log.error({ err: error, recordNo: ctx.record?.recordNo }, "settlement written after the open is not yet durable (asked again at the next start)");
          return outcome;
        }
        if (onLane && !opened && !lanes.exits.has(ctx.txId) && effect.kind !== "refundOwed") return outcome;
        break;
      case "open":
        await ctx.pendingWrite;
        if (!lanes.exits.has(ctx.txId)) break;
        openFor(lanes, ctx, effect.reason, effect.operator);
        opened = true;
        break;
      case "show":
        show(lanes, ctx.laneId, effect.message);
        break;
      case "emit":
        // A stay made at this step has the recordNo the machine could not know.
        emit(lanes, { ...effect.event, recordNo: effect.event.recordNo ?? ctx.record?.recordNo, laneId: ctx.laneId });
        break;
      case "reply":
        outcome.replies.push(effect.reply);
        break;
      case "decide":
        feedDecision(lanes, ctx, { verdict: effect.verdict, reason: effect.reason, ...(effect.feeFen === undefined ? {} : { feeFen: effect.feeFen }) });
        break;
      case "sendBill":
        outcome.followUps.push(billCall(lanes, ctx, effect));
        break;
      case "report":
        // The passage reports the exit from the exit and its stay, as for a car that passed.
        ctx.settledLeftover = effect.report.settledLeftover;
        await exitPassed(lanes, ctx);
        break;
      case "startTimer":
        startMachineTimer(lanes, ctx, effect.id, effect.ms);
        break;
      case "cancelTimer":
        stopMachineTimer(lanes, ctx, effect.id);
        break;
      case "cancelMadeStay":
        await cancelMadeStay(lanes, ctx, effect.why);
        break;
      case "clearPending":
        // Best effort: a stale pendingExit is cleared again by the next read at an exit, and the store logs its own write failures.
        if (lanes.deps.store.getInPark(effect.recordNo)) void lanes.deps.store.updateInPark(effect.recordNo, { pendingExit: undefined }, { durable: false }).catch(() => undefined);
        break;
      default: {
        // Every kind the machine has is run above (the compiler checks); one it gains later is refused here.
        const unknown: never = effect;
        throw new EffectNotWiredError((unknown as SettlementEffect).kind);
      }
    }
  }
  return outcome;
}

/**
 * A durable effect, on disk when it resolves. A write into the stay goes after the one before
 * it (the exit's pendingWrite: the stay never moves backwards on disk), and marks itself there
 * at once, in the step's own turn, so the passage and stop() wait for it.
 */
async function durable(
  lanes: LanesState,
  ctx: ExitCtx,
  effect: Extract<SettlementEffect, { kind: "writePending" | "writeSettlement" | "makeStay" | "refundOwed" }>,
): Promise<void> {
  if (effect.kind === "refundOwed") return refundOwed(lanes, ctx, effect);
  const write = Promise.resolve(ctx.pendingWrite).then(async () => {
    if (effect.kind === "makeStay") return stayForUnrecorded(lanes, ctx, effect.plate, effect.settlement);
    if (effect.kind === "writeSettlement") return writeStored(lanes, ctx, effect.settlement);
    if (lanes.deps.store.getInPark(effect.recordNo)) ctx.record = await lanes.deps.store.updateInPark(effect.recordNo, { pendingExit: effect.pending });
  });
  // A marker only: the write's own failure is thrown by the await below.
  ctx.pendingWrite = write.catch(() => undefined);
  await write;
}

/**
 * The new bill's own copy, written while the bill is in flight. undici writes a request on a
 * reused keep-alive connection from an immediate (it first lets bytes pending on the idle socket
 * be read); the write starts from the immediate queued after it, so neither the disk write's
 * hand-off to the thread pool nor the board delays the request. The car waits for the slower of
 * the two, not for both: the board, the event and the lane's "await" follow at once (none can
 * be overtaken by the answer, which arrives on a later turn), and every later write and the open
 * wait for this one (pendingWrite). False: settled or gone meanwhile, nothing more to show.
 */
async function pendingWhileBillInFlight(lanes: LanesState, ctx: ExitCtx, effect: Extract<SettlementEffect, { kind: "writePending" }>): Promise<boolean> {
  let written!: () => void;
  ctx.pendingWrite = new Promise<void>((resolve) => (written = resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
  lanes.deps.store.updateInPark(effect.recordNo, { pendingExit: effect.pending }).then(
    () => written(),
    // Disk trouble: the store keeps the change in memory and retries (an alarm shows); the lane goes on.
    (error: unknown) => {
      lanes.log.error({ err: error, recordNo: effect.recordNo }, "pending bill not yet durable");
      written();
    },
  );
  return ctx.phase === "awaiting" && lanes.exits.has(ctx.txId);
}

/** The stay made to report this exit goes: the car did not leave (once its write, which may still be in flight, is done). */
async function cancelMadeStay(lanes: LanesState, ctx: ExitCtx, why: string): Promise<void> {
  await ctx.pendingWrite;
  const recordNo = ctx.record?.recordNo;
  if (recordNo && lanes.deps.store.getInPark(recordNo)) await lanes.deps.store.cancelStay(recordNo, { reason: kebab(why) });
}

/** One call of a bill: its answer by the deadline is fed back as `answer`, and so is a late one. */
async function billCall(lanes: LanesState, ctx: ExitCtx, effect: Extract<SettlementEffect, { kind: "sendBill" }>): Promise<StepOutcome> {
  const outcome = await callBill(lanes, ctx, effect, (late) => {
    if (!lanes.stopped) void track(lanes, stepExit(lanes, ctx, { kind: "answer", callId: effect.callId, outcome: late, late: true, atMs: lanes.deps.clock.now() }));
  });
  if (lanes.stopped) return { replies: [], followUps: [] };
  return stepExit(lanes, ctx, { kind: "answer", callId: effect.callId, outcome, late: false, atMs: lanes.deps.clock.now() });
}

/** A timer of the machine (a bill's re-ask): its expiry is fed back as `timer`; a second start replaces it. */
function startMachineTimer(lanes: LanesState, ctx: ExitCtx, id: string, ms: number): void {
  stopMachineTimer(lanes, ctx, id);
  const handle = after(lanes, ms, () => {
    ctx.machineTimers?.delete(id);
    void track(lanes, stepExit(lanes, ctx, { kind: "timer", id, atMs: lanes.deps.clock.now() }));
  });
  if (handle) (ctx.machineTimers ??= new Map()).set(id, handle);
}

function stopMachineTimer(lanes: LanesState, ctx: ExitCtx, id: string): void {
  const handle = ctx.machineTimers?.get(id);
  if (!handle) return;
  cancelTimer(lanes, handle);
  ctx.machineTimers?.delete(id);
}
