import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { FakeClock } from "../../../src/app/clock.js";
import { Outbox, type OutboxEntry, type OutboxOptions, type SendResult } from "../../../src/outbox/outbox.js";
import { backoffCeilingMs, backoffDelayMs, type BackoffPolicy } from "../../../src/outbox/backoff.js";
import { sendResultFrom } from "../../../src/outbox/platform-sender.js";
import { StoreErrorCode, isStoreError } from "../../../src/store/errors.js";
import { freshDir } from "../../helpers/store-fixtures.js";

const POLICY: BackoffPolicy = { baseMs: 1000, capMs: 60_000, minMs: 100 };

test("backoff ceilings double from base up to the cap", () => {
  assert.deepEqual(
    Array.from({ length: 9 }, (_, i) => backoffCeilingMs(i + 1, POLICY)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000],
  );
  assert.equal(backoffCeilingMs(5000, POLICY), 60_000, "no overflow to Infinity at huge attempt counts");
});

test("full jitter: the delay follows the random draw within [min, ceiling]", () => {
  assert.equal(backoffDelayMs(4, POLICY, () => 0), 100, "a draw of 0 is lifted to the floor");
  assert.equal(backoffDelayMs(4, POLICY, () => 0.5), 4000);
  assert.equal(backoffDelayMs(4, POLICY, () => 0.999_999), 7999);
  assert.equal(backoffDelayMs(30, POLICY, () => 0.25), 15_000, "capped ceiling");
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
  assert.deepEqual(sendResultFrom({ ok: false, kind: "business-code", code: 500, msg: "bad plate", elapsedMs: 1 }), { ok: false, retry: "permanent", reason: "code 500: bad plate" });
  for (const kind of ["refused", "timeout", "http-status", "bad-response"] as const) {
    const r = sendResultFrom({ ok: false, kind, status: 503, elapsedMs: 1 });
    assert.ok(!r.ok && r.retry === "transient", `${kind} is transient`);
  }
});

interface Harness {
  outbox: Outbox;
  clock: FakeClock;
  dir: string;
  sent: Array<{ key: string; atMs: number }>;
  /** Decides each send's outcome. */
  respond: (entry: Readonly<OutboxEntry>) => SendResult | Promise<SendResult>;
  restart: (o?: Partial<OutboxOptions>) => Promise<Outbox>;
}

async function withOutbox(run: (h: Harness) => Promise<void>, options: Partial<OutboxOptions> = {}): Promise<void> {
  const { dir, cleanup } = await freshDir("lk-outbox-");
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 8));
  const opened: Outbox[] = [];
  const h = {} as Harness;
  h.clock = clock;
  h.dir = dir;
  h.sent = [];
  h.respond = () => ({ ok: true });
  const make = async (o: Partial<OutboxOptions> = {}): Promise<Outbox> => {
    const outbox = new Outbox({
      dir,
      clock,
      random: () => 0.5,
      backoff: POLICY,
      sender: async (entry) => {
        h.sent.push({ key: entry.key, atMs: clock.now() });
        return h.respond(entry);
      },
      ...options,
      ...o,
    });
    await outbox.start();
    opened.push(outbox);
    return outbox;
  };
  h.restart = async (o) => {
    for (const ob of opened) await ob.stop();
    h.outbox = await make(o);
    return h.outbox;
  };
  try {
    h.outbox = await make();
    await run(h);
  } finally {
    for (const ob of opened) await ob.stop();
    await cleanup();
  }
}

/** Advances fake time in steps, letting real I/O (journal appends) settle between them. */
async function runFor(h: Harness, totalMs: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) {
    await h.clock.advance(stepMs);
    await h.outbox.whenIdle();
  }
}

const enter = (n: number) => ({ recordNo: `R${n}`, kind: "enter", service: "enterNotify", biz: { recordNo: `R${n}`, enterTime: "2026-06-01 16:00:00" } });
const leave = (n: number) => ({ recordNo: `R${n}`, kind: "leave", service: "leaveNotify", biz: { recordNo: `R${n}`, enterTime: "2026-06-01 16:00:00", leaveTime: "2026-06-01 17:00:00" } });

