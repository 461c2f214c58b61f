import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { isNoPlate, normalisePlate, toHalfWidth } from "../../../src/core/plates/normalise.js";
import { matchPlate } from "../../../src/core/plates/match.js";

const normaliseRows: [string, string][] = [
  ["粤B12345", "粤B12345"],
  ["粤b12345", "粤B12345"],
  ["粤B·12345", "粤B12345"],
  ["粤B 12345", "粤B12345"],
  ["粤B-12345", "粤B12345"],
  ["粤B.12345", "粤B12345"],
  ["粤Ｂ１２３４５", "粤B12345"],
  ["粤Ｂ　１２３４５", "粤B12345"],
  ["京A・D1234", "京AD1234"],
  ["沪AD12345", "沪AD12345"], // 8-character new-energy plate
  ["粤B1234学", "粤B1234学"],
  ["粤Z1234港", "粤Z1234港"],
  [" 川a_12345 ", "川A12345"],
];

for (const [raw, expected] of normaliseRows) {
  test(`normalisePlate(${JSON.stringify(raw)}) = ${expected}`, () => {
    assert.equal(normalisePlate(raw), expected);
  });
}

test("toHalfWidth maps the full-width ASCII block and the ideographic space only", () => {
  assert.equal(toHalfWidth("ＡＢＣ１２３！～　粤"), "ABC123!~ 粤");
});

test("'no plate' reads are recognised after normalisation", () => {
  for (const raw of ["_无_", "无牌", "", "  "]) assert.equal(isNoPlate(normalisePlate(raw)), true, raw);
  assert.equal(isNoPlate(normalisePlate("粤B12345")), false);
});

test("normalisation is idempotent (property)", () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(..."粤京ABDO018 ·-.ｂ１２", "学") }), (s) => normalisePlate(normalisePlate(s)) === normalisePlate(s)),
    { seed: 7, numRuns: 2000 },
  );
});

const inPark = ["粤B12345", "粤B67890", "京A00001", "沪AD12345", "鄂C11111"];

test("exact match wins, also across spellings", () => {
  assert.deepEqual(matchPlate("粤b·12345", inPark), { kind: "exact", plate: "粤B12345" });
});

test("one differing character in the middle matches with maxDifferences 1", () => {
  assert.deepEqual(matchPlate("粤B12945", inPark), { kind: "fuzzy", plate: "粤B12345", differences: 1, misreads: 0, provinceDiffers: false });
});

test("two differing characters do not match with the default, do with maxDifferences 2", () => {
  assert.deepEqual(matchPlate("粤B19945", inPark), { kind: "none" });
  assert.equal(matchPlate("粤B19945", inPark, { maxDifferences: 2 }).kind, "fuzzy");
});

test("first and last characters are fixed", () => {
  assert.deepEqual(matchPlate("粤B12346", inPark), { kind: "none" }, "last differs");
  assert.deepEqual(matchPlate("湘B12345", inPark), { kind: "none" }, "province differs");
});

test("ignoreProvince lets the province character differ without counting", () => {
  assert.deepEqual(matchPlate("鄂B12345", inPark, { ignoreProvince: true }), { kind: "fuzzy", plate: "粤B12345", differences: 0, misreads: 0, provinceDiffers: true });
  assert.deepEqual(matchPlate("鄂B12945", inPark, { ignoreProvince: true }), { kind: "fuzzy", plate: "粤B12345", differences: 1, misreads: 0, provinceDiffers: true });
});

test("common misreads D/0, B/8, O/0, I/1 match, also in the last position", () => {
  assert.deepEqual(matchPlate("京AOOOOI", inPark, { maxMisreads: 5 }), { kind: "fuzzy", plate: "京A00001", differences: 0, misreads: 5, provinceDiffers: false });
  assert.deepEqual(matchPlate("京A0000I", inPark), { kind: "fuzzy", plate: "京A00001", differences: 0, misreads: 1, provinceDiffers: false });
  assert.deepEqual(matchPlate("沪A012345", inPark), { kind: "fuzzy", plate: "沪AD12345", differences: 0, misreads: 1, provinceDiffers: false });
  assert.deepEqual(matchPlate("粤812345", inPark), { kind: "fuzzy", plate: "粤B12345", differences: 0, misreads: 1, provinceDiffers: false });
});

test("misreads can be switched off", () => {
  assert.deepEqual(matchPlate("京A0000I", inPark, { misreadPairs: [] }), { kind: "none" });
});

test("more than maxMisreads misreads do not match", () => {
  assert.deepEqual(matchPlate("京AOOOOI", inPark), { kind: "none" });
});

test("several candidates within tolerance: ambiguous, never a guess", () => {
  const result = matchPlate("粤B12395", ["粤B12345", "粤B12375", "粤B99999"]);
  assert.equal(result.kind, "ambiguous");
  assert.deepEqual(result.kind === "ambiguous" ? result.candidates.map((c) => c.plate) : [], ["粤B12345", "粤B12375"]);
});

test("the answer does not depend on the order of the candidates (property)", () => {
  const pool = ["粤B12345", "粤B12375", "粤B1234D", "京A00001", "粤B12345", "鄂B12345", "粤B 12345"];
  const reads = ["粤B12395", "粤B12345", "鄂B12375", "粤B1234O", "京A0000I", "粤B88888"];
  fc.assert(
    fc.property(fc.shuffledSubarray(pool, { minLength: 0 }), fc.constantFrom(...reads), fc.boolean(), (candidates, read, ignoreProvince) => {
      const forward = matchPlate(read, candidates, { ignoreProvince });
      const backward = matchPlate(read, [...candidates].reverse(), { ignoreProvince });
      assert.deepEqual(forward, backward);
    }),
    { seed: 11, numRuns: 3000 },
  );
});

test("plates of different lengths never match fuzzily; empty reads match nothing", () => {
  assert.deepEqual(matchPlate("沪AD1234", inPark), { kind: "none" });
  assert.deepEqual(matchPlate("", inPark), { kind: "none" });
  assert.deepEqual(matchPlate("粤B12345", []), { kind: "none" });
});
