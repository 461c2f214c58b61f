/**
 * The lanes as one component (LaneService): owns the lanes' state, runs one LaneRunner per
 * lane and routes what the machines ask and tell to the flows of this folder — entry and exit
 * decisions, the pre-leave bill, payments, the attendant, the platform's requests, restart
 * recovery — which keep the write order the safety rules need: a record is durable before the
 * barrier moves for it, and a report is queued durably before the stay leaves the in-park set.
 */
import type { Component } from "../kernel/lifecycle.js";
import type { LaneConfig } from "../config/schema.js";
import type { PlateRead } from "../io/camera/plate-read.js";
import type { InParkRecord } from "../store/records.js";
import type { LanePort } from "../platform/ports.js";
import type { Bill, Tariff } from "../core/fees/index.js";
import type { RequestDecisionEffect, LaneEvent as CoreLaneEvent, DisplayEffect } from "../core/lane/index.js";
import { reentryWindowMs } from "../core/exit/bill-inputs.js";
import { RefundLedger } from "./refunds.js";
import { archive, emit, feedDecision, kebab, show, track } from "./effects.js";
import { cashPaid, command, manualEntry, prepareAttendantOpen } from "./attendant.js";
import { decideEntry, freeSpaces } from "./entry-flow.js";
import { decideExit } from "./exit-flow.js";
import { RecordNumbers } from "./numbers.js";
import { entryAbandoned, entryPassed, exitAbandoned, exitPassed } from "./passage.js";
import { payByScanner } from "./payments.js";
import { manualRelease, payCash, reaskNow } from "./settlement-inputs.js";
import { lanePort } from "./platform-port.js";
import { recoverAtStart } from "./recovery.js";
import { LaneRunner } from "./runner.js";
import { billFor } from "./stays.js";
import { exitCard } from "./exit-card.js";
import { correctPlate, type CorrectionRequest, type CorrectionResult } from "./plate-correction.js";
import { awaitingExit, billUnanswered, type BillFor, type CommandResult, type LaneServiceDeps, type LanesState } from "./lane-state.js";

/** How long stop() lets decisions already writing finish (under the lifecycle's 500 ms). */
const STOP_WAIT_MS = 400;

export class LaneService implements Component {
  readonly name = "lanes";
  readonly runners: Map<string, LaneRunner>;
  /** Refunds owed to drivers who paid a stay twice (durable, in the store directory). */
  readonly refunds: RefundLedger;
  private readonly state: LanesState;

  constructor(deps: LaneServiceDeps) {
    this.state = createLanesState(deps);
    this.runners = this.state.runners;
    this.refunds = this.state.refunds;
  }

  async start(): Promise<void> {
    const lanes = this.state;
    await lanes.refunds.start();
    // The platform answers again (any call, any answer): a bill that timed out while its car
    // waits is asked again at once instead of at the end of its backoff. On the next turn: the
    // answer may be that very bill's late 200, which settles it first (no needless re-ask on
    // the way from the answer to the relay).
    lanes.unsubscribeAnswers = lanes.deps.platform.onAnswer(() => void setImmediate(() => reaskNow(lanes)));
    for (const runner of lanes.runners.values()) runner.start();
    await recoverAtStart(lanes);
  }

