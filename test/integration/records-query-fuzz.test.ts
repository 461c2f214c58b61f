import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LotHarness } from "../helpers/lot-harness.js";

/*
 * The records search takes any query string: an answer within its promises (the rows fit the
 * filters asked) or a 400 E_RECORDS_QUERY, counted, never a 500; the lot is unchanged and the
 * server keeps serving. LK_FUZZ_RUNS=N sends N requests instead of the default.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 80);
const HOUR_MS = 3_600_000;

const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("in-park", "paid", "unpaid", "released", "粤A", "a1", "鄂A1O001", "0", "1", "2", "200", "201", "-1", "1e3", "2024-05-01T08:00:00+08:00", "2024-05-01T08:00:00"),
  fc.integer({ min: -1e15, max: 1e16 }).map(String),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
);
const key = fc.oneof(fc.constantFrom("plate", "from", "to", "status", "page", "pageSize", "limit"), fc.string({ maxLength: 12 }));
const query = fc.array(fc.tuple(key, value), { maxLength: 5 });

test("records search: any query gets rows that fit it or a counted 400 E_RECORDS_QUERY; the lot is unchanged (fuzz)", async () => {
  const lot = await LotHarness.create();
  try {
    await lot.park("粤A10001", 2 * HOUR_MS);
    await lot.park("粤B20002", 5 * HOUR_MS);
    const before = JSON.stringify(lot.app.store.listInPark().items);
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(query, async (pairs) => {
        const params = new URLSearchParams();
        for (const [k, v] of pairs) params.append(k, v);
        const answer = await lot.api("GET", `/api/records?${params}`);
        assert.ok(answer.status === 200 || answer.status === 400, `${params}: ${answer.status} ${JSON.stringify(answer.body)}`);
        if (answer.status === 400) {
          refused++;
          assert.equal(answer.body.error.code, "E_RECORDS_QUERY", JSON.stringify(answer.body));
          return;
        }
        const status = params.get("status");
        const pageSize = Number(params.get("pageSize") ?? params.get("limit") ?? 50);
        assert.ok(answer.body.items.length <= pageSize);
        for (const row of answer.body.items as Array<{ status: string; enterAtMs: number }>) {
          if (status === "in-park") assert.equal(row.status, "in-park");
          const to = params.get("to");
          if (to !== null && /^\d+$/.test(to)) assert.ok(row.enterAtMs < Number(to));
        }
      }),
      { numRuns: runs },
    );
    // And any recordNo on the detail route.
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 80 }), async (recordNo) => {
        const answer = await lot.api("GET", `/api/records/${encodeURIComponent(recordNo) || "%20"}`);
        assert.ok([200, 400, 404].includes(answer.status), `${recordNo}: ${answer.status}`);
        if (answer.status !== 200) assert.match(answer.body.error.code, /^E_(RECORDS_QUERY|RECORD_NOT_FOUND|BAD_PARAM)$/);
      }),
      { numRuns: Math.ceil(runs / 2) },
    );
    const status = (await lot.api("GET", "/api/status")).body as { httpRejections: Record<string, number> };
    assert.equal(status.httpRejections["GET /api/records"] ?? 0, refused, "every refusal counted");
    assert.equal(JSON.stringify(lot.app.store.listInPark().items), before, "the lot is unchanged");
    assert.equal((await lot.api("GET", "/healthz")).status, 200, "still serving");
  } finally {
    await lot.stop();
  }
});
