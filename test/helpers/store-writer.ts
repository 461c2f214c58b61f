/**
 * A child process for the crash tests: `node --import tsx test/helpers/store-writer.ts <dir> <runId>`.
 * Writes to the lot store and the outbox in a loop and, after each durable write has
 * returned, prints what it acknowledged on stdout (a side channel that survives SIGKILL:
 * writeSync to a pipe is synchronous on Linux):
 *   A <recordNo>   in-park record added
 *   F <recordNo>   stay finished (moved to history)
 *   O <key>        outbox entry enqueued durably
 *   P <orderNo>    payment recorded
 *   V <uuId>       fixed vehicle upserted
 * "READY" is printed once the store has started (recovery done).
 */
import { writeSync } from "node:fs";
import { LotStore } from "../../src/store/lot-store.js";
import { Outbox } from "../../src/outbox/outbox.js";

const [dir, runId = "r"] = process.argv.slice(2);
if (!dir) {
  process.stderr.write("usage: store-writer.ts <dir> <runId>\n");
  process.exit(2);
}

const say = (line: string): void => {
  writeSync(1, line + "\n");
};

const store = new LotStore({ dir, pruneJob: false, inParkFlushMs: 50, batchFlushMs: 200 });
const outbox = new Outbox({ dir });
await store.start();
await outbox.start();
say("READY");

for (let i = 0; ; i++) {
  const recordNo = `${runId}-${i}`;
  const enterAtMs = Date.now();
  await store.addInPark({ recordNo, plate: `粤B${String(i % 100_000).padStart(5, "0")}`, laneId: "L1", enterAtMs, carType: 9, carSubType: 91 });
  say(`A ${recordNo}`);
  const queued = await outbox.enqueue({ recordNo, kind: "enter", service: "enterNotify", biz: { recordNo, enterTime: new Date(enterAtMs).toISOString() } });
  if (queued.durable) say(`O ${queued.key}`);
  store.nextCounter("orderNo");
  if (i % 3 === 0) {
    const orderNo = `TC-${runId}-${i}`;
    await store.recordPayment({ orderNo, recordNo, amountFen: 100 + i, payAtMs: Date.now() });
    say(`P ${orderNo}`);
  }
  if (i % 7 === 0) {
    const vehicle = await store.upsertVehicle({ uuId: `V${String(i % 20).padStart(31, "0")}`, carNum: `沪A${String(i % 20).padStart(5, "0")}`, owner: runId, carTypeCode: 81 });
    say(`V ${vehicle.uuId}`);
  }
  // Keep the lot small: finish the oldest stays (also those left by earlier runs).
  while (store.inParkCount() > 8) {
    const oldest = store.listInPark().items[0]!;
    await store.finishStay(oldest.recordNo, { laneId: "L2", leaveAtMs: Date.now(), payableFen: 500, paidFen: 500 });
    say(`F ${oldest.recordNo}`);
  }
}