test("enqueue is durable: entries survive a restart in order, delivered ones do not come back", async () => {
  await withOutbox(async (h) => {
    h.respond = () => ({ ok: false, retry: "transient", reason: "refused" });
    const results = [];
    for (let i = 1; i <= 3; i++) results.push(await h.outbox.enqueue(enter(i)));
    assert.ok(results.every((r) => r.durable && !r.duplicate));
    assert.equal((await h.outbox.enqueue(enter(1))).duplicate, true, "the key is the idempotency key");
    const journal = await readFile(join(h.dir, "outbox.journal"), "utf8");
    assert.equal(journal.trimEnd().split("\n").filter((l) => l.includes('"op":"add"')).length, 3);
    h.respond = (e) => (e.key === "R2:enter" ? { ok: true } : { ok: false, retry: "transient", reason: "refused" });
    await runFor(h, 5000);
    const again = await h.restart({ sender: async () => ({ ok: false, retry: "transient", reason: "down" }) });
    assert.deepEqual(again.list().map((e) => e.key), ["R1:enter", "R3:enter"]);
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
      assert.deepEqual(order.filter((k) => k.startsWith("R1")), ["R1:enter", "R1:enter", "R1:enter", "R1:enter", "R1:leave"]);
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

test("a permanent refusal parks the entry; it blocks nothing, is counted, visible and re-triable", async () => {
  await withOutbox(async (h) => {
    let poisoned = true;
    h.respond = (e) => (e.key === "R1:enter" && poisoned ? { ok: false, retry: "permanent", reason: "code 500: plate not allowed" } : { ok: true });
    await h.outbox.enqueue(enter(1));
    await h.outbox.enqueue(leave(1));
    await h.outbox.enqueue(enter(2));
    await runFor(h, 2000);
    const status = h.outbox.status();
    assert.deepEqual([status.depth, status.parked, status.delivered], [0, 1, 2]);
    assert.equal(status.lastError?.reason, "code 500: plate not allowed");
    assert.ok(h.sent.some((s) => s.key === "R1:leave"), "the exit went out although its entry is parked");
    assert.deepEqual(h.outbox.list({ parked: true }).map((e) => [e.key, e.parked?.reason]), [["R1:enter", "code 500: plate not allowed"]]);
    // Parked survives a restart and is not retried by it.
    await h.restart();
    await runFor(h, 2000);
    assert.equal(h.outbox.status().parked, 1);
    assert.equal(h.sent.filter((s) => s.key === "R1:enter").length, 1);
    poisoned = false;
    assert.equal(await h.outbox.retryParked("nope"), 0);
    assert.equal(await h.outbox.retryParked("R1:enter"), 1);
    await runFor(h, 1000);
    assert.deepEqual([h.outbox.status().parked, h.outbox.status().depth], [0, 0]);
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
      h.respond = async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight--;
        return { ok: true };
      };
      for (let i = 0; i < 60; i++) await h.outbox.enqueue(enter(i));
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
      assert.deepEqual(again.list().map((e) => [e.key, !!e.parked]), [["R0:enter", true], ["R100:enter", false]]);
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
    assert.deepEqual(again.list().map((e) => e.key), ["R1:enter"]);
    assert.equal(again.status().warnings[0]?.code, "torn-tail");
  });
});

test("bad input is refused with a clear error and changes nothing", async () => {
  await withOutbox(async (h) => {
    await assert.rejects(h.outbox.enqueue({ recordNo: "", kind: "enter", service: "enterNotify", biz: {} }), (e: unknown) => isStoreError(e, StoreErrorCode.Invalid));
    await assert.rejects(h.outbox.enqueue({ recordNo: "R1", kind: "enter", service: "enterNotify", biz: "x" as unknown as Record<string, unknown> }), (e: unknown) => isStoreError(e, StoreErrorCode.Invalid));
    assert.equal(h.outbox.status().depth, 0);
    await h.outbox.stop();
    await assert.rejects(h.outbox.enqueue(enter(1)), (e: unknown) => isStoreError(e, StoreErrorCode.Closed));
  });
});
