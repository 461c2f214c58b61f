import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { FakeClock } from "../../helpers/fake-clock.js";
import { DurableDoc } from "../../../src/store/durable-doc.js";
import { StoreErrorCode } from "../../../src/store/errors.js";
import { freshDir } from "../../helpers/store-fixtures.js";

/* The commit hook behind the store commit latency metric (docs/api.md "Metrics"). */

const schema = z.object({ version: z.literal(1), seq: z.int().min(0).default(0), items: z.record(z.string(), z.object({ n: z.int() })) });
type Doc = z.infer<typeof schema>;

test("onCommit is told of each commit once it settled, with the file, a wall time and whether it is on disk", async () => {
  const { dir, cleanup } = await freshDir();
  const told: Array<{ file: string; elapsedMs: number; ok: boolean }> = [];
  try {
    const path = join(dir, "doc.json");
    const onDisk = async (): Promise<boolean> => {
      const names = (await readdir(dir)).filter((n) => n.startsWith("doc.json.journal."));
      return names.length > 0 && (await readFile(join(dir, names[0]!), "utf8")).includes('"a"');
    };
    let pending: Promise<boolean> | undefined;
    const doc = new DurableDoc<Doc>({
      path,
      schema,
      version: 1,
      clock: new FakeClock(),
      initial: () => ({ version: 1, seq: 0, items: {} }),
      journal: true,
      onCommit: (file, elapsedMs, ok) => {
        pending = onDisk();
        told.push({ file, elapsedMs, ok });
      },
    });
    await doc.open();
    doc.set("items", "a", { n: 1 });
    await doc.commit();
    assert.equal(told.length, 1);
    assert.equal(told[0]!.file, path);
    assert.equal(told[0]!.ok, true);
    assert.ok(told[0]!.elapsedMs >= 0 && Number.isFinite(told[0]!.elapsedMs));
    assert.equal(await pending, true, "the change was on disk when the hook heard of it");
    await doc.close();
    await assert.rejects(doc.commit(), (error: { code?: string }) => error.code === StoreErrorCode.Closed);
    assert.equal(told.length, 2);
    assert.equal(told[1]!.ok, false, "a refused commit is told as not ok");
  } finally {
    await cleanup();
  }
});

test("a throwing onCommit never fails the commit", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    let calls = 0;
    const doc = new DurableDoc<Doc>({
      path: join(dir, "doc.json"),
      schema,
      version: 1,
      clock: new FakeClock(),
      initial: () => ({ version: 1, seq: 0, items: {} }),
      journal: true,
      onCommit: () => {
        calls++;
        throw new Error("a broken metrics hook");
      },
    });
    await doc.open();
    doc.set("items", "a", { n: 1 });
    await doc.commit();
    assert.equal(calls, 1);
    assert.equal(doc.status().seq, 1);
    await doc.close();
  } finally {
    await cleanup();
  }
});
