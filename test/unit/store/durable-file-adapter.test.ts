import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { FakeClock } from "../../helpers/fake-clock.js";
import { DurableFileAdapter } from "../../../src/store/durable-file-adapter.js";
import { DurableDoc } from "../../../src/store/durable-doc.js";
import { StoreErrorCode, isStoreError, type StoreWarning } from "../../../src/store/errors.js";
import { freshDir, waitUntil } from "../../helpers/store-fixtures.js";

const docSchema = z.object({ version: z.literal(1), items: z.array(z.string()) });
type Doc = z.infer<typeof docSchema>;

function adapter(dir: string, extra: { onWarning?: (w: StoreWarning) => void } = {}): DurableFileAdapter<Doc> {
  return new DurableFileAdapter<Doc>({ path: join(dir, "doc.json"), schema: docSchema, version: 1, clock: new FakeClock(), ...extra });
}

async function twoGenerations(dir: string): Promise<void> {
  const a = adapter(dir);
  assert.equal(await a.read(), null, "a fresh directory has no document");
  await a.write({ version: 1, items: ["first"] });
  await a.write({ version: 1, items: ["first", "second"] });
}

test("a write lands on disk with the previous generation kept as .prev", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await twoGenerations(dir);
    assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json"), "utf8")), { version: 1, items: ["first", "second"] });
    assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json.prev"), "utf8")), { version: 1, items: ["first"] });
    const names = await readdir(dir);
    assert.ok(names.includes("doc.json.born"), "the birth marker is written after the first durable write");
    assert.ok(!names.some((n) => n.endsWith(".tmp")), "no temp file is left behind");
    const again = adapter(dir);
    assert.deepEqual(await again.read(), { version: 1, items: ["first", "second"] });
    assert.equal(again.loadSource(), "newest");
    assert.equal(again.warnings().length, 0);
  } finally {
    await cleanup();
  }
});

test("NODE_ENV=test changes nothing: the document still goes to the file", async () => {
  const { dir, cleanup } = await freshDir();
  const before = process.env.NODE_ENV;
  process.env.NODE_ENV = "test";
  try {
    const a = adapter(dir);
    await a.read();
    await a.write({ version: 1, items: ["x"] });
    assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json"), "utf8")).items, ["x"]);
  } finally {
    if (before === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = before;
    await cleanup();
  }
});

const corruptions: Array<[string, (text: string) => string]> = [
  ["truncated", (text) => text.slice(0, Math.floor(text.length / 2))],
  ["garbage", () => "\u0000\u0000\u00ff binary garbage \u0001"],
  ["empty", () => ""],
  ["valid JSON failing the schema", () => JSON.stringify({ version: 1, items: [1, 2, 3] })],
  ["valid JSON without a version", () => JSON.stringify({ items: ["a"] })],
];

for (const [label, corrupt] of corruptions) {
  test(`a ${label} newest generation → previous generation loaded, bad file kept aside, warning raised`, async () => {
    const { dir, cleanup } = await freshDir();
    try {
      await twoGenerations(dir);
      const target = join(dir, "doc.json");
      const badText = corrupt(await readFile(target, "utf8"));
      await writeFile(target, badText);
      const seen: StoreWarning[] = [];
      const a = adapter(dir, { onWarning: (w) => seen.push(w) });
      assert.deepEqual(await a.read(), { version: 1, items: ["first"] });
      assert.equal(a.loadSource(), "previous");
      assert.equal(a.warnings().length, 1);
      const warning = a.warnings()[0]!;
      assert.equal(warning.code, "corrupt-newest");
      assert.deepEqual(seen, [warning]);
      assert.ok(warning.quarantinedAs, "the warning says where the bad file went");
      const names = await readdir(dir);
      const aside = names.filter((n) => n.startsWith("doc.json.corrupt-"));
      assert.equal(aside.length, 1);
      assert.equal(await readFile(join(dir, aside[0]!), "utf8"), badText, "the bad bytes are kept untouched");
      assert.ok(!names.includes("doc.json"), "the bad file no longer sits at the name");
      // The next write succeeds and keeps the good previous generation as .prev.
      await a.write({ version: 1, items: ["first", "third"] });
      assert.deepEqual(JSON.parse(await readFile(target, "utf8")).items, ["first", "third"]);
      assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json.prev"), "utf8")).items, ["first"]);
    } finally {
      await cleanup();
    }
  });
}

test("a missing newest file with a .prev loads .prev and warns", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await twoGenerations(dir);
    await rm(join(dir, "doc.json"));
    const a = adapter(dir);
    assert.deepEqual(await a.read(), { version: 1, items: ["first"] });
    assert.equal(a.warnings()[0]?.code, "missing-newest");
  } finally {
    await cleanup();
  }
});

test("a crash between the two renames: the complete temp file is promoted, no warning", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await twoGenerations(dir);
    // State after rename(target → prev) and before rename(temp → target).
    await writeFile(join(dir, ".doc.json.tmp"), JSON.stringify({ version: 1, items: ["first", "second", "third"] }));
    await rename(join(dir, "doc.json"), join(dir, "doc.json.prev"));
    const a = adapter(dir);
    assert.deepEqual(await a.read(), { version: 1, items: ["first", "second", "third"] });
    assert.equal(a.loadSource(), "interrupted-rotation");
    assert.equal(a.warnings().length, 0);
    assert.ok((await readdir(dir)).includes("doc.json"));
  } finally {
    await cleanup();
  }
});

