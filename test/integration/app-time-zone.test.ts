import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DestinationStream } from "pino";
import { App } from "../../src/app/app.js";
import { loadConfigFile, validateConfig } from "../../src/config/load.js";
import { hasZoneRules, zoneOffsetMs } from "../../src/core/time/zone.js";
import { createLogger } from "../../src/kernel/log.js";
import { demoRaw, tempDir, testConfig, writeConfigFile } from "../helpers/demo-config.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { startEmulator } from "../../src/platform/emulator/emulator.js";

/**
 * The lot's time zone comes from the system's tzdata on the service's path: the config check,
 * a car's bill and reports and the log's clock never ask Intl (which maps ICU's data) for a
 * zone tzdata has; a damaged zone file falls back to Intl with a logged warning; an unknown
 * zone is still refused with its path. The tests run in this order in one process: the first
 * one needs a process in which nothing has asked Intl about a zone yet.
 */

// Every way into Intl's zone data the code could take, counted with where it came from.
const intlCalls: string[] = [];
const RealDateTimeFormat = Intl.DateTimeFormat;
const record = (what: string): void => void intlCalls.push(`${what}\n${new Error().stack ?? ""}`);
Intl.DateTimeFormat = new Proxy(RealDateTimeFormat, {
  construct(target, args: ConstructorParameters<typeof Intl.DateTimeFormat>, newTarget) {
    record(`new Intl.DateTimeFormat(${JSON.stringify(args)})`);
    return Reflect.construct(target, args, newTarget) as Intl.DateTimeFormat;
  },
  apply(target, thisArg, args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    record(`Intl.DateTimeFormat(${JSON.stringify(args)})`);
    return Reflect.apply(target, thisArg, args);
  },
});
for (const method of ["toLocaleString", "toLocaleDateString", "toLocaleTimeString", "getTimezoneOffset"] as const) {
  const real = Date.prototype[method] as (this: Date, ...args: unknown[]) => unknown;
  Object.defineProperty(Date.prototype, method, {
    value: function (this: Date, ...args: unknown[]) {
      record(`Date.prototype.${method}`);
      return real.apply(this, args);
    },
    configurable: true,
    writable: true,
  });
}

function capture(): DestinationStream & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, write: (text: string) => void lines.push(JSON.parse(text) as Record<string, unknown>) };
}

test("a box on a tzdata zone: config check, start, a billed car and its reports, the log's clock; Intl never asked", async () => {
  // The emulator (the cloud's side, not the box's) is started before the count begins.
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai" });
  let lot: LotHarness | undefined;
  try {
    intlCalls.length = 0;
    const raw = demoRaw() as Record<string, any>;
    raw.lot.timeZone = "Asia/Shanghai";
    const loaded = await loadConfigFile(writeConfigFile(raw));
    assert.ok(loaded.ok, JSON.stringify(loaded));
    assert.ok(hasZoneRules("Asia/Shanghai"), "the config check read the zone from tzdata");
    lot = await LotHarness.create({ emulator });
    const stay = await lot.park("粤B24680", 2.5 * 3_600_000);
    emulator.setPlate("粤B24680", "frictionless");
    await lot.arrive("out1", "粤B24680");
    const due = await lot.waitForEvent("fee-due", { plate: "粤B24680" });
    assert.equal(due.feeFen, 700);
    await lot.pass("out1");
    const leave = await emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    // The report's time is on the Shanghai clock (UTC+8), read with tzdata's offsets.
    const outAtMs = Date.parse(`${String(leave.biz.leaveTime).replace(" ", "T")}+08:00`);
    assert.ok(Math.abs(outAtMs - Date.now()) < 60_000, `leaveTime ${String(leave.biz.leaveTime)}`);
    // The human log format on the lot's clock, with the offsets the service hands it.
    const lines: string[] = [];
    const human = createLogger({
      format: "human",
      timeZone: "Asia/Shanghai",
      zoneOffsetMs: (ms) => zoneOffsetMs(ms, "Asia/Shanghai"),
      destination: { write: (line: string) => void lines.push(line) },
    });
    const before = Date.now();
    human.info("on the lot's clock");
    const hour = new Date(before + 8 * 3_600_000).getUTCHours();
    assert.match(lines[0]!, new RegExp(`^${String(hour).padStart(2, "0")}:\\d\\d:\\d\\d\\.\\d{3} INFO {2}on the lot's clock`));
  } finally {
    await lot?.stop();
    await emulator.stop();
  }
  assert.deepEqual(intlCalls, [], "no Intl time-zone call on the box's path");
});

test("a damaged zone file: the box starts on Intl's offsets and says so in the log", async () => {
  const dir = tempDir("lk-tzdir-");
  mkdirSync(join(dir, "Asia"));
  writeFileSync(join(dir, "Asia/Kathmandu"), Buffer.from("TZif2\u0000 not a zone file at all"));
  const previous = process.env.TZDIR;
  process.env.TZDIR = dir;
  try {
    intlCalls.length = 0;
    const config = testConfig((raw) => (raw.lot.timeZone = "Asia/Kathmandu"));
    assert.equal(hasZoneRules("Asia/Kathmandu"), false);
    assert.ok(intlCalls.length > 0, "Intl checked the zone");
    const out = capture();
    const app = new App({ config, log: createLogger({ format: "json", destination: out, level: "warn" }), apiPort: 0 });
    await app.start();
    try {
      const warning = out.lines.find((line) => line.code === "E_TZIF_INVALID");
      assert.ok(warning, JSON.stringify(out.lines));
      assert.equal(warning.timeZone, "Asia/Kathmandu");
      assert.match(String(warning.msg), /Asia\/Kathmandu: .*offsets come from Intl/);
      assert.equal(zoneOffsetMs(Date.UTC(2024, 5, 1), "Asia/Kathmandu"), (5 * 60 + 45) * 60_000);
    } finally {
      await app.stop();
    }
  } finally {
    if (previous === undefined) delete process.env.TZDIR;
    else process.env.TZDIR = previous;
  }
});

test("an unknown or hostile zone is refused with its path, through tzdata or through Intl", () => {
  const emptyDir = tempDir("lk-tzdir-empty-");
  for (const tzdir of [undefined, emptyDir]) {
    const previous = process.env.TZDIR;
    if (tzdir === undefined) delete process.env.TZDIR;
    else process.env.TZDIR = tzdir;
    try {
      for (const zone of ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Asia/../UTC", ""]) {
        const raw = demoRaw() as Record<string, any>;
        raw.lot.timeZone = zone;
        const result = validateConfig(raw);
        assert.equal(result.ok, false, zone);
        const problem = !result.ok ? result.problems.find((p) => p.path === "lot.timeZone") : undefined;
        assert.ok(problem, `${zone}: ${JSON.stringify(result)}`);
        assert.match(problem.message, /not an IANA time zone/);
      }
      // A zone only Intl knows here (no tzdata in the empty directory) is still accepted.
      const raw = demoRaw() as Record<string, any>;
      raw.lot.timeZone = "Asia/Tokyo";
      assert.equal(validateConfig(raw).ok, true);
    } finally {
      if (previous === undefined) delete process.env.TZDIR;
      else process.env.TZDIR = previous;
    }
  }
});
