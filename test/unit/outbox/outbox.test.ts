import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { backoffCeilingMs, backoffDelayMs } from "../../../src/kernel/backoff.js";
import { sendResultFrom } from "../../../src/outbox/platform-sender.js";
import { StoreErrorCode, isStoreError } from "../../../src/store/errors.js";
import { POLICY, enter, leave, runFor, withOutbox } from "../../helpers/outbox-harness.js";

test("backoff ceilings double from base up to the cap", () => {
  assert.deepEqual(
    Array.from({ length: 9 }, (_, i) => backoffCeilingMs(i + 1, POLICY)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000],
  );
  assert.equal(backoffCeilingMs(5000, POLICY), 60_000, "no overflow to Infinity at huge attempt counts");
});

test("full jitter: the delay follows the random draw within [min, ceiling]", () => {
  assert.equal(
    backoffDelayMs(4, POLICY, () => 0),
    100,
    "a draw of 0 is lifted to the floor",
  );
  assert.equal(
    backoffDelayMs(4, POLICY, () => 0.5),
    4000,
  );
  assert.equal(
    backoffDelayMs(4, POLICY, () => 0.999_999),
    7999,
  );
  assert.equal(
    backoffDelayMs(30, POLICY, () => 0.25),
    15_000,
    "capped ceiling",
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const d = backoffDelayMs(attempt, POLICY, () => r);
      return d >= POLICY.minMs && d <= backoffCeilingMs(attempt, POLICY) && d <= POLICY.capMs;
    }),
    { numRuns: 2000 },
  );
});

test("platform answers map to outbox outcomes", () => {
  assert.deepEqual(sendResultFrom({ ok: true, code: 200, msg: "成功", data: undefined, elapsedMs: 1 }), { ok: true });
  assert.deepEqual(sendResultFrom({ ok: false, kind: "business-code", code: 500, msg: "bad plate", elapsedMs: 1 }), {
    ok: false,
    retry: "refused",
    reason: "code 500: bad plate",
    code: 500,
    platformMsg: "bad plate",
  });
  for (const kind of ["refused", "timeout", "http-status", "bad-response"] as const) {
    const r = sendResultFrom({ ok: false, kind, status: 503, elapsedMs: 1 });
    assert.ok(!r.ok && r.retry === "transient", `${kind} is transient`);
  }
});

test("enqueue is durable: entries survive a restart in order, delivered ones do not come back", async () => {
  await withOutbox(async (h) => {
    h.respond = () => ({ ok: false, retry: "transient", reason: "refused" });
    const results = [];
    for (let i = 1; i <= 3; i++) results.push(await h.outbox.enqueue(enter(i)));
    assert.ok(results.every((r) => r.durable && !r.duplicate));
    assert.equal((await h.outbox.enqueue(enter(1))).duplicate, true, "the key is the idempotency key");
    const journal = await readFile(join(h.dir, "outbox.journal"), "utf8");
    assert.equal(
      journal
        .trimEnd()
        .split("\n")
        .filter((l) => l.includes('"op":"add"')).length,
      3,
    );
    h.respond = (e) => (e.key === "R2:enter" ? { ok: true } : { ok: false, retry: "transient", reason: "refused" });
    await runFor(h, 5000);
    const again = await h.restart({ sender: async () => ({ ok: false, retry: "transient", reason: "down" }) });
    assert.deepEqual(
      again.list().map((e) => e.key),
      ["R1:enter", "R3:enter"],
    );
  });
});

test("per record in order (leave never before enter), records independent", async () => {
  await withOutbox(
    async (h) => {
      let enterFailures = 0;
      h.respond = (e) => {
        if (e.key === "R1:enter" && enterFailures < 3) {
          enterFailures++;
          return { ok: false, retry: "transient", reason: "http-status 502" };
        }
        return { ok: true };
      };
      await h.outbox.enqueue(enter(1));
      await h.outbox.enqueue(leave(1));
      await h.outbox.enqueue(enter(2));
      await h.outbox.enqueue(leave(2));
      await runFor(h, 30_000);
      const order = h.sent.map((s) => s.key);
      assert.equal(h.outbox.status().depth, 0);
      assert.deepEqual(
        order.filter((k) => k.startsWith("R1")),
        ["R1:enter", "R1:enter", "R1:enter", "R1:enter", "R1:leave"],
      );
      assert.ok(order.indexOf("R2:leave") < order.lastIndexOf("R1:enter"), "record 2 did not wait for record 1's retries");
    },
    { probeAfterFailures: 100 },
  );
});

