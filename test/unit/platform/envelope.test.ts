import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalJson, encodeEnvelope, parseEnvelope, verifyEnvelope } from "../../../src/platform/envelope.js";
import { scanTopLevelMembers } from "../../../src/platform/json-scan.js";
import { computeSign } from "../../../src/platform/sign.js";
import { PlatformErrorCode, isPlatformError } from "../../../src/platform/errors.js";

const key = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const nowS = 1_700_000_000;
const verify = (body: string, nowSeconds = nowS, windowS = 300) => verifyEnvelope(parseEnvelope(body), { key, nowMs: nowSeconds * 1000, windowS });
const fails = (code: string) => (e: unknown) => isPlatformError(e) && e.code === code;

/** Signs an arbitrary body the way a third party might: over the given raw bizContent text. */
function signedBody(parts: { bizRaw: string; bizForm?: "object" | "string"; timestamp?: string | number; extra?: string; names?: Partial<Record<string, string>> }): string {
  const ts = parts.timestamp ?? String(nowS);
  const n = (name: string) => parts.names?.[name] ?? name;
  const fields = [
    { name: n("pid"), value: "P100001" },
    { name: n("serviceName"), value: "addCar" },
    { name: n("timestamp"), value: String(ts) },
    { name: n("bizContent"), value: parts.bizRaw },
  ];
  if (parts.extra) fields.push({ name: "version", value: parts.extra });
  const { sign } = computeSign(fields, key);
  const biz = parts.bizForm === "string" ? JSON.stringify(parts.bizRaw) : parts.bizRaw;
  const tsText = typeof ts === "number" ? String(ts) : JSON.stringify(ts);
  const extra = parts.extra ? `,"version":${JSON.stringify(parts.extra)}` : "";
  return `{"${n("pid")}":"P100001","${n("serviceName")}":"addCar","${n("sign")}":"${sign}","${n("timestamp")}":${tsText}${extra},"${n("bizContent")}":${biz}}`;
}

test("canonicalJson: keys in ASCII order at every depth, compact, raw UTF-8, numbers as numbers", () => {
  const text = canonicalJson({ b: 1, a: { d: [3, { z: 1, y: "粤" }], c: true }, A: null, skip: undefined, n: 200.5 });
  assert.equal(text, '{"A":null,"a":{"c":true,"d":[3,{"y":"粤","z":1}]},"b":1,"n":200.5}');
  assert.throws(() => canonicalJson({ x: Number.NaN }), fails(PlatformErrorCode.Encode));
  assert.throws(() => canonicalJson({ at: new Date(0) }), fails(PlatformErrorCode.Encode));
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), fails(PlatformErrorCode.Encode));
});

test("encodeEnvelope signs the exact text it sends, in both bizContent forms", () => {
  for (const form of ["object", "string"] as const) {
    const sent = encodeEnvelope({ pid: "P100001", key, serviceName: "enterNotify", timestamp: String(nowS), biz: { plateNum: "粤B12345", carType: 9 }, bizContentForm: form });
    assert.equal(sent.bizText, '{"carType":9,"plateNum":"粤B12345"}');
    assert.ok(sent.bodyText.includes("粤"), "non-ASCII stays raw");
    assert.ok(!sent.signTemp.includes("HIDDEN"));
    const parsed = parseEnvelope(sent.bodyText);
    assert.equal(parsed.bizForm, form);
    assert.equal(parsed.bizText, sent.bizText);
    assert.equal(verify(sent.bodyText).expectedSign, sent.sign);
  }
});

test("verification uses the raw bizContent as received: object form, any key order, any spacing", () => {
  const raw = '{ "state" : 1,\n  "carNum":"粤B54321", "carMMoney": 200.00, "id":0 }';
  const parsed = parseEnvelope(signedBody({ bizRaw: raw }));
  assert.equal(parsed.bizText, raw);
  verify(signedBody({ bizRaw: raw }));
  // 200.00 survives as text for the signature and as a number for the handler.
  assert.equal(parsed.biz.carMMoney, 200);
});

