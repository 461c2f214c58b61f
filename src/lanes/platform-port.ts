/**
 * The lanes' side of the platform's requests (section 4, docs/protocol.md §4): fee queries
 * (4.1), payment notices (4.2), unlicensed cars (4.3), free spaces (4.8) and remoteDev (4.12),
 * as the LanePort the section-4 handlers call.
 */
import type { InParkRecord } from "../store/records.js";
import { quote } from "../core/exit/bill-inputs.js";
import { normalisePlate } from "../core/plates/index.js";
import type { FeeQuery, FeeQuote, LaneAnswer, LanePort, PaymentNotice, RemoteControl, UnlicensedEntry } from "../platform/ports.js";
import { after, emit } from "./effects.js";
import { openByHand } from "./attendant.js";
import { freeSpaces } from "./entry-flow.js";
import { paidByNotice, remoteRelease } from "./settlement-inputs.js";
import { temporaryTypes, type ExitCtx, type LanesState, type UnlicensedAnswer } from "./lane-state.js";

export function lanePort(lanes: LanesState): LanePort {
  return {
    feeQuery: (query) => feeQuery(lanes, query),
    unlicensedEntry: (entry) => unlicensedEntry(lanes, entry),
    remoteControl: (command) => remoteControl(lanes, command),
    freeSpaces: async () => ({ total: lanes.deps.config.lot.totalSpaces, free: freeSpaces(lanes) }),
    paymentNotified: (payment) => paymentNotified(lanes, payment),
  };
}

async function feeQuery(lanes: LanesState, query: FeeQuery): Promise<LaneAnswer<FeeQuote>> {
  const now = lanes.deps.clock.now();
  let record: InParkRecord | undefined;
  let laneId = query.laneId;
  if (query.payScene === 1) {
    const ctx = laneId ? [...lanes.exits.values()].find((c) => c.laneId === laneId && c.record && c.phase !== "settled") : undefined;
    if (!ctx?.record) return { ok: false, reason: "no-vehicle", msg: "no vehicle is waiting at that exit" };
    if (ctx.plateId) return { ok: true, value: quote(ctx.record, ctx.bill!, ctx.atMs, ctx.dueFen, query.channelId, temporaryTypes(lanes)) };
    record = ctx.record;
  } else {
    if (query.recordNo) record = lanes.deps.store.getInPark(query.recordNo);
    if (!record && query.plateNum) {
      // Without a leading 无 (written escaped: the bundle keeps its code ASCII).
      const plate = normalisePlate(query.plateNum.replace(/^\u65E0/, ""));
      record = lanes.deps.store.findInParkByPlate(plate).concat(lanes.deps.store.findInParkByPlate(`无${plate}`), lanes.deps.store.findInParkByPlate(query.plateNum))[0];
    }
    if (!record) return { ok: false, reason: "not-found", msg: "no such stay in the car park" };
    if (query.payScene === 2 && laneId) {
      // An unlicensed car's driver scanned the exit lane's code (payScene 2, docs/protocol.md
      // 4.1). The camera cannot read a virtual plate, so the stay is handed to the car waiting
      // there unread; the lane then bills it as any exit (pre-leave push, payment, open).
      const ctx = attachUnlicensedExit(lanes, laneId, record);
      if (ctx?.plateId && ctx.bill) return { ok: true, value: quote(ctx.record!, ctx.bill, ctx.atMs, ctx.dueFen, query.channelId, temporaryTypes(lanes)) };
    }
    laneId ??= record.laneId;
  }
  const bill = await lanes.billFor(record, now, laneId ?? record.laneId);
  return { ok: true, value: quote(record, bill, now, undefined, query.channelId, temporaryTypes(lanes)) };
}

/**
 * The exit transaction of an unlicensed stay at `laneId`: the one already running for it, or
 * a new one when a vehicle waits on loopA with no plate read (its virtual plate is fed in as
 * the read, so the lane machine decides it like any other car).
 */
function attachUnlicensedExit(lanes: LanesState, laneId: string, record: InParkRecord): ExitCtx | undefined {
  const running = [...lanes.exits.values()].find((c) => c.laneId === laneId && c.record?.recordNo === record.recordNo && c.phase !== "settled");
  if (running) return running;
  const runner = lanes.runners.get(laneId);
  if (!runner || lanes.configs.get(laneId)?.direction !== "out") return undefined;
  const waiting = runner.snapshot().pending.find((tx) => tx.phase === "waiting" && tx.plate === null && !tx.manual);
  if (!runner.snapshot().loopA || !waiting) return undefined;
  emit(lanes, { type: "unlicensed-exit", laneId, plate: record.plate, recordNo: record.recordNo });
  runner.feed({ kind: "plate", plate: record.plate, atMs: lanes.deps.clock.now(), source: "unlicensed" });
  return undefined;
}