test("a half-written temp file next to a good newest file is ignored and removed", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await twoGenerations(dir);
    await writeFile(join(dir, ".doc.json.tmp"), '{"version":1,"items":["fi');
    const a = adapter(dir);
    assert.deepEqual(await a.read(), { version: 1, items: ["first", "second"] });
    assert.ok(!(await readdir(dir)).includes(".doc.json.tmp"));
  } finally {
    await cleanup();
  }
});

test("never silently empty: both generations gone after the document existed → E_STORE_DATA_MISSING", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await twoGenerations(dir);
    await rm(join(dir, "doc.json"));
    await rm(join(dir, "doc.json.prev"));
    await assert.rejects(adapter(dir).read(), (e: unknown) => isStoreError(e, StoreErrorCode.DataMissing));
  } finally {
    await cleanup();
  }
});

test("both generations unusable → E_STORE_CORRUPT, never initial data", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await twoGenerations(dir);
    await writeFile(join(dir, "doc.json"), "{");
    await writeFile(join(dir, "doc.json.prev"), "nope");
    await assert.rejects(adapter(dir).read(), (e: unknown) => isStoreError(e, StoreErrorCode.Corrupt) && /kept as doc\.json\.corrupt-/.test((e as Error).message));
  } finally {
    await cleanup();
  }
});

test("a document from a newer release is refused, not downgraded", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    await writeFile(join(dir, "doc.json"), JSON.stringify({ version: 2, items: [], more: 1 }));
    await assert.rejects(adapter(dir).read(), (e: unknown) => isStoreError(e, StoreErrorCode.VersionNewer));
  } finally {
    await cleanup();
  }
});

test("migrations run step by step by the version field; a missing step is a hard error", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const v3 = z.object({ version: z.literal(3), entries: z.array(z.object({ name: z.string(), tag: z.string() })) });
    await writeFile(join(dir, "doc.json"), JSON.stringify({ version: 1, names: ["a", "b"] }));
    const migrating = new DurableFileAdapter({
      path: join(dir, "doc.json"),
      schema: v3,
      version: 3,
      migrations: {
        1: (d) => ({ version: 2, entries: (d.names as string[]).map((name) => ({ name })) }),
        2: (d) => ({ ...d, entries: (d.entries as Array<{ name: string }>).map((e) => ({ ...e, tag: "migrated" })) }),
      },
    });
    assert.deepEqual(await migrating.read(), {
      version: 3,
      entries: [
        { name: "a", tag: "migrated" },
        { name: "b", tag: "migrated" },
      ],
    });
    const gap = new DurableFileAdapter({ path: join(dir, "doc.json"), schema: v3, version: 3, migrations: { 2: (d) => d } });
    await assert.rejects(gap.read(), (e: unknown) => isStoreError(e, StoreErrorCode.Corrupt) && /no migration from it/.test((e as Error).message));
  } finally {
    await cleanup();
  }
});

test("writes are serialised and coalesced; each caller resolves after a write that includes its data", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const a = adapter(dir);
    await a.read();
    const data: Doc = { version: 1, items: [] };
    const calls: Array<Promise<void>> = [];
    for (let i = 0; i < 20; i++) {
      data.items.push(`item-${i}`);
      const index = i;
      calls.push(
        a.write(data).then(async () => {
          const onDisk = JSON.parse(await readFile(join(dir, "doc.json"), "utf8")) as Doc;
          assert.ok(onDisk.items.includes(`item-${index}`), `item-${index} is on disk when its write resolves`);
        }),
      );
    }
    await Promise.all(calls);
    const writes = a.writeStats().writes;
    assert.ok(writes >= 1 && writes <= 3, `20 concurrent writes were coalesced into ${writes}`);
  } finally {
    await cleanup();
  }
});

test("a write the disk refuses (ENOSPC) keeps the change in memory, raises an alarm and is retried until it lands", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const clock = new FakeClock();
    const doc = new DurableDoc<Doc>({ path: join(dir, "doc.json"), schema: docSchema, version: 1, clock, initial: () => ({ version: 1, items: [] }), retryMs: 1000 });
    await doc.open();
    doc.data.items.push("a");
    await doc.commit();
    // The temp file name now points at /dev/full: the kernel answers ENOSPC to the write.
    await symlink("/dev/full", join(dir, ".doc.json.tmp"));
    doc.data.items.push("b");
    await assert.rejects(doc.commit(), (e: unknown) => isStoreError(e, StoreErrorCode.HeldInMemory) && isStoreError((e as Error).cause, StoreErrorCode.Full));
    assert.equal(doc.alarm()?.code, StoreErrorCode.Full);
    assert.deepEqual(doc.data.items, ["a", "b"], "nothing is rolled back");
    assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json"), "utf8")).items, ["a"], "the last good generation is intact");
    // The write path unlinks its temp file on failure; make the disk full again.
    await rm(join(dir, ".doc.json.tmp"), { force: true });
    await symlink("/dev/full", join(dir, ".doc.json.tmp"));
    assert.equal(clock.pendingTimers(), 1, "a retry is scheduled");
    await clock.advance(1000);
    // The retry fails again and schedules the next one.
    await waitUntil(() => clock.pendingTimers() === 1, 5000, "the next retry");
    assert.equal(doc.alarm()?.code, StoreErrorCode.Full, "still failing while the disk is full");
    await rm(join(dir, ".doc.json.tmp"), { force: true });
    await clock.advance(1000);
    await waitUntil(() => doc.alarm() === null, 5000, "the alarm to clear");
    assert.equal(clock.pendingTimers(), 0, "no retry left once a write landed");
    assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json"), "utf8")).items, ["a", "b"]);
    await doc.close();
  } finally {
    await cleanup();
  }
});
