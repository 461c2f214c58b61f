import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../helpers/fake-clock.js";
import { health } from "../../src/app/fleet-wiring.js";
import { silentLogger } from "../../src/kernel/log.js";
import { healthPayloadSchema } from "../../src/fleet/payloads.js";
import { Outbox, type EnqueueInput } from "../../src/outbox/outbox.js";
import { platformOutboxSender } from "../../src/outbox/platform-sender.js";
import { createPlatformClient } from "../../src/platform/client.js";
import { platformConfigSchema } from "../../src/platform/config.js";
import { demoCredentials, startEmulator } from "../../src/platform/emulator/emulator.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { freshDir } from "../helpers/store-fixtures.js";

/*
 * A busy platform is not a broken report, against the real emulator: its `business` fault
 * answers 0 "平台繁忙" a given number of times, then the platform recovers. The outbox retries
 * with backoff, delivers each report exactly once, entry before exit; a 200 to any call
 * probes the parked reports; /api/status and the MQTT health report show the refusals.
 */

const BUSY = { kind: "business", code: 0, msg: "平台繁忙" } as const;

function stay(recordNo: string, plateNum: string): { enter: EnqueueInput; leave: EnqueueInput; preLeave: Record<string, unknown> } {
  const common = { parkCode: "TEST/1P1", recordNo, plateNum, carType: 9, carSubType: 91, enterTime: "2026-06-01 16:00:00" };
  return {
    enter: { recordNo, kind: "enter", service: "enterNotify", biz: { ...common, plateColor: 1, inChannelid: "1" } },
    leave: {
      recordNo,
      kind: "leave",
      service: "leaveNotify",
      biz: {
        ...common,
        leaveTime: "2026-06-01 17:00:00",
        payableFee: 500,
        discountFee: 0,
        prepaidFee: 0,
        paidFee: 500,
        payType: 4,
        payTime: "2026-06-01 17:00:00",
        orderNo: "",
        outChannelid: "2",
        releaseType: 0,
        operator: "",
      },
    },
    // A lane's pre-leave bill paid with a scanned code: the emulator answers 200.
    preLeave: {
      ...common,
      leaveTime: "2026-06-01 17:00:00",
      payableFee: 500,
      discountFee: 0,
      paidFee: 500,
      outChannelid: "2",
      sweepCode: 1,
      sweepAuthCode: "134567890123456789",
      plateId: `P${recordNo}`,
    },
  };
}

test("emulator busy 4 times: the entry report is retried with backoff and delivered once when the platform recovers; its exit follows; other records never wait", async () => {
  const { dir, cleanup } = await freshDir("lk-outbox-busy-");
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 8));
  const emulator = await startEmulator({ clock, timestampWindowS: 0 });
  const config = platformConfigSchema.parse({ baseUrl: emulator.url, pid: demoCredentials.pid, key: demoCredentials.key });
  const client = createPlatformClient({ config, clock, log: silentLogger() });
  const outbox = new Outbox({ dir, clock, sender: platformOutboxSender(client, { deadlineMs: 2000 }), random: () => 0.5 });
  const busyStay = stay("in1_20260601160000001", "粤B10001");
  const calmStay = stay("in1_20260601160000002", "粤B10002");
  try {
    await outbox.start();
    await emulator.setFaults({ rules: [{ service: "enterNotify", recordNo: busyStay.enter.recordNo, action: BUSY, times: 4 }] });
    for (const report of [busyStay.enter, busyStay.leave, calmStay.enter, calmStay.leave]) await outbox.enqueue(report);
    const step = async (ms: number) => {
      await clock.advance(ms);
      await outbox.whenIdle();
    };
    await step(100);
    const during = outbox.status();
    assert.equal(during.parked, 0, "a busy answer does not park");
    assert.equal(during.retrying, 1);
    assert.deepEqual(during.lastRefusal && [during.lastRefusal.key, during.lastRefusal.code, during.lastRefusal.platformMsg], [`${busyStay.enter.recordNo}:enter`, 0, "平台繁忙"]);
    assert.equal(emulator.received({ recordNo: calmStay.enter.recordNo }).length, 2, "the other record went through at once");
    assert.equal(emulator.received({ service: "leaveNotify", recordNo: busyStay.enter.recordNo }).length, 0, "the exit waits behind its entry");

    for (let i = 0; i < 60 && outbox.status().depth > 0; i++) await step(1000);
    assert.equal(outbox.status().depth, 0);
    assert.equal(outbox.status().parked, 0);
    assert.equal(emulator.duplicates(), 0);
    assert.equal(emulator.rejected().filter((r) => r.code === 0).length, 4, "refused four times, then accepted");
    const enterSeq = emulator.received({ service: "enterNotify", recordNo: busyStay.enter.recordNo })[0]?.seq;
    const leaveSeq = emulator.received({ service: "leaveNotify", recordNo: busyStay.enter.recordNo })[0]?.seq;
    assert.ok(enterSeq !== undefined && leaveSeq !== undefined && enterSeq < leaveSeq, "entry before exit");
    assert.equal(outbox.status().sendAttempts, 4 + 4, "4 refusals, then each of the 4 reports once");
  } finally {
    await outbox.stop();
    await client.close();
    await emulator.stop();
    await cleanup();
  }
});

