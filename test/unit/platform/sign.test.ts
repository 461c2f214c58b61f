import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { computeSign, maskSignTemp, md5UpperHex, signsEqual } from "../../../src/platform/sign.js";
import { parseEnvelope, verifyEnvelope } from "../../../src/platform/envelope.js";
import { PlatformErrorCode, isPlatformError } from "../../../src/platform/errors.js";

interface Example {
  name: string;
  key?: string;
  sign: string;
  signTemp?: string;
  body: string;
}
const fixtures = JSON.parse(readFileSync(new URL("../../fixtures/platform/doc-examples.json", import.meta.url), "utf8")) as {
  demoKey: string;
  examples: Example[];
};
const demoKey = fixtures.demoKey;

const vectorFields = [
  { name: "pid", value: "123456" },
  { name: "serviceName", value: "enterNotify" },
  { name: "timestamp", value: "1539571096" },
  { name: "bizContent", value: '{"enterTime":"2018-01-01 11:00:00","parkCode":"TEST/1P1","plateNum":"粤B12345"}' },
];

test("the published vector reproduces: EE454BE0DE3D211559865DA33745E589 and the document's signTemp", () => {
  const result = computeSign(vectorFields, "45DC1F8604F940829E75D6A76595C299");
  assert.equal(result.sign, "EE454BE0DE3D211559865DA33745E589");
  assert.equal(result.signTemp, fixtures.examples[0]!.signTemp);
});

test("the vector breaks with the key appended without &key= or with another bizContent key order", () => {
  const { stringTemp } = computeSign(vectorFields, "45DC1F8604F940829E75D6A76595C299");
  assert.notEqual(md5UpperHex(`${stringTemp}45DC1F8604F940829E75D6A76595C299`), "EE454BE0DE3D211559865DA33745E589");
  const reordered = vectorFields.map((f) =>
    f.name === "bizContent" ? { name: f.name, value: '{"parkCode":"TEST/1P1","enterTime":"2018-01-01 11:00:00","plateNum":"粤B12345"}' } : f,
  );
  assert.notEqual(computeSign(reordered, "45DC1F8604F940829E75D6A76595C299").sign, "EE454BE0DE3D211559865DA33745E589");
});

const workedBiz =
  '{"carSubType":91,"carType":9,"discountFee":100,"enterTime":"2023-11-14 20:00:00","leaveTime":"2023-11-14 22:13:20","outChannelid":"2","paidFee":400,"parkCode":"TEST/1P1","payableFee":500,"plateId":"EX20231114221320001","plateNum":"粤B12345","recordNo":"IN20231114200000001","sweepCode":0}';
