import { test } from "node:test";
import assert from "node:assert/strict";
import { classify } from "../../../src/platform/client.js";

test("classify: code 200 as a number or a string is success, with msg and data", () => {
  assert.deepEqual(classify(200, '{"code":200,"msg":"成功","data":{"payType":1}}', 3), { ok: true, code: 200, msg: "成功", data: { payType: 1 }, elapsedMs: 3 });
  const s = classify(200, '{"code":"200","msg":"成功"}', 1);
  assert.equal(s.ok, true);
  assert.equal(s.ok && s.data, undefined);
  assert.equal(classify(200, '{"Code":200,"Msg":"ok"}', 1).ok, true, "names match case-insensitively");
});

test("classify: every failure kind", () => {
  const cases: Array<[number, string, string, Record<string, unknown>]> = [
    [200, '{"code":0,"msg":"待支付"}', "business-code", { code: 0, msg: "待支付" }],
    [200, '{"code":"500","msg":"x","data":"y"}', "business-code", { code: 500, data: "y" }],
    [500, "Internal Server Error", "http-status", { status: 500 }],
    [302, "", "http-status", { status: 302 }],
    [200, '{"code":200,"msg":"成', "bad-response", { status: 200 }],
    [200, "[]", "bad-response", {}],
    [200, '{"msg":"no code"}', "bad-response", {}],
    [200, '{"code":"abc"}', "bad-response", {}],
    [200, '{"code":200.5}', "bad-response", {}],
  ];
  for (const [status, body, kind, fields] of cases) {
    const r = classify(status, body, 1);
    assert.equal(r.ok, false, body);
    if (!r.ok) {
      assert.equal(r.kind, kind, body);
      for (const [k, v] of Object.entries(fields)) assert.deepEqual((r as unknown as Record<string, unknown>)[k], v, `${body} ${k}`);
    }
  }
});
