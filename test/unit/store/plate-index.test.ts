import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PlateIndex } from "../../../src/store/plate-index.js";
import { plateKey } from "../../../src/core/plates/index.js";

/*
 * The plate index is built in slices after a start while the lists keep changing. Whatever
 * the interleaving of changes, slices, clears and lookups, every lookup must give what a scan
 * of the items at that moment gives.
 */

const PLATES = ["粤B12345", "粤b12345", "粤B·12345", "京A0000", "无粤C1", "粤C1", "WJ01警", "无牌"];

type Op = { kind: "put"; key: string; plate: string } | { kind: "delete"; key: string } | { kind: "clear" } | { kind: "slice" } | { kind: "lookup"; plate: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("put" as const), key: fc.integer({ min: 0, max: 30 }).map(String), plate: fc.constantFrom(...PLATES) }),
  fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 30 }).map(String) }),
  fc.constant({ kind: "clear" as const }),
  fc.constant({ kind: "slice" as const }),
  fc.record({ kind: fc.constant("lookup" as const), plate: fc.constantFrom(...PLATES) }),
);

function scan(items: Map<string, string>, plate: string): string[] {
  return [...items].filter(([, p]) => plateKey(p) === plateKey(plate)).map(([key]) => key);
}

test("lookups during and after a sliced build equal a scan of the items, whatever changes come between", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }).map(String), fc.constantFrom(...PLATES)), { maxLength: 40 }),
      fc.array(opArb, { maxLength: 60 }),
      async (initial, ops) => {
        const items = new Map(initial);
        const index = new PlateIndex(
          () => [...items.keys()],
          (key) => items.get(key),
        );
        // The warm-up runs beside the changes: each "slice" op lets it take one turn.
        let warmed = false;
        // Slices of two items, so the changes land in the middle of a build.
        const warming = index.warm(2).then(() => (warmed = true));
        for (const op of ops) {
          if (op.kind === "put") {
            const before = items.get(op.key);
            items.set(op.key, op.plate);
            index.change(op.key, before, op.plate);
          } else if (op.kind === "delete") {
            const before = items.get(op.key);
            items.delete(op.key);
            if (before !== undefined) index.change(op.key, before, undefined);
          } else if (op.kind === "clear") {
            items.clear();
            index.change(undefined, undefined, undefined);
          } else if (op.kind === "slice") {
            await new Promise<void>((resolve) => setImmediate(resolve));
          } else {
            assert.deepEqual(index.keys(op.plate).sort(), scan(items, op.plate).sort(), `lookup ${op.plate}`);
          }
        }
        await warming;
        assert.equal(warmed, true);
        for (const plate of PLATES) assert.deepEqual(index.keys(plate).sort(), scan(items, plate).sort(), `final lookup ${plate}`);
      },
    ),
    { numRuns: 300 },
  );
});

test("warm() indexes a large list a slice at a time: the event loop runs between slices", async () => {
  const items = new Map<string, string>(Array.from({ length: 2000 }, (_, i) => [`k${i}`, `粤B${String(i).padStart(5, "0")}`] as const));
  const index = new PlateIndex(
    () => [...items.keys()],
    (key) => items.get(key),
  );
  let turnsBetween = 0;
  let done = false;
  const warming = index.warm().then(() => (done = true));
  while (!done) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!done) turnsBetween++;
  }
  await warming;
  // 2,000 items in slices of a few hundred: the loop got several turns before it finished.
  assert.ok(turnsBetween >= 4, `event-loop turns during the build: ${turnsBetween}`);
  assert.deepEqual(index.keys("粤B01999"), ["k1999"]);
  assert.deepEqual(index.keys("粤B·01234"), ["k1234"]);
});
