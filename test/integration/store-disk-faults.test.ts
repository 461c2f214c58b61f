import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freshDir } from "../helpers/store-fixtures.js";

/*
 * A store directory that is full or read-only (bad input from the disk), on a real file
 * system: the child runs in a private user+mount namespace (`unshare -rm`, no privileges
 * needed) with a 512 KiB tmpfs, so ENOSPC and EROFS come from the kernel, not from a mock.
 */
const child = fileURLToPath(new URL("../helpers/disk-fault-child.ts", import.meta.url));

function namespacesAvailable(): string | undefined {
  const probe = spawnSync("unshare", ["-rm", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || mount -t tmpfs -o size=64k tmpfs "$TMPDIR"'], {
    encoding: "utf8",
    env: { ...process.env, TMPDIR: "/tmp" },
  });
  if (probe.error) return `unshare is not installed (${probe.error.message})`;
  if (probe.status !== 0) return `user namespaces with tmpfs mounts are not allowed here: ${probe.stderr.trim()}`;
  return undefined;
}

test("full and read-only disks: clear errors at start; a full disk while running raises alarms with the lane still deciding and reports kept in memory", async (t) => {
  const unavailable = namespacesAvailable();
  if (unavailable) {
    t.skip(`needs unprivileged user namespaces to mount a tiny tmpfs: ${unavailable}`);
    return;
  }
  const { dir, cleanup } = await freshDir("lk-disk-");
  try {
    const script = `mount -t tmpfs -o size=512k tmpfs "$1" && exec "${process.execPath}" --import tsx "${child}" "$1"`;
    const run = spawnSync("unshare", ["-rm", "sh", "-c", script, "sh", dir], { encoding: "utf8", cwd: process.cwd(), timeout: 60_000 });
    assert.equal(run.status, 0, `child failed: ${run.stderr.slice(-3000)}`);
    const observed = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;

    assert.equal(observed.startFull, "E_STORE_FULL", "a full disk is a clear error at start");
    assert.equal(observed.addWhileFull, "E_STORE_HELD_IN_MEMORY/E_STORE_FULL");
    assert.equal(observed.inMemoryWhileFull, true, "the stay exists for the lane's decisions");
    assert.deepEqual(observed.storeAlarmWhileFull, ["E_STORE_FULL"]);
    assert.deepEqual(observed.enqueueWhileFull, { key: "L1_2:enter", durable: false, duplicate: false }, "enqueue does not throw on a full disk");
    assert.deepEqual(observed.outboxWhileFull, { alarm: "E_STORE_FULL", unpersisted: 1, depth: 2 });
    assert.equal(observed.storeRecovered, true, "the store alarm clears once space is back");
    assert.equal(observed.outboxRecovered, true, "the held report is persisted once space is back");
    assert.deepEqual(observed.onDiskAfterRecovery, ["L1_1", "L1_2"]);
    assert.deepEqual(observed.afterRestart, { inPark: ["L1_1", "L1_2"], outbox: ["L1_1:enter", "L1_2:enter"] });
    assert.equal(observed.remounted, "ro");
    assert.equal(observed.startReadOnly, "E_STORE_READ_ONLY", "a read-only disk is a clear error at start");
    assert.equal(observed.outboxStartReadOnly, "E_STORE_READ_ONLY");
  } finally {
    await cleanup();
  }
});
