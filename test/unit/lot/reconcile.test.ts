import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { duplicateLosers, leaveNotBeforeEnter, lotWhole, matchProvisionalExit, settleProvisional, type LotStayRef } from "../../../src/lot/reconcile.js";

const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);
const MINUTE_MS = 60_000;
const T0 = 1_714_500_000_000;
const fuzzy = { maxDifferences: 1, ignoreProvince: true, misreads: true };
const exactOnly = { maxDifferences: 0, ignoreProvince: false, misreads: false };

function stay(recordNo: string, plate: string, enterAtMs: number, enterDeviceId = "box-a"): LotStayRef {
  return { recordNo, plate, enterAtMs, enterDeviceId };
}

test("settleProvisional: taken = applied + refund owed, due = applied + written off, for any amounts", () => {
  fc.assert(
    fc.property(fc.nat(10_000_000), fc.nat(10_000_000), (taken, due) => {
      const m = settleProvisional(taken, due);
      assert.equal(m.appliedFen + m.refundOwedFen, taken);
      assert.equal(m.appliedFen + m.writtenOffFen, due);
      // Never both: a driver is either owed money or owes what is written off.
      assert.ok(m.refundOwedFen === 0 || m.writtenOffFen === 0);
      for (const v of Object.values(m)) assert.ok(Number.isSafeInteger(v) && v >= 0);
    }),
    { numRuns: runs },
  );
});

test("settleProvisional: the flat 10 yuan over a 3 yuan stay owes 7 back; under a 25 yuan stay writes 15 off", () => {
  assert.deepEqual(settleProvisional(1000, 300), { takenFen: 1000, dueFen: 300, appliedFen: 300, refundOwedFen: 700, writtenOffFen: 0 });
  assert.deepEqual(settleProvisional(1000, 2500), { takenFen: 1000, dueFen: 2500, appliedFen: 1000, refundOwedFen: 0, writtenOffFen: 1500 });
  assert.throws(() => settleProvisional(-1, 0), RangeError);
  assert.throws(() => settleProvisional(1.5, 0), RangeError);
});

test("leaveNotBeforeEnter: a reported leave is never before the entry, and an ordered pair is untouched", () => {
  fc.assert(
    fc.property(fc.integer({ min: T0 - 60 * MINUTE_MS, max: T0 + 60 * MINUTE_MS }), fc.integer({ min: T0 - 60 * MINUTE_MS, max: T0 + 60 * MINUTE_MS }), (enter, leave) => {
      const r = leaveNotBeforeEnter(enter, leave);
      assert.ok(r.leaveAtMs >= enter);
      assert.equal(r.skewed, leave < enter);
      if (leave >= enter) assert.equal(r.leaveAtMs, leave);
    }),
    { numRuns: runs },
  );
});

test("matchProvisionalExit: the same plate entered before the exit, the newest of several", () => {
  const stays = [stay("in1_1", "粤A12345", T0), stay("in1_2", "粤A12345", T0 + 10 * MINUTE_MS), stay("in1_3", "粤B99999", T0)];
  assert.equal(matchProvisionalExit({ plate: "粤A12345", leaveAtMs: T0 + 60 * MINUTE_MS }, stays, fuzzy, 0)?.recordNo, "in1_2");
  // Entered after the exit (and beyond the clock tolerance): not that car's stay.
  assert.equal(matchProvisionalExit({ plate: "粤A12345", leaveAtMs: T0 + 5 * MINUTE_MS }, stays, fuzzy, 0)?.recordNo, "in1_1");
  assert.equal(matchProvisionalExit({ plate: "粤A12345", leaveAtMs: T0 - MINUTE_MS }, stays, fuzzy, 0), undefined);
  assert.equal(matchProvisionalExit({ plate: "粤C00000", leaveAtMs: T0 + 60 * MINUTE_MS }, stays, fuzzy, 0), undefined);
  assert.equal(matchProvisionalExit({ plate: "", leaveAtMs: T0 + 60 * MINUTE_MS }, stays, fuzzy, 0), undefined);
});

test("matchProvisionalExit: an entering box five minutes ahead still matches within the skew tolerance", () => {
  // The car entered at A (clock +5 min) and left at B (clock -3 min) two minutes later: A's
  // entry time is six minutes after B's leave time.
  const enteredAtA = T0 + 5 * MINUTE_MS;
  const leftAtB = T0 + 2 * MINUTE_MS - 3 * MINUTE_MS;
  const stays = [stay("in1_1", "粤A12345", enteredAtA)];
  assert.equal(matchProvisionalExit({ plate: "粤A12345", leaveAtMs: leftAtB }, stays, fuzzy, 10 * MINUTE_MS)?.recordNo, "in1_1");
  assert.equal(matchProvisionalExit({ plate: "粤A12345", leaveAtMs: leftAtB }, stays, fuzzy, 5 * MINUTE_MS), undefined);
});

