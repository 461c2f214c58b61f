import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareHlc, HlcClock, type Hlc } from "../../../src/lot/hlc.js";

const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);

const hlcArb: fc.Arbitrary<Hlc> = fc.record({
  wallMs: fc.integer({ min: 0, max: 2_000_000_000_000 }),
  counter: fc.integer({ min: 0, max: 20 }),
  deviceId: fc.constantFrom("box-a", "box-b", "box-c", "B", "a"),
});

test("compareHlc orders by wall time, then counter, then deviceId (code units)", () => {
  const base = { wallMs: 1000, counter: 3, deviceId: "box-b" };
  assert.ok(compareHlc(base, { ...base, wallMs: 999, counter: 9 }) > 0);
  assert.ok(compareHlc(base, { ...base, counter: 4 }) < 0);
  assert.ok(compareHlc(base, { ...base, deviceId: "box-a" }) > 0);
  // Upper-case letters sort before lower-case ones whatever the locale says.
  assert.ok(compareHlc({ ...base, deviceId: "Z" }, { ...base, deviceId: "a" }) < 0);
  assert.equal(compareHlc(base, { ...base }), 0);
});

test("compareHlc is a total order: antisymmetric and transitive", () => {
  fc.assert(
    fc.property(hlcArb, hlcArb, hlcArb, (a, b, c) => {
      assert.equal(Math.sign(compareHlc(a, b)), -Math.sign(compareHlc(b, a)));
      if (compareHlc(a, b) <= 0 && compareHlc(b, c) <= 0) assert.ok(compareHlc(a, c) <= 0);
      assert.equal(compareHlc(a, b) === 0, a.wallMs === b.wallMs && a.counter === b.counter && a.deviceId === b.deviceId);
    }),
    { numRuns: runs },
  );
});

test("a clock that goes back, or stands still, still issues ever newer versions", () => {
  let wallMs = 5000;
  const clock = new HlcClock("box-a", () => wallMs);
  const first = clock.now();
  assert.deepEqual(first, { wallMs: 5000, counter: 0, deviceId: "box-a" });
  const same = clock.now();
  assert.deepEqual(same, { wallMs: 5000, counter: 1, deviceId: "box-a" });
  wallMs = 1000; // NTP stepped the clock back
  const back = clock.now();
  assert.ok(compareHlc(back, same) > 0);
  wallMs = 6000;
  assert.deepEqual(clock.now(), { wallMs: 6000, counter: 0, deviceId: "box-a" });
});

test("a box whose clock is minutes behind writes after the versions it has seen", () => {
  const fast = new HlcClock("box-b", () => 10 * 60_000);
  const slow = new HlcClock("box-a", () => 60_000);
  const seen = fast.now();
  slow.observe(seen);
  const next = slow.now();
  assert.ok(compareHlc(next, seen) > 0, "the slow box's edit wins over the one it read");
  assert.equal(next.deviceId, "box-a");
});

test("property: every version issued after observing any versions is newer than all of them", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          hlcArb.map((h) => ({ observe: h })),
          fc.integer({ min: 0, max: 3_000_000_000_000 }).map((w) => ({ wall: w })),
        ),
        { maxLength: 40 },
      ),
      (steps) => {
        let wallMs = 0;
        const clock = new HlcClock("box-c", () => wallMs);
        const known: Hlc[] = [];
        for (const step of steps) {
          if ("observe" in step) {
            clock.observe(step.observe);
            known.push(step.observe);
          } else {
            wallMs = step.wall;
            const issued = clock.now();
            for (const k of known) assert.ok(compareHlc(issued, k) > 0);
            known.push(issued);
          }
        }
      },
    ),
    { numRuns: runs },
  );
});
