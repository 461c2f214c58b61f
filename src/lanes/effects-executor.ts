/**
 * The settlement machine's executor: one exit's machine (core/settlement/settlement-machine.ts)
 * is stepped here and its effects run in order, a durable one on disk before the next runs.
 *
 * Wired so far: the exit with nothing due (a free stay, or one its prepayments cover): the
 * machine is fed its bill and says write the settlement, open, show "paid", emit "payment".
 * Every other payment path (the platform's answer, the scanner, cash, a hand or remote
 * release, a payment notice, a settlement kept from earlier) still runs in bills.ts,
 * payments.ts, attendant.ts and platform-port.ts and settles through settlement.ts. An effect
 * this executor does not run yet is refused with E_EFFECT_NOT_WIRED before anything runs, so a
 * path moved here half-way fails loudly instead of skipping a write or an open.
 */
import type { Bill } from "../core/fees/index.js";
import {
  initSettlement,
  stepSettlement,
  type SettlementEffect,
  type SettlementInput,
  type SettlementSettings,
  type SettlementState,
} from "../core/settlement/settlement-machine.js";
import { emit, show } from "./effects.js";
import { REPORT_AFTER_WINDOW_MS } from "./passage.js";
import { openFor, writeStored } from "./settlement.js";
import type { ExitCtx, LanesState } from "./lane-state.js";

export class EffectNotWiredError extends Error {
  readonly code = "E_EFFECT_NOT_WIRED";
  constructor(readonly kind: SettlementEffect["kind"]) {
    super(`settlement effect "${kind}" is not run by the lanes' executor yet`);
    this.name = "EffectNotWiredError";
  }
}

const wired: ReadonlySet<SettlementEffect["kind"]> = new Set(["writeSettlement", "open", "show", "emit"]);

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
 * The exit's bill is known and nothing is due: its machine settles it as free (or prepaid).
 * A car already gone from the lane is not settled (its stay is billed again at its next read).
 */
export async function settleNothingDue(lanes: LanesState, ctx: ExitCtx, bill: Bill): Promise<void> {
  if (ctx.phase === "settled") return;
  const start: SettlementState = {
    ...initSettlement({ txId: ctx.txId, plate: ctx.plate, recordNo: ctx.record?.recordNo, atMs: ctx.atMs }),
    onLane: lanes.exits.has(ctx.txId),
  };
  await stepExit(lanes, ctx, start, {
    kind: "billed",
    atMs: lanes.deps.clock.now(),
    dueFen: ctx.dueFen,
    payableFen: bill.payableFee,
    discountFen: bill.discountFee,
    prepaidFen: bill.prepaidFee,
    plateId: ctx.plateId ?? "",
  });
}

/** Feeds one input to the exit's machine, mirrors its phase on the exit, and runs its effects. */
async function stepExit(lanes: LanesState, ctx: ExitCtx, state: SettlementState, input: SettlementInput): Promise<SettlementState> {
  const step = stepSettlement(state, input, settlementSettings(lanes, ctx.laneId));
  const missing = step.effects.find((effect) => !wired.has(effect.kind));
  if (missing) throw new EffectNotWiredError(missing.kind);
  if (step.state.phase === "settled" && state.phase !== "settled") {
    ctx.phase = "settled";
    ctx.settlement = step.state.settlement;
  }
  await runEffects(lanes, ctx, step.effects);
  return step.state;
}

/**
 * Runs effects in order. A durable write is awaited before the next effect, and a failed one
 * throws (the exit stays as it is, as settle() leaves it). A car that left the lane while a
 * write was in flight gets nothing more of this step: no open, board or event for it.
 */
async function runEffects(lanes: LanesState, ctx: ExitCtx, effects: readonly SettlementEffect[]): Promise<void> {
  for (const effect of effects) {
    switch (effect.kind) {
      case "writeSettlement":
        // A pending bill's own write goes first, so the stay never moves backwards on disk.
        await ctx.pendingWrite;
        await writeStored(lanes, ctx, effect.settlement);
        if (!lanes.exits.has(ctx.txId)) return;
        break;
      case "open":
        openFor(lanes, ctx, effect.reason, effect.operator);
        break;
      case "show":
        show(lanes, ctx.laneId, effect.message);
        break;
      case "emit":
        emit(lanes, { ...effect.event, laneId: ctx.laneId });
        break;
      default:
        throw new EffectNotWiredError(effect.kind);
    }
  }
}
