import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FakeClock } from "../../helpers/fake-clock.js";
import { History, segmentName, utcDay, type HistoryOptions } from "../../../src/store/history.js";
import { freshDir } from "../../helpers/store-fixtures.js";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 10, 12, 0, 0);
const FLOOR = Date.UTC(2026, 0, 1);

async function withHistory(
  run: (h: History, ctx: { dir: string; clock: FakeClock; make: (o?: Partial<HistoryOptions>) => Promise<History> }) => Promise<void>,
  options: Partial<HistoryOptions> = {},
): Promise<void> {
  const { dir, cleanup } = await freshDir();
  const clock = new FakeClock(T0);
  const opened: History[] = [];
  const make = async (o: Partial<HistoryOptions> = {}): Promise<History> => {
    const h = new History({ dir: join(dir, "history"), clock, clockFloorMs: FLOOR, ...options, ...o });
    await h.open();
    opened.push(h);
    return h;
  };
  try {
    await run(await make(), { dir: join(dir, "history"), clock, make });
  } finally {
    for (const h of opened) await h.close();
    await cleanup();
  }
}

test("segments rotate by size and by UTC day; a clock going backwards never names a segment backwards", async () => {
  await withHistory(
    async (h, { dir, clock }) => {
      const day0 = utcDay(T0);
      for (let i = 0; i < 30; i++) await h.append({ t: "event", atMs: clock.now(), plate: "粤B00001", n: i, pad: "x".repeat(100) }, true);
      const sizeRotated = (await readdir(dir)).filter((n) => n.endsWith(".jsonl")).sort();
      assert.ok(sizeRotated.length >= 3, `rotated by size into ${sizeRotated.length} segments`);
      assert.ok(sizeRotated.every((n) => n.startsWith(`history-${day0}-`)));
      for (const name of sizeRotated) {
        const text = await readFile(join(dir, name), "utf8");
        assert.ok(Buffer.byteLength(text) <= 1024 || text.split("\n").length === 2, `${name} stays under the size limit unless one line is bigger`);
      }
      clock.jump(DAY);
      await h.append({ t: "event", atMs: clock.now() }, true);
      assert.equal(h.currentSegment(), segmentName(utcDay(T0 + DAY), 1), "a new day starts a new segment");
      clock.jump(-2 * DAY);
      await h.append({ t: "event", atMs: clock.now() }, true);
      assert.equal(h.currentSegment(), segmentName(utcDay(T0 + DAY), 1), "the clock went back; the name did not");
    },
    { segmentMaxBytes: 1024 },
  );
});

test("concurrent durable appends share fsyncs (group commit)", async () => {
  await withHistory(async (h, { clock }) => {
    await h.append({ t: "event", atMs: clock.now() }, true);
    const before = h.status().syncs;
    await Promise.all(Array.from({ length: 50 }, (_, i) => h.append({ t: "stay", atMs: clock.now(), recordNo: `R${i}` }, true)));
    const used = h.status().syncs - before;
    assert.ok(used >= 1 && used < 50, `50 concurrent durable appends used ${used} fsyncs`);
  });
});

test("a torn last line from a crash is cut at open and appends continue on a clean line", async () => {
  await withHistory(async (h, { dir, clock, make }) => {
    await h.append({ t: "stay", atMs: clock.now(), plate: "粤B11111", recordNo: "R1" }, true);
    const name = h.currentSegment()!;
    await h.close();
    await appendFile(join(dir, name), '{"t":"stay","atMs":1,"plate":"粤B2');
    const again = await make();
    assert.equal(again.warnings()[0]?.code, "torn-tail");
    await again.append({ t: "stay", atMs: clock.now(), plate: "粤B22222", recordNo: "R2" }, true);
    const lines = (await readFile(join(dir, name), "utf8")).trimEnd().split("\n");
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { recordNo: string }).recordNo),
      ["R1", "R2"],
    );
  });
});

test("recentByPlate scans newest segments first and stops at its bounds", async () => {
  await withHistory(
    async (h, { clock }) => {
      for (let d = 0; d < 5; d++) {
        for (let i = 0; i < 20; i++) await h.append({ t: "stay", atMs: clock.now(), plate: i % 2 === 0 ? "粤B12345" : "粤B99999", recordNo: `D${d}-${i}` }, false);
        clock.jump(DAY);
      }
      await h.sync();
      const newest = await h.recentByPlate("粤B12345", { limit: 3 });
      assert.deepEqual(
        newest.map((l) => l.recordNo),
        ["D4-18", "D4-16", "D4-14"],
      );
      const bounded = await h.recentByPlate("粤B12345", { limit: 100, maxSegments: 2 });
      assert.equal(bounded.length, 20, "two segments of ten matches each");
      assert.ok(bounded.every((l) => l.recordNo!.startsWith("D4") || l.recordNo!.startsWith("D3")));
      assert.equal((await h.recentByPlate("粤B00000")).length, 0);
      // Only segments of the UTC days since sinceMs are read (days 3 and 4 of 0..4).
      const since = await h.recentByPlate("粤B12345", { limit: 100, sinceMs: T0 + 3 * DAY });
      assert.equal(since.length, 20);
      assert.ok(since.every((l) => l.recordNo!.startsWith("D4") || l.recordNo!.startsWith("D3")));
    },
    { segmentMaxBytes: 1024 * 1024 },
  );
});

