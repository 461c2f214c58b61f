/**
 * A settlement as a stay keeps it: read defensively (older stays lack fields; the pending bill
 * says the rest), kept within the post-payment grace, and turned into a prepayment past it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { earlierSettlement, finishReason, manualSettlement, prepaymentsWithSettlement, remoteSettlement, storedSettlementOf } from "../../../../src/core/settlement/settlement.js";
import type { StayView } from "../../../../src/core/stays/stay-views.js";

const T0 = Date.UTC(2026, 2, 10, 2, 0, 0);
const stay = (extra: Record<string, unknown> | undefined, more: Partial<StayView> = {}): StayView => ({
  recordNo: "in1_1",
  plate: "粤B12345",
  laneId: "in1",
  enterAtMs: T0 - 3_600_000,
  prepayments: [],
  coupons: [],
  extra,
  ...more,
});
const cash = {
  releaseType: 0,
  payType: 4,
  paidFen: 700,
  orderNo: "c1",
  payTimeMs: T0,
  operator: "amy",
  path: "cash",
  settledAtMs: T0,
  laneId: "out1",
  billAtMs: T0 - 5000,
  payableFen: 900,
  discountFen: 200,
  prepaidFen: 0,
};

test("read defensively: missing or malformed is none; an older settlement takes the pending bill's fields", () => {
  assert.equal(storedSettlementOf(stay(undefined)), undefined);
  assert.equal(storedSettlementOf(stay({ settlement: "yes" })), undefined);
  assert.equal(storedSettlementOf(stay({ settlement: { ...cash, paidFen: "700" } })), undefined);
  assert.deepEqual(storedSettlementOf(stay({ settlement: cash })), cash);
  const old = storedSettlementOf(
    stay(
      { settlement: { releaseType: 0, payType: 1, paidFen: 700, path: "platform" } },
      { pendingExit: { laneId: "out2", plateId: "p1", atMs: T0 - 9000, payableFen: 800, discountFen: 100, dueFen: 700 } },
    ),
  );
  assert.deepEqual(old, {
    releaseType: 0,
    payType: 1,
    paidFen: 700,
    orderNo: "",
    payTimeMs: null,
    operator: "",
    path: "platform",
    settledAtMs: T0 - 9000,
    laneId: "out2",
    billAtMs: T0 - 9000,
    payableFen: 800,
    discountFen: 100,
    prepaidFen: 0,
  });
});

test("within the grace the car leaves on it; past it, what it collected is a prepayment, once", () => {
  const record = stay({ settlement: cash, groupKey: "g" });
  assert.equal(earlierSettlement(record, T0 + 15 * 60_000, 15).kind, "within-grace");
  const expired = earlierSettlement(record, T0 + 15 * 60_000 + 1, 15);
  assert.equal(expired.kind, "expired");
  if (expired.kind !== "expired") return;
  assert.deepEqual(expired.extra, { groupKey: "g" });
  assert.deepEqual(expired.prepayments, [{ orderNo: "c1", amountFen: 700, payAtMs: T0, payType: "4" }]);
  const counted = earlierSettlement(stay({ settlement: cash }, { prepayments: [{ orderNo: "c1", amountFen: 700, payAtMs: T0 }] }), T0 + 3_600_000, 15);
  assert.equal(counted.kind === "expired" ? counted.prepayments.length : -1, 1);
  const released = earlierSettlement(stay({ settlement: { ...cash, paidFen: 0, orderNo: "" } }), T0 + 3_600_000, 15);
  assert.deepEqual(released.kind === "expired" ? released.prepayments : undefined, []);
  assert.deepEqual(prepaymentsWithSettlement(stay(undefined), { ...cash, orderNo: "" }), [{ orderNo: "in1_1-exit", amountFen: 700, payAtMs: T0, payType: "4" }]);
  assert.deepEqual(prepaymentsWithSettlement(stay(undefined, { prepayments: [{ orderNo: "in1_1-exit", amountFen: 700, payAtMs: T0 }] }), { ...cash, orderNo: "" }).length, 1);
});

test("release types and how the stay's ending is recorded", () => {
  assert.deepEqual(remoteSettlement({ type: 2, operator: "o", openGateCase: 3 }, T0), {
    releaseType: 2,
    payType: 0,
    paidFen: 0,
    orderNo: "",
    payTimeMs: null,
    operator: "o",
    path: "remote-free",
  });
  assert.equal(remoteSettlement({ type: 2, operator: "o" }, T0).releaseType, 1);
  assert.deepEqual(remoteSettlement({ type: 0, operator: "o" }, T0).payTimeMs, T0);
  assert.equal(finishReason(manualSettlement("amy")), "manual");
  assert.equal(finishReason({ ...manualSettlement(""), releaseType: 1, path: "remote-free" }), "free");
  assert.equal(finishReason({ ...manualSettlement(""), releaseType: 0, path: "cash-fallback" }), "cash-fallback");
  assert.equal(finishReason({ ...manualSettlement(""), releaseType: 0, path: "cash" }), "normal");
});
