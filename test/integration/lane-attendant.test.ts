import { test } from "node:test";
import assert from "node:assert/strict";
import { LotHarness, sleep } from "../helpers/lot-harness.js";

/*
 * The attendant: open / close / cancel through the local API with the bearer
 * token, and the manualOpen button, each audited with operator and reason in the history and,
 * at the exit, reported with releaseType 3 (manual).
 */

const HOUR_MS = 3_600_000;
const STAY_MS = 2.5 * HOUR_MS;

async function auditLines(lot: LotHarness, type: string) {
  return lot.app.store.history.recent((line) => (line as { t?: string; type?: string }).t === "event" && (line as { type?: string }).type === type, { limit: 100 });
}

test("API open releases the car awaiting payment: audited with operator and reason, reported as a manual release", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤A95001", STAY_MS);
    await lot.arrive("out1", "粤A95001");
    await lot.awaitingPayment("out1");

    const noToken = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "张班长", reason: "driver has no phone" }, null);
    assert.equal(noToken.status, 401);
    const wrongToken = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "张班长", reason: "x" }, "not-the-token-0000000");
    assert.equal(wrongToken.status, 401);
    const noOperator = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", reason: "x" });
    assert.equal(noOperator.status, 400);
    // Every open by hand needs a reason, for this car that owes money and for an empty lane alike.
    for (const [laneId, reason] of [
      ["out1", undefined],
      ["out1", "   "],
      ["in1", ""],
    ] as const) {
      const noReason = await lot.api("POST", `/api/lanes/${laneId}/commands`, { command: "open", operator: "张班长", ...(reason === undefined ? {} : { reason }) });
      assert.equal(noReason.status, 400, JSON.stringify(noReason.body));
      assert.equal(noReason.body.error.code, "E_REASON_REQUIRED");
    }
    assert.equal(lot.find("attendant-command").length, 0, "a refused open is not run, so not audited as one");
    await sleep(100);
    assert.equal(lot.barrier("in1"), "closed");
    assert.equal(lot.barrier("out1"), "closed", "refused commands change nothing");

    const opened = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "张班长", reason: "driver has no phone" });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    await lot.pass("out1");

    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.releaseType, 3);
    assert.equal(leave.biz.operator, "张班长");
    assert.equal(leave.biz.paidFee, 0);
    await lot.waitForEvent("vehicle-left", { plate: "粤A95001" });
    const finished = (await lot.app.store.recentStays("粤A95001"))[0]!;
    assert.equal(finished.exit.reason, "manual");
    assert.equal(finished.exit.operator, "张班长");
    const audit = await auditLines(lot, "attendant-command");
    assert.ok(
      audit.some(
        (l) =>
          (l as Record<string, unknown>).command === "open" &&
          (l as Record<string, unknown>).operator === "张班长" &&
          (l as Record<string, unknown>).reason === "driver has no phone",
      ),
      JSON.stringify(audit),
    );
  } finally {
    await lot.stop();
  }
});

test("API open with no car, then close; cancel of an allowed entry withdraws it and cancels its record", async () => {
  const lot = await LotHarness.create();
  try {
    const opened = await lot.api("POST", "/api/lanes/in1/commands", { command: "open", operator: "op1", reason: "fire brigade" });
    assert.equal(opened.status, 200);
    await lot.until(() => lot.barrier("in1") === "open", 2000, "open");
    const closed = await lot.api("POST", "/api/lanes/in1/commands", { command: "close", operator: "op1", reason: "done" });
    assert.equal(closed.status, 200);
    await lot.until(() => lot.barrier("in1") === "closed", 2000, "closed");
    assert.equal(lot.app.store.inParkCount(), 0, "an open without a car makes no stay");

    await lot.arrive("in1", "粤A96001");
    const allowed = await lot.waitForEvent("entry-allowed", { plate: "粤A96001" });
    const cancelled = await lot.api("POST", "/api/lanes/in1/commands", { command: "cancel", operator: "op1", reason: "wrong car" });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    await lot.waitForEvent("cancelled", { plate: "粤A96001" });
    await lot.until(() => lot.stayOf("粤A96001") === undefined, 2000, "stay cancelled");
    await lot.until(() => lot.barrier("in1") === "closed", 3000, "closed after the cancel");
    const history = await lot.app.store.recentStays("粤A96001");
    assert.equal(history[0]?.recordNo, allowed.recordNo);
    // Nothing to cancel any more.
    await lot.backOut("in1");
    const nothing = await lot.api("POST", "/api/lanes/in1/commands", { command: "cancel", operator: "op1", reason: "again" });
    assert.equal(nothing.status, 409);
    const unknownLane = await lot.api("POST", "/api/lanes/nope/commands", { command: "open", operator: "op1", reason: "test" });
    assert.equal(unknownLane.status, 404);

    await lot.drained();
    assert.equal(lot.emulator.received({ service: "enterNotify" }).length, 0, "a cancelled entry is not reported");
    const audit = await auditLines(lot, "attendant-command");
    for (const command of ["open", "close", "cancel"]) {
      assert.ok(
        audit.some((l) => (l as Record<string, unknown>).command === command && (l as Record<string, unknown>).operator === "op1"),
        `${command} audited`,
      );
    }
  } finally {
    await lot.stop();
  }
});

