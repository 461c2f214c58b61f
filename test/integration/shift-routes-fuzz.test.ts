import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LotHarness } from "../helpers/lot-harness.js";

/*
 * The shift routes take any body and query: a clear refusal with a stable code (never a 500),
 * and the book's state is exactly what the accepted requests made it.
 * LK_FUZZ_RUNS=N sends N requests instead of the default.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 60);

const body = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ operator: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.constant(null)) }, { requiredKeys: [] }),
  fc.record({ operator: fc.string({ minLength: 1, maxLength: 10 }), extra: fc.anything() }),
);
const request = fc.oneof(
  fc.record({ kind: fc.constant("start" as const), body }),
  fc.record({ kind: fc.constant("end" as const), body: fc.option(body, { nil: undefined }) }),
  fc.record({
    kind: fc.constant("list" as const),
    from: fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String)),
    to: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  }),
  fc.record({ kind: fc.constant("get" as const), id: fc.string({ maxLength: 30 }) }),
);

test("shift routes: any body or query gets 200 or a refusal with a stable code; the book keeps exactly what was accepted (fuzz)", async () => {
  const lot = await LotHarness.create();
  try {
    let open: string | null = null;
    let ended = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let answer: { status: number; body: any };
        if (r.kind === "start") answer = await lot.api("POST", "/api/shift/start", r.body);
        else if (r.kind === "end") answer = await lot.api("POST", "/api/shift/end", r.body);
        else if (r.kind === "list") answer = await lot.api("GET", `/api/shifts?from=${encodeURIComponent(r.from)}${r.to === undefined ? "" : `&to=${encodeURIComponent(r.to)}`}`);
        else answer = await lot.api("GET", `/api/shifts/${encodeURIComponent(r.id) || "x"}`);
        assert.ok(answer.status < 500, `${r.kind}: ${answer.status} ${JSON.stringify(answer.body)}`);
        if (answer.status >= 400) assert.match(String(answer.body?.error?.code), /^E_[A-Z_]+$/, JSON.stringify(answer.body));
        if (r.kind === "start" && answer.status === 200) {
          assert.equal(open, null, "a start is accepted only with no shift open");
          open = answer.body.shift.id;
        }
        if (r.kind === "start" && answer.status === 409) assert.notEqual(open, null);
        if (r.kind === "end" && answer.status === 200) {
          assert.notEqual(open, null, "an end is accepted only with a shift open");
          open = null;
          ended++;
        }
        assert.equal(lot.app.shifts.current()?.id ?? null, open);
        assert.equal(lot.app.shifts.endedList().length, ended);
      }),
      { numRuns: runs },
    );
    assert.equal((await lot.api("GET", "/healthz")).status, 200, "still serving");
  } finally {
    await lot.stop();
  }
});
