import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import type { EventBus } from "../kernel/event-bus.js";
import type { Config, LaneConfig } from "../config/schema.js";
import type { Gpio } from "../io/gpio/gpio.js";
import type { LaneDisplay } from "../io/display/lane-display.js";
import type { LaneMessage } from "../io/display/messages.js";
import type { PlateRead } from "../io/camera/plate-read.js";
import type { LotStore } from "../store/lot-store.js";
import type { InParkRecord } from "../store/records.js";
import type { Outbox } from "../outbox/outbox.js";
import type { PlatformClient } from "../platform/client.js";
import type { PlatformResult, PlatformSuccess } from "../platform/client.js";
import { exitPaymentFields, type PreLeavePaidData } from "../platform/section3.js";
import { backoffCeilingMs } from "../fleet/backoff.js";
import { RefundLedger, doublePaymentFields, type RefundEntry, type RefundPayment } from "./refunds.js";
import type { FeeQuery, FeeQuote, LaneAnswer, LanePort, PaymentRecord, RemoteControl, UnlicensedEntry } from "../platform/ports.js";
import { formatWireTime, parseWireTime } from "../platform/wire.js";
import { matchPlate, normalisePlate } from "../core/plates/index.js";
import { bill as computeBill, classifyFixedCar, type Bill, type FixedCar, type Tariff, type VehicleType } from "../core/fees/index.js";
import { clampStay } from "../core/time/stay-clamp.js";
import type { RequestDecisionEffect, LaneEvent as CoreLaneEvent, DisplayEffect, LaneDecision } from "../core/lane/index.js";
import { LaneRunner } from "./lane-runner.js";
import { RecordNumbers, platformPlateColor } from "./numbers.js";

/** How a stay was settled at the exit (leaveNotify `releaseType`, `payType`). */
export interface Settlement {
  /** 0 normal, 1 free, 2 abnormal, 3 manual (issue 6's leaveNotify dictionary). */
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
 * A settlement as the stay keeps it (`extra.settlement`): how it was settled, when, where and
 * the bill it paid, so a car read again after a restart or a back-out is not billed twice, and
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

export type PaymentPath =
  | "free"
  | "prepaid"
  | "platform"
  | "scanner"
  | "cash"
  | "cash-fallback"
  | "remote"
  | "remote-free"
  | "manual"
  | "attendant"
  | "awaiting-payment";

/**
 * One pre-leave bill (a plateId) of an exit and what the lane heard of it. Its calls stay open
 * for the late-answer window: the deadline decides what the lane shows, not what it hears.
 */
interface BillCall {
  plateId: string;
  path: "platform" | "scanner";
  /** The scanned code: in memory only while its car waits, so a re-ask sends the same bill. */
  sweepCode: string | undefined;
  /** Calls of this bill still open (answered late or not at all yet). */
  open: number;
  /** A call failed with no answer (timeout, refused, HTTP error) ... */
  unanswered: boolean;
  /** ... and none since answered (200 or a business code). */
  answered: boolean;
  /** The last failure: an HTTP answer means the platform is up, so no "at once" re-ask. */
  lastFailure: string | undefined;
  reasks: number;
  reaskTimer: TimerHandle | undefined;
  /** When the last window of its calls closes (the lane's clock): a late 200 can come until then. */
  listenUntilMs: number;
}

interface ExitCtx {
  laneId: string;
  txId: string;
  plate: string;
  atMs: number;
  record: InParkRecord | undefined;
  matchedBy: "exact" | "fuzzy" | "none";
  bill: Bill | undefined;
  dueFen: number;
  carType: number;
  carSubType: number;
  plateId: string | undefined;
  phase: "deciding" | "awaiting" | "settled" | "held";
  path: PaymentPath;
  settlement: Settlement | undefined;
  /** The durable write of the pending bill (or of a stay made at release), still in flight or done. */
  pendingWrite?: Promise<void> | undefined;
  /** The plate colour of the exit read, for a stay made here. */
  plateColor?: number | undefined;
  /** The stay was made at this exit for a car with no entry record (undone if it backs out). */
  madeStay?: boolean | undefined;
  /** A payment notice for this stay that came while the bill was still being made. */
  earlyPayment?: PaymentRecord | undefined;
  /** A settled stay finished as left after a restart (its car was not read again in time). */
  settledLeftover?: boolean | undefined;
  /** The pre-leave bills of this exit, by plateId. */
  bills?: Map<string, BillCall> | undefined;
  /** The attendant's cash confirmation while the platform is asked once more (one at a time). */
  cashCheck?: Promise<CommandResult> | undefined;
  /** The board says "paid online" when the exit opens (a 200 after the cash prompt). */
  paidOnline?: boolean | undefined;
}

interface EntryCtx {
  laneId: string;
  txId: string;
  plate: string;
  source: string;
  recordNo: string | undefined;
  phase: "deciding" | "confirming" | "allowed" | "denied";
  /** Resolves a pending platform confirmation (remoteDev on the pre-entry recordNo). */
  confirm?: ((verdict: "allow" | "deny", operator: string) => void) | undefined;
  /** The record an attendant's open is writing for a refused car (the passage waits for it). */
  written?: Promise<unknown> | undefined;
}

interface LaneView {
  display: { kind: string; lines: string[] } | undefined;
}

export interface LaneServiceDeps {
  config: Config;
  gpio: Gpio;
  clock: Clock;
  log: Logger;
  bus: EventBus;
  store: LotStore;
  outbox: Outbox;
  platform: PlatformClient;
  displays: ReadonlyMap<string, LaneDisplay>;
}

export type LaneCommand = "open" | "close" | "cash-paid" | "cancel";

/** preEnterNotify `reason` (docs/protocol.md 3.4). */
export type PreEnterReason = "confirm-required" | "lot-full" | "monthly-expired" | "blacklist";

export type CommandResult =
  | { ok: true; detail: string }
  | { ok: false; code: "E_LANE_UNKNOWN" | "E_NO_VEHICLE" | "E_NOT_EXIT" | "E_BAD_COMMAND" | "E_PAID_ONLINE"; message: string };

/** The attendant's cash refused: the platform collected the bill (shown on the panel as 已在线支付). */
const paidOnlineRefusal = (plate: string): CommandResult => ({
  ok: false,
  code: "E_PAID_ONLINE",
  message: `${plate || "the car"} has paid online (已在线支付): take no cash`,
});

/** Events that are too frequent or too minor for the history segments. */
const notArchived = new Set(["presence", "input-ignored", "plate-ignored", "duplicate-read", "close-deferred"]);

const DAY_MS = 86_400_000;

/**
 * An exit report held for its bill's late-answer window goes this long after the window: the
 * client starts its window a moment after the lane reads the clock, and a 200 heard at the
 * window's very end is committed to the refunds ledger (one fsync) before the report reads it.
 */
const REPORT_AFTER_WINDOW_MS = 1000;

/** How long stop() lets decisions already writing finish (under the lifecycle's 500 ms). */
const STOP_WAIT_MS = 400;

/** The longest re-entry window of the tariff and its vehicle overrides; a day at least. */
function reentryWindowMs(tariff: Tariff): number {
  const overrides = Object.values((tariff as { vehicles?: Record<string, { reentryCap?: { windowHours: number } } | undefined> }).vehicles ?? {});
  const hours = [tariff.reentryCap?.windowHours, ...overrides.map((pricing) => pricing?.reentryCap?.windowHours)].filter((h): h is number => typeof h === "number");
  return Math.max(DAY_MS, ...hours.map((h) => h * 3_600_000));
}

/**
 * The lanes as one product (architecture.md §3): runs one LaneRunner per lane and plugs the
 * decision policy into it — lists, fees, the platform's pre-leave bill, every payment path,
 * the attendant — with the write order the safety rules need: a record is durable before the
 * barrier moves for it, and a report is queued durably before the stay leaves the in-park set.
 */
export class LaneService implements Component {
  readonly name = "lanes";
  readonly runners = new Map<string, LaneRunner>();
  private readonly lanes = new Map<string, LaneConfig>();
  private readonly exits = new Map<string, ExitCtx>();
  private readonly entries = new Map<string, EntryCtx>();
  private readonly byPlateId = new Map<string, ExitCtx>();
  private readonly pendingEntries = new Map<string, EntryCtx>();
  private readonly views = new Map<string, LaneView>();
  private readonly unlicensedAnswers = new Map<string, { atMs: number; answer: Promise<LaneAnswer<{ recordNo: string }>> }>();
  private readonly unlicensedWaiters = new Map<string, (answer: LaneAnswer<{ recordNo: string }>) => void>();
  private readonly numbers: RecordNumbers;
  private readonly tariff: Tariff;
  /** How long a finished stay can still count toward the plate's next bill (the re-entry cap). */
  private readonly reentryWindowMs: number;
  private readonly log: Logger;
  private readonly timers = new Set<TimerHandle>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Each lane decision still running, by txId (an attendant's open may wait for one). */
  private readonly deciding = new Map<string, Promise<void>>();
  private readonly toArchive: Array<{ type: string; [key: string]: unknown }> = [];
  private archiveTimer: NodeJS.Immediate | undefined;
  private readonly recentExits = new Map<string, Array<{ recordNo: string; enterAtMs: number; leaveAtMs: number; payableFee: number }>>();
  /** Refunds owed to drivers who paid a stay twice (durable, in the store directory). */
  readonly refunds: RefundLedger;
  /** After stop() nothing of the lanes runs: every continuation checks this. */
  private stopped = false;
  /** Set at the end of stop(): a task that outlived it writes, shows, emits and logs nothing. */
  private quiet = false;
  /** Aborts every platform call of the lanes at stop (they are asked again at the next start). */
  private readonly abort = new AbortController();
  private unsubscribeAnswers: (() => void) | undefined;
  /** The lanes' loggers, silenced together at the end of stop(). */
  private readonly laneLogs: Logger[] = [];

  constructor(private readonly deps: LaneServiceDeps) {
    const { config } = deps;
    this.log = deps.log.child({ sub: "lane" });
    this.refunds = new RefundLedger(config.store.dir, deps.clock, this.log.child({ part: "refunds" }));
    this.numbers = new RecordNumbers(config.lot.timeZone, () => deps.store.nextCounter("orderNo"));
    this.tariff = config.fees.tariffs[config.fees.tariff] as Tariff;
    this.reentryWindowMs = reentryWindowMs(this.tariff);
    for (const lane of config.lanes) {
      this.lanes.set(lane.id, lane);
      this.views.set(lane.id, { display: undefined });
      this.runners.set(
        lane.id,
        new LaneRunner(lane, deps.gpio, deps.clock, this.laneLog(lane.id), {
          onRequestDecision: (request) => {
            const deciding = this.track(this.decide(request));
            this.deciding.set(request.txId, deciding);
            void deciding.finally(() => this.deciding.delete(request.txId));
          },
          beforeAttendantOpen: (operator, reason) => this.prepareAttendantOpen(lane.id, operator, reason),
          onEvent: (event) => this.onCoreEvent(event),
          onDisplay: (effect) => this.onCoreDisplay(effect),
          onStep: () => deps.bus.changed(),
        }),
      );
    }
  }

  async start(): Promise<void> {
    await this.refunds.start();
    // The platform answers again (any call, any answer): a bill that timed out while its car
    // waits is asked again at once instead of at the end of its backoff. On the next turn: the
    // answer may be that very bill's late 200, which settles it first (no needless re-ask on
    // the way from the answer to the relay).
    this.unsubscribeAnswers = this.deps.platform.onAnswer(() => void setImmediate(() => this.reaskNow()));
    for (const runner of this.runners.values()) runner.start();
    // The re-entry cap needs the stays that left within its window. They are kept in memory so
    // a bill never scans history (whose cost grows with it); filled once from history here.
    this.track(
      this.deps.store.recentFinished(5000).then((stays) => {
        for (const stay of stays) this.rememberExit(stay.plate, stay.recordNo, stay.enterAtMs, stay.exit.leaveAtMs, stay.exit.payableFen);
      }),
    );
    // Stays that entered but whose entry report was never queued (a stop between the open and
    // the passage): the car most likely went in, so report it now.
    // A stay the platform added itself (4.13.4, source "platform") is known to it already.
    for (const record of this.deps.store.listInPark((r) => r.entryReport === "none" && r.source !== "platform").items) {
      await this.queueEntryReport(record).catch((error: unknown) => this.log.error({ err: error, recordNo: record.recordNo }, "entry report not queued"));
    }
    // Exits a stop cut short. A stay that holds its settlement was opened for (or about to be):
    // it waits for its car to be read again, else it is finished as left. A stay with a bill
    // the platform may have answered 200 (written after the open) asks the platform again.
    for (const record of this.deps.store.listInPark((r) => r.pendingExit !== undefined || r.extra?.settlement !== undefined).items) {
      if (storedSettlementOf(record)) this.holdSettled(record.recordNo);
      else this.track(this.recoverPendingExit(record.recordNo, 0));
    }
  }

  async stop(): Promise<void> {
    // From here no decision, display write, event or store write of the lanes starts: calls
    // in flight are aborted (a pending bill is asked again at the next start, recoverPendingExit).
    this.stopped = true;
    this.unsubscribeAnswers?.();
    this.abort.abort();
    for (const runner of this.runners.values()) runner.stop();
    for (const timer of this.timers) this.deps.clock.clearTimeout(timer);
    this.timers.clear();
    // Let decisions already writing to the store finish, briefly: the process must be gone
    // within 2 s of the signal, and the lifecycle abandons a stop after its own timeout.
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => (waited = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(waited);
    this.archive();
    // Whatever is still running ends silently: after "stopped" the lanes say nothing.
    this.quiet = true;
    for (const log of [this.log, ...this.laneLogs]) log.level = "silent";
    await this.refunds.stop();
  }

  /** No lane has a vehicle mid-transaction (updates wait for this). */
  lanesIdle(): boolean {
    return [...this.runners.values()].every((runner) => runner.isIdle());
  }

  // ---- inputs from the devices ------------------------------------------------------------

  plateRead(laneId: string, read: PlateRead): void {
    const runner = this.runners.get(laneId);
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
    const ctx = this.awaitingExit(laneId);
    if (!ctx) {
      this.emit({ type: "scan-ignored", laneId, reason: "no car awaiting payment" });
      return;
    }
    this.track(this.payByScanner(ctx, code));
  }

  // ---- attendant and remote commands -------------------------------------------------------

  command(laneId: string, command: string, operator: string, reason: string): CommandResult {
    const runner = this.runners.get(laneId);
    const lane = this.lanes.get(laneId);
    if (!runner || !lane) return { ok: false, code: "E_LANE_UNKNOWN", message: `no lane ${laneId}` };
    const atMs = this.deps.clock.now();
    this.emit({ type: "attendant-command", laneId, command, operator, reason });
    switch (command) {
      case "open": {
        const ctx = this.awaitingExit(laneId);
        if (ctx) {
          this.track(this.settle(ctx, { releaseType: 3, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator, path: "manual" }, reason));
          return { ok: true, detail: `released ${ctx.plate} by hand` };
        }
        this.openByHand(laneId, `manual: ${reason}`, operator);
        return { ok: true, detail: "opening" };
      }
      case "close":
        runner.feed({ kind: "close", reason: `manual: ${reason}`, operator, atMs });
        return { ok: true, detail: "closing once the safety loop is clear" };
      case "cash-paid": {
        if (lane.direction !== "out") return { ok: false, code: "E_NOT_EXIT", message: `${laneId} is not an exit lane` };
        const paidOnline = this.paidOnlineExit(laneId);
        if (paidOnline) return paidOnlineRefusal(paidOnline.plate);
        const ctx = this.awaitingExit(laneId);
        if (!ctx) return { ok: false, code: "E_NO_VEHICLE", message: "no car is awaiting payment on this lane" };
        this.track(this.payCash(ctx, operator, reason));
        return { ok: true, detail: this.billUnanswered(ctx) ? `asking the platform once more, then cash ${ctx.dueFen} fen for ${ctx.plate}` : `cash ${ctx.dueFen} fen for ${ctx.plate}` };
      }
      case "cancel": {
        const tx = runner.currentTx();
        if (!tx) return { ok: false, code: "E_NO_VEHICLE", message: "no transaction on this lane" };
        runner.feed({ kind: "cancel", txId: tx.txId, atMs, reason, operator });
        return { ok: true, detail: `cancelled ${tx.plate ?? tx.txId}` };
      }
      default:
        return { ok: false, code: "E_BAD_COMMAND", message: `unknown command ${command}` };
    }
  }

  /**
   * The attendant's cash confirmation with its outcome (the API waits for it): refused with
   * E_PAID_ONLINE when the platform collected the bill, also when asking it once more (a bill
   * whose call timed out) finds it paid.
   */
  async cashPaid(laneId: string, operator: string, reason: string): Promise<CommandResult> {
    const first = this.command(laneId, "cash-paid", operator, reason);
    if (!first.ok) return first;
    const ctx = [...this.exits.values()].find((c) => c.laneId === laneId && c.cashCheck);
    return ctx?.cashCheck ?? first;
  }

  // ---- the platform's open interfaces (section 4) -------------------------------------------

  lanePort(): LanePort {
    return {
      feeQuery: (query) => this.feeQuery(query),
      unlicensedEntry: (entry) => this.unlicensedEntry(entry),
      remoteControl: (command) => this.remoteControl(command),
      freeSpaces: async () => ({ total: this.deps.config.lot.totalSpaces, free: this.freeSpaces() }),
      paymentNotified: (payment) => this.paymentNotified(payment),
    };
  }

  freeSpaces(): number {
    return Math.max(0, this.deps.config.lot.totalSpaces - this.deps.store.inParkCount());
  }

  // ---- status -------------------------------------------------------------------------------

  status(): Array<Record<string, unknown>> {
    return [...this.runners.values()].map((runner) => {
      const snap = runner.snapshot();
      const lane = this.lanes.get(runner.laneId)!;
      const exit = [...this.exits.values()].find((c) => c.laneId === runner.laneId && c.phase !== "settled") ??
        [...this.exits.values()].find((c) => c.laneId === runner.laneId);
      const entry = [...this.entries.values()].find((c) => c.laneId === runner.laneId);
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
              ...(this.billUnanswered(exit) ? { billUnanswered: true } : {}),
            }
          : entry
            ? { plate: entry.plate, recordNo: entry.recordNo, paymentPath: entry.phase }
            : tx?.plate
              ? { plate: tx.plate }
              : null,
        display: this.views.get(lane.id)?.display,
      };
    });
  }

