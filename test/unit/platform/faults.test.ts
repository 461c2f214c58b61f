import { test } from "node:test";
import assert from "node:assert/strict";
import { faultProblems, pickFault, type EmulatorFaults } from "../../../src/platform/emulator/faults.js";

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
