import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { SendResult } from "../../../src/outbox/outbox.js";
import { seededRandom } from "../../helpers/seeded-random.js";
import { busy, down, withOutbox } from "../../helpers/outbox-harness.js";

/*
 * For random reports and random sequences of platform answers (200, busy codes, a permanent
 * code for "poisoned" reports, transport errors, hangs that end at the client's deadline),
 * on a fake clock: every report is delivered exactly once, or parked with a reason (and its
 * record's later reports wait behind it); no report is sent before the earlier reports of
 * its record were accepted. LK_FUZZ_RUNS raises the number of runs.
 */

const RUNS = Number(process.env.LK_FUZZ_RUNS ?? 25);
const HOUR = 3_600_000;
const STEP_MS = 30_000;
const DEADLINE_MS = 5000;

type Answer = "ok" | "busy" | "busy-5030" | "transient" | "hang";

const scenario = fc.record({
  // Each occurrence is the next report of that record: enter, leave, then payments.
  reports: fc.array(
    fc.record({
      record: fc.integer({ min: 0, max: 3 }),
      poisoned: fc.oneof(fc.constant(false), fc.constant(false), fc.constant(false), fc.constant(true)),
      gapMs: fc.integer({ min: 0, max: 120_000 }),
    }),
    {
      minLength: 1,
      maxLength: 10,
    },
  ),
  answers: fc.array(fc.constantFrom<Answer>("ok", "busy", "busy-5030", "transient", "hang"), { maxLength: 60 }),
  seed: fc.integer(),
});

test("property: every report is delivered exactly once or parked with a reason, and per-record order holds", async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async ({ reports, answers, seed }) => {
      await withOutbox(
        async (h) => {
          const keysOfRecord = new Map<string, string[]>();
          const poisoned = new Set<string>();
          const accepted = new Map<string, number>();
          const violations: string[] = [];
          let cursor = 0;
          h.respond = async (entry): Promise<SendResult> => {
            const earlier = keysOfRecord.get(entry.recordNo) ?? [];
            for (const key of earlier.slice(0, earlier.indexOf(entry.key))) if (!accepted.has(key)) violations.push(`${entry.key} sent before ${key} was accepted`);
            if (accepted.has(entry.key)) violations.push(`${entry.key} sent again after its 200`);
            const answer = answers[cursor++] ?? "ok";
            if (answer === "transient") return down;
            if (answer === "hang") {
              // No answer: the platform client gives up at its deadline.
              await new Promise<void>((resolve) => h.clock.setTimeout(resolve, DEADLINE_MS));
              return { ok: false, retry: "transient", reason: `timeout no answer within ${DEADLINE_MS} ms` };
            }
            if (poisoned.has(entry.key)) return busy(4006, "sign error");
            if (answer === "busy") return busy();
            if (answer === "busy-5030") return busy(5030, "service unavailable");
            accepted.set(entry.key, (accepted.get(entry.key) ?? 0) + 1);
            return { ok: true };
          };

          const kinds = ["enter", "leave"];
          for (const { record, poisoned: bad, gapMs } of reports) {
            const recordNo = `R${record}`;
            const keys = keysOfRecord.get(recordNo) ?? [];
            const kind = kinds[keys.length] ?? `payment${keys.length - 1}`;
            const key = `${recordNo}:${kind}`;
            keys.push(key);
            keysOfRecord.set(recordNo, keys);
            if (bad) poisoned.add(key);
            await h.outbox.enqueue({ recordNo, kind, key, service: kind === "enter" ? "enterNotify" : "leaveNotify", biz: { recordNo } });
            await h.clock.advance(gapMs);
          }

          // What must end up delivered: each record's reports before its first poisoned one.
          const deliverable = [...keysOfRecord.values()].flatMap((keys) => {
            const firstBad = keys.findIndex((k) => poisoned.has(k));
            return firstBad < 0 ? keys : keys.slice(0, firstBad);
          });
          for (let t = 0; t < 8 * HOUR; t += STEP_MS) {
            await h.clock.advance(STEP_MS);
            for (const e of h.outbox.list({ parked: true })) if (!e.parked?.reason || !e.parked.cause) violations.push(`${e.key} parked without a reason`);
            if (cursor >= answers.length && h.outbox.status().inFlight === 0 && deliverable.every((k) => accepted.has(k))) break;
          }

          assert.deepEqual(violations, []);
          for (const keys of keysOfRecord.values()) {
            const firstBad = keys.findIndex((k) => poisoned.has(k));
            keys.forEach((key, i) => {
              const entry = h.outbox.get(key);
              if (firstBad < 0 || i < firstBad) {
                assert.equal(accepted.get(key), 1, `${key} delivered exactly once`);
                assert.equal(entry, undefined, `${key} left the outbox`);
              } else if (i === firstBad) {
                assert.equal(accepted.get(key), undefined);
                assert.equal(entry?.parked?.cause, "permanent-code", `${key} parked for its code`);
                assert.match(entry.parked.reason, /4006/);
              } else {
                assert.equal(accepted.get(key), undefined, `${key} waits behind its parked report`);
                assert.ok(entry && !entry.parked, `${key} is held, not parked`);
              }
            });
          }
          const status = h.outbox.status();
          const heldExpected = [...keysOfRecord.values()].reduce((n, keys) => {
            const firstBad = keys.findIndex((k) => poisoned.has(k));
            return n + (firstBad < 0 ? 0 : keys.length - firstBad - 1);
          }, 0);
          assert.equal(status.held, heldExpected);
          assert.equal(status.delivered, deliverable.length);
        },
        { random: seededRandom(seed), parkAfterMs: 20_000 },
      );
    }),
    { numRuns: RUNS },
  );
});