async function seedDays(dir: string, days: number[]): Promise<void> {
  for (const d of days) await writeFile(join(dir, segmentName(utcDay(T0 + d * DAY), 1)), JSON.stringify({ t: "event", atMs: T0 + d * DAY }) + "\n");
}

test("prune removes segments older than the retention, deciding by names, never the current one", async () => {
  const { dir, cleanup } = await freshDir();
  const clock = new FakeClock(T0);
  const history = join(dir, "history");
  const h = new History({ dir: history, clock, retentionDays: 10, clockFloorMs: FLOOR });
  try {
    await h.open(); // creates the directory and today's segment
    await h.close();
    await seedDays(history, [-30, -12, -11, -10, -9, -1]);
    const again = new History({ dir: history, clock, retentionDays: 10, clockFloorMs: FLOOR });
    await again.open();
    // The sealed segments get their plate index in the background; pruning takes it along.
    await again.whenIndexed();
    assert.deepEqual((await readdir(history)).filter((n) => n.endsWith(".idx")).length, 6);
    const result = await again.prune();
    assert.equal(result.refused, undefined);
    assert.deepEqual(
      result.removed,
      [-30, -12, -11].map((d) => segmentName(utcDay(T0 + d * DAY), 1)),
    );
    const left = (await readdir(history)).sort();
    const kept = [-10, -9, -1, 0].map((d) => segmentName(utcDay(T0 + d * DAY), 1));
    assert.deepEqual(
      left.filter((n) => n.endsWith(".jsonl")),
      kept,
    );
    assert.deepEqual(
      left.filter((n) => n.endsWith(".idx")),
      kept.slice(0, 3).map((n) => n.replace(/\.jsonl$/, ".idx")),
      "each pruned segment's index went with it",
    );
    await again.close();
  } finally {
    await cleanup();
  }
});

test("prune refuses by a wrong clock: before the build floor, before the newest segment, or not yet synchronised", async () => {
  await withHistory(async (h, { dir, clock, make }) => {
    await h.close();
    await seedDays(dir, [-400, -1]);
    const early = await make({ retentionDays: 10 });
    clock.jump(-3 * DAY); // fake-hwclock restored an old time: earlier than the newest segment
    const behind = await early.prune();
    assert.match(behind.refused ?? "", /earlier than the newest history segment/);
    clock.jump(-3000 * DAY); // 1970-ish
    const beforeFloor = await early.prune();
    assert.match(beforeFloor.refused ?? "", /build-time floor/);
    clock.jump(3003 * DAY);
    const untrusted = await make({ retentionDays: 10, clockTrusted: () => false });
    assert.match((await untrusted.prune()).refused ?? "", /not synchronised/);
    assert.equal((await readdir(dir)).filter((n) => n.endsWith(".jsonl")).length, 3, "nothing was removed by any refused run");
    assert.ok(
      early.warnings().some((w) => w.code === "prune-refused"),
      "refusals are visible",
    );
  });
});

test("a forward clock jump (and the cron catch-up after it) does not age the history out", async () => {
  await withHistory(async (h, { dir, clock, make }) => {
    await h.close();
    await seedDays(dir, [-40, -5, -2]);
    let run: (() => void) | undefined;
    let stopped = false;
    const history = await make({
      retentionDays: 10,
      scheduler: (expression, fn) => {
        assert.equal(expression, "23 3 * * *");
        run = fn;
        return { stop: () => (stopped = true) };
      },
    });
    await history.startPruneJob();
    clock.jump(5 * 365 * DAY); // NTP "corrects" to a wildly wrong future
    run!(); // what a cron catch-up would do
    await history.prune(); // joins the run in progress
    const left = (await readdir(dir)).sort();
    assert.ok(!left.includes(segmentName(utcDay(T0 - 40 * DAY), 1)), "really old data still goes");
    assert.ok(left.includes(segmentName(utcDay(T0 - 5 * DAY), 1)), "retention counts from the newest data, not from the jumped clock");
    assert.ok(left.includes(segmentName(utcDay(T0 - 2 * DAY), 1)));
    await history.close();
    assert.equal(stopped, true, "the cron job stops with the history");
  });
});

test("the built-in daily job prunes at 03:23 UTC, once a day, and is released on close", async () => {
  await withHistory(async (h, { clock }) => {
    await Promise.all([h.startPruneJob(), h.startPruneJob()]);
    await h.startPruneJob(); // idempotent once scheduled
    assert.equal(h.status().lastPrune, undefined);
    // T0 is 12:00 UTC: the next run is 15 h 23 min away.
    await clock.advance(15 * 3_600_000 + 22 * 60_000);
    assert.equal(h.status().lastPrune, undefined, "not before 03:23");
    await clock.advance(60_000);
    await h.prune(); // joins the run in progress, if any
    const first = h.status().lastPrune?.atMs;
    assert.ok(first !== undefined && new Date(first).getUTCHours() === 3 && new Date(first).getUTCMinutes() === 23, `ran at ${first}`);
    await clock.advance(DAY - 60_000);
    assert.equal(h.status().lastPrune?.atMs, first, "once a day");
    await clock.advance(60_000);
    assert.equal(h.status().lastPrune?.atMs, first + DAY);
    await h.close();
    assert.equal(clock.pendingTimers(), 0, "no timer is left behind");
  });
});
