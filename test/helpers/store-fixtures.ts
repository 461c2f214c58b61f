import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LotStore } from "../../src/store/lot-store.js";
import { FakeClock } from "./fake-clock.js";

/** A fresh directory under the OS temp dir, removed by the returned cleanup. */
export async function freshDir(prefix = "lk-store-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls `condition` (real time) until it holds; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * A started LotStore on a fresh directory and a fake clock at `t0`. `reopen` stops it and opens
 * the same directory again (a restart); every store opened is stopped and the directory removed
 * after `run`.
 */
export async function withLotStore(t0: number, run: (store: LotStore, reopen: () => Promise<LotStore>) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await freshDir();
  const clock = new FakeClock(t0);
  const stores: LotStore[] = [];
  const open = async () => {
    const store = new LotStore({ dir, clock, pruneJob: false });
    await store.start();
    stores.push(store);
    return store;
  };
  try {
    const store = await open();
    await run(store, async () => {
      await store.stop();
      return open();
    });
  } finally {
    for (const s of stores) await s.stop();
    await cleanup();
  }
}
