/**
 * One lot, 8 boxes, 5,000 cars on one real mosquitto (MQTT 5, loopback). One JSON line per figure:
 * - lot-fill: 5,000 stays entered round-robin at the 8 boxes until every box holds all of them;
 * - lot-entry-visible: a car entered at one box → its replica durable at each of the other 7,
 *   p50/p99 ms over 200 cars, apart for the boxes with a store on tmpfs and the one on disk;
 * - lot-restart-view: a box stopped and started again → its lot view live and complete, ms
 *   (budget ≤ 2 s), for a box with its store on tmpfs and for the one on disk;
 * - lot-broker: mosquitto's VmRSS before the boxes and after the 5,000 cars, and the retained
 *   bytes per car (payloads of the retained stays / cars).
 *
 * The boxes are LotShare instances in this process, each on a real LotStore of its own. Seven
 * stores sit on tmpfs (/dev/shm, when there is one): with eight stores on one disk every
 * replica is a journal fdatasync, 40,000 of them on a disk shared by eight boxes, which
 * measures the disk eight times over rather than the lot. The eighth box's store is on the
 * disk (the temp dir), so its figures include the durable write; the raw fsync of that disk is
 * reported beside them.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "mqtt";
import { measureRawFsync, percentile, report, round } from "./lib.js";
import { findMosquitto, startMosquitto, type Mosquitto } from "../test/helpers/mosquitto.js";
import { LotShare } from "../src/lot/lot-share.js";
import { lotShareConfigSchema } from "../src/lot/config.js";
import { lotTopics } from "../src/lot/lot-topics.js";
import { mqttConfigSchema } from "../src/fleet/config.js";
import { LotStore } from "../src/store/lot-store.js";
import type { InParkRecord } from "../src/store/records.js";
import { stay } from "../test/helpers/section4-fixtures.js";
import { systemClock } from "../src/kernel/clock.js";
import { silentLogger } from "../src/kernel/log.js";

const BOXES = 8;
const CARS = 5000;
const PROBE_CARS = 200;
const PARK = "BENCH/LOT";
const ROOT = "lanekeeper/v1";
/** Index of the box with a real store. */
const REAL = BOXES - 1;

interface Box {
  deviceId: string;
  share: LotShare;
  /** The stays this box's store holds. */
  count(): number;
  enter(record: InParkRecord): Promise<unknown>;
  /** Told of every replica written (after it is durable, for the real store). */
  seen: ((recordNo: string) => void) | undefined;
}

/** A temporary car of the section-4 fixtures, entered at `box`'s lane. */
function car(box: number, seq: number, enterAtMs: number): InParkRecord {
  return { ...stay, recordNo: `in${box + 1}_${String(seq).padStart(6, "0")}`, plate: `粤B${String(seq).padStart(5, "0")}`, laneId: `in${box + 1}`, enterAtMs };
}

/** VmRSS of the mosquitto process listening on `port`, in KiB (found through its config file). */
async function brokerRssKb(port: number): Promise<number | undefined> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
      if (!args[0]?.endsWith("mosquitto")) continue;
      const conf = await readFile(args[args.indexOf("-c") + 1]!, "utf8");
      if (!conf.includes(`listener ${port} `)) continue;
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    } catch {
      // a process that went away, or not ours
    }
  }
  return undefined;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function retainedStayBytes(url: string): Promise<{ messages: number; payloadBytes: number; topicBytes: number }> {
  const client = connect(url, { protocolVersion: 5, clientId: "bench-retained", clean: true });
  await new Promise((resolve) => client.once("connect", resolve));
  let messages = 0;
  let payloadBytes = 0;
  let topicBytes = 0;
  let last = performance.now();
  client.on("message", (topic, payload, packet) => {
    if (!packet.retain) return;
    messages++;
    payloadBytes += payload.length;
    topicBytes += Buffer.byteLength(topic);
    last = performance.now();
  });
  await client.subscribeAsync(lotTopics(ROOT, PARK).staysFilter, { qos: 0 });
  while (performance.now() - last < 500) await new Promise((resolve) => setTimeout(resolve, 50));
  await client.endAsync();
  return { messages, payloadBytes, topicBytes };
}

