import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { faultProblems, pickFault, type EmulatorFaults } from "../../../../src/platform/emulator/faults.js";

const facts = { service: "preLeaveNotify", serviceName: "preLeaveNotify", plate: "粤B12345", recordNo: "R1", plateId: "P1" };

test("rules match by service, plate, recordNo and plateId, first rule wins, and `times` is consumed", () => {
  const faults: EmulatorFaults = {
    rules: [
      { recordNo: "R2", action: { kind: "hang" } },
      { service: "preLeaveNotify", plate: "粤B12345", action: { kind: "business", code: 7, msg: "poisoned" }, times: 2 },
    ],
    httpStatus: 500,
  };
  assert.deepEqual(pickFault(faults, facts), { kind: "business", code: 7, msg: "poisoned" });
  assert.deepEqual(pickFault(faults, facts), { kind: "business", code: 7, msg: "poisoned" });
  assert.deepEqual(pickFault(faults, facts), { kind: "http-status", status: 500 }, "spent rule falls through to the shorthand");
  assert.deepEqual(pickFault(faults, { ...facts, recordNo: "R2" }), { kind: "hang" });
  assert.equal(pickFault({}, facts), undefined);
  assert.deepEqual(pickFault({ delayMs: 50 }, facts), { kind: "delay", ms: 50 });
});

test("faultProblems lists every mistake in a faults document", () => {
  assert.deepEqual(faultProblems({ hang: true, rules: [{ action: { kind: "business", code: 1, msg: "x" } }] }), []);
  const problems = faultProblems({ hang: "yes", httpStatus: 42, bogus: 1, rules: [{ action: { kind: "explode" } }] });
  assert.equal(problems.length, 4, problems.join("\n"));
  assert.deepEqual(faultProblems([]), ["faults must be a JSON object"]);
});

test("a timed hang matches until its time is up, then the platform has recovered", () => {
  const faults: EmulatorFaults = { rules: [{ service: "preLeaveNotify", action: { kind: "hang", forMs: 500, then: "drop" } }] };
  assert.deepEqual(pickFault(faults, facts, 0), { kind: "hang", forMs: 500, then: "drop" });
  assert.deepEqual(pickFault(faults, facts, 499), { kind: "hang", forMs: 500, then: "drop" });
  assert.equal(pickFault(faults, facts, 500), undefined, "recovered: answered normally");
  assert.deepEqual(pickFault({ hangForMs: 300 }, facts, 10), { kind: "hang", forMs: 300, then: "answer" }, "late answers by default");
  assert.deepEqual(pickFault({ hangForMs: 300, hangThen: "drop" }, facts, 10), { kind: "hang", forMs: 300, then: "drop" });
  assert.equal(pickFault({ hangForMs: 300 }, facts, 300), undefined);
});

test("faultProblems checks the timed hang fields", () => {
  assert.deepEqual(faultProblems({ hangForMs: 100, hangThen: "drop", rules: [{ action: { kind: "hang", forMs: 5, then: "answer" } }] }), []);
  assert.equal(faultProblems({ hangForMs: -1 }).length, 1);
  assert.equal(faultProblems({ hangThen: "explode" }).length, 2, "bad value, and no hangForMs");
  assert.equal(faultProblems({ rules: [{ action: { kind: "hang", forMs: 1.5 } }] }).length, 1);
  assert.equal(faultProblems({ rules: [{ action: { kind: "hang", then: "drop" } }] }).length, 1, "then needs forMs");
});

test("faultProblems never throws and accepts only what pickFault can use (fuzz)", () => {
  const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);
  const action = fc.oneof(
    fc.record(
      {
        kind: fc.constantFrom("hang", "delay", "drop", "explode"),
        forMs: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.string()),
        then: fc.constantFrom("answer", "drop", "x"),
        ms: fc.integer({ min: -5, max: 5 }),
      },
      { requiredKeys: ["kind"] },
    ),
    fc.anything(),
  );
  const doc = fc.oneof(
    fc.anything(),
    fc.record({ hangForMs: fc.anything(), hangThen: fc.anything(), rules: fc.array(fc.record({ action }, { requiredKeys: [] })) }, { requiredKeys: [] }),
  );
  fc.assert(
    fc.property(doc, fc.nat(1000), (value, sinceSetMs) => {
      const problems = faultProblems(value);
      assert.ok(Array.isArray(problems));
      if (problems.length === 0) {
        const picked = pickFault(value as EmulatorFaults, facts, sinceSetMs);
        if (picked?.kind === "hang" && picked.forMs !== undefined) assert.ok(Number.isInteger(picked.forMs) && picked.forMs > sinceSetMs);
      }
    }),
    { numRuns: runs },
  );
});
