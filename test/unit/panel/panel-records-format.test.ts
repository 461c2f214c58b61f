import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { lotLocalToMs, lotTime, reasonText } from "../../../panel/format.js";
import { translator } from "../../../panel/i18n.js";

/*
 * The records view's time fields mean the lot's clock whatever the computer's zone: a wall time
 * typed in the lot's zone comes back as the same wall time; anything else is no time at all.
 * LK_FUZZ_RUNS=N runs N cases instead of the default.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);
const zones = ["Asia/Shanghai", "America/New_York", "UTC", "Asia/Kolkata", "Australia/Lord_Howe"];

test("a wall time on the lot's clock round-trips to the same wall time (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constantFrom(...zones), (ms, zone) => {
      const wall = lotTime(ms, zone).replace(" ", "T").slice(0, 16);
      const back = lotLocalToMs(wall, zone);
      assert.ok(back !== undefined, wall);
      // In a daylight-saving fold two instants share a wall time: either is right, the wall time is the same.
      assert.equal(lotTime(back, zone).replace(" ", "T").slice(0, 16), wall, `${zone} ${wall}`);
      assert.equal(back % 60_000, 0);
    }),
    { numRuns: runs },
  );
  assert.equal(lotLocalToMs("2024-05-01T08:00", "Asia/Shanghai"), Date.UTC(2024, 4, 1, 0, 0));
  assert.equal(lotLocalToMs("2024-05-01T08:00:30", "UTC"), Date.UTC(2024, 4, 1, 8, 0, 30));
});

test("anything that is not a wall time is no time (property)", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), (text) => {
      if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(text)) return;
      assert.equal(lotLocalToMs(text, "Asia/Shanghai"), undefined, text);
    }),
    { numRuns: runs },
  );
  for (const bad of [undefined, null, "", "2024-05-01", "2024-05-01 08:00", "08:00"]) assert.equal(lotLocalToMs(bad, "UTC"), undefined, String(bad));
});

test("an event's reason: translated, a person's or the platform's words kept, untranslated English only in English", () => {
  const zh = translator("zh");
  const en = translator("en");
  assert.equal(reasonText("charge", { label: zh, english: false }), "按规则收费");
  assert.equal(reasonText("manual: 设备故障", { label: zh, english: false }), "人工: 设备故障");
  assert.equal(reasonText("driver has no phone", { label: zh, english: false, typed: true }), "driver has no phone");
  assert.equal(reasonText("车位已满", { label: zh, english: false }), "车位已满");
  assert.equal(reasonText("store closed while deciding", { label: zh, english: false }), "");
  assert.equal(reasonText("store closed while deciding", { label: en, english: true }), "store closed while deciding");
});
