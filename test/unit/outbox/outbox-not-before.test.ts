import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { StoreErrorCode, isStoreError } from "../../../src/store/errors.js";
import { down, enter, leave, runFor, withOutbox } from "../../helpers/outbox-harness.js";

/*
 * A report queued with `notBeforeMs` (an exit report waiting out its bill's late-answer
 * window): durable at once, never sent before that instant — not while draining, not as the
 * link probe, not after a restart — and its record's later reports wait behind it.
 */

test("a held report goes at its not-before time, once, after its entry report; other records are not held", () =>
  withOutbox(async (h) => {
    const heldUntilMs = h.clock.now() + 5000;
    await h.outbox.enqueue(enter(1));
    const queued = await h.outbox.enqueue({ ...leave(1), notBeforeMs: heldUntilMs });
    assert.equal(queued.durable, true);
    await h.outbox.enqueue(enter(2));
    await runFor(h, 4900);
    assert.deepEqual(
      h.sent.map((s) => s.key),
      ["R1:enter", "R2:enter"],
      "the held report waits; others go",
    );
    assert.equal(h.outbox.get("R1:leave")?.notBeforeMs, heldUntilMs);
    await runFor(h, 200);
    assert.deepEqual(
      h.sent.map((s) => s.key),
      ["R1:enter", "R2:enter", "R1:leave"],
    );
    assert.ok(h.sent[2]!.atMs >= heldUntilMs);
    await runFor(h, 2000);
    assert.equal(h.sent.length, 3, "sent once");
  }));

test("the not-before time survives a restart (journal and compaction alike)", () =>
  withOutbox(
    async (h) => {
      const heldUntilMs = h.clock.now() + 10_000;
      await h.outbox.enqueue({ ...leave(1), notBeforeMs: heldUntilMs });
      // Enough delivered reports to compact the journal around the held one.
      for (let i = 2; i < 8; i++) await h.outbox.enqueue(enter(i));
      await runFor(h, 1000);
      await h.restart();
      await runFor(h, 1000);
      assert.ok(!h.sent.some((s) => s.key === "R1:leave"), "not sent early after the restart");
      await runFor(h, 9000);
      assert.deepEqual(
        h.sent.filter((s) => s.key === "R1:leave").map((s) => s.atMs >= heldUntilMs),
        [true],
      );
    },
    { compactMinOps: 4 },
  ));

test("while the link is probed, a held report is no probe before its time", () =>
  withOutbox(async (h) => {
    h.respond = () => down;
    const heldUntilMs = h.clock.now() + 60_000;
    await h.outbox.enqueue({ ...leave(1), notBeforeMs: heldUntilMs });
    for (let i = 2; i < 6; i++) await h.outbox.enqueue(enter(i));
    await runFor(h, 10_000, 250);
    assert.equal(h.outbox.status().link, "probing");
    // The held report is left alone with the link down: still no probe before its time.
    for (let i = 2; i < 6; i++) await h.outbox.discard(`R${i}:enter`);
    await runFor(h, 40_000, 500);
    assert.ok(!h.sent.some((s) => s.key === "R1:leave" && s.atMs < heldUntilMs), JSON.stringify(h.sent.filter((s) => s.key === "R1:leave")));
    h.respond = () => ({ ok: true });
    await runFor(h, 70_000, 1000);
    assert.equal(h.outbox.status().depth, 0, "everything delivered once the link is back and the time has come");
  }));

test("notBeforeMs input boundary: a finite number is taken; NaN, ±Infinity and non-numbers are refused with E_STORE_INVALID and nothing is queued", () =>
  withOutbox(async (h) => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.double(), fc.string({ maxLength: 4 }), fc.constant(null), fc.boolean()), async (value) => {
        const key = `R-fuzz-${h.outbox.list().length}-${Math.random()}`;
        const input = { ...leave("x"), key, notBeforeMs: value as number };
        const valid = typeof value === "number" && Number.isFinite(value);
        try {
          await h.outbox.enqueue(input);
          assert.ok(valid, `accepted ${String(value)}`);
          assert.equal(h.outbox.get(key)?.notBeforeMs, value);
        } catch (error) {
          assert.ok(!valid, `refused ${String(value)}`);
          assert.ok(isStoreError(error) && error.code === StoreErrorCode.Invalid);
          assert.equal(h.outbox.get(key), undefined);
        }
      }),
      { numRuns: Number(process.env.LK_FUZZ_RUNS ?? 60) },
    );
  }));