test("matchProvisionalExit: the lanes' fuzzy rule (a misread character), and exact only when it is off", () => {
  const stays = [stay("in1_1", "粤A12345", T0)];
  assert.equal(matchProvisionalExit({ plate: "粤A12845", leaveAtMs: T0 + MINUTE_MS }, stays, fuzzy, 0)?.recordNo, "in1_1");
  assert.equal(matchProvisionalExit({ plate: "粤A12845", leaveAtMs: T0 + MINUTE_MS }, stays, exactOnly, 0), undefined);
});

const plateArb = fc.constantFrom("粤A12345", "粤B22222", "粤C33333", "");
const staysArb = fc.uniqueArray(
  fc.record({
    recordNo: fc.stringMatching(/^in[12]_[0-9]{1,4}$/),
    plate: plateArb,
    enterAtMs: fc.integer({ min: 0, max: 20 }).map((m) => T0 + m * MINUTE_MS),
    enterDeviceId: fc.constantFrom("box-a", "box-b", "box-c"),
  }),
  { selector: (s) => s.recordNo, maxLength: 12 },
);

test("matchProvisionalExit: the same answer whatever order the lot's stays come in", () => {
  fc.assert(
    fc.property(staysArb, plateArb, fc.integer({ min: 0, max: 25 }), fc.boolean(), (stays, plate, minute, useFuzzy) => {
      const exit = { plate, leaveAtMs: T0 + minute * MINUTE_MS };
      const a = matchProvisionalExit(exit, stays, useFuzzy ? fuzzy : exactOnly, MINUTE_MS);
      const b = matchProvisionalExit(exit, [...stays].reverse(), useFuzzy ? fuzzy : exactOnly, MINUTE_MS);
      assert.equal(a?.recordNo, b?.recordNo);
      if (a) assert.ok(a.enterAtMs <= exit.leaveAtMs + MINUTE_MS);
    }),
    { numRuns: runs },
  );
});

test("duplicateLosers: one stay per plate is kept, the same on every box whatever the order", () => {
  fc.assert(
    fc.property(staysArb, fc.constantFrom<"replace" | "deny">("replace", "deny"), (stays, mode) => {
      const losers = duplicateLosers(stays, mode);
      const again = duplicateLosers([...stays].reverse(), mode);
      assert.deepEqual(
        losers.map((s) => s.recordNo),
        again.map((s) => s.recordNo),
      );
      const lost = new Set(losers.map((s) => s.recordNo));
      const kept = stays.filter((s) => !lost.has(s.recordNo));
      const keptPlates = kept.filter((s) => s.plate !== "").map((s) => s.plate);
      // Exactly one stay per read plate is left; plate-less stays are never merged.
      assert.equal(new Set(keptPlates).size, keptPlates.length);
      assert.deepEqual(new Set(keptPlates), new Set(stays.filter((s) => s.plate !== "").map((s) => s.plate)));
      assert.ok(losers.every((s) => s.plate !== ""));
      // Ending the losers leaves nothing more to end (the rule converges in one round).
      assert.deepEqual(duplicateLosers(kept, mode), []);
    }),
    { numRuns: runs },
  );
});

test("duplicateLosers: under replace the latest entry stays, under deny the earliest", () => {
  const a = stay("in1_5", "粤A12345", T0, "box-a");
  const b = stay("in2_7", "粤A12345", T0 + MINUTE_MS, "box-b");
  assert.deepEqual(duplicateLosers([a, b], "replace"), [a]);
  assert.deepEqual(duplicateLosers([b, a], "deny"), [b]);
  // The same entry time: the recordNo decides, the same way everywhere.
  const c = stay("in2_1", "粤A12345", T0, "box-b");
  assert.deepEqual(duplicateLosers([c, a], "replace"), [a]);
  assert.deepEqual(duplicateLosers([a, c], "deny"), [c]);
});

test("lotWhole: every box online, or offline for longer than the hold (taken out of the lot)", () => {
  const hold = 60 * MINUTE_MS;
  const now = T0 + 10 * hold;
  assert.equal(lotWhole([], now, hold), true);
  assert.equal(lotWhole([{ online: true, lastSeenMs: T0 }], now, hold), true);
  assert.equal(
    lotWhole(
      [
        { online: true, lastSeenMs: T0 },
        { online: false, lastSeenMs: now - MINUTE_MS },
      ],
      now,
      hold,
    ),
    false,
  );
  assert.equal(
    lotWhole(
      [
        { online: true, lastSeenMs: T0 },
        { online: false, lastSeenMs: now - hold - 1 },
      ],
      now,
      hold,
    ),
    true,
  );
});
