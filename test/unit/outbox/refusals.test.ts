import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_PERMANENT_CODES, outboxConfigSchema } from "../../../src/outbox/config.js";
import { decideFailure, type FailureFacts } from "../../../src/outbox/refusal.js";
import { MAX_PLATFORM_MSG_CHARS, sendResultFrom } from "../../../src/outbox/platform-sender.js";
import type { PlatformFailureKind, PlatformResult } from "../../../src/platform/client.js";
import { busy, down, enter, journalMatching, leave, runFor, withOutbox } from "../../helpers/outbox-harness.js";

/*
 * A busy platform is not a broken report: refusals are retried with backoff; a report is
 * parked only for a permanent code or its age, and parked reports are probed again by
 * themselves (on a timer and on any 200), in order per record.
 */

const MIN = 60_000;
const HOUR = 3_600_000;
const keysOf = (sent: Array<{ key: string }>) => sent.map((s) => s.key);

test("the refusal rule, row by row (including the rows that must not park)", () => {
  const policy = { permanentCodes: new Set([4006, 4010]), parkAfterMs: HOUR };
  const at = (retry: FailureFacts["retry"], code: number | undefined, ageMs: number) => decideFailure({ retry, code, createdAtMs: 0, nowMs: ageMs }, policy);
  const rows: Array<[string, ReturnType<typeof at>, ReturnType<typeof decideFailure>]> = [
    ["busy code, young", at("refused", 0, MIN), { action: "retry" }],
    ["busy code, just under the age", at("refused", 0, HOUR - 1), { action: "retry" }],
    ["busy code, at the age", at("refused", 0, HOUR), { action: "park", cause: "age" }],
    ["permanent code, young", at("refused", 4006, 0), { action: "park", cause: "permanent-code" }],
    ["another permanent code", at("refused", 4010, MIN), { action: "park", cause: "permanent-code" }],
    ["transport failure, young", at("transient", undefined, MIN), { action: "retry" }],
    ["transport failure, a week old: never parks", at("transient", undefined, 7 * 24 * HOUR), { action: "retry" }],
    ["a sender's permanent verdict", at("permanent", undefined, 0), { action: "park", cause: "permanent" }],
  ];
  for (const [name, actual, expected] of rows) assert.deepEqual(actual, expected, name);
});

test("property: any platform answer maps to one outbox outcome; the code is kept and the platform's text bounded", () => {
  const kinds: PlatformFailureKind[] = ["refused", "timeout", "http-status", "bad-response", "business-code"];
  const answer: fc.Arbitrary<PlatformResult> = fc.oneof(
    fc.record({ ok: fc.constant(true as const), code: fc.constant(200 as const), msg: fc.string(), data: fc.constant(undefined), elapsedMs: fc.nat() }),
    fc.record(
      {
        ok: fc.constant(false as const),
        kind: fc.constantFrom(...kinds),
        code: fc.integer(),
        msg: fc.string({ maxLength: 2000 }),
        status: fc.integer({ min: 100, max: 599 }),
        detail: fc.string(),
        elapsedMs: fc.nat(),
      },
      { requiredKeys: ["ok", "kind", "elapsedMs"] },
    ),
  );
  fc.assert(
    fc.property(answer, (result) => {
      const mapped = sendResultFrom(result);
      if (result.ok) return assert.deepEqual(mapped, { ok: true });
      assert.equal(mapped.ok, false);
      if (mapped.ok) return;
      assert.ok(mapped.reason.length > 0);
      if (result.kind === "business-code" && result.code !== undefined) {
        assert.equal(mapped.retry, "refused");
        assert.equal(mapped.code, result.code);
        assert.equal(mapped.platformMsg, (result.msg ?? "").slice(0, MAX_PLATFORM_MSG_CHARS));
      } else {
        assert.equal(mapped.retry, "transient");
        assert.equal(mapped.code, undefined);
      }
    }),
    { numRuns: Number(process.env.LK_FUZZ_RUNS ?? 500) },
  );
});

test("config: defaults, and 200 is never a refusal", () => {
  const defaults = outboxConfigSchema.parse(undefined);
  assert.deepEqual(defaults, { permanentCodes: [...DEFAULT_PERMANENT_CODES], parkAfterMs: 24 * HOUR, probeParkedMs: HOUR });
  for (const code of [4004, 4006, 4010]) assert.ok(defaults.permanentCodes.includes(code), `${code} is permanent by default`);
  for (const code of [0, 4007, 4290, 5000, 5030]) assert.ok(!defaults.permanentCodes.includes(code), `${code} is retried by default`);
  const bad = outboxConfigSchema.safeParse({ permanentCodes: [4006, 200], parkAfterMs: 10, probeParkedMs: "1h" });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error?.issues.map((i) => i.path.join(".")).sort(), ["parkAfterMs", "permanentCodes", "probeParkedMs"]);
});