test("verification over the JSON-string form uses the decoded string", () => {
  const raw = '{"type":"0","channelId":"2"}';
  const body = signedBody({ bizRaw: raw, bizForm: "string" });
  assert.equal(parseEnvelope(body).bizText, raw);
  verify(body);
});

test("numbers as strings: timestamp as a number or a string signs alike, numeric strings inside bizContent keep their text", () => {
  verify(signedBody({ bizRaw: '{"page":"1","pageSize":"10"}', timestamp: nowS }));
  verify(signedBody({ bizRaw: '{"page":"1","pageSize":"10"}', timestamp: String(nowS) }));
});

test("field names match case-insensitively; new top-level fields are included in the signature", () => {
  const body = signedBody({ bizRaw: '{"a":1}', names: { serviceName: "servicename", bizContent: "BizContent", sign: "Sign" } });
  const parsed = parseEnvelope(body);
  assert.equal(parsed.serviceName, "addCar");
  assert.equal(parsed.signFieldName, "Sign");
  verify(body);
  verify(signedBody({ bizRaw: '{"a":1}', extra: "2.0" }));
  // Dropping the extra field from the signature would not verify.
  const tampered = signedBody({ bizRaw: '{"a":1}', extra: "2.0" }).replace('"version":"2.0"', '"version":"2.1"');
  assert.throws(() => verify(tampered), fails(PlatformErrorCode.BadSign));
});

test("a tampered body is rejected: one digit in bizContent, the serviceName, or the timestamp", () => {
  const good = signedBody({ bizRaw: '{"carMMoney":200.5,"carNum":"粤B54321"}' });
  verify(good);
  assert.throws(() => verify(good.replace("200.5", "200.6")), fails(PlatformErrorCode.BadSign));
  assert.throws(() => verify(good.replace("200.5", "200.50")), fails(PlatformErrorCode.BadSign));
  assert.throws(() => verify(good.replace('"addCar"', '"editCar"')), fails(PlatformErrorCode.BadSign));
  assert.throws(() => verify(good.replace(String(nowS), String(nowS + 1))), fails(PlatformErrorCode.BadSign));
});

test("a missing or empty sign is rejected with its own code", () => {
  const good = signedBody({ bizRaw: '{"a":1}' });
  const noSign = good.replace(/"sign":"[0-9A-F]{32}",/, "");
  assert.throws(() => verify(noSign), fails(PlatformErrorCode.MissingSign));
  assert.throws(() => verify(good.replace(/"sign":"[0-9A-F]{32}"/, '"sign":""')), fails(PlatformErrorCode.MissingSign));
});

test("timestamps: 300 s either way pass by default; 301 s old or in the future fail; the window is configurable", () => {
  const body = signedBody({ bizRaw: '{"a":1}' });
  verify(body, nowS + 300);
  verify(body, nowS - 300);
  assert.throws(() => verify(body, nowS + 301), fails(PlatformErrorCode.StaleTimestamp));
  assert.throws(
    () => verify(body, nowS - 301),
    (e) => isPlatformError(e, PlatformErrorCode.StaleTimestamp) && /future/.test(e.message),
  );
  verify(body, nowS + 3000, 3600);
  assert.throws(() => verify(body, nowS + 61, 60), fails(PlatformErrorCode.StaleTimestamp));
  // A bad sign is reported as such even when the time is also off: the sign is checked first.
  assert.throws(() => verify(body.replace('"a":1', '"a":2'), nowS + 9999), fails(PlatformErrorCode.BadSign));
});

