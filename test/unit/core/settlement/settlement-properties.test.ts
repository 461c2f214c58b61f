/**
 * Properties of the settlement machine over random exits (fast-check, fixed seed; LK_FUZZ_RUNS
 * for more runs): a truthful platform model answers every bill call (in time, late, refused or
 * never), and the attendant, scanner, remote releases, payment notices, timers and the car's
 * back-out arrive in any order. Checked on every run:
 * - no open without a reason, and never before there is a settlement;
 * - no bill paid twice: at most one settlement per stay; a second payment is a refund owed;
 * - every settled stay that passes is reported exactly once;
 * - money is conserved: payable = discount + prepaid + collected + released;
 * - a restart from any durable state the effects wrote converges: a written settlement is
 *   reported as written, a pending bill the platform collected is settled as it says, and
 *   the same durable state always restarts the same way.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { BillOutcome, SettlementEffect } from "../../../../src/core/settlement/settlement-machine.js";
import { SettlementDriver, T0, type Disk } from "./settlement-driver.js";

const numRuns = Number(process.env.LK_FUZZ_RUNS ?? 400);
const seed = Number(process.env.LANEKEEPER_FC_SEED ?? 20_261_205);

type Op =
  | { op: "deliver"; pick: number }
  | { op: "scan" }
  | { op: "cash" }
  | { op: "release" }
  | { op: "manualOpened" }
  | { op: "remote"; type: 0 | 1 | 2 }
  | { op: "notice" }
  | { op: "platformUp" }
  | { op: "fire"; pick: number }
  | { op: "abandoned" }
  | { op: "passed" }
  | { op: "restartAt" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant("deliver" as const), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ op: "scan" as const }) },
  { weight: 2, arbitrary: fc.constant({ op: "cash" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "release" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "manualOpened" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remote" as const), type: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  { weight: 1, arbitrary: fc.constant({ op: "notice" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "platformUp" as const }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("fire" as const), pick: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ op: "abandoned" as const }) },
  { weight: 2, arbitrary: fc.constant({ op: "passed" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "restartAt" as const }) },
);

/** How the platform answers one call: in time, or a timeout followed by a late outcome. */
type CallScript = { first: "answer" | "timeout" | "refused" | "http"; late: "answer" | "failed" };

const exitArb = fc
  .record({
    payableFen: fc.integer({ min: 0, max: 5000 }),
    discountShare: fc.integer({ min: 0, max: 100 }),
    prepaidShare: fc.integer({ min: 0, max: 100 }),
    /** Which plateIds the platform collects (the driver pays online): by index of the bill. */
    collects: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    scripts: fc.array(
      fc.record({
        first: fc.constantFrom("answer" as const, "timeout" as const, "refused" as const, "http" as const),
        late: fc.constantFrom("answer" as const, "failed" as const),
      }),
      { minLength: 12, maxLength: 12 },
    ),
    ops: fc.array(opArb, { maxLength: 30 }),
  })
  .map((r) => {
    const discountFen = Math.floor((r.payableFen * r.discountShare) / 100);
    const prepaidFen = Math.floor(((r.payableFen - discountFen) * r.prepaidShare) / 100);
    return { ...r, discountFen, prepaidFen, dueFen: r.payableFen - discountFen - prepaidFen };
  });

type Exit = typeof exitArb extends fc.Arbitrary<infer E> ? E : never;

/** The platform's truth: a plateId it collected answers 200 with its own orderNo, always. */
function outcomeFor(plateId: string, collected: ReadonlySet<string>, kind: "answer" | "refused" | "http" | "failed"): BillOutcome {
  if (kind === "answer") return collected.has(plateId) ? { kind: "paid", payType: 2, orderNo: `o-${plateId}`, payTimeMs: T0 } : { kind: "unpaid", msg: "not paid" };
  return { kind: "failed", reason: kind === "http" ? "http-500" : kind === "failed" ? "timeout" : kind };
}

interface Pending {
  callId: string;
  plateId: string;
  late: boolean;
  outcome: BillOutcome;
  then?: Pending;
}