test("the running box: a permanent code parks at once; a lane's pre-leave bill answered 200 probes it through the app's wiring; status and health show the refusal", async () => {
  const lot = await LotHarness.create();
  try {
    const parked = stay("in1_20260601160000003", "粤B10003");
    const busyOne = stay("in1_20260601160000004", "粤B10004");
    await lot.emulator.setFaults({
      rules: [
        { service: "enterNotify", recordNo: parked.enter.recordNo, action: { kind: "business", code: 4006, msg: "sign error" }, times: 1 },
        { service: "enterNotify", recordNo: busyOne.enter.recordNo, action: BUSY },
      ],
    });
    await lot.app.outbox.enqueue(parked.enter);
    await lot.app.outbox.enqueue(parked.leave);
    await lot.until(() => lot.app.outbox.status().parked === 1, 3000, "the entry report parked");
    await lot.app.outbox.enqueue(busyOne.enter);
    await lot.until(() => lot.app.outbox.status().retrying === 1, 3000, "the busy report retrying");

    const status = (await lot.api("GET", "/api/status")).body as { outbox: Record<string, unknown> };
    assert.equal(status.outbox.parked, 1);
    assert.equal(status.outbox.retrying, 1);
    assert.equal(status.outbox.held, 1, "the exit waits behind its parked entry");
    assert.deepEqual((status.outbox.lastRefusal as { platformMsg?: string }).platformMsg, "平台繁忙");
    const parkedList = (await lot.api("GET", "/api/outbox?parked=1")).body as { entries: Array<{ key: string; parked: { cause: string; code: number; platformMsg: string } }> };
    assert.deepEqual(
      parkedList.entries.map((e) => [e.key, e.parked.cause, e.parked.code, e.parked.platformMsg]),
      [[`${parked.enter.recordNo}:enter`, "permanent-code", 4006, "sign error"]],
    );
    const outboxHealth = health(lot.app, { restart: () => undefined, setLogLevel: () => undefined }).outbox;
    assert.deepEqual(healthPayloadSchema.shape.outbox.parse(outboxHealth), { ...outboxHealth });
    assert.equal(outboxHealth?.retrying, 1);
    assert.equal(outboxHealth?.lastCode, 0);
    assert.equal(outboxHealth?.platformMsg, "平台繁忙");
    assert.equal(lot.emulator.received({ recordNo: parked.enter.recordNo }).length, 0);

    // The platform takes requests (the 4006 rule is spent): a lane's pre-leave bill gets its 200.
    const bill = await lot.app.platform.preLeaveNotify(parked.preLeave as Parameters<typeof lot.app.platform.preLeaveNotify>[0]);
    assert.equal(bill.ok, true);
    await lot.emulator.waitFor({ service: "leaveNotify", recordNo: parked.enter.recordNo }, 5000);
    const enterSeq = lot.emulator.received({ service: "enterNotify", recordNo: parked.enter.recordNo })[0]?.seq;
    const leaveSeq = lot.emulator.received({ service: "leaveNotify", recordNo: parked.enter.recordNo })[0]?.seq;
    assert.ok(enterSeq !== undefined && leaveSeq !== undefined && enterSeq < leaveSeq, "the probed entry first, then its exit");
    assert.equal(lot.app.outbox.status().parked, 0);
  } finally {
    await lot.emulator.clearFaults();
    await lot.stop();
  }
});

test("the running box: a lane's bill answered 200 only after its deadline (a late 200) still probes the parked reports", async () => {
  const lot = await LotHarness.create();
  try {
    const parked = stay("in1_20260601160000005", "粤B10005");
    await lot.emulator.setFaults({
      rules: [
        { service: "enterNotify", recordNo: parked.enter.recordNo, action: { kind: "business", code: 4006, msg: "sign error" }, times: 1 },
        { service: "preLeaveNotify", action: { kind: "delay", ms: 300 } },
      ],
    });
    await lot.app.outbox.enqueue(parked.enter);
    await lot.until(() => lot.app.outbox.status().parked === 1, 3000, "the entry report parked");
    assert.equal(lot.app.outbox.status().parkedProbe.lastAtMs, null, "not probed yet");

    let late!: (ok: boolean) => void;
    const lateHeard = new Promise<boolean>((resolve) => (late = resolve));
    const bill = await lot.app.platform.preLeaveNotify(parked.preLeave as Parameters<typeof lot.app.platform.preLeaveNotify>[0], {
      deadlineMs: 100,
      listenMs: 3000,
      onLateAnswer: (result) => late(result.ok),
    });
    assert.equal(!bill.ok && bill.kind, "timeout", "the lane has moved on at its deadline");
    assert.equal(await lateHeard, true, "the platform answered 200 after the deadline");
    const delivered = await lot.emulator.waitFor({ service: "enterNotify", recordNo: parked.enter.recordNo }, 3000);
    assert.equal(delivered.count, 1);
    await lot.until(() => lot.app.outbox.status().parked === 0 && lot.app.outbox.status().depth === 0, 3000, "the parked report delivered");
  } finally {
    await lot.emulator.clearFaults();
    await lot.stop();
  }
});