test("malformed envelopes are refused with clear codes", () => {
  const cases: Array<[string, string]> = [
    ["{not json", PlatformErrorCode.BadJson],
    ["[1,2]", PlatformErrorCode.BadJson],
    ['"text"', PlatformErrorCode.BadJson],
    ['{"pid":"P","serviceName":"x","timestamp":"1","sign":"A"}', PlatformErrorCode.BadEnvelope],
    ['{"pid":"P","serviceName":"x","timestamp":"1","sign":"A","bizContent":[1]}', PlatformErrorCode.BadEnvelope],
    ['{"pid":"P","serviceName":"x","timestamp":"1","sign":"A","bizContent":"not json"}', PlatformErrorCode.BadEnvelope],
    ['{"pid":"P","serviceName":"x","timestamp":"soon","sign":"A","bizContent":{}}', PlatformErrorCode.BadEnvelope],
    ['{"pid":"P","serviceName":"x","timestamp":"1","sign":"A","bizContent":{},"bizContent":{}}', PlatformErrorCode.BadEnvelope],
    ['{"pid":"P","serviceName":"x","timestamp":"1","sign":"A","bizContent":{},"BIZCONTENT":{}}', PlatformErrorCode.BadEnvelope],
  ];
  for (const [body, code] of cases) assert.throws(() => parseEnvelope(body), fails(code), body);
});

test("a UTF-8 byte-order mark before the body is tolerated", () => {
  verify(`\ufeff${signedBody({ bizRaw: '{"a":1}' })}`);
});

test("scanner: raw spans survive strings with braces, escaped quotes and nested arrays", () => {
  const text = ' { "a" : "x}\\"{" , "b":[1,{"c":"]"}], "d" :-1.5e3,"e":null, "f" : {"g":{}} } ';
  const members = scanTopLevelMembers(text);
  assert.deepEqual(
    members.map((m) => [m.name, m.raw, m.kind]),
    [
      ["a", '"x}\\"{"', "string"],
      ["b", '[1,{"c":"]"}]', "array"],
      ["d", "-1.5e3", "number"],
      ["e", "null", "null"],
      ["f", '{"g":{}}', "object"],
    ],
  );
  for (const m of members) assert.equal(text.slice(m.start, m.end), m.raw);
  assert.deepEqual(scanTopLevelMembers("{}"), []);
});

test("scanner property: every member's raw span parses back to the member's value, whatever the spacing", () => {
  const spaced = (value: unknown, ws: string): string => {
    if (Array.isArray(value)) return `[${ws}${value.map((v) => spaced(v, ws)).join(`${ws},${ws}`)}${ws}]`;
    if (value !== null && typeof value === "object") {
      return `{${ws}${Object.entries(value)
        .map(([k, v]) => `${JSON.stringify(k)}${ws}:${ws}${spaced(v, ws)}`)
        .join(`${ws},${ws}`)}${ws}}`;
    }
    return JSON.stringify(value);
  };
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom("", " ", "\n", "\t ", "\r\n  "), (object, ws) => {
      const text = spaced(object, ws);
      const members = scanTopLevelMembers(text);
      assert.deepEqual(
        members.map((m) => m.name),
        Object.keys(JSON.parse(text)),
      );
      for (const m of members) {
        assert.deepEqual(JSON.parse(m.raw), (JSON.parse(text) as Record<string, unknown>)[m.name]);
        assert.equal(text.slice(m.start, m.end), m.raw);
      }
    }),
    { numRuns: 300 },
  );
});

test("round-trip property: whatever we encode verifies, and any change to the biz breaks it", () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(fc.string(), fc.integer(), fc.boolean())), fc.constantFrom("object", "string"), (biz, form) => {
      const sent = encodeEnvelope({ pid: "P100001", key, serviceName: "x", timestamp: String(nowS), biz, bizContentForm: form });
      verify(sent.bodyText);
      const changed = encodeEnvelope({ pid: "P100001", key, serviceName: "x", timestamp: String(nowS), biz: { ...biz, "\u0000extra": 1 } });
      assert.notEqual(changed.sign, sent.sign);
    }),
    { numRuns: 200 },
  );
});
