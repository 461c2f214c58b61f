import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import {
  compactWireTime,
  fenToYuan,
  fenToYuanText,
  formatWireTime,
  maskSecret,
  normalizeKeys,
  overLength,
  parseWireTime,
  readBiz,
  wInt,
  wIntOpt,
  wStrReq,
  yuanToFen,
} from "../../../src/platform/wire.js";

test("wire times are the lot's local time: Asia/Shanghai is UTC+8", () => {
  const ms = Date.UTC(2023, 10, 14, 12, 0, 0); // 20:00 in Shanghai
  assert.equal(formatWireTime(ms, "Asia/Shanghai"), "2023-11-14 20:00:00");
  assert.equal(parseWireTime("2023-11-14 20:00:00", "Asia/Shanghai"), ms);
  assert.equal(formatWireTime(ms, "UTC"), "2023-11-14 12:00:00");
  assert.equal(compactWireTime(ms + 7, "Asia/Shanghai"), "20231114200000007");
});

test("parseWireTime refuses impossible dates, other formats and non-existent local times", () => {
  assert.equal(parseWireTime("2023-02-30 10:00:00", "Asia/Shanghai"), undefined);
  assert.equal(parseWireTime("2023-11-14", "Asia/Shanghai"), undefined);
  assert.equal(parseWireTime("14/11/2023 20:00:00", "Asia/Shanghai"), undefined);
  // 02:30 on the spring-forward day does not exist in Berlin.
  assert.equal(parseWireTime("2024-03-31 02:30:00", "Europe/Berlin"), undefined);
  assert.equal(parseWireTime("2024-03-31 03:30:00", "Europe/Berlin"), Date.UTC(2024, 2, 31, 1, 30));
});

test("wire time round-trips for any instant (second precision)", () => {
  for (let i = 0; i < 500; i++) {
    const ms = Math.floor((1_500_000_000 + i * 7_777_777) / 1) * 1000;
    for (const zone of ["Asia/Shanghai", "Europe/Berlin", "America/New_York"]) {
      const text = formatWireTime(ms, zone);
      const back = parseWireTime(text, zone);
      // An ambiguous autumn hour may map to either instant; both format to the same text.
      assert.ok(back !== undefined, text);
      assert.equal(formatWireTime(back, zone), text);
    }
  }
});

test("money: yuan doubles become integer fen and back", () => {
  assert.equal(yuanToFen(200.5), 20050);
  assert.equal(yuanToFen(0.29), 29);
  assert.equal(yuanToFen(1.005), 101);
  assert.equal(fenToYuan(20050), 200.5);
  assert.equal(fenToYuanText(20050), "200.50");
});

test("maskSecret keeps 4 characters at each end", () => {
  assert.equal(maskSecret("134567890123456789"), "1345**********6789");
  assert.equal(maskSecret("short"), "*****");
});

test("normalizeKeys matches names case-insensitively and ignoring underscores; the first spelling wins", () => {
  assert.deepEqual(normalizeKeys({ channelId: "2", PAY_SCENE: 1, other: true }, ["channelid", "payScene"]), { channelid: "2", payScene: 1, other: true });
  assert.deepEqual(normalizeKeys({ channelid: "1", channelId: "2" }, ["channelid"]), { channelid: "1" });
});

test("readBiz coerces numeric strings, treats empty optional numbers as absent, and lists every problem", () => {
  const schema = z.looseObject({ parkCode: wStrReq(), page: wInt(), pageSize: wIntOpt() });
  const good = readBiz(schema, { ParkCode: "TEST/1P1", page: "2", pageSize: "" });
  assert.deepEqual(good, { ok: true, value: { parkCode: "TEST/1P1", page: 2, pageSize: undefined } });
  const bad = readBiz(schema, { parkCode: "", page: "two" });
  assert.equal(bad.ok, false);
  if (!bad.ok) {
    assert.deepEqual(bad.problems.map((p) => p.path).sort(), ["page", "parkCode"]);
  }
  assert.equal(readBiz(schema, { parkCode: "X", page: 1.5 }).ok, false);
});

test("overLength warns per field without rejecting", () => {
  assert.deepEqual(overLength({ plateId: "EX2023111422132000100001x", ok: "x" }, { plateId: 20, ok: 5 }), ["plateId has 25 characters (declared 20)"]);
  assert.deepEqual(overLength({ plateNum: "粤B12345" }, { plateNum: 7 }), [], "length counts characters, not bytes");
});

test("normalizeKeys never lets a __proto__ key reach the prototype", () => {
  const input = JSON.parse('{"__proto__":{"polluted":1},"constructor":"x","parkCode":"P"}') as Record<string, unknown>;
  const out = normalizeKeys(input, ["parkCode"]);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.equal((out as { polluted?: number }).polluted, undefined);
  assert.equal(out.constructor, "x");
});
