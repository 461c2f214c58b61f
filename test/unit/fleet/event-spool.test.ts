import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../../src/kernel/log.js";
import { EventSpool, spoolKey, type SpoolEntry } from "../../../src/fleet/event-spool.js";
import type { EventPayload } from "../../../src/fleet/payloads.js";

function entry(boot: number, seq: number): SpoolEntry {
  const payload: EventPayload = { v: 1, type: "vehicle-entered", seq, boot, ts: 1_700_000_000_000 + seq, data: { plate: `A${seq}` } };
  return { key: spoolKey(payload), payload };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "fleet-spool-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const keys = (entries: SpoolEntry[]): string[] => entries.map((e) => e.key);
const spoolFile = (dir: string): string => join(dir, "events.spool.jsonl");

test("appended events survive a reopen, in order", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    await spool.open();
    spool.append([entry(1, 1), entry(1, 2)]);
    spool.append([entry(1, 3)]);
    await spool.close();
    const lines = (await readFile(spoolFile(dir), "utf8")).trim().split("\n");
    assert.equal(lines.length, 3, "one JSON line per event");

    const again = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    const report = await again.open();
    assert.deepEqual(report, { loaded: 3, dropped: 0, corruptLines: 0 });
    assert.deepEqual(keys(again.peek(10)), ["1:1", "1:2", "1:3"]);
    assert.deepEqual(again.peek(1)[0]!.payload.data, { plate: "A1" });
    await again.close();
  });
});

test("consumed entries do not come back after a reopen", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    await spool.open();
    spool.append([1, 2, 3, 4].map((seq) => entry(2, seq)));
    await spool.flush();
    await spool.consume(spool.peek(2));
    assert.equal(spool.size, 2);
    await spool.close();
    const again = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    await again.open();
    assert.deepEqual(keys(again.peek(10)), ["2:3", "2:4"]);
    await again.close();
  });
});

test("consuming everything truncates the file", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    await spool.open();
    spool.append([entry(1, 1), entry(1, 2)]);
    await spool.flush();
    await spool.consume(spool.peek(5));
    assert.equal(spool.size, 0);
    assert.equal(await readFile(spoolFile(dir), "utf8"), "");
    await spool.close();
  });
});

test("over the bound the oldest are dropped and counted, on disk too", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 5, log: silentLogger() });
    await spool.open();
    spool.append([1, 2, 3, 4, 5, 6, 7, 8].map((seq) => entry(1, seq)));
    assert.equal(spool.size, 5);
    assert.equal(spool.droppedTotal, 3);
    assert.equal(spool.droppedUnreported, 3);
    assert.deepEqual(keys(spool.peek(10)), ["1:4", "1:5", "1:6", "1:7", "1:8"]);
    await spool.close();
    const again = new EventSpool({ dir, maxEntries: 5, log: silentLogger() });
    const report = await again.open();
    assert.equal(report.loaded, 5);
    assert.deepEqual(keys(again.peek(10)), ["1:4", "1:5", "1:6", "1:7", "1:8"]);
    await again.close();
  });
});

test("a file over a smaller bound at load drops its oldest with a count", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 10, log: silentLogger() });
    await spool.open();
    spool.append([1, 2, 3, 4, 5, 6].map((seq) => entry(1, seq)));
    await spool.close();
    const smaller = new EventSpool({ dir, maxEntries: 4, log: silentLogger() });
    const report = await smaller.open();
    assert.deepEqual(report, { loaded: 4, dropped: 2, corruptLines: 0 });
    assert.equal(smaller.droppedTotal, 2);
    assert.deepEqual(keys(smaller.peek(10)), ["1:3", "1:4", "1:5", "1:6"]);
    await smaller.close();
  });
});

test("a torn last line (power cut mid-write) is skipped and later appends stay readable", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    await spool.open();
    spool.append([entry(1, 1), entry(1, 2)]);
    await spool.close();
    await appendFile(spoolFile(dir), '{"k":"1:3","p":{"v":1,"type":"veh');
    const again = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    const report = await again.open();
    assert.deepEqual(report, { loaded: 2, dropped: 0, corruptLines: 1 });
    again.append([entry(1, 4)]);
    await again.close();
    const third = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    const after = await third.open();
    assert.equal(after.corruptLines, 0, "the torn tail was rewritten away, not appended after");
    assert.deepEqual(keys(third.peek(10)), ["1:1", "1:2", "1:4"]);
    await third.close();
  });
});

test("a cursor naming an entry not in the file means every entry is pending (duplicates, never loss)", async () => {
  await withDir(async (dir) => {
    await writeFile(spoolFile(dir), [entry(3, 1), entry(3, 2)].map((e) => `${JSON.stringify({ k: e.key, p: e.payload })}\n`).join(""));
    await writeFile(join(dir, "events.spool.cursor.json"), JSON.stringify({ last: "1:99" }));
    const spool = new EventSpool({ dir, maxEntries: 100, log: silentLogger() });
    const report = await spool.open();
    assert.equal(report.loaded, 2);
    await spool.close();
  });
});

test("draining thousands only rewrites the cursor, and compacts the file once mostly consumed", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 10_000, log: silentLogger() });
    await spool.open();
    spool.append(Array.from({ length: 3000 }, (_, i) => entry(1, i + 1)));
    await spool.flush();
    while (spool.size > 500) await spool.consume(spool.peek(50));
    const lines = (await readFile(spoolFile(dir), "utf8")).trim().split("\n").length;
    assert.ok(lines < 3000, `file was compacted (has ${lines} lines)`);
    assert.ok(lines >= 500, "but still holds every pending entry");
    await spool.close();
    const again = new EventSpool({ dir, maxEntries: 10_000, log: silentLogger() });
    await again.open();
    assert.equal(again.size, 500);
    assert.equal(again.peek(1)[0]!.key, "1:2501");
    await again.close();
  });
});

test("an entry dropped while it was being sent is not consumed twice", async () => {
  await withDir(async (dir) => {
    const spool = new EventSpool({ dir, maxEntries: 3, log: silentLogger() });
    await spool.open();
    spool.append([entry(1, 1), entry(1, 2), entry(1, 3)]);
    const sending = spool.peek(2); // 1:1 and 1:2 in flight
    spool.append([entry(1, 4)]); // drops 1:1
    await spool.consume(sending);
    assert.deepEqual(keys(spool.peek(10)), ["1:3", "1:4"]);
    await spool.close();
  });
});
