/**
 * The lanes' shared state in one explicit object, which every flow of src/lanes takes as its
 * first argument: the transactions in progress (entries, exits, their pre-leave bills), the
 * timers and tasks to stop, the stop flags; and the types of an entry and an exit in progress.
 */
import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { EventBus } from "../kernel/event-bus.js";
import type { Config, LaneConfig } from "../config/schema.js";
import type { Gpio } from "../io/gpio/gpio.js";
import type { LaneDisplay } from "../io/display/lane-display.js";
import type { PhotoLookup } from "../io/camera/photo-ring.js";
import type { LotStore } from "../store/lot-store.js";
import type { InParkRecord } from "../store/records.js";
import type { Outbox } from "../outbox/outbox.js";
import type { PlatformClient } from "../platform/client.js";
import type { LaneAnswer, PaymentNotice } from "../platform/ports.js";
import type { Bill, Tariff } from "../core/fees/index.js";
import type { RecentExit } from "../core/stays/stay-views.js";
import type { PaymentPath, Settlement } from "../core/settlement/settlement.js";
import type { SettlementState } from "../core/settlement/settlement-types.js";
import type { RefundLedger } from "./refunds.js";
import type { LaneRunner } from "./runner.js";
import type { RecordNumbers } from "./numbers.js";

export type { PaymentPath, Settlement, StoredSettlement } from "../core/settlement/settlement.js";

export interface ExitCtx {
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
  earlyPayment?: PaymentNotice | undefined;
  /** A settled stay finished as left after a restart (its car was not read again in time). */
  settledLeftover?: boolean | undefined;
  /** The attendant's cash confirmation while the platform is asked once more (one at a time). */
  cashCheck?: Promise<CommandResult> | undefined;
  /** The board says "paid online" when the exit opens (a 200 after the cash prompt). */
  paidOnline?: boolean | undefined;
  /**
   * The exit's settlement machine (effects-executor.ts steps it): what it keeps between inputs
   * (its bills and their calls, the check before cash). The fields the exit flow owns (phase,
   * bill, amounts) are copied into it from this exit before each step.
   */
  machine?: SettlementState | undefined;
  /** The machine's timers running for this exit (its bills' re-asks), by the machine's id. */
  machineTimers?: Map<string, TimerHandle> | undefined;
  /**
   * An exit restored at start with no car on a lane (recovery.ts): true once its stay moved on
   * without it (the car read again, the stay gone); its machine is then told `superseded`.
   */
  movedOn?: (() => boolean) | undefined;
  /** The plate the camera read, when an attendant corrected it (plate-correction.ts). */
  readPlate?: string | undefined;
}

export interface EntryCtx {
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
  /** The plate the camera read, when an attendant corrected it (plate-correction.ts). */
  readPlate?: string | undefined;
}

export interface LaneView {
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
  /** The cameras' photos, for the exit card (none: no photos shown). */
  photos?: PhotoLookup | undefined;
  /**
   * True while lot sharing is on and the lot is apart: this box's view is stale or another box
   * is cut off (docs/mqtt.md "Partitions and reconciliation"). A no-record exit is then
   * provisional. Absent: no lot.
   */
  lotApart?: (() => boolean) | undefined;
}

export type CommandResult =
  { ok: true; detail: string } | { ok: false; code: "E_LANE_UNKNOWN" | "E_NO_VEHICLE" | "E_NOT_EXIT" | "E_BAD_COMMAND" | "E_PAID_ONLINE"; message: string };

/** The answer to an unlicensed car's entry request (unlicensedReq, docs/protocol.md 4.3). */
export type UnlicensedAnswer = LaneAnswer<{ recordNo: string }>;

/** The bill of a stay at an exit read (stays.ts `billFor`, unless replaced). */
export type BillFor = (record: InParkRecord, atMs: number, laneId: string) => Promise<Bill>;

export interface LanesState {
  readonly deps: LaneServiceDeps;
  readonly log: Logger;
  readonly configs: Map<string, LaneConfig>;
  readonly runners: Map<string, LaneRunner>;
  /** Exits in progress, by txId (also settled ones whose car has not passed yet). */
  readonly exits: Map<string, ExitCtx>;
  /** Entries in progress, by txId. */
  readonly entries: Map<string, EntryCtx>;
  /** Exits by the plateId of their current pre-leave bill (remoteDev and payment notices quote it). */
  readonly byPlateId: Map<string, ExitCtx>;
  /** Entries waiting for the platform's confirmation, by the pre-entry recordNo. */
  readonly pendingEntries: Map<string, EntryCtx>;
  readonly views: Map<string, LaneView>;
  readonly unlicensedAnswers: Map<string, { atMs: number; answer: Promise<UnlicensedAnswer> }>;
  readonly unlicensedWaiters: Map<string, (answer: UnlicensedAnswer) => void>;
  readonly numbers: RecordNumbers;
  readonly tariff: Tariff;
  /** How long a finished stay can still count toward the plate's next bill (the re-entry cap). */
  readonly reentryWindowMs: number;
  readonly timers: Set<TimerHandle>;
  readonly inFlight: Set<Promise<unknown>>;
  /** Each lane decision still running, by txId (an attendant's open may wait for one). */
  readonly deciding: Map<string, Promise<void>>;
  readonly toArchive: Array<{ type: string; [key: string]: unknown }>;
  archiveTimer: NodeJS.Immediate | undefined;
  /** Stays that left within the re-entry window, by normalised plate. */
  readonly recentExits: Map<string, RecentExit[]>;
  /** Refunds owed to drivers who paid a stay twice (durable, in the store directory). */
  readonly refunds: RefundLedger;
  /** After stop() nothing of the lanes runs: every continuation checks this. */
  stopped: boolean;
  /** Set at the end of stop(): a task that outlived it writes, shows, emits and logs nothing. */
  quiet: boolean;
  /** Aborts every platform call of the lanes at stop (they are asked again at the next start). */
  readonly abort: AbortController;
  unsubscribeAnswers: (() => void) | undefined;
  /** The lanes' loggers, silenced together at the end of stop(). */
  readonly laneLogs: Logger[];
  /**
   * The bill of a stay at an exit read. A field rather than a direct call so the exit flows
   * and the section-4 quote share one, and a test can hold an exit in its deciding phase.
   */
  billFor: BillFor;
}

/** The platform's car types of a temporary car (`platform.dictionaries`). */
export function temporaryTypes(lanes: LanesState): { carType: number; carSubType: number } {
  const dictionaries = lanes.deps.config.platform.dictionaries;
  return { carType: dictionaries.temporaryCarType, carSubType: dictionaries.temporaryCarSubType };
}

/** A new exit: nothing matched, billed or settled unless `fields` say so; car types from its stay, else temporary. */
export function newExit(lanes: LanesState, fields: Pick<ExitCtx, "laneId" | "txId" | "plate" | "atMs" | "phase" | "path"> & Partial<ExitCtx>): ExitCtx {
  const temporary = temporaryTypes(lanes);
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

/** The exit on this lane whose car waits to pay, if any. */
export function awaitingExit(lanes: LanesState, laneId: string): ExitCtx | undefined {
  return [...lanes.exits.values()].find((ctx) => ctx.laneId === laneId && ctx.phase === "awaiting");
}

/** A bill of this exit timed out or failed and the platform has not answered it since. */
export function billUnanswered(ctx: ExitCtx): boolean {
  return (ctx.machine?.bills ?? []).some((bill) => bill.unanswered && !bill.answered);
}
