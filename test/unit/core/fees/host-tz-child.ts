import { test } from "node:test";
import assert from "node:assert/strict";
import { DIGEST_CASES, billDigest } from "./bill-digest.js";
// The suites, run again in this process under the host zone host-tz.test.ts chose.
import "./worked-examples.test.js";
import "./doc-examples.test.js";
import "./properties.test.js";

/**
 * Run by host-tz.test.ts in a child process with TZ set to a zone that is not the lots' zone:
 * the worked-example, doc-example and property suites must pass here too, and a digest of
 * thousands of bills must equal the parent's, byte for byte.
 */
test("this process really runs in the host zone it was given", () => {
  const expected = Number(process.env.LANEKEEPER_EXPECTED_OFFSET_MINUTES);
  assert.ok(Number.isFinite(expected), "LANEKEEPER_EXPECTED_OFFSET_MINUTES is not set");
  assert.equal(new Date(Date.UTC(2024, 0, 1)).getTimezoneOffset(), expected);
});

test("the bill digest equals the parent's", () => {
  const expected = process.env.LANEKEEPER_BILL_DIGEST;
  assert.ok(expected, "LANEKEEPER_BILL_DIGEST is not set");
  assert.equal(billDigest(DIGEST_CASES), expected);
});
