import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { outboxSummary } from "../../../panel/format.js";
import { translator } from "../../../panel/i18n.js";

const en = translator("en");
const ui = (key: string) => en("ui", key);

test("the panel's outbox line shows parked and retrying counts and the platform's last refusal", () => {
  assert.equal(outboxSummary({ depth: 0, parked: 0, retrying: 0 }, ui), "0 (parked 0, retrying 0)");
  assert.equal(
    outboxSummary({ depth: 3, parked: 1, retrying: 2, held: 1, oldestAgeMs: 90_000, lastRefusal: { code: 0, platformMsg: "平台繁忙" } }, ui),
    "3 (parked 1, retrying 2, held 1, oldest 1 min 30 s) · last refusal 0 平台繁忙",
  );
  const zh = translator("zh");
  assert.match(
    outboxSummary({ depth: 1, parked: 1, retrying: 0, lastRefusal: { code: 4006, platformMsg: "sign error" } }, (k) => zh("ui", k)),
    /^1 \(搁置 1, 重试中 0\) · 平台最近拒绝 4006 sign error$/,
  );
  for (const key of ["retrying", "held", "lastRefusal"]) assert.notEqual(zh("ui", key), key, `${key} is translated`);
});

test("the outbox line never throws on what a status stream may carry", () => {
  fc.assert(
    fc.property(fc.anything(), (value) => typeof outboxSummary(value as never, ui) === "string"),
    { numRuns: 300 },
  );
});
