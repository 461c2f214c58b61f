import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LotHarness } from "../helpers/lot-harness.js";
import { rawRequest, type RawAnswer } from "../helpers/raw-http.js";
import type { RefundEntry } from "../../src/lanes/refunds.js";

/*
 * The refunds-owed ledger's API under random input: `GET /api/refunds` with any query string
 * (keys, values, broken escapes) and `POST /api/refunds/:id/refunded` with any id and body.
 * Every answer is a 2xx of the documented shape or a 4xx with a stable code; a refused request
 * leaves the ledger as it was; the box keeps answering. LK_FUZZ_RUNS=N sends N requests per
 * property instead of the default.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 120);

const hex = fc.constantFrom(..."0123456789ABCDEFabcdefGZ%");
const escape = fc.tuple(hex, hex).map(([a, b]) => `%${a}${b}`);
const nasty = fc.constantFrom(
  "%",
  "%E0",
  "%C0%AF",
  "%E0%A4%A",
  "..",
  "%2F",
  "%00",
  "京",
  "+",
  "&",
  "=",
  "#",
  "owed",
  "refunded",
  "1714535004712",
  "-1",
  "1e3",
  "9007199254740993",
  "0x10",
  "",
);
const text = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 6 }).map((s) => encodeURIComponent(s)),
      escape,
      nasty,
    ),
    { maxLength: 4 },
  )
  .map((parts) => parts.join(""));

const query = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom("state", "fromMs", "toMs", "STATE", "limit"), text), fc.option(text, { nil: undefined })), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join("&"));

const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 70 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
);
const body: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.dictionary(fc.constantFrom("operator", "reason", "id", "Operator"), jsonValue, { maxKeys: 3 }).map((o) => Buffer.from(JSON.stringify(o))),
  fc.string({ minLength: 1, maxLength: 20 }).map((operator) => Buffer.from(JSON.stringify({ operator }))),
  fc.constantFrom("[", "{", '{"operator":', "null", '"x"', '{"operator":"王五"}').map((s) => Buffer.from(s)),
);

function request(lot: LotHarness, method: string, target: string, payload?: Buffer): Promise<RawAnswer> {
  const port = Number(new URL(lot.apiUrl).port);
  const head = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", `Authorization: Bearer ${lot.config.api.token}`, "Connection: close"];
  if (payload) head.push("Content-Type: application/json", `Content-Length: ${payload.length}`);
  return rawRequest(port, Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), payload ?? Buffer.alloc(0)]));
}

function refusedWithCode(answer: RawAnswer, what: string): void {
  assert.ok(answer.status >= 400 && answer.status < 500, `${what}: ${answer.status} ${answer.bodyText}`);
  const code = (answer.json as { error?: { code?: unknown } } | undefined)?.error?.code;
  assert.match(String(code), /^E_[A-Z_]+$/, `${what}: no stable code in ${answer.bodyText}`);
}

async function seeded(lot: LotHarness, count: number): Promise<string[]> {
  const ids: string[] = [];
  const baseMs = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    const id = i === 0 ? `in1_2026010100000000${i}:EX2026 out1/${i}?` : `in1_2026010100000000${i}:EX${i}out1`;
    const payment = { payType: 4, amountFen: 700 + i, orderNo: `TC${i}`, payTimeMs: baseMs + i, path: "cash", operator: "王五" };
    await lot.app.lanes.refunds.add({
      id,
      kind: "double-payment",
      laneId: "out1",
      plate: `粤B6000${i}`,
      recordNo: `in1_2026010100000000${i}`,
      first: payment,
      second: { ...payment, payType: 1, path: "platform", operator: "" },
      amountFen: 700 + i,
      refundVia: "cash",
      foundAtMs: baseMs + i * 1000,
    });
    ids.push(id);
  }
  return ids;
}

test("GET /api/refunds with any query: 200 with consistent totals, or 400 E_REFUND_FILTER; nothing changes", async () => {
  const lot = await LotHarness.create();
  try {
    await seeded(lot, 3);
    const before = JSON.stringify(lot.app.lanes.refunds.list());
    const seen = { ok: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const answer = await request(lot, "GET", `/api/refunds${q ? `?${q}` : ""}`);
        if (answer.status === 200) {
          const { items, totals } = answer.json as { items: RefundEntry[]; totals: { owedCount: number; owedFen: number; refundedCount: number } };
          assert.ok(Array.isArray(items) && items.length <= 3);
          assert.equal(totals.owedCount + totals.refundedCount, items.length);
          assert.equal(
            totals.owedFen,
            items.filter((e) => e.state === "owed").reduce((sum, e) => sum + e.amountFen, 0),
            "totals are the items' sum, in fen",
          );
          seen.ok++;
        } else {
          refusedWithCode(answer, `GET ?${q}`);
          seen.refused++;
        }
        assert.equal(JSON.stringify(lot.app.lanes.refunds.list()), before, "a read changes nothing");
      }),
      { numRuns: runs },
    );
    assert.ok(seen.ok > 0 && seen.refused > 0, `both outcomes exercised: ${JSON.stringify(seen)}`);
    assert.equal((await lot.api("GET", "/api/status")).status, 200, "the box still answers");
  } finally {
    await lot.stop();
  }
});

test("POST /api/refunds/:id/refunded with any id and body: 200 only for an owed id and a valid operator, else a 4xx with a code and the ledger unchanged", async () => {
  const lot = await LotHarness.create();
  try {
    const ids = await seeded(lot, 3);
    const id = fc.oneof(
      text,
      fc.constantFrom(...ids).map((real) => encodeURIComponent(real)),
      fc.constantFrom(...ids).map((real) => encodeURIComponent(real).replace(/%3A/g, ":") + "%"),
    );
    let marked = 0;
    await fc.assert(
      fc.asyncProperty(id, body, async (rawId, payload) => {
        const before = lot.app.lanes.refunds.list();
        const answer = await request(lot, "POST", `/api/refunds/${rawId}/refunded`, payload);
        const after = lot.app.lanes.refunds.list();
        if (answer.status === 200) {
          const refund = (answer.json as { refund: RefundEntry }).refund;
          const prior = before.find((e) => e.id === refund.id);
          assert.equal(prior?.state, "owed", "only an owed refund is marked");
          assert.equal(refund.state, "refunded");
          assert.ok(typeof refund.refundedBy === "string" && refund.refundedBy.trim().length > 0);
          // That entry changed, and nothing else.
          assert.deepEqual(
            after.filter((e) => e.id !== refund.id),
            before.filter((e) => e.id !== refund.id),
          );
          assert.equal(after.find((e) => e.id === refund.id)?.amountFen, prior.amountFen, "the amount never changes");
          marked++;
        } else {
          refusedWithCode(answer, `POST ${rawId} ${payload.toString("latin1").slice(0, 40)}`);
          assert.deepEqual(after, before, "a refused request changes nothing");
        }
      }),
      { numRuns: runs },
    );
    assert.equal((await lot.api("GET", "/api/status")).status, 200, "the box still answers");
    assert.ok(marked > 0, "some requests marked a refund");
    const totals = lot.app.lanes.refunds.totals();
    assert.equal(totals.owedFen + totals.refundedFen, 700 + 701 + 702, "every fen is still accounted for");
  } finally {
    await lot.stop();
  }
});
