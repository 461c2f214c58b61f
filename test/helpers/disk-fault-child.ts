/**
 * Runs inside a private mount namespace on a tiny tmpfs (see
 * test/integration/store-disk-faults.test.ts), so "disk full" and "read-only" are the
 * kernel's real ENOSPC and EROFS. Prints one JSON object with what it observed.
 * Usage: disk-fault-child.ts <mountpoint>
 */
import { spawnSync } from "node:child_process";
import { openSync, writeSync, closeSync, rmSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { LotStore } from "../../src/store/lot-store.js";
import { Outbox } from "../../src/outbox/outbox.js";
import { isStoreError, type StoreError } from "../../src/store/errors.js";

const mount = process.argv[2]!;
const dir = join(mount, "store");
const ballast = join(mount, "ballast");
const observed: Record<string, unknown> = {};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const codeOf = (error: unknown) => (isStoreError(error) ? error.code : `not a StoreError: ${String(error)}`);

/** Fills the file system to the last byte. */
function fill(): void {
  const fd = openSync(ballast, "w");
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full
  }
  const one = Buffer.alloc(1, 1);
  try {
    for (;;) writeSync(fd, one);
  } catch {
    // the last bytes
  }
  closeSync(fd);
}

async function until(condition: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

// Padded past a page: a "full" file system still takes appends into the slack of a file's
// last block (tmpfs and ext4 alike), and this test wants the write that needs a new one.
const stay = (n: number) => ({ recordNo: `L1_${n}`, plate: `粤B${10000 + n}`, laneId: "L1", enterAtMs: Date.now(), extra: { note: "x".repeat(8192) } });
// 8 KiB of payload, for the same reason.
const report = (n: number) => ({ recordNo: `L1_${n}`, kind: "enter", service: "enterNotify", biz: { recordNo: `L1_${n}`, note: "x".repeat(8192) } });

// 1. Full at start: a clear error, nothing started.
fill();
observed.startFull = await new LotStore({ dir, pruneJob: false, minFreeBytes: 0 }).start().then(
  () => "started",
  (e: unknown) => codeOf(e),
);
rmSync(ballast);

// 2. Full while running: the lane keeps deciding, the report is kept in memory.
const store = new LotStore({ dir, pruneJob: false, retryMs: 100, minFreeBytes: 0 });
const outbox = new Outbox({ dir, persistRetryMs: 100, minFreeBytes: 0, sender: async () => ({ ok: false, retry: "transient", reason: "platform down" }) });
await store.start();
await outbox.start();
await store.addInPark(stay(1));
await outbox.enqueue(report(1));
fill();
observed.addWhileFull = await store.addInPark(stay(2)).then(
  () => "resolved",
  (e: unknown) => `${codeOf(e)}/${codeOf((e as StoreError).cause)}`,
);
observed.inMemoryWhileFull = store.getInPark("L1_2") !== undefined;
observed.storeAlarmWhileFull = store.alarms().map((a) => a.code);
const queued = await outbox.enqueue(report(2));
observed.enqueueWhileFull = queued;
observed.outboxWhileFull = { alarm: outbox.status().alarm?.code, unpersisted: outbox.status().unpersisted, depth: outbox.status().depth };
rmSync(ballast);
observed.storeRecovered = await until(() => store.alarms().length === 0);
observed.outboxRecovered = await until(() => outbox.status().alarm === null && outbox.status().unpersisted === 0);
// On disk without the store's help: the journal lines that added each stay.
let journalText = "";
for (const name of (await readdir(dir)).filter((n) => n.startsWith("inpark.json.journal.")).sort()) journalText += await readFile(join(dir, name), "utf8");
observed.onDiskAfterRecovery = ["L1_1", "L1_2"].filter((r) => journalText.includes(`["inPark","${r}",{`));
await outbox.stop();
await store.stop();

const again = new LotStore({ dir, pruneJob: false, minFreeBytes: 0 });
const outboxAgain = new Outbox({ dir, minFreeBytes: 0 });
await again.start();
await outboxAgain.start();
observed.afterRestart = { inPark: again.listInPark().items.map((r) => r.recordNo), outbox: outboxAgain.list().map((e) => e.key) };

// 3. Read-only at start. (Linux refuses to remount read-only while files are open for
// writing, so "read-only while running" cannot be staged here; it takes the same path as
// "full while running" above: the write fails, the change is held, the alarm is raised.)
await outboxAgain.stop();
await again.stop();
const remount = spawnSync("mount", ["-o", "remount,ro", mount], { encoding: "utf8" });
observed.remounted = remount.status === 0 ? "ro" : remount.stderr;
observed.startReadOnly = await new LotStore({ dir, pruneJob: false, minFreeBytes: 0 }).start().then(
  () => "started",
  (e: unknown) => codeOf(e),
);
observed.outboxStartReadOnly = await new Outbox({ dir, minFreeBytes: 0 }).start().then(
  () => "started",
  (e: unknown) => codeOf(e),
);

process.stdout.write(JSON.stringify(observed) + "\n");