test("the manualOpen button at the exit releases the waiting car: audited, reported with releaseType 3", async () => {
  const lot = await LotHarness.create({
    mutate: (raw) => {
      raw.lanes[1].inputs.manualOpen = { line: 26, activeLow: true };
    },
  });
  try {
    const stay = await lot.park("粤A97001", STAY_MS);
    await lot.arrive("out1", "粤A97001");
    await lot.awaitingPayment("out1");
    // The release is written into the stay before the button's open reaches the relay.
    const durable = lot.durableAtOpen("out1", () => '"releaseType":3');
    await lot.press("out1", "manualOpen");
    await lot.pass("out1");
    assert.equal(durable(), true, "the manual release was on disk when the open relay was written");
    const manual = await lot.waitForEvent("manual-open", { laneId: "out1" });
    assert.equal(manual.plate, "粤A97001");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.releaseType, 3);
    assert.notEqual(leave.biz.operator, "", "the report says who released it");
    await lot.waitForEvent("vehicle-left", { plate: "粤A97001" });
    const finished = (await lot.app.store.recentStays("粤A97001"))[0]!;
    assert.equal(finished.exit.reason, "manual");
    const audit = await auditLines(lot, "manual-open");
    assert.ok(
      audit.some((l) => (l as Record<string, unknown>).laneId === "out1" && typeof (l as Record<string, unknown>).operator === "string"),
      JSON.stringify(audit),
    );
  } finally {
    await lot.stop();
  }
});

test("an attendant lets a refused car in by hand (lot full): the car gets a stay and an entry report", async () => {
  const lot = await LotHarness.create({ mutate: (raw) => (raw.lot.totalSpaces = 1) });
  try {
    await lot.park("粤A98000", HOUR_MS);
    await lot.arrive("in1", "粤A98001");
    assert.equal((await lot.waitForEvent("entry-denied", { plate: "粤A98001" })).reason, "lot-full");
    const durable = lot.durableAtOpen("in1", () => lot.stayOf("粤A98001")?.recordNo);
    const opened = await lot.api("POST", "/api/lanes/in1/commands", { command: "open", operator: "op2", reason: "reserved guest" });
    assert.equal(opened.status, 200);
    await lot.pass("in1");
    assert.equal(durable(), true, "the stay was on disk when the open relay was written");
    const stay = lot.stayOf("粤A98001")!;
    assert.equal((stay.extra?.manual as { operator?: string } | undefined)?.operator, "op2");
    const report = await lot.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });
    assert.equal(report.biz.plateNum, "粤A98001");
  } finally {
    await lot.stop();
  }
});

test("a car blacklisted at the exit is held with an alarm; the attendant's API open releases it as manual", async () => {
  const lot = await LotHarness.create();
  try {
    const stay = await lot.park("粤C99001", STAY_MS);
    const added = await lot.callBox("addBlacklist", { carNum: "粤C99001", remark: "stolen", operator: "police" });
    assert.equal((added.body as { code: number }).code, 200, added.bodyText);
    await lot.arrive("out1", "粤C99001");
    const held = await lot.waitForEvent("blacklisted-at-exit", { plate: "粤C99001" });
    assert.equal(held.alarm, true);
    await sleep(150);
    assert.equal(lot.barrier("out1"), "closed");
    assert.equal(lot.emulator.received({ service: "preLeaveNotify" }).length, 0, "no bill for a held car");
    // Cash does not release a held car; only a deliberate open does.
    const cash = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" });
    assert.equal(cash.status, 409);
    const opened = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "值班经理", reason: "police cleared it" });
    assert.equal(opened.status, 200);
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.releaseType, 3);
    assert.equal(leave.biz.operator, "值班经理");
  } finally {
    await lot.stop();
  }
});

test("remoteDev cmd 1 (manual raise from the cloud) opens an idle lane and is audited", async () => {
  const lot = await LotHarness.create();
  try {
    const raised = await lot.callBox("remoteDev", { channelid: "1", type: 0, cmd: 1, plateId: "RAISE-1", operator: "cloud-duty", openGateCase: 3 });
    assert.equal((raised.body as { code: number }).code, 200, raised.bodyText);
    await lot.until(() => lot.barrier("in1") === "open", 2000, "raised");
    const audit = await auditLines(lot, "remote-control");
    assert.ok(
      audit.some((l) => (l as Record<string, unknown>).operator === "cloud-duty" && (l as Record<string, unknown>).cmd === 1),
      JSON.stringify(audit),
    );
    // Without cmd 1 an unknown plateId opens nothing.
    const unknown = await lot.callBox("remoteDev", { channelid: "2", type: 0, plateId: "EX-NOPE", operator: "cloud-duty" });
    assert.notEqual((unknown.body as { code: number }).code, 200);
    await sleep(100);
    assert.equal(lot.barrier("out1"), "closed");
  } finally {
    await lot.stop();
  }
});
