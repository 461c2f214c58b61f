import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { silentLogger } from "../../../src/kernel/log.js";
import { JsonStateFile } from "../../../src/fleet/state-file.js";
import { SeenIds } from "../../../src/fleet/seen-ids.js";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "fleet-state-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const counterSchema = z.strictObject({ boot: z.int() });

test("a state file round-trips and keeps the previous generation", async () => {
  await withDir(async (dir) => {
    const file = new JsonStateFile(join(dir, "boot.json"), counterSchema, silentLogger());
    assert.equal(await file.read(), undefined);
    await file.write({ boot: 1 });
    await file.write({ boot: 2 });
    assert.deepEqual(await file.read(), { boot: 2 });
    assert.deepEqual((await readdir(dir)).sort(), ["boot.json", "boot.json.prev"]);
  });
});

test("a torn newest file falls back to the previous generation with a warning", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "boot.json");
    const file = new JsonStateFile(path, counterSchema, silentLogger());
    await file.write({ boot: 6 });
    await file.write({ boot: 7 });
    await writeFile(path, '{"boot": 8');
    const reread = new JsonStateFile(path, counterSchema, silentLogger());
    assert.deepEqual(await reread.read(), { boot: 6 });
    assert.match(reread.warning ?? "", /not valid JSON.*previous generation/);
    assert.ok(
      (await readdir(dir)).some((name) => name.startsWith("boot.json.corrupt-")),
      "the bad file is quarantined, not deleted",
    );
  });
});

test("a file that does not match its schema is not trusted", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "boot.json");
    await writeFile(path, JSON.stringify({ boot: "seven" }));
    const file = new JsonStateFile(path, counterSchema, silentLogger());
    assert.equal(await file.read(), undefined);
    assert.match(file.warning ?? "", /schema/);
  });
});

test("seen command ids persist, are pruned after their retention, and outlive a later expiresAt", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "command-ids.json");
    const t0 = Date.UTC(2024, 0, 1);
    const hour = 3_600_000;
    const ids = new SeenIds(path, silentLogger(), { retainMs: 24 * hour });
    await ids.load(t0);
    await ids.remember("a", "open", t0, undefined);
    await ids.remember("b", "open", t0, t0 + 48 * hour);
    await ids.settle("a", "ok");

    const reloaded = new SeenIds(path, silentLogger(), { retainMs: 24 * hour });
    await reloaded.load(t0 + hour);
    assert.equal(reloaded.get("a")?.status, "ok");
    assert.equal(reloaded.get("b")?.status, "running");

    const dayLater = new SeenIds(path, silentLogger(), { retainMs: 24 * hour });
    await dayLater.load(t0 + 25 * hour);
    assert.equal(dayLater.get("a"), undefined, "forgotten after 24 h");
    assert.ok(dayLater.get("b"), "kept while its command could still be delivered");
  });
});

test("seen ids are bounded: the oldest are forgotten first", async () => {
  await withDir(async (dir) => {
    const ids = new SeenIds(join(dir, "ids.json"), silentLogger(), { maxIds: 3 });
    const t0 = Date.UTC(2024, 0, 1);
    await ids.load(t0);
    for (let i = 0; i < 5; i++) await ids.remember(`id-${i}`, "x", t0 + i, undefined);
    assert.equal(ids.size, 3);
    assert.equal(ids.get("id-0"), undefined);
    assert.equal(ids.get("id-1"), undefined);
    assert.ok(ids.get("id-4"));
  });
});