test("a busy code (0 平台繁忙) is retried with backoff, the exit waits behind its entry, both go when the platform recovers", async () => {
  await withOutbox(async (h) => {
    let refusals = 5;
    h.respond = (e) => (e.key === "R1:enter" && refusals-- > 0 ? busy() : { ok: true });
    await h.outbox.enqueue(enter(1));
    await h.outbox.enqueue(leave(1));
    await runFor(h, 300, 50);
    const during = h.outbox.status();
    assert.deepEqual([during.parked, during.retrying, during.held, during.depth], [0, 1, 0, 2]);
    assert.deepEqual(during.lastRefusal, { key: "R1:enter", code: 0, platformMsg: "平台繁忙", atMs: h.sent[0]!.atMs });
    assert.equal(during.lastError?.platformMsg, "平台繁忙");
    assert.equal(h.outbox.get("R1:enter")?.lastCode, 0);
    await runFor(h, 30_000, 50);
    assert.deepEqual(keysOf(h.sent), ["R1:enter", "R1:enter", "R1:enter", "R1:enter", "R1:enter", "R1:enter", "R1:leave"]);
    // random() = 0.5: half of each backoff ceiling (1 s, 2 s, 4 s, ...).
    const gaps = h.sent.slice(1, 6).map((s, i) => s.atMs - h.sent[i]!.atMs);
    assert.deepEqual(gaps, [500, 1000, 2000, 4000, 8000]);
    const after = h.outbox.status();
    assert.deepEqual([after.depth, after.parked, after.retrying, after.delivered], [0, 0, 0, 2]);
    assert.equal(after.link, "up", "a platform that answers is not an outage, even when it refuses");
  });
});

test("a code of the default permanent list parks at once; the same report answered busy would not", async () => {
  await withOutbox(async (h) => {
    h.respond = (e) => (e.recordNo === "R1" ? busy(4006, "sign error") : busy());
    await h.outbox.enqueue(enter(1));
    await h.outbox.enqueue(enter(2));
    await runFor(h, 10_000);
    assert.equal(keysOf(h.sent).filter((k) => k === "R1:enter").length, 1);
    assert.ok(keysOf(h.sent).filter((k) => k === "R2:enter").length > 3);
    assert.deepEqual(
      h.outbox.list({ parked: true }).map((e) => [e.key, e.parked?.cause, e.parked?.code, e.parked?.platformMsg]),
      [["R1:enter", "permanent-code", 4006, "sign error"]],
    );
    const parkLine = /"op":"park","key":"R1:enter".*"cause":"permanent-code","code":4006,"platformMsg":"sign error"/;
    assert.match(await journalMatching(h, parkLine), parkLine);
  });
});

test("a report still refused after parkAfterMs is parked (refusals only: a dead link never parks)", async () => {
  await withOutbox(
    async (h) => {
      h.respond = (e) => (e.recordNo === "R1" ? busy() : down);
      await h.outbox.enqueue(enter(1));
      await h.outbox.enqueue(enter(2));
      await runFor(h, 9 * MIN, 1000);
      assert.equal(h.outbox.status().parked, 0, "not before its age");
      assert.equal(h.outbox.status().retrying, 2);
      await runFor(h, 2 * MIN, 1000);
      const parked = h.outbox.list({ parked: true });
      assert.deepEqual(
        parked.map((e) => [e.key, e.parked?.cause]),
        [["R1:enter", "age"]],
      );
      assert.ok(parked[0]!.parked!.atMs - parked[0]!.createdAtMs >= 10 * MIN);
      const sendsAtPark = h.sent.filter((s) => s.key === "R1:enter").length;
      await runFor(h, 20 * MIN, 10_000);
      assert.equal(h.sent.filter((s) => s.key === "R1:enter").length, sendsAtPark, "a parked report waits for its probe");
      assert.equal(h.outbox.get("R2:enter")?.parked, undefined, "transport failures are retried, never parked by age");
    },
    { parkAfterMs: 10 * MIN, probeAfterFailures: 1000 },
  );
});