  async stop(): Promise<void> {
    const lanes = this.state;
    // From here no decision, display write, event or store write of the lanes starts: calls
    // in flight are aborted (a pending bill is asked again at the next start, recovery.ts).
    lanes.stopped = true;
    lanes.unsubscribeAnswers?.();
    lanes.abort.abort();
    for (const runner of lanes.runners.values()) runner.stop();
    for (const timer of lanes.timers) lanes.deps.clock.clearTimeout(timer);
    lanes.timers.clear();
    // Let decisions already writing to the store finish, briefly: the process must be gone
    // within 2 s of the signal, and the lifecycle abandons a stop after its own timeout.
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...lanes.inFlight]), new Promise((resolve) => (waited = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(waited);
    archive(lanes);
    // Whatever is still running ends silently: after "stopped" the lanes say nothing.
    lanes.quiet = true;
    for (const log of [lanes.log, ...lanes.laneLogs]) log.level = "silent";
    await lanes.refunds.stop();
  }

  /** No lane has a vehicle mid-transaction (updates wait for this). */
  lanesIdle(): boolean {
    return [...this.state.runners.values()].every((runner) => runner.isIdle());
  }

  // ---- inputs from the devices ------------------------------------------------------------

  plateRead(laneId: string, read: PlateRead): void {
    const runner = this.state.runners.get(laneId);
    if (!runner) return;
    if (read.offline) return;
    runner.feed({
      kind: "plate",
      plate: read.noPlate ? "" : read.plate,
      ...(read.color === undefined ? {} : { color: read.color }),
      ...(read.confidence === undefined ? {} : { confidence: read.confidence }),
      atMs: read.atMs,
      source: read.source,
    });
  }

  /** A payment code read by the lane's scanner gun: bill again with sweepCode = 1. */
  scannerCode(laneId: string, code: string): void {
    const lanes = this.state;
    const ctx = awaitingExit(lanes, laneId);
    if (!ctx) {
      emit(lanes, { type: "scan-ignored", laneId, reason: "no car awaiting payment" });
      return;
    }
    void track(lanes, payByScanner(lanes, ctx, code));
  }

  // ---- attendant and remote commands (attendant.ts) ----------------------------------------

  command(laneId: string, name: string, operator: string, reason: string): CommandResult {
    return command(this.state, laneId, name, operator, reason);
  }

  cashPaid(laneId: string, operator: string, reason: string): Promise<CommandResult> {
    return cashPaid(this.state, laneId, operator, reason);
  }

  /** The attendant's plate for a misread car at the lane: the lane decides again with it (plate-correction.ts). */
  correctPlate(laneId: string, request: CorrectionRequest): Promise<CorrectionResult> {
    return correctPlate(this.state, laneId, request);
  }

  // ---- the platform's open interfaces (section 4, platform-port.ts) -------------------------

  lanePort(): LanePort {
    return lanePort(this.state);
  }

  freeSpaces(): number {
    return freeSpaces(this.state);
  }

  /**
   * The bill of a stay at an exit read, as the exit flows and the fee query make it.
   * Replaceable: a test wraps it to hold an exit in its deciding phase.
   */
  get billFor(): BillFor {
    return this.state.billFor;
  }

  set billFor(fn: BillFor) {
    this.state.billFor = fn;
  }

  // ---- status -------------------------------------------------------------------------------

  status(): Array<Record<string, unknown>> {
    const lanes = this.state;
    return [...lanes.runners.values()].map((runner) => {
      const snap = runner.snapshot();
      const lane = lanes.configs.get(runner.laneId)!;
      const exit = [...lanes.exits.values()].find((c) => c.laneId === runner.laneId && c.phase !== "settled") ?? [...lanes.exits.values()].find((c) => c.laneId === runner.laneId);
      const entry = [...lanes.entries.values()].find((c) => c.laneId === runner.laneId);
      const tx = snap.pending[0];
      return {
        id: lane.id,
        name: lane.name ?? lane.id,
        direction: lane.direction,
        barrier: snap.barrier,
        loops: { loopA: snap.loopA, loopB: snap.loopB },
        detectorFaults: snap.detectorFaults,
        phase: tx?.phase ?? "idle",
        pending: snap.pending,
        vehicle: exit
          ? {
              plate: exit.plate,
              recordNo: exit.record?.recordNo,
              dueFen: exit.dueFen,
              payableFen: exit.bill?.payableFee ?? exit.dueFen,
              paymentPath: exit.settlement?.path ?? exit.path,
              plateId: exit.plateId,
              // The panel shows "paid online" and refuses cash for it.
              ...(exit.phase === "settled" && (exit.settlement?.path === "platform" || exit.settlement?.path === "scanner") ? { paidOnline: true } : {}),
              ...(billUnanswered(exit) ? { billUnanswered: true } : {}),
              // The booth's exit card: entry, stay, the bill's lines, how to pay, photos.
              card: exitCard(lanes, exit),
            }
          : entry
            ? { plate: entry.plate, recordNo: entry.recordNo, paymentPath: entry.phase, ...(entry.readPlate === undefined ? {} : { readPlate: entry.readPlate }) }
            : tx?.plate
              ? { plate: tx.plate }
              : null,
        display: lanes.views.get(lane.id)?.display,
      };
    });
  }
}

