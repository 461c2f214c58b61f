import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { z } from "zod";
import { FakeClock } from "../../helpers/fake-clock.js";
import { DurableDoc, type DurableDocOptions } from "../../../src/store/durable-doc.js";
import { freshDir } from "../../helpers/store-fixtures.js";

const schema = z.object({ version: z.literal(1), seq: z.int().min(0).default(0), items: z.record(z.string(), z.object({ n: z.int() })) });
type Doc = z.infer<typeof schema>;

function makeDoc(dir: string, options: Partial<DurableDocOptions<Doc>> = {}): DurableDoc<Doc> {
  return new DurableDoc<Doc>({
    path: join(dir, "doc.json"),
    schema,
    version: 1,
    clock: new FakeClock(),
    initial: () => ({ version: 1, seq: 0, items: {} }),
    journal: true,
    ...options,
  });
}

const journals = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith("doc.json.journal.")).sort();

test("journal mode: a commit is one journal append, not a rewrite; a restart replays it", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const doc = makeDoc(dir);
    await doc.open();
    doc.set("items", "a", { n: 1 });
    await doc.commit();
    doc.set("items", "b", { n: 2 });
    doc.del("items", "a");
    await doc.commit();
    assert.equal(doc.status().writes, 0, "no whole-document write");
    assert.equal(doc.status().seq, 2);
    const lines = (await readFile(join(dir, (await journals(dir))[0]!), "utf8")).trimEnd().split("\n");
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)),
      [
        { s: 1, o: [["items", "a", { n: 1 }]] },
        {
          s: 2,
          o: [
            ["items", "b", { n: 2 }],
            ["items", "a"],
          ],
        },
      ],
    );
    await doc.close();
    const again = makeDoc(dir);
    await again.open();
    assert.deepEqual(again.data.items, { b: { n: 2 } });
    again.set("items", "c", { n: 3 });
    await again.commit();
    assert.equal(again.status().seq, 3, "the sequence continues");
    await again.snapshot();
    assert.deepEqual(JSON.parse(await readFile(join(dir, "doc.json"), "utf8")), { version: 1, seq: 3, items: { b: { n: 2 }, c: { n: 3 } } });
    await again.close();
  } finally {
    await cleanup();
  }
});

test("concurrent commits share one fdatasync and each resolves after its own line is durable", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const doc = makeDoc(dir);
    await doc.open();
    const commits = Array.from({ length: 30 }, (_, i) => {
      doc.set("items", `k${i}`, { n: i });
      return doc.commit().then(async () => (await readFile(join(dir, (await journals(dir)).at(-1)!), "utf8")).includes(`"k${i}"`));
    });
    assert.deepEqual(await Promise.all(commits), Array(30).fill(true));
    await doc.close();
  } finally {
    await cleanup();
  }
});

test("snapshots bound the journal; old journal files go once both generations cover them", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const doc = makeDoc(dir, { snapshotAfterBytes: 200 });
    await doc.open();
    for (let i = 0; i < 60; i++) {
      doc.set("items", `k${i % 7}`, { n: i });
      await doc.commit();
    }
    await doc.snapshot();
    assert.ok(doc.status().writes >= 5, `snapshots taken: ${doc.status().writes}`);
    assert.ok((await journals(dir)).length <= 3, `journal files left: ${(await journals(dir)).join(", ")}`);
    await doc.close();
    const again = makeDoc(dir);
    await again.open();
    assert.deepEqual(Object.fromEntries(Object.entries(again.data.items).map(([k, v]) => [k, v.n])), { k0: 56, k1: 57, k2: 58, k3: 59, k4: 53, k5: 54, k6: 55 });
    await again.close();
  } finally {
    await cleanup();
  }
});

test("a torn journal tail is ignored; an unreadable line in the middle is skipped with a warning", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const doc = makeDoc(dir);
    await doc.open();
    doc.set("items", "a", { n: 1 });
    await doc.commit();
    await doc.close();
    const name = (await journals(dir))[0]!;
    await appendFile(join(dir, name), 'garbage that is not json\n{"s":2,"o":[["items","b",{"n":2}]]}\n{"s":3,"o":[["items","c",{"n"');
    const again = makeDoc(dir);
    await again.open();
    assert.deepEqual(again.data.items, { a: { n: 1 }, b: { n: 2 } });
    assert.deepEqual(
      again.warnings().map((w) => w.code),
      ["bad-journal-line"],
    );
    await again.close();
  } finally {
    await cleanup();
  }
});