  // ---- decisions ----------------------------------------------------------------------------

  private async decide(request: RequestDecisionEffect): Promise<void> {
    try {
      if (request.direction === "in") await this.decideEntry(request);
      else await this.decideExit(request);
    } catch (error) {
      // Stopping: the store closes under a decision; it is not a failure of that decision.
      if (this.stopped) return;
      // A store that refuses a write, a bug: the car is not let through on a guess. The
      // attendant sees why and can open by hand (which is audited).
      this.log.error({ err: error, laneId: request.laneId, plate: request.plate }, "decision failed");
      this.emit({ type: "decision-failed", laneId: request.laneId, plate: request.plate, reason: String((error as Error)?.message ?? error) });
      this.show(request.laneId, { kind: "attendantCalled", plate: request.plate });
      this.feedDecision(request, { verdict: "deny", reason: "internal-error" });
      this.entries.delete(request.txId);
      this.exits.delete(request.txId);
    }
  }

  private feedDecision(request: { laneId: string; txId: string }, decision: LaneDecision): void {
    this.runners.get(request.laneId)?.feed({ kind: "decision", txId: request.txId, decision, atMs: this.deps.clock.now() });
  }

  private async decideEntry(request: RequestDecisionEffect): Promise<void> {
    const { store, config, clock } = this.deps;
    const policy = config.policy.entry;
    const plate = request.plate;
    const ctx: EntryCtx = { laneId: request.laneId, txId: request.txId, plate, source: request.source, recordNo: undefined, phase: "deciding" };
    this.entries.set(request.txId, ctx);
    const atMs = request.atMs;
    const deny = (reason: string, message: LaneMessage): void => {
      ctx.phase = "denied";
      this.show(request.laneId, message);
      this.emit({ type: "entry-denied", laneId: request.laneId, plate, reason });
      this.feedDecision(request, { verdict: "deny", reason });
      this.answerUnlicensed(plate, request.laneId, { ok: false, reason: reason === "lot-full" ? "lot-full" : "denied", msg: `entry refused: ${reason}` });
    };

    if (!plate) return deny("no-plate", { kind: "attendantCalled" });
    if (store.blacklistFor(plate, atMs).some((entry) => entry.denyIn)) return deny("blacklisted", { kind: "denied", plate });
    const already = store.findInParkByPlate(plate);
    if (already.length > 0 && policy.duplicateEntry === "deny") return deny("already-in-park", { kind: "attendantCalled", plate });

    const fixed = request.source === "unlicensed" ? undefined : this.fixedCarFor(plate, atMs);
    const carClass = fixed?.pass === "free" && !fixed.groupFull ? "fixed" : "temporary";
    if (carClass === "temporary" && this.freeSpaces() <= 0) return deny("lot-full", { kind: "lotFull", plate });
    const { carType, carSubType } = fixed && carClass === "fixed" ? fixed : this.temporaryTypes();

    const recordNo = this.numbers.recordNo(request.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
    ctx.recordNo = recordNo;

    const confirm = policy.confirmWithPlatform === "all" || (policy.confirmWithPlatform === "temporary" && carClass === "temporary");
    if (confirm) {
      // Why the lot asks (docs/protocol.md 3.4): a listed plate (not one refused outright), a
      // monthly pass that lapsed, no space left (a fixed car may still enter), or the policy.
      const why: PreEnterReason =
        store.blacklistFor(plate, atMs).length > 0 ? "blacklist" : fixed?.pass === "temporary" ? "monthly-expired" : this.freeSpaces() <= 0 ? "lot-full" : "confirm-required";
      const verdict = await this.confirmEntry(ctx, request, recordNo, carType, carSubType, why);
      if (!this.entries.has(request.txId)) return;
      if (verdict === "deny") return deny("platform-refused", { kind: "denied", plate });
    }
    if (!this.entries.has(request.txId)) return;

    // Durable first: the record exists on disk before the barrier moves for it.
    await store.addInPark({
      recordNo,
      plate,
      plateColor: platformPlateColor(request.color),
      laneId: request.laneId,
      enterAtMs: atMs,
      vehicleType: request.source === "unlicensed" ? "unlicensed" : carClass === "fixed" ? "monthly" : "temporary",
      carType,
      carSubType,
      source: request.source === "unlicensed" ? "unlicensed" : "camera",
      entryReport: "none",
      extra: {
        plateRaw: request.plateRaw,
        ...(fixed?.groupKey ? { groupKey: fixed.groupKey } : {}),
        // Its group's spaces were all taken: this stay pays as a temporary car's, whatever its card says.
        ...(fixed?.pass === "free" && fixed.groupFull ? { groupOverflow: true } : {}),
        ...(request.confidence === undefined ? {} : { confidence: request.confidence }),
      },
    });
    if (!this.entries.has(request.txId)) {
      // The car backed out while the record was being written.
      await store.cancelStay(recordNo, { reason: "backed-out" });
      return;
    }
    for (const old of already) {
      await store.cancelStay(old.recordNo, { reason: "re-entry", atMs }).catch((error: unknown) => this.log.warn({ err: error, recordNo: old.recordNo }, "old stay not closed"));
      this.emit({ type: "stay-replaced", laneId: request.laneId, plate, recordNo: old.recordNo, reason: "re-entry" });
    }
    ctx.phase = "allowed";
    this.feedDecision(request, { verdict: "allow", reason: carClass === "fixed" ? "fixed-car" : "temporary", recordNo });
    if (carClass === "fixed" && fixed) this.show(request.laneId, { kind: "monthly", plate, daysLeft: fixed.daysLeft });
    else this.show(request.laneId, { kind: "welcome", plate });
    this.emit({ type: "entry-allowed", laneId: request.laneId, plate, recordNo, reason: carClass });
    this.answerUnlicensed(plate, request.laneId, { ok: true, value: { recordNo } });
  }

  /** Pre-entry push (3.4), then wait for the platform's remoteDev on its recordNo. */
  private async confirmEntry(ctx: EntryCtx, request: RequestDecisionEffect, recordNo: string, carType: number, carSubType: number, reason: PreEnterReason): Promise<"allow" | "deny"> {
    const { config, platform, clock } = this.deps;
    ctx.phase = "confirming";
    this.pendingEntries.set(recordNo, ctx);
    try {
      const waitForRemote = new Promise<"allow" | "deny">((resolve) => {
        ctx.confirm = (verdict) => resolve(verdict);
        this.after(config.platform.deadlines.preEnterMs + config.policy.entry.confirmWaitMs, () => resolve(config.policy.entry.confirmDefault));
      });
      const result = await platform.preEnterNotify(
        {
          parkCode: config.lot.parkCode,
          recordNo,
          plateNum: request.plate,
          plateColor: platformPlateColor(request.color),
          carType,
          carSubType,
          inChannelid: this.lanes.get(request.laneId)!.channelId,
          arriveTime: formatWireTime(request.atMs, config.lot.timeZone),
          reason,
        },
        { deadlineMs: config.platform.deadlines.preEnterMs, signal: this.abort.signal },
      );
      if (!result.ok && result.kind !== "business-code") {
        this.emit({ type: "entry-confirm-unreachable", laneId: request.laneId, plate: request.plate, reason: result.kind });
        return config.policy.entry.confirmDefault;
      }
      return await waitForRemote;
    } finally {
      this.pendingEntries.delete(recordNo);
      ctx.confirm = undefined;
      ctx.phase = "deciding";
      void clock;
    }
  }

  private async decideExit(request: RequestDecisionEffect): Promise<void> {
    const { store, config } = this.deps;
    const atMs = request.atMs;
    // Released by hand before any plate came (unreadExit) and the read came late, while the
    // release was being written: the release stands; the attendant's open follows.
    if (this.exits.get(request.txId)?.phase === "settled") return;
    const ctx = this.newExit({
      laneId: request.laneId,
      txId: request.txId,
      plate: request.plate,
      atMs,
      phase: "deciding",
      path: "awaiting-payment",
      plateColor: platformPlateColor(request.color),
    });
    this.exits.set(request.txId, ctx);

    const found = this.findStay(request.plate, request.laneId);
    ctx.record = found.record;
    ctx.matchedBy = found.by;
    if (!found.record && request.plate) {
      ctx.record = await this.resumeSettledLeftover(request.plate, request.laneId, atMs);
      if (ctx.record) ctx.matchedBy = "exact";
    }
    if (found.by === "fuzzy") this.emit({ type: "plate-fuzzy-matched", laneId: request.laneId, plate: request.plate, recordNo: found.record?.recordNo, matched: found.record?.plate });

    if (request.plate && store.blacklistFor(request.plate, atMs).some((entry) => entry.denyOut)) {
      // Held with its stay attached (architecture.md §3.3 step 2): an attendant who releases
      // it by hand finishes that stay and reports it, with the bill it would have paid.
      ctx.phase = "held";
      this.show(request.laneId, { kind: "denied", plate: request.plate });
      this.emit({ type: "blacklisted-at-exit", laneId: request.laneId, plate: request.plate, recordNo: ctx.record?.recordNo, alarm: true });
      this.feedDecision(request, { verdict: "deny", reason: "blacklisted" });
      if (ctx.record) {
        ctx.bill = await this.billFor(ctx.record, atMs, request.laneId);
        ctx.dueFen = ctx.bill.paidFee;
      }
      return;
    }

    if (!ctx.record) {
      const rule = config.policy.exit.noRecord;
      this.emit({ type: "no-entry-record", laneId: request.laneId, plate: request.plate, reason: rule.mode, ...(found.ambiguous ? { candidates: found.ambiguous } : {}) });
      if (rule.mode === "attendant" || !request.plate) {
        ctx.phase = "awaiting";
        ctx.path = "attendant";
        this.show(request.laneId, { kind: "attendantCalled", ...(request.plate ? { plate: request.plate } : {}) });
        this.feedDecision(request, { verdict: "await", reason: "no-entry-record" });
        return;
      }
      // Charge the flat amount: a stay is made for it so the exit report has a recordNo.
      const recordNo = this.numbers.recordNo(request.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
      ctx.record = await store.addInPark({
        recordNo,
        plate: request.plate,
        plateColor: platformPlateColor(request.color),
        laneId: request.laneId,
        enterAtMs: atMs,
        vehicleType: "temporary",
        carType: ctx.carType,
        carSubType: ctx.carSubType,
        source: "manual",
        entryReport: "none",
        extra: { noEntryRecord: true },
      });
      // Its entry report goes before the bill, so the platform knows the stay it is asked
      // to bill (delivered, or tried once, within a short bound: the car is waiting).
      await this.queueEntryReport(ctx.record);
      const { outbox } = this.deps;
      let bounded: NodeJS.Timeout | undefined;
      await Promise.race([outbox.whenIdle(), new Promise((resolve) => (bounded = setTimeout(resolve, Math.min(1000, config.platform.deadlines.preLeaveMs))))]);
      clearTimeout(bounded);
      if (this.stopped) return;
      ctx.record = store.getInPark(ctx.record.recordNo) ?? ctx.record;
      ctx.dueFen = rule.amountFen;
      ctx.bill = { payableFee: rule.amountFen, discountFee: 0, paidFee: rule.amountFen, prepaidFee: 0, breakdown: [], discounts: [] };
    } else {
      if (ctx.record.carType !== undefined) ctx.carType = ctx.record.carType;
      if (ctx.record.carSubType !== undefined) ctx.carSubType = ctx.record.carSubType;
      const earlier = await this.earlierSettlement(ctx.record, atMs);
      ctx.record = earlier.record;
      if (earlier.settlement) {
        // Paid (or released) already — the open was cut short by a stop, or the car backed
        // out after paying — and back within the grace: it leaves on that settlement, not a
        // second bill.
        const s = earlier.settlement;
        ctx.bill = { payableFee: s.payableFen, discountFee: s.discountFen, paidFee: s.paidFen, prepaidFee: s.prepaidFen, breakdown: [], discounts: [] };
        ctx.dueFen = s.paidFen;
        this.emit({ type: "settled-earlier", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record.recordNo, path: s.path, settledAtMs: s.settledAtMs });
        await this.settle(ctx, s, "settled earlier", { written: true });
        return;
      }
      const record = ctx.record;
      ctx.bill = await this.billFor(record, atMs, request.laneId);
      ctx.dueFen = ctx.bill.paidFee;
      const fixed = this.fixedCarFor(record.plate, atMs);
      if (fixed?.pass === "free" && ctx.dueFen === 0 && record.extra?.groupOverflow !== true) {
        ctx.carType = fixed.carType;
        ctx.carSubType = fixed.carSubType;
      }
    }
    await this.billAtExit(ctx, request);
  }

  /** The exit bill is known: open for nothing due, or start every payment path at once. */
  private async billAtExit(ctx: ExitCtx, request: RequestDecisionEffect): Promise<void> {
    const { store, config, platform } = this.deps;
    const record = ctx.record!;
    const bill = ctx.bill!;
    // A payment notice that came while this bill was being made (quoting only the recordNo):
    // it settles the exit now, unless the bill already counted it as a prepayment.
    const early = ctx.earlyPayment;
    if (early && !record.prepayments.some((p) => p.orderNo === early.orderNo)) {
      await this.settle(ctx, this.paymentSettlement(early), "payment notice");
      return;
    }
    if (ctx.dueFen === 0) {
      const path: PaymentPath = bill.prepaidFee > 0 ? "prepaid" : "free";
      if (config.policy.exit.pushZeroBill) {
        ctx.plateId = this.numbers.plateId(ctx.laneId, ctx.atMs);
        void platform.preLeaveNotify(this.preLeaveBiz(ctx, {}), { deadlineMs: config.platform.deadlines.preLeaveMs });
      }
      await this.settle(ctx, { releaseType: 0, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator: "", path }, path);
      return;
    }

    const plateId = this.numbers.plateId(ctx.laneId, ctx.atMs);
    ctx.plateId = plateId;
    this.byPlateId.set(plateId, ctx);
    // Gone, or released by hand (the manualOpen button) while the bill was being prepared.
    if (!this.exits.has(ctx.txId) || ctx.phase !== "deciding") return;
    ctx.phase = "awaiting";
    ctx.path = "platform";
    // The bill goes on the wire first; everything else this decision does waits until it is.
    // undici writes a request on a reused keep-alive connection from an immediate (it first
    // lets bytes pending on the idle socket be read); the rest runs from the immediate queued
    // after it, so neither the disk write's hand-off to the thread pool nor the board delays
    // the request. The bill's durable copy (with the plateId) is then written while the bill
    // is in flight: the car waits for the slower of the two, not for both, and a settlement
    // waits for this write before its own (settle), so the record never moves backwards on
    // disk. The board, the event and the machine's "await" follow; none of them can be
    // overtaken by the answer, which arrives on a later turn of the event loop. From here the
    // scanner, the attendant's cash button and the platform's notices can all settle.
    const answer = this.sendBill(ctx, plateId, "platform", undefined);
    ctx.pendingWrite = new Promise<void>((written) => {
      setImmediate(() => {
        store
          .updateInPark(record.recordNo, {
            pendingExit: { laneId: ctx.laneId, plateId, atMs: ctx.atMs, payableFen: bill.payableFee, discountFen: bill.discountFee, dueFen: ctx.dueFen },
          })
          .then(
            () => written(),
            // Disk trouble: the store keeps the change in memory and retries (an alarm shows);
            // the lane goes on deciding.
            (error: unknown) => {
              this.log.error({ err: error, recordNo: record.recordNo }, "pending bill not yet durable");
              written();
            },
          );
        // Settled (the cash button) or gone (backed off) in the meantime: nothing to show.
        if (ctx.phase !== "awaiting" || !this.exits.has(ctx.txId)) return;
        this.show(ctx.laneId, { kind: "feeDue", plate: ctx.plate, feeFen: ctx.dueFen });
        this.emit({ type: "fee-due", laneId: ctx.laneId, plate: ctx.plate, recordNo: record.recordNo, feeFen: ctx.dueFen, plateId });
        this.feedDecision(request, { verdict: "await", reason: "fee-due", feeFen: ctx.dueFen });
      });
    });

    const result = await answer;
    if (this.stopped) return;
    // Paid while the bill was on its way (cash pressed at once, say): a 200 now is money
    // taken twice, and billPaid records it.
    if (result.ok && ctx.phase !== "awaiting") this.billPaid(ctx, ctx.bills!.get(plateId)!, result);
    if (ctx.phase !== "awaiting") return;
    this.afterPreLeave(ctx, result, "platform");
    this.afterBillFailure(ctx, plateId, result);
  }

  private afterPreLeave(ctx: ExitCtx, result: PlatformResult<unknown>, path: "platform" | "scanner"): void {
    if (result.ok) {
      const data = (result.data ?? {}) as { payType?: unknown; payTime?: unknown; orderNo?: unknown };
      const payTimeMs = typeof data.payTime === "string" ? this.parseTime(data.payTime) : this.deps.clock.now();
      void this.track(
        this.settle(
          ctx,
          {
            releaseType: 0,
            payType: Number(data.payType ?? (path === "scanner" ? 1 : 0)) || 0,
            paidFen: ctx.dueFen,
            orderNo: typeof data.orderNo === "string" ? data.orderNo : "",
            payTimeMs: payTimeMs ?? this.deps.clock.now(),
            operator: "",
            path,
          },
          path,
          // Frictionless (not a scanned code, whose credential is never kept): the platform
          // holds this answer and gives it again for the same plateId, so it is written just
          // after the open (see settle).
          { openFirst: path === "platform" },
        ),
      );
      return;
    }
    if (result.kind === "business-code") {
      ctx.path = "awaiting-payment";
      this.emit({ type: "awaiting-payment", laneId: ctx.laneId, plate: ctx.plate, feeFen: ctx.dueFen, reason: result.msg ?? `code ${result.code}` });
      this.deps.bus.changed();
      return;
    }
    // Refused, timed out, HTTP error, garbage: the platform cannot take the payment now. Cash
    // at once (architecture.md §3.3); the bill is reported later with pay type cash.
    if (path === "scanner") {
      this.emit({ type: "scan-failed", laneId: ctx.laneId, plate: ctx.plate, reason: result.kind });
    }
    ctx.path = "cash-fallback";
    this.show(ctx.laneId, { kind: "payCash", plate: ctx.plate, feeFen: ctx.dueFen });
    this.emit({ type: "cash-fallback", laneId: ctx.laneId, plate: ctx.plate, feeFen: ctx.dueFen, reason: result.kind });
    this.deps.bus.changed();
  }

  private preLeaveBiz(ctx: ExitCtx, sweep: { code?: string }): Parameters<PlatformClient["preLeaveNotify"]>[0] {
    const { config } = this.deps;
    const record = ctx.record!;
    const bill = ctx.bill!;
    return {
      parkCode: config.lot.parkCode,
      recordNo: record.recordNo,
      plateNum: record.plate || ctx.plate,
      carType: ctx.carType,
      carSubType: ctx.carSubType,
      enterTime: formatWireTime(record.enterAtMs, config.lot.timeZone),
      leaveTime: formatWireTime(ctx.atMs, config.lot.timeZone),
      payableFee: bill.payableFee,
      discountFee: bill.discountFee,
      paidFee: ctx.dueFen,
      outChannelid: this.lanes.get(ctx.laneId)!.channelId,
      sweepCode: sweep.code ? 1 : 0,
      ...(sweep.code ? { sweepAuthCode: sweep.code } : {}),
      plateId: ctx.plateId!,
    } as Parameters<PlatformClient["preLeaveNotify"]>[0];
  }

  private async payByScanner(ctx: ExitCtx, code: string): Promise<void> {
    const { store } = this.deps;
    // A new bill for the same car gets a new plateId (platform-api.md §7, 3.3).
    if (ctx.plateId) this.byPlateId.delete(ctx.plateId);
    ctx.plateId = this.numbers.plateId(ctx.laneId, this.deps.clock.now());
    this.byPlateId.set(ctx.plateId, ctx);
    await store.updateInPark(ctx.record!.recordNo, {
      pendingExit: { laneId: ctx.laneId, plateId: ctx.plateId, atMs: ctx.atMs, payableFen: ctx.bill!.payableFee, discountFen: ctx.bill!.discountFee, dueFen: ctx.dueFen },
    });
    this.emit({ type: "scan", laneId: ctx.laneId, plate: ctx.plate, plateId: ctx.plateId, code: `****${code.slice(-4)}` });
    const plateId = ctx.plateId;
    const result = await this.sendBill(ctx, plateId, "scanner", code);
    if (this.stopped) return;
    if (result.ok && ctx.phase !== "awaiting") this.billPaid(ctx, ctx.bills!.get(plateId)!, result);
    if (ctx.phase !== "awaiting") return;
    if (!result.ok && result.kind === "business-code") {
      this.emit({ type: "scan-refused", laneId: ctx.laneId, plate: ctx.plate, reason: result.msg ?? `code ${result.code}` });
      this.show(ctx.laneId, { kind: "feeDue", plate: ctx.plate, feeFen: ctx.dueFen });
      return;
    }
    this.afterPreLeave(ctx, result, "scanner");
    this.afterBillFailure(ctx, plateId, result);
  }

  /** The attendant's cash confirmation (button, API, panel); one at a time per exit. */
  private payCash(ctx: ExitCtx, operator: string, reason: string): Promise<CommandResult> {
    if (ctx.cashCheck) return ctx.cashCheck;
    const done = this.payCashNow(ctx, operator, reason);
    ctx.cashCheck = done;
    void done.finally(() => {
      if (ctx.cashCheck === done) ctx.cashCheck = undefined;
    });
    return done;
  }

  private async payCashNow(ctx: ExitCtx, operator: string, reason: string): Promise<CommandResult> {
    if (!ctx.record && ctx.path === "attendant") {
      // No entry record and nothing billed: the attendant's confirmation is a manual release
      // (leaveNotify releaseType 3 with the operator), not a cash payment of nothing.
      await this.settle(ctx, { releaseType: 3, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator, path: "manual" }, reason || "attendant release");
      return { ok: true, detail: `released ${ctx.plate} by hand` };
    }
    let blind = false;
    const unanswered = [...(ctx.bills?.values() ?? [])].filter((bill) => bill.unanswered && !bill.answered);
    if (unanswered.length > 0) {
      // A bill whose call timed out may have been paid on the platform meanwhile: ask once
      // more (same plateId, short deadline) before taking the driver's cash.
      const { cashCheckMs, preLeaveMs } = this.deps.config.platform.deadlines;
      this.emit({ type: "cash-check", laneId: ctx.laneId, plate: ctx.plate, plateIds: unanswered.map((b) => b.plateId) });
      const results = await Promise.all(unanswered.map((bill) => this.sendBill(ctx, bill.plateId, bill.path, bill.sweepCode, Math.min(cashCheckMs, preLeaveMs))));
      if (this.stopped) return { ok: false, code: "E_NO_VEHICLE", message: "the lanes are stopping" };
      const paid = results.findIndex((r) => r.ok);
      if (paid >= 0 && ctx.phase === "awaiting") this.billPaid(ctx, unanswered[paid]!, results[paid] as PlatformSuccess<PreLeavePaidData>);
      // Only when the platform cannot be asked is the cash taken blind (a 200 for the bill
      // afterwards is then a double payment: billPaid).
      blind = results.every((r) => !r.ok && r.kind !== "business-code");
    }
    if (ctx.phase === "settled" && (ctx.settlement?.path === "platform" || ctx.settlement?.path === "scanner")) {
      this.emit({ type: "cash-refused", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, operator, reason: "paid-online" });
      return paidOnlineRefusal(ctx.plate);
    }
    if (ctx.phase !== "awaiting") return { ok: false, code: "E_NO_VEHICLE", message: "no car is awaiting payment on this lane" };
    if (blind) this.emit({ type: "cash-blind", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, feeFen: ctx.dueFen, operator });
    const now = this.deps.clock.now();
    await this.settle(ctx, { releaseType: 0, payType: 4, paidFen: ctx.dueFen, orderNo: this.numbers.orderNo(now), payTimeMs: now, operator, path: "cash" }, reason || "cash");
    return { ok: true, detail: `cash ${ctx.dueFen} fen for ${ctx.plate}${blind ? " (platform not reachable)" : ""}` };
  }

  // ---- the pre-leave bill's calls: late answers, re-asks, double payments -------------------

  /**
   * Sends one pre-leave bill (a new one, a re-ask or the check before cash). The call keeps
   * listening for the late-answer window after its deadline: a 200 heard then is handled by
   * billPaid (the barrier opens as a platform payment, or a double payment is recorded).
   */
  private sendBill(ctx: ExitCtx, plateId: string, path: BillCall["path"], sweepCode: string | undefined, deadlineMs = this.deps.config.platform.deadlines.preLeaveMs): Promise<PlatformResult<PreLeavePaidData>> {
    const { config, platform } = this.deps;
    ctx.bills ??= new Map();
    let bill = ctx.bills.get(plateId);
    if (!bill) {
      bill = { plateId, path, sweepCode, open: 0, unanswered: false, answered: false, lastFailure: undefined, reasks: 0, reaskTimer: undefined, listenUntilMs: 0 };
      ctx.bills.set(plateId, bill);
    }
    const call = bill;
    call.open++;
    const listenMs = config.platform.deadlines.lateAnswerMs;
    const late = listenMs > deadlineMs;
    call.listenUntilMs = Math.max(call.listenUntilMs, this.deps.clock.now() + Math.max(listenMs, deadlineMs));
    const answer = platform.preLeaveNotify(
      { ...this.preLeaveBiz(ctx, sweepCode ? { code: sweepCode } : {}), plateId },
      {
        deadlineMs,
        signal: this.abort.signal,
        ...(late
          ? {
              listenMs,
              onLateAnswer: (result: PlatformResult<PreLeavePaidData>) => {
                call.open--;
                this.heard(call, result);
                if (!this.stopped && result.ok) this.billPaid(ctx, call, result);
              },
            }
          : {}),
      },
    );
    return answer.then((result) => {
      if (!(late && !result.ok && result.kind === "timeout")) call.open--;
      this.heard(call, result);
      return result;
    });
  }

  private heard(bill: BillCall, result: PlatformResult<unknown>): void {
    if (result.ok || result.kind === "business-code") {
      bill.answered = true;
      bill.lastFailure = undefined;
    } else if (result.kind !== "aborted") {
      bill.unanswered = true;
      bill.lastFailure = result.kind;
    }
  }

  /** Some call of this exit's bill timed out or failed while it is current: try a re-ask. */
  private afterBillFailure(ctx: ExitCtx, plateId: string, result: PlatformResult<unknown>): void {
    if (result.ok || result.kind === "business-code" || result.kind === "aborted") return;
    const bill = ctx.bills?.get(plateId);
    if (bill) this.scheduleReask(ctx, bill);
  }

  private waitingOn(ctx: ExitCtx, bill: BillCall): boolean {
    return !this.stopped && ctx.phase === "awaiting" && this.exits.has(ctx.txId) && !bill.answered;
  }

  /** A timed-out bill is asked again (same plateId) while its car waits, with backoff. */
  private scheduleReask(ctx: ExitCtx, bill: BillCall): void {
    if (bill.reaskTimer || !this.waitingOn(ctx, bill)) return;
    const { reaskFirstMs, reaskMaxMs } = this.deps.config.platform.deadlines;
    const delayMs = backoffCeilingMs(bill.reasks + 1, { baseMs: reaskFirstMs, capMs: reaskMaxMs });
    bill.reaskTimer = this.after(delayMs, () => {
      bill.reaskTimer = undefined;
      void this.track(this.reask(ctx, bill));
    });
  }

  /** The platform answered something: bills waiting out a timeout or refusal are asked now. */
  private reaskNow(): void {
    if (this.stopped) return;
    for (const ctx of this.exits.values()) {
      for (const bill of ctx.bills?.values() ?? []) {
        // A bill that itself got an HTTP answer waits out its backoff (no ping-pong of errors).
        if (!bill.reaskTimer || (bill.lastFailure !== "timeout" && bill.lastFailure !== "refused")) continue;
        this.cancelTimer(bill.reaskTimer);
        bill.reaskTimer = undefined;
        void this.track(this.reask(ctx, bill));
      }
    }
  }

  private async reask(ctx: ExitCtx, bill: BillCall): Promise<void> {
    if (!this.waitingOn(ctx, bill)) return;
    bill.reasks++;
    this.emit({ type: "bill-reasked", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, plateId: bill.plateId, attempt: bill.reasks });
    const result = await this.sendBill(ctx, bill.plateId, bill.path, bill.sweepCode);
    if (this.stopped) return;
    if (result.ok) {
      this.billPaid(ctx, bill, result);
      return;
    }
    if (result.kind === "business-code") {
      // Heard at last: not paid. The cash prompt stays; the driver may still pay.
      if (ctx.phase === "awaiting") this.emit({ type: "awaiting-payment", laneId: ctx.laneId, plate: ctx.plate, feeFen: ctx.dueFen, reason: result.msg ?? `code ${result.code}` });
      return;
    }
    if (result.kind !== "aborted") this.scheduleReask(ctx, bill);
  }

  /**
   * The platform collected a bill of this exit (a late answer, a re-ask, the check before
   * cash). The car still waiting: it leaves on that payment, and the board says so. Already
   * settled another way: the driver paid twice, recorded as a refund owed.
   */
  private billPaid(ctx: ExitCtx, bill: BillCall, result: PlatformSuccess<PreLeavePaidData>): void {
    if (this.stopped) return;
    if (ctx.phase === "awaiting") {
      this.emit({ type: "late-payment", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, plateId: bill.plateId, path: bill.path, feeFen: ctx.dueFen });
      ctx.paidOnline = true;
      this.afterPreLeave(ctx, result, bill.path);
      return;
    }
    if (ctx.phase === "settled" && ctx.settlement) void this.track(this.secondPayment(ctx, bill, result));
  }

  private async secondPayment(ctx: ExitCtx, bill: BillCall, result: PlatformSuccess<PreLeavePaidData>): Promise<void> {
    const first = ctx.settlement!;
    const data = result.data ?? ({} as Partial<PreLeavePaidData>);
    const orderNo = typeof data.orderNo === "string" ? data.orderNo : "";
    // The same payment heard twice (the on-time answer and a re-ask's): nothing new.
    if ((first.path === "platform" || first.path === "scanner") && (first.orderNo === orderNo || orderNo === "")) return;
    const record = ctx.record;
    const second: RefundPayment = {
      payType: Number(data.payType ?? (bill.path === "scanner" ? 1 : 0)) || 0,
      amountFen: ctx.dueFen,
      orderNo,
      payTimeMs: (typeof data.payTime === "string" ? this.parseTime(data.payTime) : null) ?? this.deps.clock.now(),
      path: bill.path,
      operator: "",
      plateId: bill.plateId,
    };
    if (first.paidFen <= 0 || !record) {
      // Released by hand or for free, then paid on the platform: paid once, not a refund.
      this.emit({ type: "late-platform-payment", laneId: ctx.laneId, plate: ctx.plate, recordNo: record?.recordNo, plateId: bill.plateId, feeFen: second.amountFen, orderNo, settledBy: first.path });
      return;
    }
    const viaCash = first.path === "cash" || first.path === "cash-fallback";
    const { entry, added } = await this.refunds.add({
      id: `${record.recordNo}:${bill.plateId}`,
      kind: "double-payment",
      laneId: ctx.laneId,
      plate: record.plate || ctx.plate,
      recordNo: record.recordNo,
      first: { payType: first.payType, amountFen: first.paidFen, orderNo: first.orderNo, payTimeMs: first.payTimeMs, path: first.path, operator: first.operator, ...(ctx.plateId && !viaCash ? { plateId: ctx.plateId } : {}) },
      second,
      // Cash taken blind is handed back by the attendant; a second online collection is
      // refunded through the platform.
      amountFen: viaCash ? first.paidFen : second.amountFen,
      refundVia: viaCash ? "cash" : "platform",
    });
    if (!added || this.stopped) return;
    this.log.warn({ laneId: ctx.laneId, recordNo: record.recordNo, plateId: bill.plateId, refundFen: entry.amountFen, refundVia: entry.refundVia }, "stay paid twice: refund owed");
    this.emit({
      type: "double-payment",
      laneId: ctx.laneId,
      plate: entry.plate,
      recordNo: entry.recordNo,
      plateId: bill.plateId,
      refundId: entry.id,
      refundFen: entry.amountFen,
      refundVia: entry.refundVia,
      firstPath: first.path,
      firstFen: first.paidFen,
      secondPath: second.path,
      secondFen: second.amountFen,
      secondOrderNo: orderNo,
      alarm: true,
    });
  }

  /** The exit on this lane the platform collected, its car still there (cash is refused for it). */
  private paidOnlineExit(laneId: string): ExitCtx | undefined {
    return [...this.exits.values()].find((c) => c.laneId === laneId && c.phase === "settled" && (c.settlement?.path === "platform" || c.settlement?.path === "scanner"));
  }

  private billUnanswered(ctx: ExitCtx): boolean {
    return [...(ctx.bills?.values() ?? [])].some((bill) => bill.unanswered && !bill.answered);
  }

  /**
   * The stay is paid (or released): write how, durably, then let the machine open. The exit
   * report goes out after the passage.
   *
   * `openFirst` is for the platform's code 200 to the pre-leave bill only. What the barrier
   * moves for is that bill, and it is on disk before the open (pendingWrite); the answer is
   * the platform's own record, which it gives again for the same plateId (platform-api.md §10:
   * keyed by plateId), so a stop between the open and this write is recovered at the next
   * start by asking again (recoverPendingExit). Every settlement only the box knows (cash, a
   * hand release, a notice the platform will not repeat) is durable before the open.
   * `written`: the stay already holds this settlement (one made before a restart).
   */
  private async settle(ctx: ExitCtx, settlement: Settlement, reason: string, how: { openFirst?: boolean; written?: boolean } = {}): Promise<void> {
    if (ctx.phase === "settled") return;
    if (!this.exits.has(ctx.txId)) {
      // The car backed off the lane while the platform's 200 was on its way: the money is
      // taken, so the stay keeps it (its next exit leaves on it, not on a second bill).
      if (how.openFirst && ctx.record && settlement.paidFen > 0) {
        ctx.phase = "settled";
        ctx.settlement = settlement;
        await ctx.pendingWrite;
        await this.writeSettlement(ctx, settlement);
      }
      return;
    }
    ctx.phase = "settled";
    ctx.settlement = settlement;
    await ctx.pendingWrite;
    if (how.openFirst && ctx.record) {
      // Opened only while the car is still on the lane; the payment is written either way.
      if (this.exits.has(ctx.txId)) this.release(ctx, settlement, reason);
      ctx.pendingWrite = this.writeSettlement(ctx, settlement).catch((error: unknown) =>
        this.log.error({ err: error, recordNo: ctx.record?.recordNo }, "platform settlement not yet durable (asked again at the next start)"),
      );
      await ctx.pendingWrite;
      return;
    }
    if (!ctx.record && ctx.path === "attendant") {
      const write = this.stayForUnrecorded(ctx, settlement);
      ctx.pendingWrite = write.catch(() => undefined);
      try {
        await write;
      } catch (error) {
        // Not durable: the barrier stays down and the car waits, so the attendant can try again.
        ctx.phase = "awaiting";
        ctx.settlement = undefined;
        throw error;
      }
    } else if (ctx.record && !how.written) {
      await this.writeSettlement(ctx, settlement);
    }
    if (!this.exits.has(ctx.txId)) return;
    this.release(ctx, settlement, reason);
  }

  /** Writes the settlement into the stay, durably (a no-op for a stay already gone). */
  private async writeSettlement(ctx: ExitCtx, settlement: Settlement): Promise<void> {
    const fresh = ctx.record ? this.deps.store.getInPark(ctx.record.recordNo) : undefined;
    if (!fresh) return;
    ctx.record = await this.deps.store.updateInPark(fresh.recordNo, { extra: { ...(fresh.extra ?? {}), settlement: this.stored(ctx, settlement) } });
  }

  private stored(ctx: ExitCtx, settlement: Settlement): StoredSettlement {
    return {
      ...settlement,
      settledAtMs: this.deps.clock.now(),
      laneId: ctx.laneId,
      billAtMs: ctx.atMs,
      payableFen: ctx.bill?.payableFee ?? ctx.dueFen,
      discountFen: ctx.bill?.discountFee ?? 0,
      prepaidFen: ctx.bill?.prepaidFee ?? 0,
    };
  }

  /** The settled exit opens: the machine is told, the board says paid, the event goes out. */
  private release(ctx: ExitCtx, settlement: Settlement, reason: string): void {
    const runner = this.runners.get(ctx.laneId);
    const decisionPending = runner?.snapshot().pending.some((tx) => tx.txId === ctx.txId && tx.phase === "deciding");
    if (decisionPending) this.feedDecision(ctx, { verdict: "allow", reason: settlement.path });
    else runner?.feed({ kind: "settle", txId: ctx.txId, reason: settlement.path, atMs: this.deps.clock.now(), data: { operator: settlement.operator } });
    this.show(ctx.laneId, ctx.paidOnline ? { kind: "paidOnline", plate: ctx.plate } : { kind: "paid", plate: ctx.plate });
    this.emit({
      type: "payment",
      laneId: ctx.laneId,
      plate: ctx.plate,
      recordNo: ctx.record?.recordNo,
      feeFen: settlement.paidFen,
      dueFen: ctx.dueFen,
      path: settlement.path,
      reason,
      ...(ctx.paidOnline ? { late: true } : {}),
      ...(settlement.operator ? { operator: settlement.operator } : {}),
    });
  }

  /** Stays of this plate that left within the last 24 h (the re-entry cap's window). */
  private recentExitsOf(plate: string, atMs: number): Array<{ recordNo: string; enterAtMs: number; leaveAtMs: number; payableFee: number }> {
    const key = normalisePlate(plate);
    const kept = (this.recentExits.get(key) ?? []).filter((stay) => stay.leaveAtMs > atMs - this.reentryWindowMs);
    if (kept.length > 0) this.recentExits.set(key, kept);
    else this.recentExits.delete(key);
    return kept.map((stay) => ({ ...stay, enterAtMs: Math.min(stay.enterAtMs, stay.leaveAtMs) }));
  }

  private rememberExit(plate: string, recordNo: string, enterAtMs: number, leaveAtMs: number, payableFee: number): void {
    if (!plate) return;
    const key = normalisePlate(plate);
    const list = (this.recentExits.get(key) ?? []).filter((stay) => stay.recordNo !== recordNo && stay.leaveAtMs > leaveAtMs - this.reentryWindowMs);
    list.push({ recordNo, enterAtMs, leaveAtMs, payableFee });
    this.recentExits.set(key, list);
    // Bounded: a day of a busy lot is a few thousand plates; prune the oldest beyond that.
    if (this.recentExits.size > 20_000) {
      const oldest = this.recentExits.keys().next().value;
      if (oldest !== undefined) this.recentExits.delete(oldest);
    }
  }

  private async billFor(record: InParkRecord, atMs: number, laneId: string): Promise<Bill> {
    const { config, store } = this.deps;
    const clamped = clampStay(record.enterAtMs, atMs, { maxStayMs: config.policy.exit.maxStayDays * DAY_MS });
    if (clamped.flagged) this.emit({ type: "stay-clamped", laneId, plate: record.plate, recordNo: record.recordNo, reason: clamped.flagged });
    const leaveAtMs = record.enterAtMs + clamped.durationMs;
    // A group car that entered beyond its group's spaces pays as a temporary car (issue 8):
    // its card must not make the stay free at the exit.
    const fixed = record.extra?.groupOverflow === true ? undefined : this.fixedCarRecord(record.plate);
    // Not the stay this one resumes (resumeSettledLeftover): its time is this bill's time too.
    const previous = this.recentExitsOf(record.plate, atMs)
      .filter((stay) => stay.recordNo !== record.recordNo && stay.recordNo !== record.extra?.resumes)
      // The fee core takes only what prices a stay (its schema is strict).
      .map(({ enterAtMs, leaveAtMs, payableFee }) => ({ enterAtMs, leaveAtMs, payableFee }));
    const vehicleType = (["small", "large", "nev"] as const).includes(record.extra?.vehicleClass as VehicleType)
      ? (record.extra!.vehicleClass as VehicleType)
      : record.plateColor === 4
        ? "nev"
        : config.policy.defaultVehicleType;
    return computeBill(
      this.tariff,
      {
        enterAtMs: record.enterAtMs,
        leaveAtMs,
        vehicleType: this.tariffHas(vehicleType) ? vehicleType : config.policy.defaultVehicleType,
        timeZone: config.lot.timeZone,
        plate: record.plate,
        ...(fixed ? { fixedCar: fixed } : {}),
      },
      {
        prepayments: record.prepayments.map((p) => ({ feeFen: p.amountFen, atMs: p.payAtMs })),
        coupons: record.coupons.map((c) =>
          c.kind === "amount"
            ? { kind: "amount" as const, fen: Math.round(c.value) }
            : c.kind === "minutes"
              ? { kind: "minutes" as const, minutes: Math.round(c.value), from: (c.extra?.from === "end" ? "end" : "start") as "start" | "end" }
              : c.kind === "percent"
                ? { kind: "percent" as const, percent: Math.min(100, Math.round(c.value)) }
                : { kind: "free" as const },
        ),
        previousStays: previous,
      },
    );
  }

  private tariffHas(vehicleType: VehicleType): boolean {
    const pricing = (this.tariff as { vehicles?: Record<string, unknown> }).vehicles;
    return !pricing || vehicleType in pricing || vehicleType === this.deps.config.policy.defaultVehicleType;
  }

  private fixedCarRecord(plate: string): FixedCar | undefined {
    const vehicle = this.deps.store.vehiclesByPlate(plate).find((v) => v.state === 1 && !v.frozen);
    if (!vehicle) return undefined;
    return {
      ...(vehicle.timeStartMs === null ? {} : { validFromMs: vehicle.timeStartMs }),
      validUntilMs: vehicle.timeEndMs ?? Date.UTC(9999, 0, 1),
      graceDays: this.deps.config.policy.fixedCarGraceDays,
    };
  }

  /** A registered car's standing now: free or temporary, with its types and group. */
  private fixedCarFor(
    plate: string,
    atMs: number,
  ): { pass: "free" | "temporary"; carType: number; carSubType: number; daysLeft: number; groupKey: string | undefined; groupFull: boolean } | undefined {
    const { store, config } = this.deps;
    const vehicle = store.vehiclesByPlate(plate).find((v) => v.state === 1 && !v.frozen);
    const fixedCar = this.fixedCarRecord(plate);
    if (!vehicle || !fixedCar) return undefined;
    const status = classifyFixedCar(fixedCar, atMs, config.lot.timeZone, { graceDays: config.policy.fixedCarGraceDays });
    const groupKey = vehicle.carGroupUuid || (vehicle.carGroupID > 0 ? `#${vehicle.carGroupID}` : undefined);
    let groupFull = false;
    if (groupKey) {
      const group = store.getCarGroup(vehicle.carGroupUuid ? { carGroupUuid: vehicle.carGroupUuid } : { carGroupID: vehicle.carGroupID });
      if (group?.spaces !== null && group?.spaces !== undefined) {
        // N spaces shared by M cars: beyond N of the group's cars in the lot, the next pays.
        const inside = store.listInPark((r) => r.extra?.groupKey === groupKey && r.vehicleType === "monthly").items.length;
        groupFull = inside >= group.spaces;
      }
    }
    const daysLeft = Math.max(0, Math.floor(((vehicle.timeEndMs ?? atMs) - atMs) / DAY_MS));
    return { pass: status.pass, carType: Math.floor(vehicle.carTypeCode / 10), carSubType: vehicle.carTypeCode, daysLeft, groupKey, groupFull };
  }

  private temporaryTypes(): { carType: number; carSubType: number } {
    const dictionaries = this.deps.config.platform.dictionaries;
    return { carType: dictionaries.temporaryCarType, carSubType: dictionaries.temporaryCarSubType };
  }

  /** Exact match first, then the fuzzy rule (misreads, one character, province). */
  private findStay(plate: string, laneId: string): { record: InParkRecord | undefined; by: ExitCtx["matchedBy"]; ambiguous?: string[] } {
    const { store, config } = this.deps;
    if (!plate) return { record: undefined, by: "none" };
    const exact = store.findInParkByPlate(plate).concat(store.findInParkByPlate(`无${plate}`));
    if (exact.length > 0) return { record: exact.sort((a, b) => b.enterAtMs - a.enterAtMs)[0], by: "exact" };
    const fuzzy = config.policy.exit.fuzzy;
    if (fuzzy.maxDifferences === 0 && !fuzzy.ignoreProvince && !fuzzy.misreads) return { record: undefined, by: "none" };
    const candidates = store.listInPark().items.map((r) => normalisePlate(r.plate)).filter((p) => p.length > 0);
    const match = matchPlate(plate, candidates, {
      maxDifferences: fuzzy.maxDifferences,
      ignoreProvince: fuzzy.ignoreProvince,
      ...(fuzzy.misreads ? {} : { misreadPairs: [] }),
    });
    if (match.kind === "exact" || match.kind === "fuzzy") {
      const record = store.listInPark((r) => normalisePlate(r.plate) === match.plate).items[0];
      return { record, by: "fuzzy" };
    }
    if (match.kind === "ambiguous") {
      const plates = match.candidates.map((c) => c.plate);
      this.log.warn({ laneId, plate, candidates: plates }, "ambiguous fuzzy plate match; treated as no record");
      return { record: undefined, by: "none", ambiguous: plates };
    }
    return { record: undefined, by: "none" };
  }

  private awaitingExit(laneId: string): ExitCtx | undefined {
    return [...this.exits.values()].find((ctx) => ctx.laneId === laneId && ctx.phase === "awaiting");
  }

  // ---- section-4 calls ----------------------------------------------------------------------

  private async feeQuery(query: FeeQuery): Promise<LaneAnswer<FeeQuote>> {
    const now = this.deps.clock.now();
    let record: InParkRecord | undefined;
    let laneId = query.laneId;
    if (query.payScene === 1) {
      const ctx = laneId ? [...this.exits.values()].find((c) => c.laneId === laneId && c.record && c.phase !== "settled") : undefined;
      if (!ctx?.record) return { ok: false, reason: "no-vehicle", msg: "no vehicle is waiting at that exit" };
      if (ctx.plateId) return { ok: true, value: this.quote(ctx.record, ctx.bill!, ctx.atMs, ctx, query.channelId) };
      record = ctx.record;
    } else {
      if (query.recordNo) record = this.deps.store.getInPark(query.recordNo);
      if (!record && query.plateNum) {
        const plate = normalisePlate(query.plateNum.replace(/^无/, ""));
        record = this.deps.store.findInParkByPlate(plate).concat(this.deps.store.findInParkByPlate(`无${plate}`), this.deps.store.findInParkByPlate(query.plateNum))[0];
      }
      if (!record) return { ok: false, reason: "not-found", msg: "no such stay in the car park" };
      if (query.payScene === 2 && laneId) {
        // Flow 6 (platform-api.md §9): the driver of an unlicensed car scanned the exit lane's
        // code. The camera cannot read a virtual plate, so the stay is handed to the car waiting
        // there unread; the lane then bills it as in flow 4 (pre-leave push, payment, open).
        const ctx = this.attachUnlicensedExit(laneId, record);
        if (ctx?.plateId && ctx.bill) return { ok: true, value: this.quote(ctx.record!, ctx.bill, ctx.atMs, ctx, query.channelId) };
      }
      laneId ??= record.laneId;
    }
    const bill = await this.billFor(record, now, laneId ?? record.laneId);
    return { ok: true, value: this.quote(record, bill, now, undefined, query.channelId) };
  }

  /**
   * The exit transaction of an unlicensed stay at `laneId`: the one already running for it, or
   * a new one when a vehicle waits on loopA with no plate read (its virtual plate is fed in as
   * the read, so the lane machine decides it like any other car).
   */
  private attachUnlicensedExit(laneId: string, record: InParkRecord): ExitCtx | undefined {
    const running = [...this.exits.values()].find((c) => c.laneId === laneId && c.record?.recordNo === record.recordNo && c.phase !== "settled");
    if (running) return running;
    const runner = this.runners.get(laneId);
    if (!runner || this.lanes.get(laneId)?.direction !== "out") return undefined;
    const waiting = runner.snapshot().pending.find((tx) => tx.phase === "waiting" && tx.plate === null && !tx.manual);
    if (!runner.snapshot().loopA || !waiting) return undefined;
    this.emit({ type: "unlicensed-exit", laneId, plate: record.plate, recordNo: record.recordNo });
    runner.feed({ kind: "plate", plate: record.plate, atMs: this.deps.clock.now(), source: "unlicensed" });
    return undefined;
  }

  private quote(record: InParkRecord, bill: Bill, atMs: number, ctx: ExitCtx | undefined, channelId: string | undefined): FeeQuote {
    return {
      recordNo: record.recordNo,
      plateNum: record.plate,
      enterTimeMs: record.enterAtMs,
      leaveTimeMs: atMs,
      payableFee: bill.payableFee,
      discountFee: bill.discountFee,
      paidFee: ctx ? ctx.dueFen : bill.paidFee,
      carType: record.carType ?? this.temporaryTypes().carType,
      carSubType: record.carSubType ?? this.temporaryTypes().carSubType,
      ...(channelId ? { channelId } : {}),
    };
  }

  private async unlicensedEntry(entry: UnlicensedEntry): Promise<LaneAnswer<{ recordNo: string }>> {
    const lane = this.lanes.get(entry.laneId);
    const runner = this.runners.get(entry.laneId);
    if (!lane || !runner || lane.direction !== "in") return { ok: false, reason: "lane-invalid", msg: `${entry.channelId} is not an entry lane` };
    const plate = normalisePlate(entry.plateNum);
    const key = `${entry.laneId}:${plate}`;
    const now = this.deps.clock.now();
    // Answers are only needed for the repeat window; forget older ones so the map stays small.
    for (const [oldKey, old] of this.unlicensedAnswers) {
      if (now - old.atMs >= this.deps.config.policy.unlicensedRepeatMs) this.unlicensedAnswers.delete(oldKey);
    }
    const repeat = this.unlicensedAnswers.get(key);
    // A second scan within the window is the same request: same answer, no second stay.
    if (repeat && now - repeat.atMs < this.deps.config.policy.unlicensedRepeatMs) return repeat.answer;
    if (!runner.snapshot().loopA) return { ok: false, reason: "no-vehicle", msg: "no vehicle on the entry lane" };
    const answer = new Promise<LaneAnswer<{ recordNo: string }>>((resolve) => {
      this.unlicensedWaiters.set(key, resolve);
      this.after(5000, () => {
        if (this.unlicensedWaiters.get(key) === resolve) {
          this.unlicensedWaiters.delete(key);
          resolve({ ok: false, reason: "busy", msg: "the lane did not decide in time" });
        }
      });
    });
    this.unlicensedAnswers.set(key, { atMs: now, answer });
    runner.feed({ kind: "plate", plate, atMs: now, source: "unlicensed" });
    return answer;
  }

  private answerUnlicensed(plate: string, laneId: string, answer: LaneAnswer<{ recordNo: string }>): void {
    const key = `${laneId}:${plate}`;
    const waiter = this.unlicensedWaiters.get(key);
    if (!waiter) return;
    this.unlicensedWaiters.delete(key);
    waiter(answer);
  }

  private async remoteControl(command: RemoteControl): Promise<LaneAnswer> {
    const runner = this.runners.get(command.laneId);
    if (!runner) return { ok: false, reason: "lane-invalid", msg: `no lane for channel ${command.channelId}` };
    const atMs = this.deps.clock.now();
    this.emit({ type: "remote-control", laneId: command.laneId, operator: command.operator, remoteType: command.type, cmd: command.cmd, plateId: command.plateId, openGateCase: command.openGateCase });
    const entry = this.pendingEntries.get(command.plateId);
    if (entry) {
      if (entry.laneId !== command.laneId) return { ok: false, reason: "lane-invalid", msg: "that entry is pending on another lane" };
      entry.confirm?.(command.type === 1 ? "deny" : "allow", command.operator);
      return { ok: true, value: undefined, msg: "操作成功" };
    }
    const exit = this.byPlateId.get(command.plateId);
    if (exit) {
      if (exit.laneId !== command.laneId) return { ok: false, reason: "lane-invalid", msg: "that bill belongs to another lane" };
      if (exit.phase !== "awaiting" || !this.exits.has(exit.txId)) return { ok: false, reason: "expired", msg: "the vehicle is no longer waiting" };
      if (command.type === 1) {
        this.emit({ type: "remote-cancel", laneId: exit.laneId, plate: exit.plate, operator: command.operator });
        return { ok: true, value: undefined, msg: "操作成功" };
      }
      const free = command.type === 2;
      await this.settle(
        exit,
        {
          releaseType: free ? (command.openGateCase && command.openGateCase > 1 ? 2 : 1) : 0,
          payType: 0,
          paidFen: 0,
          orderNo: "",
          payTimeMs: free ? null : atMs,
          operator: command.operator,
          path: free ? "remote-free" : "remote",
        },
        free ? `free release (case ${command.openGateCase ?? "?"})` : "remote release",
      );
      return { ok: true, value: undefined, msg: "操作成功" };
    }
    if (command.cmd === 1) {
      this.openByHand(command.laneId, `remote manual raise (case ${command.openGateCase ?? "?"})`, command.operator);
      return { ok: true, value: undefined, msg: "操作成功" };
    }
    return { ok: false, reason: "not-found", msg: "unknown or expired plateId" };
  }

  private async paymentNotified(payment: PaymentRecord): Promise<void> {
    const exit =
      (payment.plateId ? this.byPlateId.get(payment.plateId) : undefined) ??
      [...this.exits.values()].find((c) => (c.phase === "awaiting" || c.phase === "deciding") && c.record && c.record.recordNo === payment.recordNo);
    if (exit?.phase === "deciding") {
      // The exit's bill is still being made (a notice may quote only the recordNo, 4.2): kept
      // on the exit and applied by billAtExit once the bill is known, so the car does not wait.
      // (No event of its own: the "payment" event follows when the exit settles with it.)
      exit.earlyPayment ??= payment;
      this.log.info({ laneId: exit.laneId, recordNo: payment.recordNo, orderNo: payment.orderNo }, "payment notice while the exit is deciding; applied once billed");
      return;
    }
    if (!exit || exit.phase !== "awaiting") {
      this.emit({ type: "prepayment", plate: payment.plateNum, recordNo: payment.recordNo, feeFen: payment.amountFen });
      return;
    }
    await this.settle(exit, this.paymentSettlement(payment), "payment notice");
  }

  private paymentSettlement(payment: PaymentRecord): Settlement {
    return { releaseType: 0, payType: payment.payType, paidFen: payment.amountFen, orderNo: payment.orderNo, payTimeMs: payment.payTimeMs, operator: "", path: "platform" };
  }

  /**
   * A car with no in-park record (noRecord.mode "attendant", or no plate read) released by the
   * attendant: it gets a stay like the "charge" mode makes (entered at the exit read, source
   * manual), durably, so the passage finishes it and the platform hears of the exit with
   * releaseType 3 and the operator instead of the car leaving unreported. A car with no plate
   * read gets a virtual plate as unlicensed cars have (platform-api.md: 7 of [0-9A-Z] after a
   * 无): a hand release with no trace in the cloud is the attendant fraud operators look for.
   */
  private async stayForUnrecorded(ctx: ExitCtx, settlement: Settlement): Promise<void> {
    if (ctx.record) return;
    this.plateForRelease(ctx);
    const { store } = this.deps;
    const recordNo = this.numbers.recordNo(ctx.laneId, ctx.atMs, (candidate) => store.getInPark(candidate) !== undefined);
    ctx.madeStay = true;
    ctx.record = await store.addInPark({
      recordNo,
      plate: ctx.plate,
      ...(ctx.plateColor === undefined ? {} : { plateColor: ctx.plateColor }),
      laneId: ctx.laneId,
      enterAtMs: ctx.atMs,
      vehicleType: "temporary",
      carType: ctx.carType,
      carSubType: ctx.carSubType,
      source: "manual",
      entryReport: "none",
      extra: { noEntryRecord: true, settlement: this.stored(ctx, settlement) },
    });
    // Logged, not a new event type: the "payment" and "vehicle-left" events carry its recordNo.
    this.log.info({ laneId: ctx.laneId, plate: ctx.plate, recordNo, operator: settlement.operator }, "stay made at the exit for a car with no entry record");
  }

  /** A car released with no plate read gets a virtual one (stayForUnrecorded), from its read time. */
  private plateForRelease(ctx: ExitCtx): void {
    if (!ctx.plate) ctx.plate = `无${(ctx.atMs % 36 ** 7).toString(36).toUpperCase().padStart(7, "0")}`;
  }

  // ---- exits cut short by a stop -----------------------------------------------------------

  /**
   * The settlement a stay already holds, if the car is back within the tariff's post-payment
   * grace. Past the grace, a collected amount becomes a prepayment of the stay (durably) and
   * the car is billed again from there, as after an in-lot payment (domain.md §5).
   */
  private async earlierSettlement(record: InParkRecord, atMs: number): Promise<{ record: InParkRecord; settlement?: StoredSettlement }> {
    const settlement = storedSettlementOf(record);
    if (!settlement) return { record };
    if (atMs - settlement.settledAtMs <= this.tariff.postPayment.graceMinutes * 60_000) return { record, settlement };
    const { settlement: _expired, ...extra } = record.extra ?? {};
    const prepayments =
      settlement.paidFen > 0 && !record.prepayments.some((p) => p.orderNo === settlement.orderNo)
        ? [...record.prepayments, { orderNo: settlement.orderNo || `${record.recordNo}-exit`, amountFen: settlement.paidFen, payAtMs: settlement.settledAtMs, payType: String(settlement.payType) }]
        : record.prepayments;
    this.emit({ type: "settled-earlier-expired", laneId: settlement.laneId, plate: record.plate, recordNo: record.recordNo, path: settlement.path, settledAtMs: settlement.settledAtMs });
    return { record: await this.deps.store.updateInPark(record.recordNo, { extra, prepayments }) };
  }

  /**
   * A car with no stay whose newest stay was finished as left after a restart (a settled
   * leftover: not read again within `settledHoldMs`) had not left after all. That stay was
   * reported, so it is resumed under a new recordNo: same entry, what it paid counted as a
   * prepayment, so the car pays only for the time since (nothing within the post-payment
   * grace) instead of meeting the "no entry record" rule. Only within `settledResumeMs` of
   * the payment: a car away that long and back unseen is an unknown car again.
   */
  private async resumeSettledLeftover(plate: string, laneId: string, atMs: number): Promise<InParkRecord | undefined> {
    const { store, config } = this.deps;
    const windowMs = config.policy.exit.settledResumeMs;
    if (windowMs === 0) return undefined;
    // Only the history written within the window is read: this runs for every car with no
    // stay, and a year of history on an SD card is slow to scan.
    const [newest] = await store.recentStays(plate, { limit: 1, sinceMs: atMs - windowMs });
    if (!newest || newest.exit.extra?.settledLeftover !== true) return undefined;
    const settlement = storedSettlementOf(newest);
    if (!settlement || atMs - settlement.settledAtMs > windowMs) return undefined;
    const orderNo = settlement.orderNo || `${newest.recordNo}-exit`;
    const prepayments =
      settlement.paidFen > 0 && !newest.prepayments.some((p) => p.orderNo === orderNo)
        ? [...newest.prepayments, { orderNo, amountFen: settlement.paidFen, payAtMs: settlement.settledAtMs, payType: String(settlement.payType) }]
        : newest.prepayments;
    const { settlement: _reported, ...extra } = newest.extra ?? {};
    const recordNo = this.numbers.recordNo(laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
    const record = await store.addInPark({
      recordNo,
      plate: newest.plate,
      ...(newest.plateColor === undefined ? {} : { plateColor: newest.plateColor }),
      laneId: newest.laneId,
      enterAtMs: newest.enterAtMs,
      vehicleType: newest.vehicleType,
      ...(newest.carType === undefined ? {} : { carType: newest.carType }),
      ...(newest.carSubType === undefined ? {} : { carSubType: newest.carSubType }),
      source: "manual",
      entryReport: "none",
      prepayments,
      coupons: newest.coupons,
      extra: { ...extra, resumes: newest.recordNo },
    });
    this.emit({ type: "settled-stay-resumed", laneId, plate, recordNo, resumes: newest.recordNo, settledAtMs: settlement.settledAtMs, paidFen: settlement.paidFen });
    return record;
  }

  /** A settled stay found at start: its car gets `settledHoldMs` to be read at an exit. */
  private holdSettled(recordNo: string): void {
    this.after(this.deps.config.policy.exit.settledHoldMs, () => void this.track(this.finishSettledLeftover(recordNo)));
  }

  /** The car of a settled stay was not seen since the start: it left during the stop. */
  private async finishSettledLeftover(recordNo: string): Promise<void> {
    const record = this.deps.store.getInPark(recordNo);
    const settlement = record ? storedSettlementOf(record) : undefined;
    if (!record || !settlement || this.exitInProgress(recordNo)) return;
    const laneId = this.lanes.has(settlement.laneId) ? settlement.laneId : [...this.lanes.values()].find((l) => l.direction === "out")?.id;
    if (!laneId) return;
    const ctx = this.newExit({
      laneId,
      txId: `leftover-${recordNo}`,
      plate: record.plate,
      atMs: settlement.billAtMs,
      record,
      matchedBy: "exact",
      bill: { payableFee: settlement.payableFen, discountFee: settlement.discountFen, paidFee: settlement.paidFen, prepaidFee: settlement.prepaidFen, breakdown: [], discounts: [] },
      dueFen: settlement.paidFen,
      phase: "settled",
      path: settlement.path,
      settlement,
      settledLeftover: true,
    });
    this.log.info({ recordNo, plate: record.plate, path: settlement.path }, "settled stay not seen since the start: finished as left at its bill's time");
    this.emit({ type: "settled-stay-finished", laneId, plate: record.plate, recordNo, path: settlement.path, reason: "not seen since the start" });
    await this.exitPassed(ctx);
  }

  /**
   * A stay with a pre-leave bill and no settlement at start: the platform may have answered
   * 200 and the barrier opened before the answer was written (settle, openFirst). The same
   * bill, same plateId, is asked again; 200 settles the stay as the platform says (then held as
   * any settled stay), another code leaves it as it is (the car did not pay that way), and no
   * answer is asked again with backoff until the car is read again or the platform answers.
   */
  private async recoverPendingExit(recordNo: string, attempt: number): Promise<void> {
    const { store, config, platform } = this.deps;
    const record = store.getInPark(recordNo);
    const pending = record?.pendingExit;
    if (!record || !pending || storedSettlementOf(record) || this.exitInProgress(recordNo) || !this.lanes.has(pending.laneId)) return;
    const ctx = this.newExit({
      laneId: pending.laneId,
      txId: `recover-${recordNo}`,
      plate: record.plate,
      atMs: pending.atMs,
      record,
      matchedBy: "exact",
      bill: { payableFee: pending.payableFen, discountFee: pending.discountFen, paidFee: pending.dueFen, prepaidFee: Math.max(0, pending.payableFen - pending.discountFen - pending.dueFen), breakdown: [], discounts: [] },
      dueFen: pending.dueFen,
      plateId: pending.plateId,
      phase: "awaiting",
      path: "platform",
    });
    const result = await platform.preLeaveNotify(this.preLeaveBiz(ctx, {}), { deadlineMs: config.platform.deadlines.preLeaveMs });
    // The car was read again meanwhile (its new bill decides), or the stay went.
    const now = store.getInPark(recordNo);
    if (!now || now.pendingExit?.plateId !== pending.plateId || this.exitInProgress(recordNo)) return;
    if (result.ok) {
      const data = (result.data ?? {}) as { payType?: unknown; payTime?: unknown; orderNo?: unknown };
      const settlement: Settlement = {
        releaseType: 0,
        payType: Number(data.payType ?? 0) || 0,
        paidFen: pending.dueFen,
        orderNo: typeof data.orderNo === "string" ? data.orderNo : "",
        payTimeMs: (typeof data.payTime === "string" ? this.parseTime(data.payTime) : null) ?? this.deps.clock.now(),
        operator: "",
        path: "platform",
      };
      ctx.record = now;
      await this.writeSettlement(ctx, settlement);
      this.emit({ type: "payment-recovered", laneId: ctx.laneId, plate: record.plate, recordNo, plateId: pending.plateId, feeFen: pending.dueFen, path: "platform" });
      this.holdSettled(recordNo);
      return;
    }
    if (result.kind === "business-code") {
      this.log.info({ recordNo, plateId: pending.plateId, code: result.code }, "bill pending at the stop is not paid on the platform");
      return;
    }
    const delayMs = Math.min(60_000, 1000 * 2 ** Math.min(attempt, 6));
    this.log.warn({ recordNo, plateId: pending.plateId, reason: result.kind, retryInMs: delayMs }, "bill pending at the stop: platform not reachable, asking again later");
    this.after(delayMs, () => void this.track(this.recoverPendingExit(recordNo, attempt + 1)));
  }

  private exitInProgress(recordNo: string): boolean {
    return [...this.exits.values()].some((c) => c.record?.recordNo === recordNo);
  }

  // ---- events from the lane machines ---------------------------------------------------------

  private onCoreEvent(event: CoreLaneEvent): void {
    const { type, laneId, txId } = event;
    if (type === "cashConfirmPressed") {
      const ctx = this.awaitingExit(laneId);
      if (ctx) this.track(this.payCash(ctx, "booth-button", "cash"));
    }
    const entry = txId ? this.entries.get(txId) : undefined;
    const exit = txId ? this.exits.get(txId) : undefined;
    if (type === "manualOpen") {
      // The machine already opened for the car (the manualOpen button, or an API open of a car
      // the policy refused or held): the policy records who let it through and why.
      const operator = event.operator ?? "button";
      const reason = event.reason ?? "manual";
      if (exit) this.track(this.manualRelease(exit, operator, reason));
      if (entry) this.track(this.manualEntry(entry, operator, reason, event.atMs));
    }
    if (type === "passed") {
      if (entry) this.track(this.entryPassed(entry));
      if (exit) this.track(this.exitPassed(exit));
    } else if (type === "backedOut" || type === "cancelled" || type === "expired" || type === "tailgated") {
      if (entry) this.track(this.entryAbandoned(entry, type));
      if (exit) this.exitAbandoned(exit, type);
    }
    const { kind: _kind, ...fields } = event;
    this.emit({ ...fields, type: kebab(type) });
  }

  private onCoreDisplay(effect: DisplayEffect): void {
    // The machine's own messages cover what the policy does not: a car waiting with no read.
    if (effect.message === "plateTimeout") this.show(effect.laneId, { kind: "attendantCalled" });
  }

  /**
   * An exit released by hand while billed, held or still deciding: settled as a manual release
   * (leaveNotify releaseType 3, nothing collected) with the operator, durably as `settle` does.
   */
  private async manualRelease(ctx: ExitCtx, operator: string, reason: string): Promise<void> {
    if (ctx.phase === "settled") return;
    const settlement: Settlement = { releaseType: 3, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator, path: "manual" };
    ctx.phase = "settled";
    ctx.settlement = settlement;
    if (!ctx.record && ctx.path === "attendant") this.plateForRelease(ctx);
    this.emit({ type: "payment", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.record?.recordNo, feeFen: 0, dueFen: ctx.dueFen, path: "manual", reason, operator });
    if (!ctx.record && ctx.path === "attendant") {
      // The arm is already moving (the machine opened): the stay follows, and the passage
      // waits for it (exitPassed awaits pendingWrite).
      ctx.pendingWrite = this.stayForUnrecorded(ctx, settlement).catch((error: unknown) => this.log.error({ err: error, plate: ctx.plate }, "stay for a car with no entry record not written"));
      await ctx.pendingWrite;
      return;
    }
    await this.writeSettlement(ctx, settlement);
  }

  /** An open by a person (API, fleet, the platform's manual raise): what it needs written first, then the open. */
  private openByHand(laneId: string, reason: string, operator: string): void {
    const runner = this.runners.get(laneId);
    if (!runner) return;
    const open = () => runner.feed({ kind: "open", reason, operator, atMs: this.deps.clock.now() });
    const ready = this.prepareAttendantOpen(laneId, operator, reason);
    if (!ready) open();
    else this.track(ready.catch((error: unknown) => this.log.error({ err: error, laneId }, "write before the attendant's open failed; opening anyway")).then(open));
  }

  /**
   * An attendant is about to lift the arm (the manualOpen button, an API open): whatever the
   * car under it needs on disk is written first, so the record is durable before the barrier
   * moves (architecture.md §5) — a refused entry gets its stay, a pending platform
   * confirmation is answered "allow" and its record written, an exit is settled as a manual
   * release. Undefined when nothing needs writing (the open goes at once).
   */
  private prepareAttendantOpen(laneId: string, operator: string, reason: string): Promise<void> | undefined {
    const lane = this.lanes.get(laneId);
    if (!lane) return undefined;
    if (lane.direction === "out") {
      const exit = [...this.exits.values()].find((c) => c.laneId === laneId && c.phase !== "settled") ?? this.unreadExit(laneId);
      return exit ? this.manualRelease(exit, operator, reason) : undefined;
    }
    const entry = [...this.entries.values()].find((c) => c.laneId === laneId && (c.phase === "denied" || c.phase === "confirming"));
    if (!entry) return undefined;
    if (entry.phase === "confirming") {
      // The decision goes on as if the platform had allowed: its record, then "allow".
      entry.confirm?.("allow", operator);
      return this.deciding.get(entry.txId)?.then(() => undefined);
    }
    return this.manualEntry(entry, operator, reason, this.deps.clock.now());
  }

  /** A new exit: nothing matched, billed or settled unless `fields` say so; car types from its stay, else temporary. */
  private newExit(fields: Pick<ExitCtx, "laneId" | "txId" | "plate" | "atMs" | "phase" | "path"> & Partial<ExitCtx>): ExitCtx {
    const temporary = this.temporaryTypes();
    return {
      record: undefined,
      matchedBy: "none",
      bill: undefined,
      dueFen: 0,
      carType: fields.record?.carType ?? temporary.carType,
      carSubType: fields.record?.carSubType ?? temporary.carSubType,
      plateId: undefined,
      settlement: undefined,
      ...fields,
    };
  }

  /**
   * The car on the exit's loop whose plate was never read (the camera gave up: plateTimeout)
   * and so has no decision: an exit of its own, so an attendant's release makes its stay
   * (under a virtual plate) and the passage reports it like any hand release.
   */
  private unreadExit(laneId: string): ExitCtx | undefined {
    const tx = this.runners.get(laneId)?.currentTx();
    if (!tx || tx.phase !== "waiting" || tx.plate !== null || this.exits.has(tx.txId)) return undefined;
    const ctx = this.newExit({ laneId, txId: tx.txId, plate: "", atMs: this.deps.clock.now(), phase: "awaiting", path: "attendant" });
    this.exits.set(tx.txId, ctx);
    return ctx;
  }

  /**
   * An attendant let a refused car in (lot full, blacklisted, platform refused): it gets a stay
   * like any other, so its exit finds a record and the platform hears of it. Written before the
   * open (prepareAttendantOpen); a pending platform confirmation is answered by the
   * attendant's open instead.
   */
  private async manualEntry(ctx: EntryCtx, operator: string, reason: string, atMs: number): Promise<void> {
    if (ctx.phase === "confirming") {
      ctx.confirm?.("allow", operator);
      return;
    }
    if (ctx.phase !== "denied" || !ctx.plate) return;
    const { store } = this.deps;
    const recordNo = ctx.recordNo ?? this.numbers.recordNo(ctx.laneId, atMs, (candidate) => store.getInPark(candidate) !== undefined);
    ctx.recordNo = recordNo;
    ctx.phase = "allowed";
    const { carType, carSubType } = this.temporaryTypes();
    const written = store.addInPark({
      recordNo,
      plate: ctx.plate,
      laneId: ctx.laneId,
      enterAtMs: atMs,
      vehicleType: "temporary",
      carType,
      carSubType,
      source: "manual",
      entryReport: "none",
      extra: { manual: { operator, reason } },
    });
    ctx.written = written.catch(() => undefined);
    await written;
    this.emit({ type: "entry-allowed", laneId: ctx.laneId, plate: ctx.plate, recordNo, reason: "manual", operator });
  }

  private async entryPassed(ctx: EntryCtx): Promise<void> {
    this.entries.delete(ctx.txId);
    await ctx.written;
    if (!ctx.recordNo) return;
    const record = this.deps.store.getInPark(ctx.recordNo);
    if (record) await this.queueEntryReport(record);
    this.emit({ type: "vehicle-entered", laneId: ctx.laneId, plate: ctx.plate, recordNo: ctx.recordNo });
  }

  private async entryAbandoned(ctx: EntryCtx, why: string): Promise<void> {
    this.entries.delete(ctx.txId);
    if (ctx.recordNo) this.pendingEntries.delete(ctx.recordNo);
    ctx.confirm?.("deny", "");
    if (ctx.recordNo && ctx.phase === "allowed" && this.deps.store.getInPark(ctx.recordNo)) {
      await this.deps.store.cancelStay(ctx.recordNo, { reason: kebab(why) });
    }
    this.answerUnlicensed(ctx.plate, ctx.laneId, { ok: false, reason: "no-vehicle", msg: "the vehicle left the lane" });
  }

  private exitAbandoned(ctx: ExitCtx, why: string): void {
    this.exits.delete(ctx.txId);
    if (ctx.plateId) this.byPlateId.delete(ctx.plateId);
    if (ctx.madeStay) {
      // The stay was only made to report this exit; the car did not leave, so it goes (once
      // its write, which may still be in flight, is done).
      void this.track(
        Promise.resolve(ctx.pendingWrite)
          .then(() => {
            const recordNo = ctx.record?.recordNo;
            return recordNo && this.deps.store.getInPark(recordNo) ? this.deps.store.cancelStay(recordNo, { reason: kebab(why) }) : undefined;
          })
          .catch((error: unknown) => this.log.warn({ err: error, plate: ctx.plate }, "stay made at the exit not cancelled")),
      );
      this.log.info({ laneId: ctx.laneId, plate: ctx.plate, why }, "exit transaction ended without passage");
      return;
    }
    // The stay stays in the lot with its bill; a later read at an exit bills it again.
    if (ctx.record && this.deps.store.getInPark(ctx.record.recordNo)) {
      void this.deps.store.updateInPark(ctx.record.recordNo, { pendingExit: undefined }, { durable: false }).catch(() => undefined);
    }
    this.log.info({ laneId: ctx.laneId, plate: ctx.plate, why }, "exit transaction ended without passage");
  }

  private async queueEntryReport(record: InParkRecord): Promise<void> {
    const { config, outbox, store } = this.deps;
    const lane = this.lanes.get(record.laneId);
    await outbox.enqueue({
      recordNo: record.recordNo,
      kind: "enter",
      service: config.platform.serviceNames.enterNotify,
      biz: {
        parkCode: config.lot.parkCode,
        recordNo: record.recordNo,
        plateNum: record.plate,
        plateColor: record.plateColor ?? 9,
        carType: record.carType ?? this.temporaryTypes().carType,
        carSubType: record.carSubType ?? this.temporaryTypes().carSubType,
        enterTime: formatWireTime(record.enterAtMs, config.lot.timeZone),
        // A stay made at an exit for a car no entry lane saw: not the exit's channel.
        inChannelid: record.extra?.noEntryRecord === true ? config.policy.exit.unknownEntryChannel : (lane?.channelId ?? record.laneId),
      },
    });
    // Durably: start() re-queues every stay still marked "none", so a batched mark lost in a
    // crash would send the entry report a second time after it was delivered.
    if (store.getInPark(record.recordNo)) await store.updateInPark(record.recordNo, { entryReport: "queued" });
  }

  /**
   * When the exit's report may go: just after the last late-answer window closes of the bills
   * whose call timed out and whose outcome the platform never told (a call still listening,
   * none answered: cash taken blind) — the client starts its window a moment after the lane
   * reads the clock, and a 200 heard at its very end is written to the ledger first.
   * Undefined: no such bill. A bill the platform did answer (200, or "awaiting payment" to the
   * check before cash) was settled knowingly; one still inside its deadline did not time out.
   */
  private lateWindowEnd(ctx: ExitCtx): number | undefined {
    let endMs: number | undefined;
    for (const bill of ctx.bills?.values() ?? []) {
      if (bill.open > 0 && bill.unanswered && !bill.answered) endMs = Math.max(endMs ?? 0, bill.listenUntilMs);
    }
    return endMs === undefined ? undefined : endMs + REPORT_AFTER_WINDOW_MS;
  }

  private async exitPassed(ctx: ExitCtx): Promise<void> {
    this.exits.delete(ctx.txId);
    if (ctx.plateId) this.byPlateId.delete(ctx.plateId);
    // A stay made for a car released by the button may still be on its way to disk.
    await ctx.pendingWrite;
    const { config, outbox, store } = this.deps;
    const record = ctx.record ? (store.getInPark(ctx.record.recordNo) ?? ctx.record) : undefined;
    if (!record) {
      this.emit({ type: "vehicle-left", laneId: ctx.laneId, plate: ctx.plate, reason: "no record" });
      return;
    }
    const settlement = ctx.settlement ?? { releaseType: 3 as const, payType: 0, paidFen: 0, orderNo: "", payTimeMs: null, operator: "", path: "manual" as const };
    const bill = ctx.bill ?? { payableFee: 0, discountFee: 0, paidFee: 0, prepaidFee: 0, breakdown: [], discounts: [] };
    const leaveAtMs = ctx.atMs;
    // The entry report goes first when it never went out: the platform then sees the stay
    // in order, and the exit report alone would still let it rebuild the stay.
    if (record.entryReport === "none" && record.source !== "platform") await this.queueEntryReport(record);
    const paidFen = settlement.paidFen;
    // Paid twice and found before the report went: the report says how both were paid.
    const doubly = this.refunds.forRecord(record.recordNo);
    // A bill call of this exit still listens for its late answer (cash taken while the
    // platform could not be asked, say): a 200 heard now is a second payment the report must
    // carry. The report is queued durably now and goes once that window is over (the outbox
    // sender adds what the refunds ledger found by then: withDoublePaymentFields).
    const notBeforeMs = paidFen > 0 ? this.lateWindowEnd(ctx) : undefined;
    if (notBeforeMs !== undefined) this.log.info({ laneId: ctx.laneId, recordNo: record.recordNo, notBeforeMs }, "exit report held until its bill's late-answer window closes");
    await outbox.enqueue({
      recordNo: record.recordNo,
      kind: "leave",
      service: config.platform.serviceNames.leaveNotify,
      ...(notBeforeMs !== undefined ? { notBeforeMs } : {}),
      biz: {
        parkCode: config.lot.parkCode,
        recordNo: record.recordNo,
        plateNum: record.plate || ctx.plate,
        carType: ctx.carType,
        carSubType: ctx.carSubType,
        enterTime: formatWireTime(record.enterAtMs, config.lot.timeZone),
        leaveTime: formatWireTime(leaveAtMs, config.lot.timeZone),
        payableFee: bill.payableFee,
        discountFee: bill.discountFee,
        prepaidFee: bill.prepaidFee,
        ...exitPaymentFields({ paidFen, payType: settlement.payType, payTimeMs: settlement.payTimeMs, orderNo: settlement.orderNo }, config.lot.timeZone),
        outChannelid: this.lanes.get(ctx.laneId)!.channelId,
        releaseType: settlement.releaseType,
        operator: settlement.operator,
        ...(doubly ? doublePaymentFields(doubly, config.lot.timeZone) : {}),
      },
    });
    this.rememberExit(record.plate, record.recordNo, record.enterAtMs, leaveAtMs, bill.payableFee);
    await store.finishStay(record.recordNo, {
      laneId: ctx.laneId,
      leaveAtMs,
      payableFen: bill.payableFee,
      discountFen: bill.discountFee,
      prepaidFen: bill.prepaidFee,
      paidFen,
      ...(settlement.payType ? { payType: String(settlement.payType) } : {}),
      ...(settlement.orderNo ? { orderNo: settlement.orderNo } : {}),
      reason: settlement.path === "cash-fallback" ? "cash-fallback" : settlement.releaseType === 3 ? "manual" : settlement.releaseType > 0 ? "free" : "normal",
      ...(settlement.operator ? { operator: settlement.operator } : {}),
      ...(ctx.matchedBy === "fuzzy" ? { exitPlate: ctx.plate } : {}),
      ...(ctx.settledLeftover || doubly
        ? { extra: { ...(ctx.settledLeftover ? { settledLeftover: true } : {}), ...(doubly ? { doublePayment: { refundId: doubly.id, second: doubly.second, refundFen: doubly.amountFen, refundVia: doubly.refundVia } } : {}) } }
        : {}),
    });
    this.emit({ type: "vehicle-left", laneId: ctx.laneId, plate: record.plate, recordNo: record.recordNo, feeFen: paidFen, path: settlement.path });
  }

  // ---- small helpers -----------------------------------------------------------------------

  private show(laneId: string, message: LaneMessage): void {
    // The display links close with the stop: nothing is written to them after it.
    if (this.stopped) return;
    const display = this.deps.displays.get(laneId);
    const view = this.views.get(laneId);
    if (view) view.display = { kind: message.kind, lines: [] };
    if (!display) return;
    void display.show(message).then(() => {
      // What the board was last sent, real or simulated (no copy of the simulator's history).
      const last = display.status().lastShown;
      if (view && last) view.display = { kind: message.kind, lines: last.lines };
      this.deps.bus.changed();
    });
  }

  private emit(event: { type: string; laneId?: string; [key: string]: unknown }): void {
    if (this.quiet) return;
    const full = { ...event, atMs: typeof event.atMs === "number" ? event.atMs : this.deps.clock.now() };
    this.deps.bus.emit(full);
    if (notArchived.has(event.type)) return;
    // Archived two turns of the event loop later, in order (the history line is not durable
    // anyway): a decision's durable write and its platform call go first, and the call is
    // written to its socket from an immediate queued during the decision (billAtExit).
    this.toArchive.push(full);
    this.archiveTimer ??= setImmediate(() => (this.archiveTimer = setImmediate(() => this.archive())));
  }

  private archive(): void {
    if (this.archiveTimer) clearImmediate(this.archiveTimer);
    this.archiveTimer = undefined;
    for (const event of this.toArchive.splice(0)) {
      void this.deps.store.appendEvent(event).catch((error: unknown) => this.log.warn({ err: error }, "event not archived"));
    }
  }

  private after(ms: number, fn: () => void): TimerHandle | undefined {
    if (this.stopped) return undefined;
    const handle = this.deps.clock.setTimeout(() => {
      this.timers.delete(handle);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  private laneLog(laneId: string): Logger {
    const log = this.log.child({ laneId });
    this.laneLogs.push(log);
    return log;
  }

  private cancelTimer(handle: TimerHandle): void {
    this.deps.clock.clearTimeout(handle);
    this.timers.delete(handle);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise
      .catch((error: unknown) => {
        if (!this.quiet) this.log.error({ err: error }, "lane task failed");
      })
      .finally(() => this.inFlight.delete(promise));
    return promise;
  }

  private parseTime(text: string): number | null {
    return parseWireTime(text, this.deps.config.lot.timeZone) ?? null;
  }
}

function kebab(type: string): string {
  return type.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The settlement a stay holds (`extra.settlement`), read defensively: it is free-form extra. */
export function storedSettlementOf(record: InParkRecord): StoredSettlement | undefined {
  const raw = record.extra?.settlement as Partial<StoredSettlement> | undefined;
  if (!raw || typeof raw !== "object") return undefined;
  if (typeof raw.releaseType !== "number" || typeof raw.payType !== "number" || typeof raw.paidFen !== "number" || typeof raw.path !== "string") return undefined;
  const num = (value: unknown, fallback: number): number => (typeof value === "number" && Number.isFinite(value) ? value : fallback);
  // Written before these fields existed: the pending bill says the rest.
  const pending = record.pendingExit;
  const settledAtMs = num(raw.settledAtMs, num(raw.payTimeMs, num(pending?.atMs, record.enterAtMs)));
  return {
    releaseType: raw.releaseType as Settlement["releaseType"],
    payType: raw.payType,
    paidFen: raw.paidFen,
    orderNo: typeof raw.orderNo === "string" ? raw.orderNo : "",
    payTimeMs: typeof raw.payTimeMs === "number" ? raw.payTimeMs : null,
    operator: typeof raw.operator === "string" ? raw.operator : "",
    path: raw.path as PaymentPath,
    settledAtMs,
    laneId: typeof raw.laneId === "string" ? raw.laneId : (pending?.laneId ?? ""),
    billAtMs: num(raw.billAtMs, num(pending?.atMs, settledAtMs)),
    payableFen: num(raw.payableFen, num(pending?.payableFen, raw.paidFen)),
    discountFen: num(raw.discountFen, num(pending?.discountFen, 0)),
    prepaidFen: num(raw.prepaidFen, 0),
  };
}