test("parked reports are probed every probeParkedMs, in order per record", async () => {
  await withOutbox(
    async (h) => {
      const startMs = h.clock.now();
      let platformBusy = true;
      h.respond = (e) => (e.recordNo === "R1" && platformBusy ? busy() : { ok: true });
      await h.outbox.enqueue(enter(1));
      await h.outbox.enqueue(leave(1));
      await runFor(h, 15 * MIN, 10_000);
      assert.deepEqual([h.outbox.status().parked, h.outbox.status().held], [1, 1]);
      const before = h.sent.length;
      // The first timed probe, one hour after start: the entry once, still busy, still parked.
      await runFor(h, startMs + HOUR + 5000 - h.clock.now(), 5000);
      assert.deepEqual(
        h.sent.slice(before).map((s) => [s.key, s.atMs - startMs]),
        [["R1:enter", HOUR]],
      );
      assert.equal(h.outbox.status().parked, 1);
      assert.equal(h.outbox.status().parkedProbe.lastAtMs, startMs + HOUR);
      assert.equal(h.outbox.status().parkedProbe.nextAtMs, startMs + 2 * HOUR);
      platformBusy = false;
      await runFor(h, HOUR, 5000);
      const probed = h.sent.slice(before + 1);
      assert.deepEqual(
        probed.map((s) => [s.key, s.atMs - startMs]),
        [
          ["R1:enter", 2 * HOUR],
          ["R1:leave", 2 * HOUR],
        ],
        "the entry first, then its exit at once",
      );
      assert.deepEqual([h.outbox.status().parked, h.outbox.status().depth, h.outbox.status().delivered], [0, 0, 2]);
    },
    { parkAfterMs: 10 * MIN },
  );
});

test("any 200 from the platform probes the parked reports, at most once per gap; the record's parked reports follow in order", async () => {
  await withOutbox(async (h) => {
    let refusing = true;
    h.respond = (e) => (e.recordNo === "R1" && refusing ? busy(4006, "sign error") : { ok: true });
    await h.outbox.enqueue(enter(1));
    await runFor(h, 1000);
    assert.equal(h.outbox.status().parked, 1);
    // The platform answered 200 to something else (a lane's pre-leave bill): probe now.
    h.outbox.platformAnswered();
    await runFor(h, 100);
    assert.deepEqual(keysOf(h.sent), ["R1:enter", "R1:enter"]);
    const probedAt = h.sent[1]!.atMs;
    // Within the gap (the backoff cap, 60 s here) further 200s make one probe at its end.
    h.outbox.platformAnswered();
    h.outbox.platformAnswered();
    await runFor(h, 30_000, 1000);
    assert.equal(h.sent.length, 2);
    // The exit is queued meanwhile: it waits behind the parked entry.
    await h.outbox.enqueue(leave(1));
    refusing = false;
    await runFor(h, 40_000, 1000);
    assert.deepEqual(keysOf(h.sent), ["R1:enter", "R1:enter", "R1:enter", "R1:leave"]);
    assert.ok(h.sent[2]!.atMs - probedAt === 60_000, `probed ${h.sent[2]!.atMs - probedAt} ms after the last probe`);
    assert.deepEqual([h.outbox.status().parked, h.outbox.status().depth], [0, 0]);
  });
});

test("a delivery of the outbox's own counts as a 200: it probes the parked reports", async () => {
  await withOutbox(async (h) => {
    let refusing = true;
    h.respond = (e) => (e.recordNo === "R1" && refusing ? busy(4006, "sign error") : { ok: true });
    await h.outbox.enqueue(enter(1));
    await runFor(h, 1000);
    refusing = false;
    await h.outbox.enqueue(enter(2));
    await runFor(h, 1000);
    assert.deepEqual(keysOf(h.sent), ["R1:enter", "R2:enter", "R1:enter"]);
    assert.equal(h.outbox.status().delivered, 2);
  });
});

test("a probe answered busy for a young report puts it back to retrying; a probe with no answer leaves it parked", async () => {
  await withOutbox(
    async (h) => {
      let answer = busy(4006, "sign error");
      h.respond = () => answer;
      await h.outbox.enqueue(enter(1));
      await runFor(h, 1000);
      assert.equal(h.outbox.status().parked, 1);
      answer = down;
      h.outbox.probeParked();
      await runFor(h, 1000);
      assert.equal(h.outbox.status().parked, 1, "no answer tells nothing: still parked");
      answer = busy();
      h.outbox.probeParked();
      await runFor(h, 100);
      assert.deepEqual([h.outbox.status().parked, h.outbox.status().retrying], [0, 1]);
      assert.match(await journalMatching(h, /"op":"unpark","key":"R1:enter"/), /"op":"unpark","key":"R1:enter"/);
      answer = { ok: true };
      await runFor(h, 5000);
      assert.deepEqual([h.outbox.status().depth, h.outbox.status().delivered], [0, 1]);
    },
    { probeAfterFailures: 1000 },
  );
});
