import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readdir, readFile, rename, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { FakeClock } from "../../helpers/fake-clock.js";
import { History, type HistoryLine } from "../../../src/store/history.js";
import { freshDir } from "../../helpers/store-fixtures.js";

/*
 * The plate index must give the answers of a scan, whatever happened to its files: random
 * histories (several segments, rotations by size and by day, restarts, damaged lines),
 * random plate queries with random bounds, answered through the index and by a scan, before
 * and after the sidecars are deleted, torn, bit-flipped or swapped.
 */

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 10, 12, 0, 0);
const FLOOR = Date.UTC(2026, 0, 1);
const PLATES = ["粤B12345", "粤B12346", '京A0000"', "WJ01·警", "粤Z1234港", "B 12", ""];
const RUNS = Number(process.env.LK_FUZZ_RUNS ?? 30);

const lineArb = fc.record({
  plate: fc.oneof(fc.constantFrom(...PLATES), fc.constant(undefined), fc.constant(42)),
  kind: fc.constantFrom("stay", "event"),
  pad: fc.nat({ max: 120 }),
});
const stepArb = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("append" as const), lines: fc.array(lineArb, { minLength: 1, maxLength: 4 }), durable: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("day" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("damage" as const) }) },
);
const queryArb = fc.record({
  plate: fc.constantFrom(...PLATES, "粤B00000"),
  kind: fc.constantFrom(undefined, "stay", "event"),
  limit: fc.integer({ min: 1, max: 12 }),
  maxSegments: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  maxBytes: fc.option(fc.integer({ min: 200, max: 6000 }), { nil: undefined }),
  sinceDays: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
});
const damageArb = fc.constantFrom("delete", "truncate", "flip", "swap", "zeros", "stale");
type Query = typeof queryArb extends fc.Arbitrary<infer Q> ? Q : never;

async function answers(h: History, queries: readonly Query[], index: boolean): Promise<string[]> {
  const out: string[] = [];
  for (const q of queries) {
    const lines = await h.recentByPlate(q.plate, {
      index,
      limit: q.limit,
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.maxSegments !== undefined ? { maxSegments: q.maxSegments } : {}),
      ...(q.maxBytes !== undefined ? { maxBytes: q.maxBytes } : {}),
      ...(q.sinceDays !== undefined ? { sinceMs: T0 + q.sinceDays * DAY } : {}),
    });
    out.push(JSON.stringify(lines));
  }
  return out;
}

async function sidecars(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".idx")).sort();
}