function run(exit: Exit): { driver: SettlementDriver; snapshots: Disk[] } {
  const d = new SettlementDriver();
  const collected = new Set(["p0", "p1", "p2"].filter((_, i) => exit.collects[i]));
  const pending: Pending[] = [];
  const snapshots: Disk[] = [];
  let nowMs = T0;
  let calls = 0;
  let scans = 0;
  let opened = false;
  const schedule = (effects: readonly SettlementEffect[]) => {
    for (const e of effects) {
      if (e.kind === "open") opened = true;
      if (e.kind !== "sendBill") continue;
      const script: CallScript = exit.scripts[calls++ % exit.scripts.length]!;
      if (script.first === "timeout" && e.listenMs !== undefined) {
        pending.push({
          callId: e.callId,
          plateId: e.plateId,
          late: false,
          outcome: { kind: "failed", reason: "timeout" },
          then: { callId: e.callId, plateId: e.plateId, late: true, outcome: outcomeFor(e.plateId, collected, script.late) },
        });
      } else {
        pending.push({ callId: e.callId, plateId: e.plateId, late: false, outcome: outcomeFor(e.plateId, collected, script.first === "timeout" ? "failed" : script.first) });
      }
    }
  };
  const feed = (input: Parameters<SettlementDriver["feed"]>[0]) => schedule(d.feed(input));
  feed({ kind: "billed", atMs: T0, dueFen: exit.dueFen, payableFen: exit.payableFen, discountFen: exit.discountFen, prepaidFen: exit.prepaidFen, plateId: "p0" });
  const deliver = (index: number) => {
    const [p] = pending.splice(index, 1);
    if (!p) return;
    if (p.then) pending.push(p.then);
    feed({ kind: "answer", callId: p.callId, outcome: p.outcome, late: p.late, atMs: nowMs });
  };
  for (const op of exit.ops) {
    nowMs += 700;
    switch (op.op) {
      case "deliver":
        if (pending.length > 0) deliver(op.pick % pending.length);
        break;
      case "scan":
        if (scans < 2) feed({ kind: "scan", code: "1345678901234567", plateId: `p${++scans}`, atMs: nowMs });
        break;
      case "cash":
        feed({ kind: "cash", operator: "amy", reason: "", orderNo: `c${nowMs}`, atMs: nowMs });
        break;
      case "release":
        feed({ kind: "release", operator: "amy", reason: "hand", atMs: nowMs });
        break;
      case "manualOpened":
        opened = true;
        feed({ kind: "manualOpened", operator: "amy", reason: "button", atMs: nowMs });
        break;
      case "remote":
        feed({ kind: "remote", type: op.type, operator: "cloud", atMs: nowMs });
        break;
      case "notice":
        feed({ kind: "notice", payment: { payType: 1, amountFen: d.state.dueFen, orderNo: `n${nowMs}`, payTimeMs: nowMs }, atMs: nowMs });
        break;
      case "platformUp":
        feed({ kind: "platformUp", atMs: nowMs });
        break;
      case "fire": {
        const ids = [...d.timers.keys()];
        if (ids.length > 0) schedule(d.fire(ids[op.pick % ids.length]!, nowMs));
        break;
      }
      case "abandoned":
        feed({ kind: "abandoned", why: "backed-out", atMs: nowMs });
        break;
      case "passed":
        // The lane machine lets the car pass only once the barrier opened for it.
        if (opened && d.state.onLane) feed({ kind: "passed", atMs: nowMs });
        break;
      case "restartAt":
        snapshots.push(structuredClone(d.disk));
        break;
    }
    snapshots.push(structuredClone(d.disk));
  }
  // Everything the platform still owes arrives; an opened car drives through.
  while (pending.length > 0) deliver(0);
  if (opened && d.state.onLane) feed({ kind: "passed", atMs: nowMs + 1000 });
  // A raced second passage (a replayed event) must not report the stay again.
  if (d.state.phase === "reported") feed({ kind: "passed", atMs: nowMs + 2000 });
  snapshots.push(structuredClone(d.disk));
  return { driver: d, snapshots };
}

