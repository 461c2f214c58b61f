import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { yuan, lotTime, duration, describeEvent } from "../../../panel/format.js";
import { LABELS, translator } from "../../../panel/i18n.js";

test("money is shown in 元 with two decimals, exactly from integer fen", () => {
  assert.equal(yuan(0), "0.00 元");
  assert.equal(yuan(1), "0.01 元");
  assert.equal(yuan(500), "5.00 元");
  assert.equal(yuan(1999), "19.99 元");
  assert.equal(yuan(123456789), "1234567.89 元");
  assert.equal(yuan(-250), "-2.50 元");
  for (const bad of [undefined, null, "500", 5.5, Number.NaN]) assert.equal(yuan(bad), "—");
  fc.assert(
    fc.property(fc.integer({ min: -10_000_000_00, max: 10_000_000_00 }), (fen) => {
      const text = yuan(fen);
      const match = /^(-?)(\d+)\.(\d{2}) 元$/.exec(text);
      assert.ok(match, text);
      const back = (Number(match[2]) * 100 + Number(match[3])) * (match[1] ? -1 : 1);
      assert.equal(back, fen);
    }),
    { numRuns: 500 },
  );
});

test("times are on the lot's clock whatever the host's zone", () => {
  const ms = Date.UTC(2024, 4, 6, 16, 30, 5); // 2024-05-07 00:30:05 in Shanghai
  assert.equal(lotTime(ms, "Asia/Shanghai"), "2024-05-07 00:30:05");
  assert.equal(lotTime(ms, "Asia/Shanghai", { date: false }), "00:30:05");
  assert.equal(lotTime(ms, "UTC"), "2024-05-06 16:30:05");
  assert.equal(lotTime(Date.UTC(2024, 0, 1, 0, 0, 0), "Asia/Shanghai"), "2024-01-01 08:00:00");
  assert.equal(lotTime(undefined, "Asia/Shanghai"), "");
  assert.equal(lotTime(ms, "Not/AZone"), "2024-05-06 16:30:05", "a bad zone falls back to UTC rather than breaking the page");
});

test("durations read as a person would say them", () => {
  assert.equal(duration(42_000), "42 s");
  assert.equal(duration(65_000), "1 min 05 s");
  assert.equal(duration(3 * 3_600_000 + 5 * 60_000), "3 h 05 min");
  assert.equal(duration(3 * 86_400_000 + 2 * 3_600_000), "3 d 2 h");
  assert.equal(duration(-1), "—");
});

test("an event line names the lane, the translated type, plate, money, path and operator", () => {
  const zh = translator("zh");
  const line = describeEvent(
    { type: "payment", atMs: Date.UTC(2024, 4, 6, 2, 0, 0), laneId: "out1", plate: "粤A12345", feeFen: 500, path: "cash", operator: "王芳", reason: "现金收费" },
    { label: zh, zone: "Asia/Shanghai", lanes: new Map([["out1", "北出口"]]) },
  );
  assert.equal(line, "10:00:00 北出口 收费 粤A12345 5.00 元 现金 @王芳 (现金收费)");
  const en = describeEvent({ type: "decided", atMs: 0, laneId: "in1", reason: "fee-due" }, { label: translator("en"), zone: "UTC" });
  assert.equal(en, "00:00:00 in1 decided (fee due)");
  const unknown = describeEvent({ type: "brand-new-event", atMs: 0 }, { label: zh, zone: "UTC" });
  assert.equal(unknown, "00:00:00 brand-new-event", "an event type the page does not know still shows");
});

test("both languages label the same things", () => {
  const groups = (lang: "zh" | "en") => Object.fromEntries(Object.entries(LABELS[lang]).map(([group, table]) => [group, Object.keys(table).sort()]));
  assert.deepEqual(groups("en"), groups("zh"));
  assert.equal(translator("zh")("command", "cash-paid"), "现金已收");
  assert.equal(translator("en")("command", "cash-paid"), "Cash received");
  assert.equal(translator("zh")("barrier", "open"), "已抬杆");
  assert.equal(translator("zh")("command", "open"), "开闸");
});

test("every data-i18n key in the page exists in both languages", async () => {
  const { readFile } = await import("node:fs/promises");
  const html = await readFile(new URL("../../../panel/index.html", import.meta.url), "utf8");
  const keys = [...html.matchAll(/data-i18n(?:-placeholder)?="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(keys.length > 20);
  for (const lang of ["zh", "en"] as const) {
    for (const key of keys) {
      const [group, name] = key.split(/\.(.+)/) as [string, string];
      assert.equal(typeof LABELS[lang][group]?.[name], "string", `${lang}: ${key}`);
    }
  }
});

test("every label the script asks for exists in both languages", async () => {
  const { readFile } = await import("node:fs/promises");
  const script = await readFile(new URL("../../../panel/panel.js", import.meta.url), "utf8");
  const keys = new Set([...script.matchAll(/\bui\("([A-Za-z]+)"\)/g)].map((m) => m[1]!));
  assert.ok(keys.size > 30, `${keys.size} keys`);
  for (const lang of ["zh", "en"] as const) for (const key of keys) assert.equal(typeof LABELS[lang].ui?.[key], "string", `${lang}: ui.${key}`);
});