test("property: answers through the plate index are the answers of a scan, also after its files are damaged", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(stepArb, { minLength: 3, maxLength: 40 }),
      fc.array(queryArb, { minLength: 1, maxLength: 8 }),
      fc.array(fc.tuple(damageArb, fc.nat(), fc.nat()), { maxLength: 4 }),
      async (steps, queries, damages) => {
        const { dir: base, cleanup } = await freshDir("lk-hidx-");
        const dir = join(base, "history");
        const clock = new FakeClock(T0);
        const make = async (): Promise<History> => {
          const h = new History({ dir, clock, clockFloorMs: FLOOR, segmentMaxBytes: 700 });
          await h.open();
          return h;
        };
        let h = await make();
        try {
          let n = 0;
          for (const step of steps) {
            if (step.kind === "day") clock.jump(DAY);
            else if (step.kind === "restart") {
              await h.close();
              h = await make();
            } else if (step.kind === "damage") {
              // A line a scan cannot parse, written around the history.
              await h.sync();
              await appendFile(join(dir, h.currentSegment()!), '{"t":"stay","plate":"粤B12345" broken\n');
              await h.close();
              h = await make();
            } else {
              const lines: HistoryLine[] = step.lines.map((l) => ({
                t: l.kind,
                atMs: clock.now(),
                recordNo: `R${n++}`,
                ...(l.plate !== undefined ? { plate: l.plate as string } : {}),
                pad: "x".repeat(l.pad),
              }));
              if (lines.length === 1) await h.append(lines[0]!, step.durable);
              else await h.appendMany(lines, step.durable);
            }
          }
          await h.whenIndexed();
          const scanned = await answers(h, queries, false);
          assert.deepEqual(await answers(h, queries, true), scanned, "indexed == scanned");

          // Damage the sidecars, then ask a fresh process (nothing trusted yet) and this one.
          const names = await sidecars(dir);
          for (const [kind, a, b] of damages) {
            if (names.length === 0) break;
            const name = names[a % names.length]!;
            const path = join(dir, name);
            const size = (await stat(path).catch(() => undefined))?.size;
            if (size === undefined) continue;
            if (kind === "delete") await unlink(path);
            else if (kind === "truncate") await truncate(path, b % size);
            else if (kind === "zeros") await writeFile(path, Buffer.alloc(size));
            else if (kind === "flip") {
              const bytes = await readFile(path);
              bytes[b % size] = bytes[b % size]! ^ (1 << (b % 8));
              await writeFile(path, bytes);
            } else if (kind === "swap") {
              const other = names[(a + 1 + (b % names.length)) % names.length]!;
              // The other sidecar may be gone already (an earlier "delete" of this case).
              const copy = other === name ? undefined : await readFile(join(dir, other)).catch(() => undefined);
              if (copy) await writeFile(path, copy);
            } else {
              // A sidecar left from an earlier, shorter state of its segment.
              const segment = join(dir, name.replace(/\.idx$/, ".jsonl"));
              await appendFile(segment, JSON.stringify({ t: "stay", atMs: clock.now(), plate: PLATES[b % PLATES.length], recordNo: `X${b}` }) + "\n");
            }
          }
          const expected = await answers(h, queries, false);
          assert.deepEqual(await answers(h, queries, true), expected, "indexed == scanned after damage (same process)");
          await h.close();
          h = await make();
          assert.deepEqual(await answers(h, queries, true), expected, "indexed == scanned after damage (fresh process)");
          // Damaged sidecars were queued for a rebuild; once rebuilt the answers still hold.
          await h.whenIndexed();
          assert.deepEqual(await answers(h, queries, true), expected, "indexed == scanned after the rebuild");
        } finally {
          await h.close();
          await cleanup();
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test("sealed segments get a sidecar as they are sealed; plate queries then read no segment whole", async () => {
  const { dir: base, cleanup } = await freshDir();
  const dir = join(base, "history");
  const clock = new FakeClock(T0);
  const h = new History({ dir, clock, clockFloorMs: FLOOR, segmentMaxBytes: 2048 });
  try {
    await h.open();
    for (let i = 0; i < 200; i++) await h.append({ t: "stay", atMs: clock.now(), plate: `粤B${String(i % 7).padStart(5, "0")}`, recordNo: `R${i}` }, false);
    await h.sync();
    await h.whenIndexed();
    const segments = h.segments().map((s) => s.name);
    assert.ok(segments.length > 5, `${segments.length} segments`);
    assert.deepEqual(
      await sidecars(dir),
      segments.slice(0, -1).map((n) => n.replace(/\.jsonl$/, ".idx")),
      "one sidecar per sealed segment, none for the open one",
    );
    const found = await h.recentByPlate("粤B00003", { limit: 100 });
    assert.deepEqual(
      found.map((l) => l.recordNo),
      Array.from({ length: 200 }, (_, i) => i)
        .filter((i) => i % 7 === 3)
        .reverse()
        .map((i) => `R${i}`),
    );
    assert.equal(h.status().index.scannedSegments, 0, "every segment answered through its index");
    assert.equal(h.status().index.built, segments.length - 1);
  } finally {
    await h.close();
    await cleanup();
  }
});

test("a crash mid-rebuild leaves a temp file and maybe an orphan: both are removed at open; a lost sidecar is rebuilt", async () => {
  const { dir: base, cleanup } = await freshDir();
  const dir = join(base, "history");
  const clock = new FakeClock(T0);
  const make = async (): Promise<History> => {
    const h = new History({ dir, clock, clockFloorMs: FLOOR, segmentMaxBytes: 1024 });
    await h.open();
    return h;
  };
  let h = await make();
  try {
    for (let i = 0; i < 60; i++) await h.append({ t: "stay", atMs: clock.now(), plate: "粤B12345", recordNo: `R${i}` }, false);
    await h.whenIndexed();
    await h.close();
    const [first] = await sidecars(dir);
    // (With a message: assert.ok without one parses this source file for it, slowly with CJK in it.)
    assert.ok(first, "a sidecar was written for the first sealed segment");
    // The temp file of an interrupted write, a sidecar whose segment is gone, a lost sidecar.
    await writeFile(join(dir, `.${first}.tmp`), "half");
    await writeFile(join(dir, "history-20200101-0001.idx"), "orphan");
    await rename(join(dir, first), join(dir, `${first}.lost`));
    h = await make();
    await h.whenIndexed();
    const names = await readdir(dir);
    assert.ok(!names.includes(`.${first}.tmp`) && !names.includes("history-20200101-0001.idx"), names.join(", "));
    assert.ok(names.includes(first), "the lost sidecar was rebuilt");
    assert.deepEqual(await readFile(join(dir, first)), await readFile(join(dir, `${first}.lost`)), "rebuilt byte for byte");
    const found = await h.recentByPlate("粤B12345", { limit: 100 });
    assert.equal(found.length, 60);
  } finally {
    await h.close();
    await cleanup();
  }
});