test("property: after any sequence of commits and snapshots, a corrupt newest snapshot loses nothing", async () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), key: fc.constantFrom("a", "b", "c", "d", "e"), n: fc.integer({ min: 0, max: 1000 }) }),
    fc.record({ kind: fc.constant("del" as const), key: fc.constantFrom("a", "b", "c", "d", "e") }),
    fc.record({ kind: fc.constant("snapshot" as const) }),
    // The entry count: counted at the first ask, then kept by set/del.
    fc.record({ kind: fc.constant("size" as const) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.boolean(), async (ops, corrupt) => {
      const { dir, cleanup } = await freshDir("lk-doc-prop-");
      try {
        const model: Record<string, { n: number }> = {};
        const doc = makeDoc(dir, { snapshotAfterBytes: 150 });
        await doc.open();
        for (const o of ops) {
          if (o.kind === "set") {
            doc.set("items", o.key, { n: o.n });
            model[o.key] = { n: o.n };
            await doc.commit();
          } else if (o.kind === "del") {
            doc.del("items", o.key);
            delete model[o.key];
            await doc.commit();
          } else if (o.kind === "size") assert.equal(doc.size("items"), Object.keys(model).length);
          else await doc.snapshot();
        }
        assert.equal(doc.size("items"), Object.keys(model).length);
        await doc.close();
        const names = await readdir(dir);
        // With only one generation a corrupt file is E_STORE_CORRUPT (tested elsewhere).
        if (corrupt && names.includes("doc.json") && names.includes("doc.json.prev")) await writeFile(join(dir, "doc.json"), '{"version":1,"items":{"a":');
        const again = makeDoc(dir);
        await again.open();
        assert.deepEqual(again.data.items, model);
        assert.equal(again.size("items"), Object.keys(model).length);
        await again.close();
      } finally {
        await cleanup();
      }
    }),
    { numRuns: 40 },
  );
});

test("commits past the snapshot threshold ask for one background snapshot, not one each", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const doc = makeDoc(dir, { snapshotAfterBytes: 1000 });
    await doc.open();
    // One batch (one fdatasync) of 21 commits, the first of which crosses the threshold: every
    // one of them finds the journal past it while the snapshot has only just begun.
    doc.set("items", "big", { n: 1 });
    for (let i = 0; i < 200; i++) doc.set("items", `filler-${i}`, { n: i });
    const commits = [doc.commit()];
    for (let i = 0; i < 20; i++) {
      doc.set("items", `k${i}`, { n: i });
      commits.push(doc.commit());
    }
    await Promise.all(commits);
    await doc.close();
    assert.equal(doc.status().writes, 1, "one whole-document write for the lot");
    const again = makeDoc(dir);
    await again.open();
    assert.equal(Object.keys(again.data.items).length, 221);
    await again.close();
  } finally {
    await cleanup();
  }
});

test("property: a snapshot written while commits go on is exactly the document at its cut", async () => {
  // Large enough that a snapshot is written in several pieces with commits in between.
  const seedItems = 8000;
  const op = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant("set" as const), key: fc.integer({ min: 0, max: seedItems + 50 }), n: fc.integer({ min: 0, max: 1_000_000 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("del" as const), key: fc.integer({ min: 0, max: seedItems + 50 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("snapshot" as const) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("yield" as const) }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 60 }), async (ops) => {
      const { dir, cleanup } = await freshDir("lk-doc-cut-");
      try {
        const doc = makeDoc(dir, { snapshotAfterBytes: 1 << 30 });
        await doc.open();
        const model: Record<string, { n: number }> = {};
        for (let i = 0; i < seedItems; i++) {
          doc.set("items", `item-${i}`, { n: i });
          model[`item-${i}`] = { n: i };
        }
        await doc.commit();
        // The document after each commit, by seq.
        const bySeq = new Map<number, string>([[doc.status().seq, JSON.stringify(model)]]);
        const inFlight: Array<Promise<void>> = [];
        for (const o of ops) {
          if (o.kind === "snapshot") inFlight.push(doc.snapshot());
          else if (o.kind === "yield") await new Promise<void>((resolve) => setTimeout(resolve, 1));
          else {
            if (o.kind === "set") {
              doc.set("items", `item-${o.key}`, { n: o.n });
              model[`item-${o.key}`] = { n: o.n };
            } else {
              doc.del("items", `item-${o.key}`);
              delete model[`item-${o.key}`];
            }
            inFlight.push(doc.commit());
            bySeq.set(doc.status().seq, JSON.stringify(model));
          }
        }
        await Promise.all(inFlight);
        await doc.close();
        for (const name of ["doc.json", "doc.json.prev"]) {
          const text = await readFile(join(dir, name), "utf8").catch(() => undefined);
          if (text === undefined) continue;
          const written = JSON.parse(text) as Doc;
          assert.equal(JSON.stringify(written.items), bySeq.get(written.seq), `${name} (seq ${written.seq}) is the document at that seq`);
        }
        const again = makeDoc(dir);
        await again.open();
        assert.equal(JSON.stringify(again.data.items), JSON.stringify(model));
        await again.close();
      } finally {
        await cleanup();
      }
    }),
    { numRuns: Number(process.env.LK_FUZZ_RUNS ?? 15) },
  );
});
