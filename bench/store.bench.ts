/**
 * Store and outbox figures. One JSON line per figure:
 * - store-commit: a durable in-park record commit, p50/p99, next to the raw fsync of the same
 *   directory measured in the same run (budget: p99 ≤ raw fsync p99 + 2 ms); and the same
 *   document rewritten whole (store-snapshot-inpark), which is what lowdb alone would cost;
 * - store-commit-vs-history: finishing a stay with 1 k vs 1 M records in history (ratio ≤ 1.5);
 * - store-history-index-build, store-history-query: the plate index of 1 M history lines
 *   (built in the background), and a plate's stays through it (≤ 50 ms) next to a scan;
 * - outbox-drain: reports/s delivered to the platform emulator on loopback (≥ 500/s);
 * - store-lists-5000: lists.json size, a vehicle change (journal commit) and a whole-document
 *   write with 5,000 fixed vehicles.
 * This bench runs with the unit's node options (scripts/run-bench.mjs: the V8 flags of
 * systemd/lanekeeper.service), so its latencies include the box's small young generation.
 */
import { mkdtemp, mkdir, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measureRawFsync, percentile, report, round } from "./lib.js";
import { silentLogger } from "../src/kernel/log.js";
import { LotStore } from "../src/store/lot-store.js";
import { segmentName, utcDay } from "../src/store/history.js";
import { Outbox } from "../src/outbox/outbox.js";
import { platformOutboxSender } from "../src/outbox/platform-sender.js";
import { createPlatformClient } from "../src/platform/client.js";
import { platformConfigSchema } from "../src/platform/config.js";
import { demoCredentials, startEmulator } from "../src/platform/emulator/emulator.js";

const base = await mkdtemp(join(tmpdir(), "lk-bench-store-"));
const ms = (t0: number) => performance.now() - t0;
let seq = 0;
const stay = (lane = "L1") => {
  seq++;
  return {
    recordNo: `${lane}_${String(seq).padStart(17, "0")}`,
    plate: `粤B${String(seq % 100_000).padStart(5, "0")}`,
    laneId: lane,
    enterAtMs: Date.now(),
    carType: 9,
    carSubType: 91,
  };
};

async function newStore(name: string): Promise<LotStore> {
  const store = new LotStore({ dir: join(base, name), pruneJob: false, inParkFlushMs: 60_000 });
  await store.start();
  return store;
}

