import { test } from "node:test";
import assert from "node:assert/strict";
import { formatFen } from "../../../../src/core/fees/money.js";
import { formatWireTime, parseWireTime } from "../../../../src/core/time/wire-time.js";
import { epochFromLocal, firstInstantAtLocal, localDateTime, zoneOffsetMs } from "../../../../src/core/time/zone.js";

test("wire times read and print on the lot's clock", () => {
  // 2024-05-06 08:00 in Shanghai (UTC+8) is 00:00 UTC.
  assert.equal(parseWireTime("2024-05-06 08:00:00", "Asia/Shanghai"), Date.UTC(2024, 4, 6, 0, 0, 0));
  assert.equal(formatWireTime(Date.UTC(2024, 4, 6, 0, 0, 0), "Asia/Shanghai"), "2024-05-06 08:00:00");
  assert.equal(parseWireTime("2024-05-06 08:00:00", "Asia/Kolkata"), Date.UTC(2024, 4, 6, 2, 30, 0));
  assert.equal(parseWireTime("2024-05-06T08:00:00", "UTC"), Date.UTC(2024, 4, 6, 8));
  // Milliseconds are dropped when printing, not rounded.
  assert.equal(formatWireTime(Date.UTC(2024, 4, 6, 0, 0, 59, 999), "Asia/Shanghai"), "2024-05-06 08:00:59");
  // Round trip over a year, every 7 h 13 min, in a DST zone.
  for (let ms = Date.UTC(2024, 0, 1); ms < Date.UTC(2025, 0, 1); ms += 26_000_000) {
    const text = formatWireTime(ms, "Europe/London");
    const back = parseWireTime(text, "Europe/London")!;
    // A repeated hour reads back as its earlier instant.
    assert.ok(back === ms - (ms % 1000) || back === ms - (ms % 1000) - 3_600_000, `${text}: ${back} vs ${ms}`);
  }
});

test("text that is not a real time is refused", () => {
  for (const text of [
    "2024-02-30 10:00:00",
    "2024-13-01 10:00:00",
    "2024-05-06 24:00:00",
    "2024-05-06 10:60:00",
    "2024-05-06 10:00",
    "06/05/2024 10:00:00",
    "",
    "2024-05-06 10:00:00+08:00",
  ]) {
    assert.equal(parseWireTime(text, "Asia/Shanghai"), undefined, text);
  }
  assert.equal(parseWireTime(42 as never, "Asia/Shanghai"), undefined);
  // 02:30 does not exist in New York on 2024-03-10 (spring forward).
  assert.equal(parseWireTime("2024-03-10 02:30:00", "America/New_York"), undefined);
  // 01:30 exists twice on 2024-11-03: the earlier instant (EDT, UTC−4) is taken.
  assert.equal(parseWireTime("2024-11-03 01:30:00", "America/New_York"), Date.UTC(2024, 10, 3, 5, 30));
});

test("zone arithmetic: offsets, DST gaps and overlaps", () => {
  assert.equal(zoneOffsetMs(Date.UTC(2024, 0, 1), "Asia/Shanghai"), 8 * 3_600_000);
  assert.equal(zoneOffsetMs(Date.UTC(2024, 6, 1), "America/New_York"), -4 * 3_600_000);
  assert.equal(zoneOffsetMs(Date.UTC(2024, 0, 1), "America/New_York"), -5 * 3_600_000);
  // Liberia kept UTC−0:44:30 until 1972: offsets with seconds.
  assert.equal(zoneOffsetMs(Date.UTC(1970, 0, 1), "Africa/Monrovia"), -(44 * 60 + 30) * 1000);
  const gap = { year: 2024, month: 3, day: 10, hour: 2, minute: 30, second: 0 };
  // epochFromLocal moves a skipped time forward by the gap (03:30 EDT) …
  assert.equal(epochFromLocal(gap, "America/New_York"), Date.UTC(2024, 2, 10, 7, 30));
  // … firstInstantAtLocal gives the jump itself (03:00 EDT).
  assert.equal(firstInstantAtLocal(gap, "America/New_York"), Date.UTC(2024, 2, 10, 7, 0));
  assert.deepEqual(localDateTime(Date.UTC(2024, 2, 10, 7, 0), "America/New_York"), { year: 2024, month: 3, day: 10, hour: 3, minute: 0, second: 0 });
  // Minutes past 59 roll over: minute 1500 of a day is 01:00 the next day.
  assert.equal(epochFromLocal({ year: 2024, month: 5, day: 6, hour: 0, minute: 1500, second: 0 }, "Asia/Shanghai"), Date.UTC(2024, 4, 6, 17));
});

test("formatFen prints yuan with two decimals", () => {
  assert.equal(formatFen(1250), "12.50");
  assert.equal(formatFen(700), "7.00");
  assert.equal(formatFen(5), "0.05");
  assert.equal(formatFen(0), "0.00");
  assert.equal(formatFen(-5), "-0.05");
  assert.equal(formatFen(123_456_789), "1234567.89");
  assert.throws(() => formatFen(1.5), RangeError);
  assert.throws(() => formatFen(Number.NaN), RangeError);
});
