import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import fc from "fast-check";
import { systemClock } from "../../../src/kernel/clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { RefundErrorCode, RefundLedger, type RefundPayment } from "../../../src/lanes/refunds.js";
import { tempDir } from "../../helpers/demo-config.js";

const payment = (path: string, amountFen: number): RefundPayment => ({ payType: path === "cash" ? 4 : 1, amountFen, orderNo: `O-${path}`, payTimeMs: 1, path, operator: "" });

test("the refunds ledger: totals add up in fen, one refund per id, marked once, all of it survives a restart (property)", async () => {
  const runs = Number(process.env.LK_FUZZ_RUNS ?? 15);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ id: fc.constantFrom("a", "b", "c", "d", "e"), amountFen: fc.nat(100_000), viaCash: fc.boolean(), refund: fc.boolean() }), { maxLength: 12 }),
      async (ops) => {
        const dir = tempDir("lk-refunds-");
        try {
          const ledger = new RefundLedger(dir, systemClock, silentLogger());
          await ledger.start();
          const kept = new Map<string, { amountFen: number; viaCash: boolean; refunded: boolean }>();
          for (const op of ops) {
            const { added } = await ledger.add({
              id: op.id,
              kind: "double-payment",
              laneId: "out1",
              plate: "粤A1",
              recordNo: `R-${op.id}`,
              first: payment(op.viaCash ? "cash" : "platform", op.amountFen),
              second: payment("platform", op.amountFen),
              amountFen: op.amountFen,
              refundVia: op.viaCash ? "cash" : "platform",
            });
            assert.equal(added, !kept.has(op.id), "a repeated id is the same refund");
            if (added) kept.set(op.id, { amountFen: op.amountFen, viaCash: op.viaCash, refunded: false });
            if (op.refund) {
              const entry = kept.get(op.id)!;
              if (entry.refunded)
                await assert.rejects(
                  () => ledger.markRefunded(op.id, "booth"),
                  (e: { code?: string }) => e.code === RefundErrorCode.AlreadyRefunded,
                );
              else await ledger.markRefunded(op.id, "booth");
              entry.refunded = true;
            }
          }
          await ledger.stop();
          const reopened = new RefundLedger(dir, systemClock, silentLogger());
          await reopened.start();
          const owed = [...kept.values()].filter((e) => !e.refunded);
          const refunded = [...kept.values()].filter((e) => e.refunded);
          const sum = (list: typeof owed) => list.reduce((a, e) => a + e.amountFen, 0);
          assert.deepEqual(reopened.totals(), {
            owedCount: owed.length,
            owedFen: sum(owed),
            owedCashFen: sum(owed.filter((e) => e.viaCash)),
            refundedCount: refunded.length,
            refundedFen: sum(refunded),
          });
          assert.equal(reopened.list({ state: "owed" }).length, owed.length);
          await assert.rejects(
            () => reopened.markRefunded("nope", "x"),
            (e: { code?: string }) => e.code === RefundErrorCode.NotFound,
          );
          await reopened.stop();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: runs },
  );
});
