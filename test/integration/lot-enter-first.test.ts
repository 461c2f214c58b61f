import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";
import { LotHarness, sleep } from "../helpers/lot-harness.js";
import type { ReceivedPush } from "../../src/platform/emulator/emulator.js";

/*
 * Entry report before exit report across two boxes (docs/mqtt.md "Partitions and
 * reconciliation"): a car enters at box A (north gate) and leaves at box B (south gate); A's
 * `enterNotify` cannot reach the platform (the emulator answers it 503), so B's `leaveNotify`
 * is held in B's outbox until the lot says A's entry report was delivered, or until
 * `lot.share.entryReportWaitS`. One aedes broker in process, one emulated platform; lanes,
 * stores and outboxes real.
 */

interface TwoGates {
  broker: AedesBroker;
  a: LotHarness;
  b: LotHarness;
  restartB(between?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

const ENTER_REFUSED = { rules: [{ service: "enterNotify", action: { kind: "http-status" as const, status: 503 } }] };

async function twoGates(entryReportWaitS: number): Promise<TwoGates> {
  const broker = await startAedes();
  const share = (deviceId: string) => (raw: Record<string, any>) => {
    raw.deviceId = deviceId;
    raw.lot.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100, entryReportWaitS };
  };
  const a = await LotHarness.create({ mutate: share("north-box") });
  const southBox = (storeDir?: string) =>
    LotHarness.create({
      emulator: a.emulator,
      ...(storeDir ? { storeDir } : {}),
      mutate: (raw) => {
        share("south-box")(raw);
        raw.lanes[0].id = "in2";
        raw.lanes[0].channelId = "3";
        raw.lanes[1].id = "out2";
        raw.lanes[1].channelId = "4";
      },
    });
  const gates: TwoGates = {
    broker,
    a,
    b: await southBox(),
    async restartB(between) {
      const dir = gates.b.storeDir;
      await gates.b.stop({ keepStore: true });
      await between?.();
      gates.b = await southBox(dir);
    },
    async stop() {
      await gates.b.stop();
      await a.stop();
      await broker.close();
    },
  };
  return gates;
}

async function withGates(entryReportWaitS: number, body: (gates: TwoGates) => Promise<void>): Promise<void> {
  const gates = await twoGates(entryReportWaitS);
  try {
    await body(gates);
  } finally {
    await gates.a.emulator.clearFaults();
    await gates.stop();
  }
}

/** A car in at A while A's entry report is refused, then out at B: its recordNo. The barrier at B does not wait. */
async function inAtAOutAtB(gates: TwoGates, plate: string): Promise<string> {
  const { a, b } = gates;
  await a.emulator.setFaults(ENTER_REFUSED);
  await a.drive("in1", plate);
  const recordNo = a.stayOf(plate)!.recordNo;
  await a.until(() => a.emulator.rejected().some((r) => r.serviceName === "enterNotify"), 3000, "A's entry report refused");
  await b.until(() => b.app.store.getInPark(recordNo) !== undefined, 2000, "A's stay at B");
  assert.equal(b.app.store.getInPark(recordNo)?.entryReport, "queued", "the lot has not said A's report went");
  a.emulator.setPlate(plate, "frictionless");
  await b.drive("out2", plate);
  return recordNo;
}

function reports(gates: TwoGates, recordNo: string): ReceivedPush[] {
  return gates.a.emulator.received({ recordNo }).filter((p) => p.service === "enterNotify" || p.service === "leaveNotify");
}

/** Held: queued durably in B's outbox with a not-before, nothing of it at the platform. */
function assertHeld(gates: TwoGates, recordNo: string): void {
  const held = gates.b.app.outbox.get(`${recordNo}:leave`);
  assert.ok(held?.notBeforeMs !== undefined && held.notBeforeMs > Date.now(), "B's leave report queued and held");
  assert.deepEqual(reports(gates, recordNo), [], "neither report at the platform");
}

/** One enterNotify, then one leaveNotify, at the platform. */
async function enterThenLeave(gates: TwoGates, recordNo: string): Promise<void> {
  const leave = await gates.a.emulator.waitFor({ service: "leaveNotify", recordNo }, 8000);
  await gates.b.drained();
  await gates.a.drained();
  const got = reports(gates, recordNo);
  assert.deepEqual(
    got.map((p) => p.service),
    ["enterNotify", "leaveNotify"],
    "exactly one each, the entry first",
  );
  assert.equal(got[0]!.count + got[1]!.count, 2, "each delivered once");
  assert.equal(leave.biz.enterTime, got[0]!.biz.enterTime);
}

test("A's entry report delayed: B's leave report waits in B's outbox and goes right after A's, never before", () =>
  withGates(1800, async (gates) => {
    const { a, b } = gates;
    const recordNo = await inAtAOutAtB(gates, "粤A80001");
    // The car is out and its stay finished at B; only the report waits.
    assert.equal(b.barrier("out2"), "closed");
    assert.ok((await b.app.store.recentStays("粤A80001")).some((s) => s.recordNo === recordNo));
    await sleep(600);
    assertHeld(gates, recordNo);
    assert.ok(a.emulator.rejected().filter((r) => r.serviceName === "enterNotify").length >= 2, "A kept trying");

    await a.emulator.clearFaults();
    await enterThenLeave(gates, recordNo);
    await b.until(() => b.app.store.getSetting(`lot.entryFirst.${recordNo}`) === undefined, 2000, "B's note of the hold cleared");
    const status = (await b.api("GET", "/api/status")).body;
    assert.deepEqual(status.lotEntryFirst, { entriesMarked: 0, leavesReleased: 1 });
    assert.equal((await a.api("GET", "/api/status")).body.lotEntryFirst.entriesMarked, 1, "A marked its one entry");
    assert.equal(b.app.outbox.list({ recordNo }).length, 0);
  }));

test("the bound: A never delivers its entry report, B's leave report goes after lot.share.entryReportWaitS", () =>
  withGates(1, async (gates) => {
    const { a } = gates;
    const recordNo = await inAtAOutAtB(gates, "粤A80002");
    const leftAtMs = Date.now();
    const leave = await a.emulator.waitFor({ service: "leaveNotify", recordNo }, 5000);
    assert.ok(leave.receivedAtMs >= leftAtMs + 500, "not before (most of) the bound");
    // It carries what the platform needs to build the stay without the entry report.
    assert.equal(leave.biz.plateNum, "粤A80002");
    assert.equal(leave.biz.enterTime, a.wireTime(enterAtMsOf(gates, recordNo)));
    assert.deepEqual(
      reports(gates, recordNo).map((p) => p.service),
      ["leaveNotify"],
      "A's entry report still refused",
    );
    await a.emulator.clearFaults();
    await a.drained();
    assert.equal(a.emulator.received({ service: "enterNotify", recordNo }).length, 1, "A's goes once it can");
  }));

test("B restarted with a held leave report: held across the restart, released by the lot's retained version after it", () =>
  withGates(1800, async (gates) => {
    const { a } = gates;
    const recordNo = await inAtAOutAtB(gates, "粤A80003");
    await gates.restartB(async () => {
      // While B is down, A's entry report goes through: A says so on the lot (retained).
      await a.emulator.clearFaults();
      await a.emulator.waitFor({ service: "enterNotify", recordNo }, 5000);
      await a.until(() => a.app.lotShare!.view.stay(recordNo)?.entryReported === true, 3000, "A's version says the entry reported");
      await sleep(300);
      assert.equal(reports(gates, recordNo).length, 1, "B, stopped, sent nothing");
    });
    await enterThenLeave(gates, recordNo);
  }));

/** The entry time of a stay, as the lot holds it. */
function enterAtMsOf(gates: TwoGates, recordNo: string): number {
  const record = gates.a.app.lotShare!.view.stay(recordNo);
  assert.ok(record, "the lot knows the stay");
  return record.enterAtMs;
}

test("A's entry report delivered while the car is still in: B knows it from the stay's version and does not hold its leave report", () =>
  withGates(1800, async (gates) => {
    const { a, b } = gates;
    await a.drive("in1", "粤A80004");
    const recordNo = a.stayOf("粤A80004")!.recordNo;
    await a.emulator.waitFor({ service: "enterNotify", recordNo }, 3000);
    await b.until(() => b.app.store.getInPark(recordNo)?.entryReport === "delivered", 3000, "B's replica says the entry reported");
    a.emulator.setPlate("粤A80004", "frictionless");
    await b.drive("out2", "粤A80004");
    await enterThenLeave(gates, recordNo);
    assert.equal(b.app.store.getSetting(`lot.entryFirst.${recordNo}`), undefined, "never held");
    assert.equal((await b.api("GET", "/api/status")).body.lotEntryFirst.leavesReleased, 0);
  }));