test("retries follow the backoff schedule of the injected random source", async () => {
  await withOutbox(
    async (h) => {
      h.respond = () => ({ ok: false, retry: "transient", reason: "timeout" });
      await h.outbox.enqueue(enter(1));
      await runFor(h, 200_000, 50);
      const gaps = h.sent.slice(1, 9).map((s, i) => s.atMs - h.sent[i]!.atMs);
      // random() = 0.5 → half of each ceiling: 500, 1000, 2000, ... capped at 30000.
      assert.deepEqual(gaps, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
      const entry = h.outbox.get("R1:enter")!;
      assert.equal(entry.lastError, "timeout");
      assert.ok(entry.nextAttemptAtMs - entry.lastErrorAtMs! <= POLICY.capMs);
    },
    { probeAfterFailures: 1000 },
  );
});

test("a permanent code parks the entry at once; its exit waits behind it, other records flow; counted, visible, re-triable", async () => {
  await withOutbox(async (h) => {
    let poisoned = true;
    h.respond = (e) =>
      e.key === "R1:enter" && poisoned
        ? { ok: false, retry: "refused", code: 4010, platformMsg: "bizContent.plateNum invalid", reason: "code 4010: bizContent.plateNum invalid" }
        : { ok: true };
    // Record 2 first: its 200 comes before anything is parked (a 200 probes parked reports).
    await h.outbox.enqueue(enter(2));
    await h.outbox.enqueue(enter(1));
    await h.outbox.enqueue(leave(1));
    await runFor(h, 2000);
    const status = h.outbox.status();
    assert.deepEqual([status.depth, status.parked, status.held, status.retrying, status.delivered], [1, 1, 1, 0, 1]);
    assert.equal(h.sent.filter((s) => s.key === "R1:enter").length, 1, "parked at the first refusal, not retried");
    assert.equal(status.lastError?.reason, "code 4010: bizContent.plateNum invalid");
    assert.deepEqual(status.lastRefusal, { key: "R1:enter", code: 4010, platformMsg: "bizContent.plateNum invalid", atMs: h.sent[1]!.atMs });
    assert.ok(!h.sent.some((s) => s.key === "R1:leave"), "the exit never overtakes its parked entry");
    assert.deepEqual(
      h.outbox.list({ parked: true }).map((e) => [e.key, e.parked?.reason, e.parked?.cause, e.parked?.code, e.parked?.platformMsg]),
      [["R1:enter", "code 4010: bizContent.plateNum invalid", "permanent-code", 4010, "bizContent.plateNum invalid"]],
    );
    // Parked (with its cause and code) survives a restart and is not retried by it.
    await h.restart();
    await runFor(h, 2000);
    assert.equal(h.outbox.status().parked, 1);
    assert.deepEqual(h.outbox.get("R1:enter")?.parked?.cause, "permanent-code");
    assert.equal(h.outbox.get("R1:enter")?.parked?.code, 4010);
    assert.equal(h.sent.filter((s) => s.key === "R1:enter").length, 1);
    poisoned = false;
    assert.equal(await h.outbox.retryParked("nope"), 0);
    assert.equal(await h.outbox.retryParked("R1:enter"), 1);
    await runFor(h, 1000);
    assert.deepEqual([h.outbox.status().parked, h.outbox.status().depth], [0, 0]);
    const order = h.sent.map((s) => s.key).filter((k) => k.startsWith("R1"));
    assert.deepEqual(order, ["R1:enter", "R1:enter", "R1:leave"]);
  });
});

test("discarding a parked entry lets its record's next report go", async () => {
  await withOutbox(async (h) => {
    h.respond = (e) => (e.key === "R1:enter" ? { ok: false, retry: "permanent", reason: "refused for good" } : { ok: true });
    await h.outbox.enqueue(enter(1));
    await h.outbox.enqueue(leave(1));
    await runFor(h, 1000);
    assert.deepEqual([h.outbox.status().parked, h.outbox.status().held], [1, 1]);
    assert.equal(await h.outbox.discard("R1:enter", "the entry will never be accepted"), true);
    await runFor(h, 1000);
    assert.deepEqual(
      h.sent.map((s) => s.key),
      ["R1:enter", "R1:leave"],
    );
    assert.deepEqual([h.outbox.status().depth, h.outbox.status().delivered], [0, 1]);
  });
});

test("retryParked('all') and discard", async () => {
  await withOutbox(async (h) => {
    h.respond = () => ({ ok: false, retry: "permanent", reason: "code 4001" });
    for (let i = 1; i <= 3; i++) await h.outbox.enqueue(enter(i));
    await runFor(h, 1000);
    assert.equal(h.outbox.status().parked, 3);
    assert.equal(await h.outbox.discard("R3:enter"), true);
    h.respond = () => ({ ok: true });
    assert.equal(await h.outbox.retryParked("all"), 2);
    await runFor(h, 1000);
    assert.deepEqual(h.outbox.status().delivered, 2);
    const again = await h.restart();
    assert.equal(again.list().length, 0, "the discard is journaled too");
  });
});

test("draining keeps at most maxInFlight reports in flight", async () => {
  await withOutbox(
    async (h) => {
      let inFlight = 0;
      let peak = 0;
      // The platform answers only once everything is queued, so the bound is what limits
      // the sends (not how fast this machine fsyncs compared with the 2 ms answers).
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      h.respond = async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await opened;
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight--;
        return { ok: true };
      };
      for (let i = 0; i < 60; i++) await h.outbox.enqueue(enter(i));
      open();
      await runFor(h, 1000);
      assert.equal(h.outbox.status().delivered, 60);
      assert.equal(peak, 4);
    },
    { maxInFlight: 4 },
  );
});

