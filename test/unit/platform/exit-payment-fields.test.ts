import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { exitPaymentFields, leaveNotifySchema } from "../../../src/platform/section3.js";

/** docs/protocol.md §3.2: the exit report's payment fields say what the exit collected, and nothing else. */

const FUZZ_RUNS = Number(process.env.LK_FUZZ_RUNS ?? 300);
const at = Date.UTC(2024, 4, 6, 2, 30); // 10:30 in Shanghai

test('release paths: nothing collected means payType 0, payTime "", orderNo ""', () => {
  const table: Array<[string, Parameters<typeof exitPaymentFields>[0], ReturnType<typeof exitPaymentFields>]> = [
    ["paid by the platform", { paidFen: 700, payType: 1, payTimeMs: at, orderNo: "PAY-1" }, { paidFee: 700, payType: 1, payTime: "2024-05-06 10:30:00", orderNo: "PAY-1" }],
    ["cash", { paidFen: 700, payType: 4, payTimeMs: at, orderNo: "TC1" }, { paidFee: 700, payType: 4, payTime: "2024-05-06 10:30:00", orderNo: "TC1" }],
    // remoteDev type 0 carries the release instant; nothing was collected, so no payTime.
    ["remoteDev type 0", { paidFen: 0, payType: 0, payTimeMs: at, orderNo: "" }, { paidFee: 0, payType: 0, payTime: "", orderNo: "" }],
    ["free release", { paidFen: 0, payType: 0, payTimeMs: null, orderNo: "" }, { paidFee: 0, payType: 0, payTime: "", orderNo: "" }],
    ["prepaid in the lot", { paidFen: 0, payType: 1, payTimeMs: at, orderNo: "PRE-1" }, { paidFee: 0, payType: 0, payTime: "", orderNo: "" }],
  ];
  for (const [name, input, expected] of table) assert.deepEqual(exitPaymentFields(input, "Asia/Shanghai"), expected, name);
});

test("any collection gives fields the exit report's schema accepts, empty together when nothing was paid", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1_000_000 }),
      fc.integer({ min: 0, max: 4 }),
      fc.option(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2090, 0, 1) }), { nil: null }),
      fc.string({ maxLength: 50 }),
      (paidFen, payType, payTimeMs, orderNo) => {
        const fields = exitPaymentFields({ paidFen, payType, payTimeMs, orderNo }, "Asia/Shanghai");
        const shape = leaveNotifySchema.pick({ paidFee: true, payType: true, payTime: true, orderNo: true });
        assert.ok(shape.safeParse(fields).success, JSON.stringify(fields));
        if (paidFen === 0) assert.deepEqual(fields, { paidFee: 0, payType: 0, payTime: "", orderNo: "" });
        else assert.equal(fields.paidFee, paidFen);
      },
    ),
    { numRuns: FUZZ_RUNS },
  );
});
