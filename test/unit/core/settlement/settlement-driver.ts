/**
 * A small driver for the settlement machine in tests: feeds inputs, keeps every effect, and
 * plays the lanes' executor against a model disk (the stay's pending bill and settlement, the
 * reports and refunds queued) so tests can restart the machine from what was written.
 */
import {
  initSettlement,
  restoreSettlement,
  stepSettlement,
  type DurableExit,
  type SettlementEffect,
  type SettlementInput,
  type SettlementSettings,
  type SettlementState,
  type SettlementStep,
} from "../../../../src/core/settlement/settlement-machine.js";
import type { StoredSettlement } from "../../../../src/core/settlement/settlement.js";

export const T0 = Date.UTC(2026, 2, 10, 2, 0, 0);

export const settings: SettlementSettings = {
  laneId: "out1",
  preLeaveMs: 3000,
  lateAnswerMs: 20_000,
  cashCheckMs: 1500,
  reaskFirstMs: 2000,
  reaskMaxMs: 30_000,
  settledHoldMs: 900_000,
  reportAfterWindowMs: 1000,
};

export interface Disk {
  pending: DurableExit["pendingExit"];
  settlement: StoredSettlement | undefined;
  reports: number;
  refunds: string[];
}

export class SettlementDriver {
  state: SettlementState;
  readonly effects: SettlementEffect[] = [];
  readonly disk: Disk = { pending: undefined, settlement: undefined, reports: 0, refunds: [] };
  /** Timers started and not cancelled or fired, by id. */
  readonly timers = new Map<string, number>();

  constructor(
    initial: SettlementState | SettlementStep = initSettlement({ txId: "tx1", plate: "粤B12345", recordNo: "in1_1", atMs: T0 }),
    readonly config: SettlementSettings = settings,
  ) {
    if ("effects" in initial) {
      this.state = initial.state;
      this.apply(initial.effects);
    } else this.state = initial;
  }

  static restored(disk: Disk, atMs: number, plate = "粤B12345"): SettlementDriver {
    const durable: DurableExit = { recordNo: "in1_1", plate, pendingExit: disk.pending, settlement: disk.settlement };
    const driver = new SettlementDriver(restoreSettlement(durable, atMs, settings));
    driver.disk.pending = disk.pending;
    driver.disk.settlement = disk.settlement;
    return driver;
  }

  feed(input: SettlementInput): SettlementEffect[] {
    const { state, effects } = stepSettlement(this.state, input, this.config);
    this.state = state;
    this.apply(effects);
    return effects;
  }

  private apply(effects: readonly SettlementEffect[]): void {
    this.effects.push(...effects);
    for (const effect of effects) {
      if (effect.kind === "writePending") this.disk.pending = effect.pending;
      else if (effect.kind === "clearPending") this.disk.pending = undefined;
      else if (effect.kind === "writeSettlement" || effect.kind === "makeStay") this.disk.settlement = effect.settlement;
      else if (effect.kind === "report") this.disk.reports++;
      else if (effect.kind === "refundOwed") this.disk.refunds.push(effect.refund.id);
      else if (effect.kind === "startTimer") this.timers.set(effect.id, effect.ms);
      else if (effect.kind === "cancelTimer") this.timers.delete(effect.id);
    }
  }

  fire(id: string, atMs: number): SettlementEffect[] {
    this.timers.delete(id);
    return this.feed({ kind: "timer", id, atMs });
  }

  of<K extends SettlementEffect["kind"]>(kind: K): Array<Extract<SettlementEffect, { kind: K }>> {
    return this.effects.filter((e): e is Extract<SettlementEffect, { kind: K }> => e.kind === kind);
  }

  events(): string[] {
    return this.of("emit").map((e) => e.event.type);
  }

  /** The callId of the last sendBill effect. */
  lastCall(): string {
    const calls = this.of("sendBill");
    return calls[calls.length - 1]!.callId;
  }
}

export const billed = (dueFen: number, extra: Partial<Extract<SettlementInput, { kind: "billed" }>> = {}): SettlementInput => ({
  kind: "billed",
  atMs: T0,
  dueFen,
  payableFen: dueFen,
  discountFen: 0,
  prepaidFen: 0,
  plateId: "p1",
  ...extra,
});
