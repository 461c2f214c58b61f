import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../helpers/fake-clock.js";
import { silentLogger } from "../../src/kernel/log.js";
import { Outbox } from "../../src/outbox/outbox.js";
import { platformOutboxSender } from "../../src/outbox/platform-sender.js";
import { createPlatformClient } from "../../src/platform/client.js";
import { platformConfigSchema } from "../../src/platform/config.js";
import { demoCredentials, startEmulator } from "../../src/platform/emulator/emulator.js";
import { freshDir } from "../helpers/store-fixtures.js";

/*
 * The outbox against the platform emulator: a real HTTP server on loopback that checks
 * signatures and de-duplicates by idempotency key. Time is fake (hours of outage in a
 * second), the network is real.
 */

const STAYS = 500;
const pad = (n: number) => String(n).padStart(2, "0");
const wire = (ms: number) => {
  const d = new Date(ms + 8 * 3_600_000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
};

function stayReports(i: number, atMs: number) {
  const recordNo = `L1_20260601${String(i).padStart(9, "0")}`;
  const plateNum = `粤B${String(10000 + i)}`;
  const enterTime = wire(atMs);
  return {
    recordNo,
    enter: {
      recordNo,
      kind: "enter",
      service: "enterNotify",
      biz: { parkCode: "TEST/1P1", recordNo, plateNum, plateColor: 1, carType: 9, carSubType: 91, enterTime, inChannelid: "1" },
    },
    leave: {
      recordNo,
      kind: "leave",
      service: "leaveNotify",
      // Everything the platform needs to rebuild the stay, in case the entry never arrived.
      biz: {
        parkCode: "TEST/1P1",
        recordNo,
        plateNum,
        carType: 9,
        carSubType: 91,
        enterTime,
        leaveTime: wire(atMs + 3_600_000),
        payableFee: 500,
        discountFee: 0,
        prepaidFee: 0,
        paidFee: 500,
        payType: 4,
        payTime: wire(atMs + 3_600_000),
        orderNo: "",
        outChannelid: "2",
        releaseType: 0,
        operator: "",
      },
    },
  };
}

test("platform down for hours with 500 stays queued: after recovery each report arrives exactly once, entry before exit; a poisoned report is parked, its exit waits behind it and the rest flow", async () => {
  const { dir, cleanup } = await freshDir("lk-outbox-it-");
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 8));
  const emulator = await startEmulator({ clock, timestampWindowS: 0 });
  const config = platformConfigSchema.parse({ baseUrl: emulator.url, pid: demoCredentials.pid, key: demoCredentials.key, client: { connections: 8 } });
  const client = createPlatformClient({ config, clock, log: silentLogger() });
  const outbox = new Outbox({ dir, clock, sender: platformOutboxSender(client, { deadlineMs: 2000 }), random: () => 0.5 });
  try {
    await outbox.start();
    await emulator.setFaults({ refuse: true });
    const poisoned = stayReports(7, clock.now());
    const stays = [];
    for (let i = 0; i < STAYS; i++) {
      const reports = i === 7 ? poisoned : stayReports(i, clock.now());
      stays.push(reports);
      assert.equal((await outbox.enqueue(reports.enter)).durable, true);
      await clock.advance(5000);
    }
    for (const s of stays) await outbox.enqueue(s.leave);

    // Six hours of outage, in one-minute steps of fake time.
    for (let minute = 0; minute < 360; minute++) {
      await clock.advance(60_000);
      await outbox.whenIdle();
    }
    const during = outbox.status();
    assert.equal(during.depth, 2 * STAYS);
    assert.equal(during.link, "probing");
    assert.ok(during.sendAttempts < 200, `the outage cost ${during.sendAttempts} attempts, not one per entry per backoff`);
    assert.ok(during.oldestAgeMs > 6 * 3_600_000);
    assert.equal(emulator.stats().deliveries, 0);

    // The platform comes back and refuses one entry report for good.
    await emulator.setFaults({ rules: [{ service: "enterNotify", recordNo: poisoned.recordNo, action: { kind: "business", code: 4001, msg: "record refused" } }] });
    for (let step = 0; step < 120 && outbox.status().depth > outbox.status().held; step++) {
      await clock.advance(5000);
      await outbox.whenIdle();
    }
    const after = outbox.status();
    assert.equal(after.depth, 1, "everything not poisoned was delivered");
    assert.equal(after.held, 1, "the poisoned record's exit waits behind its parked entry");
    assert.equal(after.parked, 1);
    assert.deepEqual(
      outbox.list({ parked: true }).map((e) => [e.key, e.parked?.cause]),
      [[`${poisoned.recordNo}:enter`, "permanent-code"]],
    );
    assert.equal(after.lastRefusal?.code, 4001);

    const received = emulator.received();
    assert.equal(emulator.duplicates(), 0, "nothing was delivered twice");
    assert.equal(received.length, 2 * STAYS - 2);
    assert.ok(received.every((p) => p.count === 1));
    const seqOf = new Map(received.map((p) => [p.idempotencyKey, p.seq]));
    for (const s of stays) {
      if (s === poisoned) continue;
      const leaveSeq = seqOf.get(`leaveNotify:${s.recordNo}`);
      assert.ok(leaveSeq !== undefined, `exit of ${s.recordNo} delivered`);
      const enterSeq = seqOf.get(`enterNotify:${s.recordNo}`);
      assert.ok(enterSeq !== undefined && enterSeq < leaveSeq, `entry of ${s.recordNo} arrived before its exit`);
    }
    assert.equal(emulator.received({ recordNo: poisoned.recordNo }).length, 0, "neither report of the poisoned record went through");

    // The operator fixes the cause and retries the parked report.
    await emulator.clearFaults();
    assert.equal(await outbox.retryParked("all"), 1);
    for (let step = 0; step < 20 && outbox.status().depth > 0; step++) {
      await clock.advance(1000);
      await outbox.whenIdle();
    }
    assert.equal(outbox.status().parked, 0);
    assert.equal(outbox.status().depth, 0);
    const poisonedEnter = emulator.received({ service: "enterNotify", recordNo: poisoned.recordNo });
    const poisonedLeave = emulator.received({ service: "leaveNotify", recordNo: poisoned.recordNo });
    assert.equal(poisonedEnter.length, 1);
    assert.ok(poisonedLeave.length === 1 && poisonedEnter[0]!.seq < poisonedLeave[0]!.seq, "then its exit, after it");
    assert.equal(emulator.duplicates(), 0);
  } finally {
    await outbox.stop();
    await client.close();
    await emulator.stop();
    await cleanup();
  }
});