test("settlement properties: reasons, one settlement, one report, money conserved", () => {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(exitArb, (exit) => {
      const { driver: d } = run(exit);
      for (const key of [d.state.settlement?.path ?? "unsettled", ...(d.disk.refunds.length > 0 ? ["refund"] : []), ...(d.of("report").length > 0 ? ["report"] : [])])
        seen.set(key, (seen.get(key) ?? 0) + 1);
      // No open without a reason, never before a settlement, at most once.
      const opens = d.effects.map((e, i) => [e, i] as const).filter(([e]) => e.kind === "open");
      assert.ok(opens.length <= 1, `opened ${opens.length} times`);
      for (const [open] of opens) assert.ok(open.kind === "open" && open.reason.length > 0);
      // One settlement: every settlement write carries the same one.
      const writes = d.effects.filter((e): e is Extract<SettlementEffect, { kind: "writeSettlement" | "makeStay" }> => e.kind === "writeSettlement" || e.kind === "makeStay");
      const distinct = new Set(writes.map((w) => JSON.stringify({ ...w.settlement, settledAtMs: 0 })));
      assert.ok(distinct.size <= 1, `settled ${distinct.size} ways: ${[...distinct].join(" / ")}`);
      assert.equal(d.events().filter((t) => t === "payment").length <= 1, true, "one payment event");
      // Refunds owed are distinct, and only once there is a settlement that collected money.
      assert.equal(new Set(d.disk.refunds).size, d.disk.refunds.length);
      if (d.disk.refunds.length > 0) assert.ok((d.state.settlement?.paidFen ?? 0) > 0);
      // Every settled stay that passed is reported exactly once.
      const reports = d.of("report");
      assert.ok(reports.length <= 1);
      if (d.state.phase === "reported") assert.equal(reports.length, 1);
      for (const { report: r } of reports) {
        assert.equal(r.payableFen, r.discountFen + r.prepaidFen + r.collectedFen + r.releasedFen, "money conserved");
        assert.ok(r.collectedFen === 0 || r.collectedFen === exit.dueFen, `collected ${r.collectedFen} of ${exit.dueFen}`);
        assert.ok(r.releasedFen >= 0);
        if (r.settlement.paidFen > 0) assert.equal(r.collectedFen, exit.dueFen);
      }
    }),
    { numRuns, seed },
  );
  // The random exits reach every payment path, double payments and reports (else the
  // properties above would hold vacuously).
  for (const path of ["free", "platform", "scanner", "cash", "manual", "remote", "remote-free", "refund", "report", "unsettled"])
    assert.ok((seen.get(path) ?? 0) > 0, `no run reached ${path}: ${JSON.stringify([...seen])}`);
});

/** The restarted machine run to its end: the platform answers its recovery, the hold ends. */
function recover(disk: Disk, collected: ReadonlySet<string>): SettlementDriver {
  const r = SettlementDriver.restored(disk, T0 + 3_600_000);
  for (let turn = 0; turn < 4; turn++) {
    const call = r.of("sendBill")[turn];
    if (call && r.state.phase === "recovering") {
      r.feed({ kind: "answer", callId: call.callId, outcome: outcomeFor(call.plateId, collected, "answer"), late: false, atMs: T0 + 3_600_000 + turn });
    }
    for (const id of [...r.timers.keys()]) r.fire(id, T0 + 7_200_000 + turn);
  }
  return r;
}

test("restart from any durable state converges", () => {
  fc.assert(
    fc.property(exitArb, (exit) => {
      const { snapshots } = run(exit);
      const collected = new Set(["p0", "p1", "p2"].filter((_, i) => exit.collects[i]));
      for (const disk of snapshots) {
        if (disk.reports > 0) continue; // finished: the stay left the lot, nothing restarts
        const a = recover(disk, collected);
        const b = recover(structuredClone(disk), collected);
        assert.deepEqual(a.effects, b.effects, "the same durable state restarts the same way");
        const reports = a.of("report");
        if (disk.settlement) {
          // A written settlement is reported as written, once.
          assert.equal(reports.length, 1);
          const s = reports[0]!.report.settlement;
          assert.deepEqual([s.path, s.paidFen, s.orderNo, s.releaseType], [disk.settlement.path, disk.settlement.paidFen, disk.settlement.orderNo, disk.settlement.releaseType]);
          assert.equal(a.of("writeSettlement").length, 0, "no second settlement");
        } else if (disk.pending && collected.has(disk.pending.plateId)) {
          // The platform collected the pending bill: settled as it says, reported once.
          assert.equal(reports.length, 1);
          const s = reports[0]!.report.settlement;
          assert.deepEqual([s.path, s.paidFen, s.orderNo], ["platform", disk.pending.dueFen, `o-${disk.pending.plateId}`]);
        } else {
          // Not paid (or nothing pending): the stay stays in the lot for its next read.
          assert.equal(reports.length, 0);
          assert.equal(a.of("writeSettlement").length, 0);
        }
        for (const { report: r } of reports) assert.equal(r.payableFen, r.discountFen + r.prepaidFen + r.collectedFen + r.releasedFen);
      }
    }),
    { numRuns: Math.max(50, Math.floor(numRuns / 4)), seed },
  );
});