const spacedBiz = workedBiz.replace(/,"/g, ', "').replace(/":/g, '": ');
const escapedBiz = workedBiz.replace("粤", "\\u7ca4");

const workedFields = (biz: string) => [
  { name: "pid", value: "P100001" },
  { name: "serviceName", value: "preLeaveNotify" },
  { name: "timestamp", value: "1700000000" },
  { name: "sign", value: "" },
  { name: "bizContent", value: biz },
];

const workedBody = (biz: string, sign: string) => `{"pid":"P100001","serviceName":"preLeaveNotify","sign":"${sign}","timestamp":"1700000000","bizContent":${biz}}`;
const at = (epochS: number) => ({ key: demoKey, nowMs: epochS * 1000, windowS: 300 });

test("our worked preLeaveNotify example: compact JSON, raw UTF-8, upper-case hex gives 7B00FF0807D10CE52588E30B0E6CC75B", () => {
  const result = computeSign(workedFields(workedBiz), demoKey);
  assert.equal(result.sign, "7B00FF0807D10CE52588E30B0E6CC75B");
  assert.equal(result.signTemp, fixtures.examples[2]!.signTemp);
});

test("worked example variant: the lower-case hex sign is accepted on receipt (case-insensitive) but never emitted", () => {
  const lower = "7b00ff0807d10ce52588e30b0e6cc75b";
  assert.equal(signsEqual(lower, "7B00FF0807D10CE52588E30B0E6CC75B"), true);
  verifyEnvelope(parseEnvelope(workedBody(workedBiz, lower)), at(1_700_000_000));
  assert.match(computeSign(workedFields(workedBiz), demoKey).sign, /^[0-9A-F]{32}$/);
});

test('worked example variant: bizContent with ", " / ": " separators signs as 273134EFA0A2FC9904EF158852D61501', () => {
  assert.equal(computeSign(workedFields(spacedBiz), demoKey).sign, "273134EFA0A2FC9904EF158852D61501");
  // Received with spaces, the compact sign is wrong and the spaced one right: the raw text counts.
  assert.throws(
    () => verifyEnvelope(parseEnvelope(workedBody(spacedBiz, "7B00FF0807D10CE52588E30B0E6CC75B")), at(1_700_000_000)),
    (e) => isPlatformError(e, PlatformErrorCode.BadSign),
  );
  verifyEnvelope(parseEnvelope(workedBody(spacedBiz, "273134EFA0A2FC9904EF158852D61501")), at(1_700_000_000));
});

test("worked example variant: bizContent with \\u7ca4 for 粤 signs as 0118EFD06131AE371E9BF28697B90B0B", () => {
  assert.equal(computeSign(workedFields(escapedBiz), demoKey).sign, "0118EFD06131AE371E9BF28697B90B0B");
  assert.throws(() => verifyEnvelope(parseEnvelope(workedBody(escapedBiz, "7B00FF0807D10CE52588E30B0E6CC75B")), at(1_700_000_000)));
  verifyEnvelope(parseEnvelope(workedBody(escapedBiz, "0118EFD06131AE371E9BF28697B90B0B")), at(1_700_000_000));
});

for (const example of fixtures.examples) {
  test(`document example verifies with its key: ${example.name}`, () => {
    const envelope = parseEnvelope(example.body);
    const key = example.key ?? demoKey;
    const { sign } = computeSign(envelope.signFields, key, envelope.signFieldName);
    assert.equal(sign, example.sign);
    verifyEnvelope(envelope, { key, nowMs: envelope.timestampS * 1000, windowS: 300 });
    // Any other key fails: the fixture really pins the key.
    assert.throws(() => verifyEnvelope(envelope, { key: `${key}0`, nowMs: envelope.timestampS * 1000, windowS: 300 }));
  });
}

test("the document's pretty-printed form of an example does not verify: the signature covers the compact text", () => {
  const compact = fixtures.examples.find((e) => e.name.startsWith("4.4"))!;
  const pretty = JSON.stringify(JSON.parse(compact.body), null, 2);
  assert.throws(
    () => verifyEnvelope(parseEnvelope(pretty), { key: demoKey, nowMs: 1_700_000_300_000, windowS: 300 }),
    (e) => isPlatformError(e, PlatformErrorCode.BadSign),
  );
});

test("empty top-level values are skipped, a numeric 0 is kept, and unknown top-level fields are signed", () => {
  const base = computeSign([{ name: "a", value: "1" }], "k");
  assert.equal(
    computeSign(
      [
        { name: "a", value: "1" },
        { name: "b", value: "" },
      ],
      "k",
    ).sign,
    base.sign,
  );
  assert.notEqual(
    computeSign(
      [
        { name: "a", value: "1" },
        { name: "b", value: "0" },
      ],
      "k",
    ).sign,
    base.sign,
  );
  assert.equal(
    computeSign(
      [
        { name: "b", value: "0" },
        { name: "a", value: "1" },
      ],
      "k",
    ).stringTemp,
    "a=1&b=0",
  );
  // Case-sensitive byte order: upper case sorts before lower case.
  assert.equal(
    computeSign(
      [
        { name: "b", value: "1" },
        { name: "B", value: "2" },
      ],
      "k",
    ).stringTemp,
    "B=2&b=1",
  );
});

test("signsEqual refuses different lengths and different signs; maskSignTemp hides the key", () => {
  assert.equal(signsEqual("ABC", "ABCD"), false);
  assert.equal(signsEqual("7B00FF0807D10CE52588E30B0E6CC75C", "7B00FF0807D10CE52588E30B0E6CC75B"), false);
  const masked = maskSignTemp(`a=1&key=${demoKey}`, demoKey);
  assert.equal(masked, "a=1&key=HIDDEN");
  assert.ok(!masked.includes(demoKey));
});