async function unlicensedEntry(lanes: LanesState, entry: UnlicensedEntry): Promise<UnlicensedAnswer> {
  const lane = lanes.configs.get(entry.laneId);
  const runner = lanes.runners.get(entry.laneId);
  if (!lane || !runner || lane.direction !== "in") return { ok: false, reason: "lane-invalid", msg: `${entry.channelId} is not an entry lane` };
  const plate = normalisePlate(entry.plateNum);
  const key = `${entry.laneId}:${plate}`;
  const now = lanes.deps.clock.now();
  // Answers are only needed for the repeat window; forget older ones so the map stays small.
  for (const [oldKey, old] of lanes.unlicensedAnswers) {
    if (now - old.atMs >= lanes.deps.config.policy.unlicensedRepeatMs) lanes.unlicensedAnswers.delete(oldKey);
  }
  const repeat = lanes.unlicensedAnswers.get(key);
  // A second scan within the window is the same request: same answer, no second stay.
  if (repeat && now - repeat.atMs < lanes.deps.config.policy.unlicensedRepeatMs) return repeat.answer;
  if (!runner.snapshot().loopA) return { ok: false, reason: "no-vehicle", msg: "no vehicle on the entry lane" };
  const answer = new Promise<UnlicensedAnswer>((resolve) => {
    lanes.unlicensedWaiters.set(key, resolve);
    after(lanes, 5000, () => {
      if (lanes.unlicensedWaiters.get(key) === resolve) {
        lanes.unlicensedWaiters.delete(key);
        resolve({ ok: false, reason: "busy", msg: "the lane did not decide in time" });
      }
    });
  });
  lanes.unlicensedAnswers.set(key, { atMs: now, answer });
  runner.feed({ kind: "plate", plate, atMs: now, source: "unlicensed" });
  return answer;
}

async function remoteControl(lanes: LanesState, command: RemoteControl): Promise<LaneAnswer> {
  const runner = lanes.runners.get(command.laneId);
  if (!runner) return { ok: false, reason: "lane-invalid", msg: `no lane for channel ${command.channelId}` };
  const atMs = lanes.deps.clock.now();
  emit(lanes, {
    type: "remote-control",
    laneId: command.laneId,
    operator: command.operator,
    remoteType: command.type,
    cmd: command.cmd,
    plateId: command.plateId,
    openGateCase: command.openGateCase,
  });
  const entry = lanes.pendingEntries.get(command.plateId);
  if (entry) {
    if (entry.laneId !== command.laneId) return { ok: false, reason: "lane-invalid", msg: "that entry is pending on another lane" };
    entry.confirm?.(command.type === 1 ? "deny" : "allow", command.operator);
    return { ok: true, value: undefined, msg: "操作成功" };
  }
  const exit = lanes.byPlateId.get(command.plateId);
  if (exit) {
    if (exit.laneId !== command.laneId) return { ok: false, reason: "lane-invalid", msg: "that bill belongs to another lane" };
    if (exit.phase !== "awaiting" || !lanes.exits.has(exit.txId)) return { ok: false, reason: "expired", msg: "the vehicle is no longer waiting" };
    await remoteRelease(lanes, exit, command, atMs);
    return { ok: true, value: undefined, msg: "操作成功" };
  }
  if (command.cmd === 1) {
    openByHand(lanes, command.laneId, `remote manual raise (case ${command.openGateCase ?? "?"})`, command.operator);
    return { ok: true, value: undefined, msg: "操作成功" };
  }
  return { ok: false, reason: "not-found", msg: "unknown or expired plateId" };
}

async function paymentNotified(lanes: LanesState, payment: PaymentNotice): Promise<void> {
  const exit =
    (payment.plateId ? lanes.byPlateId.get(payment.plateId) : undefined) ??
    [...lanes.exits.values()].find((c) => (c.phase === "awaiting" || c.phase === "deciding") && c.record && c.record.recordNo === payment.recordNo);
  if (exit?.phase === "deciding") {
    // The exit's bill is still being made (a notice may quote only the recordNo, 4.2): kept
    // on the exit and applied by billAtExit once the bill is known, so the car does not wait.
    // (No event of its own: the "payment" event follows when the exit settles with it.)
    exit.earlyPayment ??= payment;
    lanes.log.info({ laneId: exit.laneId, recordNo: payment.recordNo, orderNo: payment.orderNo }, "payment notice while the exit is deciding; applied once billed");
    return;
  }
  if (!exit || exit.phase !== "awaiting") {
    emit(lanes, { type: "prepayment", plate: payment.plateNum, recordNo: payment.recordNo, feeFen: payment.amountFen });
    return;
  }
  await paidByNotice(lanes, exit, payment);
}
