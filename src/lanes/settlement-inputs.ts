/**
 * What the lanes feed an exit's settlement machine (effects-executor.ts steps it and runs what
 * it says): the exit's bill (nothing due, or the pre-leave bill), a scanned payment code, the
 * platform reachable again, a hand release, the lane opened by hand, the attendant's cash, the
 * platform's remote release and its payment notice.
 */
import type { Bill } from "../core/fees/index.js";
import type { SettlementInput } from "../core/settlement/settlement-machine.js";
import type { StoredSettlement } from "../core/settlement/settlement.js";
import type { PaymentNotice, RemoteControl } from "../platform/ports.js";
import { track } from "./effects.js";
import { repliesOf, stepExit } from "./effects-executor.js";
import type { CommandResult, ExitCtx, LanesState } from "./lane-state.js";

/**
 * The exit's bill is known and nothing is due: its machine settles it as free (or prepaid).
 * A car already gone from the lane is not settled (its stay is billed again at its next read).
 */
export async function settleNothingDue(lanes: LanesState, ctx: ExitCtx, bill: Bill): Promise<void> {
  if (ctx.phase === "settled") return;
  await stepExit(lanes, ctx, billed(lanes, ctx, bill));
}

/** The exit's bill as the machine is told it (its plateId: the bill's, "" when none goes out). */
function billed(lanes: LanesState, ctx: ExitCtx, bill: Bill): SettlementInput {
  return {
    kind: "billed",
    atMs: lanes.deps.clock.now(),
    dueFen: ctx.dueFen,
    payableFen: bill.payableFee,
    discountFen: bill.discountFee,
    prepaidFen: bill.prepaidFee,
    plateId: ctx.plateId ?? "",
  };
}

/**
 * A fee is due: the pre-leave bill goes out (its plateId already on the exit), and from then on
 * the platform's answer, the scanner, the attendant's cash and the platform's notices can all
 * settle. Resolves once the bill's first answer has been acted on.
 */
export async function billWithFee(lanes: LanesState, ctx: ExitCtx, bill: Bill): Promise<void> {
  const step = await stepExit(lanes, ctx, billed(lanes, ctx, bill));
  await Promise.all(step.followUps);
}

/** A payment code read by the lane's scanner gun: a new bill (its new plateId on the exit) with sweepCode 1. */
export async function scanned(lanes: LanesState, ctx: ExitCtx, code: string): Promise<void> {
  const step = await stepExit(lanes, ctx, { kind: "scan", code, plateId: ctx.plateId!, atMs: lanes.deps.clock.now() });
  await Promise.all(step.followUps);
}

/** The platform answered something: bills waiting out a timeout or refusal are asked now. */
export function reaskNow(lanes: LanesState): void {
  if (lanes.stopped) return;
  for (const ctx of lanes.exits.values()) {
    if (ctx.machine?.bills.some((bill) => bill.reaskTimer !== null)) void track(lanes, stepExit(lanes, ctx, { kind: "platformUp", atMs: lanes.deps.clock.now() }));
  }
}

/** The stay read at this exit holds a settlement within its grace: the car leaves on it (nothing written again). */
export async function leaveOnHeld(lanes: LanesState, ctx: ExitCtx, settlement: StoredSettlement): Promise<void> {
  await stepExit(lanes, ctx, { kind: "heldSettlement", settlement, atMs: lanes.deps.clock.now() });
}

/** The attendant releases a car awaiting payment by hand: written (or its stay made), then opened. */
export async function releaseByHand(lanes: LanesState, ctx: ExitCtx, operator: string, reason: string): Promise<void> {
  await stepExit(lanes, ctx, { kind: "release", operator, reason, atMs: lanes.deps.clock.now() });
}

/**
 * The lane opens by hand for an exit billed, held or still deciding (the manualOpen button, an
 * attendant's open): settled as a manual release (leaveNotify releaseType 3, nothing collected)
 * with the operator; the passage waits for its write.
 */
export async function manualRelease(lanes: LanesState, ctx: ExitCtx, operator: string, reason: string): Promise<void> {
  await stepExit(lanes, ctx, { kind: "manualOpened", operator, reason, atMs: lanes.deps.clock.now() });
}

/** The platform's remoteDev on this exit's bill: type 1 cancels, 0 opens, 2 opens for free. */
export async function remoteRelease(lanes: LanesState, ctx: ExitCtx, command: Pick<RemoteControl, "type" | "operator" | "openGateCase">, atMs: number): Promise<void> {
  await stepExit(lanes, ctx, {
    kind: "remote",
    type: command.type,
    operator: command.operator,
    ...(command.openGateCase == null ? {} : { openGateCase: command.openGateCase }),
    atMs,
  });
}

/**
 * The platform's payment notice (4.2) for the exit awaiting payment settles it; so does one
 * kept while its bill was being made (`keptWhileDeciding`), once the bill says it does.
 */
export async function paidByNotice(lanes: LanesState, ctx: ExitCtx, payment: PaymentNotice, how: { keptWhileDeciding?: boolean } = {}): Promise<void> {
  const { payType, amountFen, orderNo, payTimeMs } = payment;
  await stepExit(lanes, ctx, { kind: "notice", payment: { payType, amountFen, orderNo, payTimeMs }, atMs: lanes.deps.clock.now(), ...how });
}

/** The attendant's cash confirmation (button, API, panel); one at a time per exit. */
export function payCash(lanes: LanesState, ctx: ExitCtx, operator: string, reason: string): Promise<CommandResult> {
  if (ctx.cashCheck) return ctx.cashCheck;
  const done = cashNow(lanes, ctx, operator, reason);
  ctx.cashCheck = done;
  // The caller hears the failure (a write that did not reach the disk); this branch only clears.
  void done
    .finally(() => {
      if (ctx.cashCheck === done) ctx.cashCheck = undefined;
    })
    .catch(() => undefined);
  return done;
}

/**
 * The machine takes the cash, or first asks the platform once more about a bill whose call
 * went unanswered (it may have been paid meanwhile: cash refused, E_PAID_ONLINE); the reply
 * comes once that check is answered.
 */
async function cashNow(lanes: LanesState, ctx: ExitCtx, operator: string, reason: string): Promise<CommandResult> {
  const atMs = lanes.deps.clock.now();
  const [reply] = await repliesOf(await stepExit(lanes, ctx, { kind: "cash", operator, reason, orderNo: lanes.numbers.orderNo(atMs), atMs }));
  if (reply) return reply;
  return { ok: false, code: "E_NO_VEHICLE", message: lanes.stopped ? "the lanes are stopping" : "no car is awaiting payment on this lane" };
}
