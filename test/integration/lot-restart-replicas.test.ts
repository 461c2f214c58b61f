import { test } from "node:test";
import assert from "node:assert/strict";
import { startAedes } from "../helpers/aedes-broker.js";
import { LotHarness } from "../helpers/lot-harness.js";

/*
 * A box restarted on its store receives the whole retained lot again (docs/mqtt.md §12.6). The
 * replicas it already holds at the same version are not written again: on a lot of thousands
 * of cars, rewriting each durably, one at a time, would keep the view stale for seconds.
 */

test("a box restarted on its store rewrites none of the replicas it holds, and its view is live and complete", async () => {
  const broker = await startAedes();
  const share = (raw: Record<string, any>, deviceId: string) => {
    raw.deviceId = deviceId;
    raw.lot.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100 };
  };
  const a = await LotHarness.create({ mutate: (raw) => share(raw, "north-box") });
  const southLanes = (raw: Record<string, any>) => {
    share(raw, "south-box");
    raw.lanes[0].id = "in2";
    raw.lanes[0].channelId = "3";
    raw.lanes[1].id = "out2";
    raw.lanes[1].channelId = "4";
  };
  let b = await LotHarness.create({ emulator: a.emulator, mutate: southLanes });
  try {
    const cars = 20;
    for (let i = 0; i < cars; i++) await a.park(`粤C${String(20000 + i)}`, 60_000);
    await b.until(() => b.app.store.inParkCount() === cars, 3000, "A's cars at B");
    await b.app.lotShare!.drained();
    const dir = b.storeDir;
    await b.stop({ keepStore: true });

    b = await LotHarness.create({ emulator: a.emulator, storeDir: dir, mutate: southLanes, start: false });
    let rewrites = 0;
    const upsert = b.app.store.upsertReplica.bind(b.app.store);
    b.app.store.upsertReplica = (record, replicaOf) => {
      rewrites++;
      return upsert(record, replicaOf);
    };
    await b.app.start();
    assert.equal(b.app.lotShare!.status().view, "live");
    assert.equal(b.app.store.inParkCount(), cars);
    assert.equal(rewrites, 0, "no replica written again");

    // A version the box does not hold yet is still written.
    await a.park("粤C29999", 60_000);
    await b.until(() => b.app.store.inParkCount() === cars + 1, 3000, "a new car at B");
    assert.equal(rewrites, 1);
  } finally {
    await b.stop();
    await a.stop();
    await broker.close();
  }
});