try {
  // ---- durable record commit vs raw fsync -----------------------------------------------
  {
    const store = await newStore("commit");
    // A lot with 300 cars inside: the document every new stay rewrites.
    for (let i = 0; i < 300; i++) await store.inPark.put(stay(), { durable: false });
    await store.compact();
    for (let i = 0; i < 20; i++) await store.addInPark(stay()); // warm-up
    const samples: number[] = [];
    for (let i = 0; i < 300; i++) {
      const record = stay();
      const t0 = performance.now();
      await store.addInPark(record);
      samples.push(ms(t0));
      // Keep the lot at its size: drop the record again without timing it.
      await store.inPark.delete(record.recordNo, { durable: false });
    }
    const raw = measureRawFsync(join(base, "commit"));
    const p50 = percentile(samples, 50);
    const p99 = percentile(samples, 99);
    const docBytes = (await stat(join(base, "commit", "inpark.json"))).size;
    report("store-commit", {
      what: "addInPark with 300 cars in park: journal append + fdatasync (durable when it resolves)",
      p50Ms: round(p50),
      p99Ms: round(p99),
      rawFsyncP50Ms: round(raw.p50),
      rawFsyncP99Ms: round(raw.p99),
      ratioP50: round(p50 / raw.p50, 2),
      ratioP99: round(p99 / raw.p99, 2),
      budgetP99Ms: round(raw.p99 + 2),
      withinBudget: p99 <= raw.p99 + 2,
      inParkDocBytes: docBytes,
    });
    // What the same commit costs as a whole lowdb document rewrite through the durable
    // adapter (temp + fsync + rename + dir fsync): the snapshot path, for comparison.
    const whole: number[] = [];
    for (let i = 0; i < 60; i++) {
      await store.addInPark(stay());
      const t0 = performance.now();
      await store.compact();
      whole.push(ms(t0));
    }
    report("store-snapshot-inpark", {
      what: "whole in-park document rewrite (lowdb + durable adapter), 300+ cars",
      p50Ms: round(percentile(whole, 50)),
      p99Ms: round(percentile(whole, 99)),
      ratioToRawFsyncP50: round(percentile(whole, 50) / raw.p50, 2),
      docBytes: (await stat(join(base, "commit", "inpark.json"))).size,
    });
    await store.stop();
  }

  // ---- commit cost with 1 k vs 1 M records in history -----------------------------------
  {
    const small = await newStore("history-1k");
    const large = await newStore("history-1m");
    await small.stop();
    await large.stop();
    const fillHistory = async (dir: string, lines: number): Promise<number> => {
      const historyDir = join(dir, "history");
      await mkdir(historyDir, { recursive: true });
      const dayMs = Date.now() - 30 * 86_400_000;
      const segmentBytes = 8 * 1024 * 1024;
      let written = 0;
      let segment = 0;
      let bytes = 0;
      const t0 = performance.now();
      while (written < lines) {
        segment++;
        // Four segments a day (rotated by size), each under its own name.
        const handle = await open(join(historyDir, segmentName(utcDay(dayMs + Math.floor((segment - 1) / 4) * 86_400_000), 1 + ((segment - 1) % 4))), "w");
        let chunk: string[] = [];
        let segmentSize = 0;
        while (written < lines && segmentSize < segmentBytes) {
          const n = written++;
          const line =
            JSON.stringify({
              t: "stay",
              atMs: dayMs + n,
              recordNo: `L1_${String(n).padStart(17, "0")}`,
              plate: `粤B${String(n % 100_000).padStart(5, "0")}`,
              stay: {
                recordNo: `L1_${String(n).padStart(17, "0")}`,
                plate: `粤B${String(n % 100_000).padStart(5, "0")}`,
                laneId: "L1",
                enterAtMs: dayMs + n - 3_600_000,
                vehicleType: "temporary",
                entryReport: "delivered",
                prepayments: [],
                coupons: [],
                exit: { laneId: "L2", leaveAtMs: dayMs + n, payableFen: 500, discountFen: 0, prepaidFen: 0, paidFen: 500, reason: "normal" },
                finishedAtMs: dayMs + n,
              },
            }) + "\n";
          chunk.push(line);
          segmentSize += Buffer.byteLength(line);
          if (chunk.length >= 5000) {
            await handle.write(chunk.join(""));
            chunk = [];
          }
        }
        if (chunk.length > 0) await handle.write(chunk.join(""));
        bytes += segmentSize;
        await handle.close();
      }
      report("store-history-fill", { lines, segments: segment, bytes, ms: Math.round(ms(t0)) });
      return bytes;
    };
    await fillHistory(join(base, "history-1k"), 1_000);
    await fillHistory(join(base, "history-1m"), 1_000_000);
    const stores = { "1k": await newStore("history-1k"), "1m": await newStore("history-1m") };
    // The segments above were written around the store, so they have no plate index yet: the
    // store builds it in the background at start (what a box upgraded with a year of history
    // does once). Measured on its own, before the commit figures, so it does not tint them.
    {
      const t0 = performance.now();
      await stores["1m"].history.whenIndexed();
      report("store-history-index-build", {
        what: "plate index of 1 M history lines, built in the background at start",
        segments: stores["1m"].history.segments().length,
        ms: Math.round(ms(t0)),
        built: stores["1m"].history.status().index.built,
      });
    }
    const samples: Record<"1k" | "1m", number[]> = { "1k": [], "1m": [] };
    for (const s of Object.values(stores)) for (let i = 0; i < 50; i++) await s.addInPark(stay());
    // Interleaved so machine noise hits both alike.
    for (let i = 0; i < 400; i++) {
      for (const key of ["1k", "1m"] as const) {
        const store = stores[key];
        const record = stay();
        await store.addInPark(record);
        const t0 = performance.now();
        await store.finishStay(record.recordNo, { laneId: "L2", leaveAtMs: Date.now(), payableFen: 500, paidFen: 500 });
        if (i >= 20) samples[key].push(ms(t0));
      }
    }
    const p = (key: "1k" | "1m", q: number) => percentile(samples[key], q);
    report("store-commit-vs-history", {
      what: "finishStay (in-park doc commit + durable history append)",
      p50Ms1k: round(p("1k", 50)),
      p99Ms1k: round(p("1k", 99)),
      p50Ms1M: round(p("1m", 50)),
      p99Ms1M: round(p("1m", 99)),
      ratioP50: round(p("1m", 50) / p("1k", 50), 3),
      ratioP99: round(p("1m", 99) / p("1k", 99), 3),
      budgetRatio: 1.5,
      withinBudget: p("1m", 50) / p("1k", 50) <= 1.5,
    });
    // The same question through the plate index and by a scan (the reference answer).
    const t0 = performance.now();
    const found = await stores["1m"].recentStays("粤B00042", { limit: 5 });
    const indexedMs = ms(t0);
    const history = stores["1m"].history;
    const t1 = performance.now();
    const scanned = await history.recentByPlate("粤B00042", { kind: "stay", limit: 10, index: false });
    const scanMs = ms(t1);
    const plates = Array.from({ length: 50 }, (_, i) => `粤B${String((i * 7919) % 100_000).padStart(5, "0")}`);
    const repeat: number[] = [];
    for (const plate of plates) {
      const t2 = performance.now();
      await stores["1m"].recentStays(plate, { limit: 5 });
      repeat.push(ms(t2));
    }
    report("store-history-query", {
      what: "recentStays by plate, 1 M lines, newest segments first, through the plate index",
      ms: round(indexedMs),
      p50Ms: round(percentile(repeat, 50)),
      p99Ms: round(percentile(repeat, 99)),
      scanMs: round(scanMs),
      ratioScanToIndexed: round(scanMs / indexedMs, 1),
      budgetMs: 50,
      withinBudget: indexedMs <= 50,
      found: found.length,
      sameAsScan: JSON.stringify(found.map((s) => s.recordNo)) === JSON.stringify([...new Set(scanned.map((l) => l.recordNo))].slice(0, 5)),
    });
    for (const s of Object.values(stores)) await s.stop();
    await rm(join(base, "history-1m"), { recursive: true, force: true });
  }

  // ---- outbox drain rate to the emulator on loopback ------------------------------------
  {
    const emulator = await startEmulator({ log: silentLogger() });
    const config = platformConfigSchema.parse({ baseUrl: emulator.url, pid: demoCredentials.pid, key: demoCredentials.key, client: { connections: 8 } });
    const client = createPlatformClient({
      config,
      clock: { now: () => Date.now(), monotonicMs: () => performance.now(), setTimeout: (f, t) => ({ id: Number(setTimeout(f, t)) }), clearTimeout: () => undefined },
      log: silentLogger(),
    });
    const dir = join(base, "outbox");
    await mkdir(dir);
    const outbox = new Outbox({ dir });
    await outbox.start();
    const reports = 3000;
    const enqueueSamples: number[] = [];
    for (let i = 0; i < reports / 2; i++) {
      const recordNo = `L1_${String(i).padStart(17, "0")}`;
      const enterTime = "2026-06-01 08:00:00";
      let t0 = performance.now();
      await outbox.enqueue({
        recordNo,
        kind: "enter",
        service: "enterNotify",
        biz: { parkCode: "TEST/1P1", recordNo, plateNum: "粤B12345", plateColor: 1, carType: 9, carSubType: 91, enterTime, inChannelid: "1" },
      });
      enqueueSamples.push(ms(t0));
      t0 = performance.now();
      await outbox.enqueue({
        recordNo,
        kind: "leave",
        service: "leaveNotify",
        biz: {
          parkCode: "TEST/1P1",
          recordNo,
          plateNum: "粤B12345",
          carType: 9,
          carSubType: 91,
          enterTime,
          leaveTime: "2026-06-01 09:00:00",
          payableFee: 500,
          discountFee: 0,
          prepaidFee: 0,
          paidFee: 500,
          payType: 4,
          payTime: "2026-06-01 09:00:00",
          orderNo: "",
          outChannelid: "2",
          releaseType: 0,
          operator: "",
        },
      });
      enqueueSamples.push(ms(t0));
    }
    const t0 = performance.now();
    outbox.setSender(platformOutboxSender(client));
    while (outbox.status().depth > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const seconds = ms(t0) / 1000;
    const stats = emulator.stats();
    report("outbox-drain", {
      reports,
      seconds: round(seconds, 3),
      reportsPerS: Math.round(reports / seconds),
      budgetPerS: 500,
      withinBudget: reports / seconds >= 500,
      maxInFlight: 8,
      emulatorReceived: stats.received,
      emulatorDuplicates: stats.duplicates,
      enqueueP50Ms: round(percentile(enqueueSamples, 50)),
      enqueueP99Ms: round(percentile(enqueueSamples, 99)),
    });
    await outbox.stop();
    await client.close();
    await emulator.stop();
  }

  // ---- lists.json with 5,000 fixed vehicles ---------------------------------------------
  {
    const store = await newStore("lists");
    for (let i = 0; i < 5000; i++) {
      await store.vehicles.put(
        {
          id: i + 1,
          uuId: `${String(i).padStart(32, "0")}`,
          carNum: `粤B${String(i).padStart(5, "0")}`,
          owner: "张三",
          carTypeCode: 81,
          carGroupID: 1 + (i % 10),
          carMMoneyFen: 20050,
          timeStartMs: Date.UTC(2026, 0, 1),
          timeEndMs: Date.UTC(2026, 11, 31, 23, 59, 59),
          tel: "13800000000",
          carSpaceNum: `B2-${String(i % 1000).padStart(3, "0")}`,
          createdAtMs: Date.now(),
          updatedAtMs: Date.now(),
        },
        { durable: false },
      );
    }
    await store.flush();
    const writesBefore = store.status().documents[1]!.writes;
    const samples: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await store.upsertVehicle({ uuId: `${String(i).padStart(32, "0")}`, carNum: `粤B${String(i).padStart(5, "0")}`, owner: "李四", carTypeCode: 81 });
      samples.push(ms(t0));
    }
    await store.compact();
    const snapshotsDuringCommits = store.status().documents[1]!.writes - writesBefore - 1;
    const snapshots: number[] = [];
    for (let i = 0; i < 10; i++) {
      await store.upsertVehicle({ uuId: `${String(i).padStart(32, "0")}`, carNum: `粤B${String(i).padStart(5, "0")}`, owner: "王五", carTypeCode: 81 });
      const t0 = performance.now();
      await store.compact();
      snapshots.push(ms(t0));
    }
    // The same change with no snapshot running, and the disk's own fsync, for scale.
    const quiet: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await store.upsertVehicle({ uuId: `${String(i).padStart(32, "0")}`, carNum: `粤B${String(i).padStart(5, "0")}`, owner: "赵六", carTypeCode: 81 });
      quiet.push(ms(t0));
    }
    const raw = measureRawFsync(join(base, "lists"));
    const bytes = await stat(join(base, "lists", "lists.json")).then((s) => s.size);
    let t0 = performance.now();
    store.vehiclesByPlate("粤B04999");
    const indexBuildMs = ms(t0);
    t0 = performance.now();
    const hit = store.vehiclesByPlate("粤B04998");
    const lookupMs = ms(t0);
    report("store-lists-5000", {
      vehicles: store.vehicles.count(),
      docBytes: bytes,
      what: "a vehicle change (journal commit) right after a bulk sync, while the list's snapshot runs in the background; then with none running",
      commitP50Ms: round(percentile(samples, 50)),
      commitP99Ms: round(percentile(samples, 99)),
      commitMaxMs: round(Math.max(...samples)),
      commitP99MsNoSnapshot: round(percentile(quiet, 99)),
      budgetCommitP99Ms: 5,
      withinBudget: percentile(samples, 99) <= 5,
      nodeOptions: process.execArgv.filter((flag) => flag.startsWith("--max-")).join(" "),
      rawFsyncP50Ms: round(raw.p50),
      rawFsyncP99Ms: round(raw.p99),
      wholeDocWritesDuringCommits: snapshotsDuringCommits,
      wholeDocWriteP50Ms: round(percentile(snapshots, 50)),
      wholeDocWriteP99Ms: round(percentile(snapshots, 99)),
      plateLookupFirstMs: round(indexBuildMs, 3),
      plateLookupMs: round(lookupMs, 4),
      found: hit.length,
    });
    await store.stop();
  }
} finally {
  await rm(base, { recursive: true, force: true });
}
