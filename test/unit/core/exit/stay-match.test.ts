/**
 * Stay matching at the exit: exact first (newest entry), the virtual plate of an unlicensed
 * car, the fuzzy rule only when the policy allows it, and an ambiguous read is no match. The
 * lot's full listing is read only when the fuzzy rule runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { findStay, type FuzzyPolicy } from "../../../../src/core/exit/stay-match.js";

const numRuns = Number(process.env.LK_FUZZ_RUNS ?? 300);
const fuzzyOn: FuzzyPolicy = { maxDifferences: 1, ignoreProvince: true, misreads: true };
const fuzzyOff: FuzzyPolicy = { maxDifferences: 0, ignoreProvince: false, misreads: false };
const stay = (recordNo: string, plate: string, enterAtMs: number) => ({ recordNo, plate, enterAtMs });

test("exact: the newest stay of the plate, the full listing never read", () => {
  const exact = [stay("r1", "粤B12345", 1), stay("r3", "粤B12345", 3), stay("r2", "粤B12345", 2)];
  const found = findStay("粤B12345", { exact, all: () => assert.fail("listing read for an exact match") }, fuzzyOn);
  assert.deepEqual(found, { by: "exact", record: exact[1] });
  assert.deepEqual(
    exact.map((r) => r.recordNo),
    ["r1", "r3", "r2"],
    "the caller's array is not reordered",
  );
});

test("fuzzy: one misread character finds the stay; off, it does not; two candidates are ambiguous", () => {
  const all = [stay("r1", "粤B12345", 1), stay("r2", "京A99999", 2)];
  assert.deepEqual(findStay("粤B12845", { exact: [], all: () => all }, fuzzyOn), { by: "fuzzy", record: all[0] });
  let listed = false;
  assert.deepEqual(findStay("粤B12845", { exact: [], all: () => ((listed = true), all) }, fuzzyOff), { by: "none", record: undefined });
  assert.equal(listed, false);
  const two = [stay("r1", "粤B12345", 1), stay("r2", "粤B12395", 2)];
  const ambiguous = findStay("粤B12385", { exact: [], all: () => two }, fuzzyOn);
  assert.equal(ambiguous.by, "none");
  assert.equal(ambiguous.record, undefined);
  assert.deepEqual(ambiguous.by === "none" ? [...(ambiguous.ambiguous ?? [])].sort() : [], ["粤B12345", "粤B12395"]);
  assert.deepEqual(findStay("", { exact: all, all: () => all }, fuzzyOn), { by: "none", record: undefined });
});

test("property: a match is a stay of the lot; independent of the listing's order", () => {
  const plates = ["粤B12345", "粤B12346", "粤B1234S", "京B12345", "鄂A00001", ""];
  fc.assert(
    fc.property(fc.constantFrom(...plates), fc.array(fc.record({ plate: fc.constantFrom(...plates), enterAtMs: fc.nat(100) }), { maxLength: 5 }), (read, raw) => {
      const all = raw.map((r, i) => stay(`r${i}`, r.plate, r.enterAtMs));
      const run = (list: typeof all) => findStay(read, { exact: [], all: () => list }, fuzzyOn);
      const a = run(all);
      const b = run([...all].reverse());
      if (a.record) assert.ok(all.includes(a.record));
      assert.equal(a.by, b.by);
      assert.equal(a.record?.plate, b.record?.plate);
    }),
    { numRuns, seed: 7 },
  );
});