/** The lanes' state, with one runner per configured lane wired to the flows. */
function createLanesState(deps: LaneServiceDeps): LanesState {
  const { config } = deps;
  const log = deps.log.child({ sub: "lane" });
  const tariff = config.fees.tariffs[config.fees.tariff] as Tariff;
  const lanes: LanesState = {
    deps,
    log,
    configs: new Map(),
    runners: new Map(),
    exits: new Map(),
    entries: new Map(),
    byPlateId: new Map(),
    pendingEntries: new Map(),
    views: new Map(),
    unlicensedAnswers: new Map(),
    unlicensedWaiters: new Map(),
    numbers: new RecordNumbers(config.lot.timeZone, () => deps.store.nextCounter("orderNo")),
    tariff,
    reentryWindowMs: reentryWindowMs(tariff),
    timers: new Set(),
    inFlight: new Set(),
    deciding: new Map(),
    toArchive: [],
    archiveTimer: undefined,
    recentExits: new Map(),
    refunds: new RefundLedger(config.store.dir, deps.clock, log.child({ part: "refunds" })),
    stopped: false,
    quiet: false,
    abort: new AbortController(),
    unsubscribeAnswers: undefined,
    laneLogs: [],
    billFor: (record: InParkRecord, atMs: number, laneId: string): Promise<Bill> => billFor(lanes, record, atMs, laneId),
  };
  for (const lane of config.lanes) {
    lanes.configs.set(lane.id, lane);
    lanes.views.set(lane.id, { display: undefined });
    lanes.runners.set(lane.id, newRunner(lanes, lane));
  }
  return lanes;
}

function newRunner(lanes: LanesState, lane: LaneConfig): LaneRunner {
  const log = lanes.log.child({ laneId: lane.id });
  lanes.laneLogs.push(log);
  return new LaneRunner(lane, lanes.deps.gpio, lanes.deps.clock, log, {
    onRequestDecision: (request) => {
      const deciding = track(lanes, decide(lanes, request));
      lanes.deciding.set(request.txId, deciding);
      void deciding.finally(() => lanes.deciding.delete(request.txId));
    },
    beforeAttendantOpen: (operator, reason) => prepareAttendantOpen(lanes, lane.id, operator, reason),
    onEvent: (event) => onCoreEvent(lanes, event),
    onDisplay: (effect) => onCoreDisplay(lanes, effect),
    onStep: () => lanes.deps.bus.changed(),
  });
}

// ---- what the lane machines ask and tell ---------------------------------------------------

async function decide(lanes: LanesState, request: RequestDecisionEffect): Promise<void> {
  try {
    if (request.direction === "in") await decideEntry(lanes, request);
    else await decideExit(lanes, request);
  } catch (error) {
    // Stopping: the store closes under a decision; it is not a failure of that decision.
    if (lanes.stopped) return;
    // A store that refuses a write, a bug: the car is not let through on a guess. The
    // attendant sees why and can open by hand (which is audited).
    lanes.log.error({ err: error, laneId: request.laneId, plate: request.plate }, "decision failed");
    emit(lanes, { type: "decision-failed", laneId: request.laneId, plate: request.plate, reason: String((error as Error)?.message ?? error) });
    show(lanes, request.laneId, { kind: "attendantCalled", plate: request.plate });
    feedDecision(lanes, request, { verdict: "deny", reason: "internal-error" });
    lanes.entries.delete(request.txId);
    lanes.exits.delete(request.txId);
  }
}

function onCoreEvent(lanes: LanesState, event: CoreLaneEvent): void {
  const { type, laneId, txId } = event;
  if (type === "cashConfirmPressed") {
    const ctx = awaitingExit(lanes, laneId);
    if (ctx) void track(lanes, payCash(lanes, ctx, "booth-button", "cash"));
  }
  const entry = txId ? lanes.entries.get(txId) : undefined;
  const exit = txId ? lanes.exits.get(txId) : undefined;
  if (type === "manualOpen") {
    // The machine already opened for the car (the manualOpen button, or an API open of a car
    // the policy refused or held): the policy records who let it through and why.
    const operator = event.operator ?? "button";
    const reason = event.reason ?? "manual";
    if (exit) void track(lanes, manualRelease(lanes, exit, operator, reason));
    if (entry) void track(lanes, manualEntry(lanes, entry, operator, reason, event.atMs));
  }
  if (type === "passed") {
    if (entry) void track(lanes, entryPassed(lanes, entry));
    if (exit) void track(lanes, exitPassed(lanes, exit));
  } else if (type === "backedOut" || type === "cancelled" || type === "expired" || type === "tailgated") {
    if (entry) void track(lanes, entryAbandoned(lanes, entry, type));
    if (exit) exitAbandoned(lanes, exit, type);
  }
  const { kind: _kind, ...fields } = event;
  emit(lanes, { ...fields, type: kebab(type) });
}

function onCoreDisplay(lanes: LanesState, effect: DisplayEffect): void {
  // The machine's own messages cover what the policy does not: a car waiting with no read.
  if (effect.message === "plateTimeout") show(lanes, effect.laneId, { kind: "attendantCalled" });
}
