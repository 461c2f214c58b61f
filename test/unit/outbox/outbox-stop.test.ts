import { test } from "node:test";
import assert from "node:assert/strict";
import type { SendResult } from "../../../src/outbox/outbox.js";
import { enter, leave, runFor, withOutbox } from "../../helpers/outbox-harness.js";

/*
 * Stop means stopped: the outbox's stop aborts the deliveries in flight through the sender's
 * signal and waits for them. An aborted delivery is not a failure: the report stays queued as
 * it was (attempts, error, link state), nothing of it is journaled, and it goes at the next
 * start, once.
 */

/** A platform that never answers: the send ends only when the outbox's signal aborts it. */
function hangUntilAborted(signal: AbortSignal): Promise<SendResult> {
  return new Promise((resolve) => {
    const cutOff = (): void => resolve({ ok: false, retry: "transient", reason: "aborted" });
    if (signal.aborted) cutOff();
    else signal.addEventListener("abort", cutOff, { once: true });
  });
}

test("stop aborts a hanging delivery at once; the report stays queued untouched and goes once after the restart", async () => {
  await withOutbox(async (h) => {
    const signals: AbortSignal[] = [];
    h.respond = (_entry, { signal }) => {
      signals.push(signal);
      return hangUntilAborted(signal);
    };
    await h.outbox.enqueue(enter(1));
    await h.outbox.enqueue(leave(1));
    assert.equal(h.outbox.status().inFlight, 1);
    assert.equal(h.outbox.get("R1:enter")?.attempts, 1);

    const begun = performance.now();
    await h.outbox.stop();
    assert.ok(performance.now() - begun < 250, `stop took ${Math.round(performance.now() - begun)} ms`);
    assert.deepEqual(
      signals.map((s) => s.aborted),
      [true],
    );
    const status = h.outbox.status();
    assert.deepEqual([status.inFlight, status.depth, status.retrying, status.parked, status.link, status.lastError], [0, 2, 0, 0, "up", null]);
    const cut = h.outbox.get("R1:enter");
    assert.deepEqual([cut?.attempts, cut?.lastError, cut?.lastErrorKind], [0, undefined, undefined], "an aborted delivery is not an attempt that failed");

    // Nothing runs while stopped, however long.
    await h.clock.advance(3_600_000);
    assert.equal(h.sent.length, 1);

    h.respond = () => ({ ok: true });
    const again = await h.restart();
    await runFor(h, 1000);
    assert.deepEqual(
      h.sent.map((s) => s.key),
      ["R1:enter", "R1:enter", "R1:leave"],
      "the cut-off entry report goes first after the restart, then its exit, each delivered once",
    );
    assert.deepEqual([again.status().delivered, again.status().depth], [2, 0]);
  });
});

test("a sender that ignores the signal cannot hold the stop, and its late failure is not counted", async () => {
  await withOutbox(async (h) => {
    let fail: (result: SendResult) => void = () => undefined;
    h.respond = () => new Promise<SendResult>((resolve) => (fail = resolve));
    await h.outbox.enqueue(enter(2));
    assert.equal(h.outbox.status().inFlight, 1);
    const begun = performance.now();
    await h.outbox.stop();
    const tookMs = performance.now() - begun;
    // Bounded well inside the lifecycle's 500 ms per component.
    assert.ok(tookMs >= 250 && tookMs < 450, `stop took ${Math.round(tookMs)} ms`);
    fail({ ok: false, retry: "transient", reason: "socket hang up" });
    await h.outbox.whenIdle();
    const entry = h.outbox.get("R2:enter");
    assert.deepEqual([entry?.attempts, entry?.lastError, h.outbox.status().retrying, h.outbox.status().lastError], [0, undefined, 0, null]);

    h.respond = () => ({ ok: true });
    await h.restart();
    await runFor(h, 500);
    assert.deepEqual(
      h.sent.map((s) => s.key),
      ["R2:enter", "R2:enter"],
    );
    assert.equal(h.outbox.status().delivered, 1);
  });
});

test("a delivery that ends before the stop is settled as usual (failures still count while running)", async () => {
  await withOutbox(async (h) => {
    h.respond = () => ({ ok: false, retry: "transient", reason: "refused" });
    await h.outbox.enqueue(enter(3));
    await h.outbox.whenIdle();
    await h.outbox.stop();
    const entry = h.outbox.get("R3:enter");
    assert.deepEqual([entry?.attempts, entry?.lastError], [1, "refused"]);
  });
});