test("a long outage is probed one report at a time; recovery drains everything at once", async () => {
  await withOutbox(async (h) => {
    let up = false;
    h.respond = () => (up ? { ok: true } : { ok: false, retry: "transient", reason: "refused ECONNREFUSED" });
    for (let i = 0; i < 100; i++) await h.outbox.enqueue(enter(i));
    await runFor(h, 3_600_000, 10_000);
    const outageAttempts = h.sent.length;
    assert.equal(h.outbox.status().link, "probing");
    // 8 first tries, then one probe per link backoff (cap 60 s, half with random 0.5 → 30 s).
    assert.ok(outageAttempts < 8 + 3600 / 30 + 10, `an hour of outage cost ${outageAttempts} attempts, not thousands`);
    up = true;
    const before = h.clock.now();
    await runFor(h, 60_000, 1000);
    assert.equal(h.outbox.status().depth, 0);
    assert.equal(h.outbox.status().link, "up");
    const lastSend = Math.max(...h.sent.map((s) => s.atMs));
    assert.ok(lastSend - before <= 31_000, "everything went out at the first probe after recovery, not on each entry's own backoff");
  });
});

test("the journal is compacted and still loads the same state", async () => {
  await withOutbox(
    async (h) => {
      h.respond = (e) => (e.recordNo === "R0" ? { ok: false, retry: "permanent", reason: "no" } : { ok: true });
      for (let i = 0; i < 60; i++) await h.outbox.enqueue(enter(i));
      await runFor(h, 1000);
      h.respond = () => ({ ok: false, retry: "transient", reason: "down" });
      await h.outbox.enqueue(enter(100));
      await runFor(h, 200);
      // 61 adds, 59 dones and a park were written; compaction keeps far fewer lines.
      const lines = (await readFile(join(h.dir, "outbox.journal"), "utf8")).trimEnd().split("\n").length;
      assert.ok(lines < 60, `journal holds ${lines} lines after compaction`);
      const again = await h.restart();
      assert.deepEqual(
        again.list().map((e) => [e.key, !!e.parked]),
        [
          ["R0:enter", true],
          ["R100:enter", false],
        ],
      );
    },
    { compactMinOps: 50 },
  );
});

test("a torn last journal line is cut with a warning; everything acknowledged loads", async () => {
  await withOutbox(async (h) => {
    h.respond = () => ({ ok: false, retry: "transient", reason: "down" });
    await h.outbox.enqueue(enter(1));
    await h.outbox.stop();
    await appendFile(join(h.dir, "outbox.journal"), '{"op":"add","e":{"key":"R2:ent');
    const again = await h.restart();
    assert.deepEqual(
      again.list().map((e) => e.key),
      ["R1:enter"],
    );
    assert.equal(again.status().warnings[0]?.code, "torn-tail");
  });
});

test("bad input is refused with a clear error and changes nothing", async () => {
  await withOutbox(async (h) => {
    await assert.rejects(h.outbox.enqueue({ recordNo: "", kind: "enter", service: "enterNotify", biz: {} }), (e: unknown) => isStoreError(e, StoreErrorCode.Invalid));
    await assert.rejects(h.outbox.enqueue({ recordNo: "R1", kind: "enter", service: "enterNotify", biz: "x" as unknown as Record<string, unknown> }), (e: unknown) =>
      isStoreError(e, StoreErrorCode.Invalid),
    );
    assert.equal(h.outbox.status().depth, 0);
    await h.outbox.stop();
    await assert.rejects(h.outbox.enqueue(enter(1)), (e: unknown) => isStoreError(e, StoreErrorCode.Closed));
  });
});