async function run(broker: Mosquitto, dir: string): Promise<void> {
  const mqtt = mqttConfigSchema.parse({ url: broker.url, protocolVersion: 5 });
  const share = lotShareConfigSchema.parse({ enabled: true, startWaitMs: 10_000 });
  const rssBeforeKb = await brokerRssKb(broker.port);
  const stores: LotStore[] = [];
  const boxes: Box[] = [];
  const makeShare = (i: number) =>
    new LotShare({
      share,
      mqtt,
      deviceId: `box-${i + 1}`,
      parkCode: PARK,
      lanes: [
        { laneId: `in${i + 1}`, direction: "in", channelId: String(2 * i + 1) },
        { laneId: `out${i + 1}`, direction: "out", channelId: String(2 * i + 2) },
      ],
      store: stores[i]!,
      clock: systemClock,
      log: silentLogger(),
    });
  const memoryDir = existsSync("/dev/shm") ? await mkdtemp("/dev/shm/lk-lot-bench-") : dir;
  for (let i = 0; i < BOXES; i++) {
    const store = new LotStore({ dir: join(i === REAL ? dir : memoryDir, `box-${i + 1}`), clock: systemClock, log: silentLogger() });
    await store.start();
    stores.push(store);
    const box: Box = { deviceId: `box-${i + 1}`, share: makeShare(i), count: () => store.inParkCount(), enter: (record) => store.addInPark(record), seen: undefined };
    // Told once the replica is durable.
    const upsert = store.upsertReplica.bind(store);
    store.upsertReplica = (record, replicaOf) =>
      upsert(record, replicaOf).then((stored) => {
        box.seen?.(record.recordNo);
        return stored;
      });
    boxes.push(box);
  }
  await Promise.all(boxes.map((box) => box.share.start()));

  // ---- fill
  const t0 = performance.now();
  const now = Date.now();
  const entering: Array<Promise<unknown>> = [];
  for (let seq = 0; seq < CARS; seq++) entering.push(boxes[seq % BOXES]!.enter(car(seq % BOXES, seq, now - (CARS - seq) * 1000)));
  await Promise.all(entering);
  await until(() => boxes.every((box) => box.count() === CARS), 110_000, `every box holding ${CARS} stays`);
  const fillMs = performance.now() - t0;
  await Promise.all(boxes.map((box) => box.share.drained()));
  report("lot-fill", { boxes: BOXES, cars: CARS, wallMs: round(fillMs, 0), diskStoreBox: boxes[REAL]!.deviceId });

  // ---- entry → visible at the other 7
  const memoryMs: number[] = [];
  const realMs: number[] = [];
  for (let n = 0; n < PROBE_CARS; n++) {
    const at = n % BOXES;
    const record = car(at, CARS + n, Date.now());
    const start = performance.now();
    let pending = BOXES - 1;
    for (const [i, box] of boxes.entries()) {
      if (i === at) continue;
      box.seen = (recordNo) => {
        if (recordNo !== record.recordNo) return;
        box.seen = undefined;
        (i === REAL ? realMs : memoryMs).push(performance.now() - start);
        pending--;
      };
    }
    await boxes[at]!.enter(record);
    await until(() => pending === 0, 5000, `car ${record.recordNo} at every other box`);
  }
  const fig = (samples: number[]) => ({ samples: samples.length, p50Ms: round(percentile(samples, 50), 2), p99Ms: round(percentile(samples, 99), 2) });
  const fsync = measureRawFsync(dir);
  report("lot-entry-visible", { tmpfsStoreBoxes: fig(memoryMs), diskStoreBox: fig(realMs), rawFsyncP50Ms: round(fsync.p50, 2), rawFsyncP99Ms: round(fsync.p99, 2) });

  // ---- broker memory and retained bytes
  const total = CARS + PROBE_CARS;
  const rssAfterKb = await brokerRssKb(broker.port);
  const retained = await retainedStayBytes(broker.url);
  report("lot-broker", {
    cars: total,
    rssBeforeKb,
    rssAfterKb,
    rssPerCarBytes: rssBeforeKb !== undefined && rssAfterKb !== undefined ? round(((rssAfterKb - rssBeforeKb) * 1024) / total, 0) : undefined,
    retainedStays: retained.messages,
    retainedBytesPerCar: round(retained.payloadBytes / total, 0),
    topicBytesPerCar: round(retained.topicBytes / total, 0),
  });

  // ---- a restarted box: stop, start again on its store, until its view is live and complete
  for (const i of [0, REAL]) {
    const box = boxes[i]!;
    await box.share.stop();
    box.share = makeShare(i);
    const start = performance.now();
    await box.share.start();
    await until(() => box.share.status().view === "live" && box.share.view.inPark().length === total, 30_000, `${box.deviceId} live again`);
    const ms = performance.now() - start;
    report("lot-restart-view", {
      box: box.deviceId,
      store: i === REAL ? "disk" : "tmpfs",
      stays: total,
      quietMs: share.quietMs,
      ms: round(ms, 0),
      budgetMs: 2000,
      withinBudget: ms <= 2000,
    });
  }

  await Promise.all(boxes.map((box) => box.share.stop()));
  for (const store of stores) await store.stop();
  if (memoryDir !== dir) await rm(memoryDir, { recursive: true, force: true });
}

const binary = findMosquitto();
if (!binary) {
  report("lot-fill", { skipped: "mosquitto not installed" });
} else {
  // Queued QoS 1 messages per session: the default 1000 is less than one lot's retained burst.
  const broker = await startMosquitto(binary, { extraConfig: ["max_queued_messages 100000"] });
  const dir = await mkdtemp(join(tmpdir(), "lk-lot-bench-"));
  try {
    await run(broker, dir);
  } finally {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  }
}
