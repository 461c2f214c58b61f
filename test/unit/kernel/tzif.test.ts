import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import fc from "fast-check";
import { parseTzif, readZoneFile, RULES_UNTIL_YEAR, TzifError, zoneNameProblem, type ZoneTable } from "../../../src/kernel/tzif.js";
import { hasZoneRules, isValidTimeZone, localDateTime, useZoneRules, zoneOffsetMs } from "../../../src/core/time/zone.js";
import { tempDir } from "../../helpers/demo-config.js";

/**
 * The TZif reader against the system's tzdata and Intl: the same offsets for every instant
 * 1970–2100 in zones with and without DST, odd offsets and half-hour DST; damaged files and
 * hostile zone names refused with a TzifError. LK_FUZZ_RUNS=N for more cases.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);
const ZONE_DIR = "/usr/share/zoneinfo";
const HOUR = 3_600_000;
const zones = ["Asia/Shanghai", "Asia/Hong_Kong", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"] as const;
const dstZones = new Set(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]);

const intlFormats = new Map<string, Intl.DateTimeFormat>();

/** Intl's offset (what the core falls back to), read independently of the core. */
function intlOffsetMs(ms: number, timeZone: string): number {
  let format = intlFormats.get(timeZone);
  if (!format) intlFormats.set(timeZone, (format = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" })));
  const text = format.format(ms);
  const m = /GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text);
  assert.ok(m, text);
  if (m[1] === undefined) return 0;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * HOUR + Number(m[3]) * 60_000 + Number(m[4] ?? 0) * 1000);
}

/** The table's own answer at `ms` (the last transition at or before it). */
function tableOffsetMs(table: ZoneTable, ms: number): number {
  let i = 0;
  while (i < table.transitionsMs.length && table.transitionsMs[i]! <= ms) i++;
  return table.offsetsMs[i]!;
}

function assertWellFormed(table: ZoneTable): void {
  assert.equal(table.offsetsMs.length, table.transitionsMs.length + 1);
  for (let i = 1; i < table.transitionsMs.length; i++) assert.ok(table.transitionsMs[i]! > table.transitionsMs[i - 1]!);
  for (const offset of table.offsetsMs) assert.ok(Number.isInteger(offset) && Math.abs(offset) <= 26 * HOUR, String(offset));
}

/** A TZif file: a minimal version 1 block (version 2+ readers skip it), then the 64-bit block and the footer. */
function tzifFile(options: { version?: 1 | 2 | 3; transitionsS?: number[]; types?: Array<[utoffS: number, isDst: 0 | 1]>; typeOf?: number[]; footer?: string }): Buffer {
  const version = options.version ?? 2;
  const transitions = options.transitionsS ?? [];
  const types = options.types ?? [[0, 0]];
  const typeOf = options.typeOf ?? transitions.map((_, i) => Math.min(i + 1, types.length - 1));
  const block = (timeSize: 4 | 8, full: boolean): Buffer => {
    const times = full ? transitions : [];
    const header = Buffer.alloc(44);
    header.write("TZif", 0, "latin1");
    header[4] = version === 1 ? 0 : 0x30 + version;
    const counts = [0, 0, 0, times.length, full ? types.length : 1, 4];
    counts.forEach((count, i) => header.writeUInt32BE(count, 20 + 4 * i));
    const body = Buffer.alloc(times.length * (timeSize + 1) + (full ? types.length : 1) * 6 + 4);
    times.forEach((s, i) => (timeSize === 4 ? body.writeInt32BE(s, 4 * i) : body.writeBigInt64BE(BigInt(s), 8 * i)));
    let p = times.length * timeSize;
    for (const type of full ? typeOf : []) body[p++] = type;
    for (const [utoff, isDst] of full ? types : [types[0]!]) {
      body.writeInt32BE(utoff, p);
      body[p + 4] = isDst;
      body[p + 5] = 0;
      p += 6;
    }
    body.write("ABC\0", p, "latin1");
    return Buffer.concat([header, body]);
  };
  if (version === 1) return block(4, true);
  return Buffer.concat([block(4, false), block(8, true), Buffer.from(`\n${options.footer ?? ""}\n`, "latin1")]);
}

function tzifError(fn: () => unknown): TzifError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TzifError, `not a TzifError: ${String(error)}`);
    return error;
  }
  assert.fail("no error");
}

test("property: tzdata offsets equal Intl's for any instant 1970–2100 (Shanghai, Hong Kong, Berlin, New York, Lord Howe, Kathmandu, UTC)", () => {
  for (const zone of zones) {
    const table = readZoneFile(zone, { dir: ZONE_DIR });
    assertWellFormed(table);
    // Zones whose footer is a fixed offset hold for ever; DST rules are expanded up to RULES_UNTIL_YEAR.
    assert.equal(table.untilMs, dstZones.has(zone) ? Date.UTC(RULES_UNTIL_YEAR + 1, 0, 1) : Number.POSITIVE_INFINITY, zone);
    useZoneRules(zone, table);
    assert.ok(hasZoneRules(zone) && isValidTimeZone(zone));
  }
  const instant = fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2100, 11, 31) });
  fc.assert(
    fc.property(instant, fc.constantFrom(...zones), (ms, zone) => {
      const expected = intlOffsetMs(ms, zone);
      assert.equal(zoneOffsetMs(ms, zone), expected, `${zone} at ${new Date(ms).toISOString()}`);
      // Whole seconds either side of a transition too (the bucket cache must not blur them).
      assert.equal(zoneOffsetMs(ms - (ms % 1000), zone), intlOffsetMs(ms - (ms % 1000), zone));
      const local = localDateTime(ms, zone);
      const d = new Date(ms + expected);
      assert.deepEqual(
        [local.year, local.month, local.day, local.hour, local.minute],
        [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()],
      );
    }),
    { numRuns: runs * 10 },
  );
  // Every transition of the table, and the second before it, in the years tested.
  for (const zone of zones) {
    const table = readZoneFile(zone, { dir: ZONE_DIR });
    for (const at of table.transitionsMs) {
      if (at < Date.UTC(1970, 0, 1) || at > Date.UTC(2100, 11, 31)) continue;
      assert.equal(zoneOffsetMs(at, zone), intlOffsetMs(at, zone), `${zone} at ${new Date(at).toISOString()}`);
      assert.equal(zoneOffsetMs(at - 1000, zone), intlOffsetMs(at - 1000, zone), `${zone} before ${new Date(at).toISOString()}`);
    }
  }
});

test("past the table: a fixed footer holds for ever; a DST zone after RULES_UNTIL_YEAR is answered by Intl", () => {
  // Both kinds agree with Intl out there, one from the rules and one from Intl itself.
  for (const zone of ["Asia/Shanghai", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe"]) {
    useZoneRules(zone, readZoneFile(zone, { dir: ZONE_DIR }));
    for (const year of [2150, RULES_UNTIL_YEAR, RULES_UNTIL_YEAR + 1, 2500, 9999]) {
      for (const month of [0, 3, 6, 9]) {
        const ms = Date.UTC(year, month, 15, 12);
        assert.equal(zoneOffsetMs(ms, zone), intlOffsetMs(ms, zone), `${zone} in ${year}-${month + 1}`);
      }
    }
  }
  // Which one answers: a table that is wrong on purpose is believed before untilMs, Intl after.
  const bogus = { transitionsMs: [0], offsetsMs: [HOUR, 2 * HOUR], untilMs: Date.UTC(2100, 0, 1) };
  useZoneRules("Europe/Paris", bogus);
  assert.equal(zoneOffsetMs(Date.UTC(2099, 5, 1), "Europe/Paris"), 2 * HOUR);
  assert.equal(zoneOffsetMs(Date.UTC(2101, 5, 1), "Europe/Paris"), intlOffsetMs(Date.UTC(2101, 5, 1), "Europe/Paris"));
  assert.throws(() => useZoneRules("Europe/Rome", { transitionsMs: [0, 1], offsetsMs: [0], untilMs: 0 }), RangeError);
  assert.throws(() => useZoneRules("Europe/Rome", { transitionsMs: [5, 1], offsetsMs: [0, 0, 0], untilMs: 0 }), RangeError);
});

test("footer rules: real footers against Intl, Jn and n dates, negative and >24 h times, all-year DST, version 1 files", () => {
  // The footer of a real file, alone in a file without transitions: the rule holds for all time.
  for (const zone of ["America/New_York", "Australia/Lord_Howe", "Europe/Dublin", "Pacific/Chatham", "America/Santiago", "Europe/Berlin"]) {
    const bytes = readFileSync(join(ZONE_DIR, zone));
    const footer = bytes.subarray(bytes.lastIndexOf(0x0a, bytes.length - 2) + 1, bytes.length - 1).toString("latin1");
    const table = parseTzif(tzifFile({ footer }), zone);
    assertWellFormed(table);
    for (let ms = Date.UTC(2040, 0, 1); ms < Date.UTC(2100, 0, 1); ms += 5 * 86_400_000 + 3_599_000) {
      assert.equal(tableOffsetMs(table, ms), intlOffsetMs(ms, zone), `${zone} (${footer}) at ${new Date(ms).toISOString()}`);
    }
  }
  // Iran's old rule: J79/24 is the end of 20 March (Jn never counts 29 February), J263/24 of 20 September.
  const iran = parseTzif(tzifFile({ footer: "<+0330>-3:30<+0430>,J79/24,J263/24" }));
  const iranAt = (ms: number) => tableOffsetMs(iran, ms) / 60_000;
  assert.equal(iranAt(Date.UTC(2024, 2, 20, 20, 29, 59)), 210);
  assert.equal(iranAt(Date.UTC(2024, 2, 20, 20, 30)), 270);
  assert.equal(iranAt(Date.UTC(2023, 2, 20, 20, 30)), 270);
  assert.equal(iranAt(Date.UTC(2024, 8, 20, 19, 29, 59)), 270);
  assert.equal(iranAt(Date.UTC(2024, 8, 20, 19, 30)), 210);
  // Zero-based n counts 29 February: day 59 is 29 February in 2024, 1 March in 2023.
  const zeroBased = parseTzif(tzifFile({ footer: "AAA0BBB,59,300" }));
  assert.equal(tableOffsetMs(zeroBased, Date.UTC(2024, 1, 29, 2)), HOUR);
  assert.equal(tableOffsetMs(zeroBased, Date.UTC(2024, 1, 29, 1, 59)), 0);
  assert.equal(tableOffsetMs(zeroBased, Date.UTC(2023, 2, 1, 2)), HOUR);
  // Greenland's rule: changes at -1:00 and 0:00 local (the Saturday before the last Sunday, 23:00).
  const nuuk = parseTzif(tzifFile({ footer: "<-02>2<-01>,M3.5.0/-1,M10.5.0/0" }));
  assert.equal(tableOffsetMs(nuuk, Date.UTC(2025, 2, 29, 23, 59, 59)), -2 * HOUR);
  assert.equal(tableOffsetMs(nuuk, Date.UTC(2025, 2, 30, 1)), -HOUR);
  // RFC 8536's all-year DST: on from 1 January 00:00 to 31 December 25:00, so never off.
  const allYear = parseTzif(tzifFile({ footer: "EST5EDT,0/0,J365/25" }));
  for (let ms = Date.UTC(2001, 0, 1); ms < Date.UTC(2100, 0, 1); ms += 7 * 86_400_000 + 3_600_000) assert.equal(tableOffsetMs(allYear, ms), -4 * HOUR);
  // A fixed footer and an empty one.
  assert.deepEqual(parseTzif(tzifFile({ footer: "CST-8" })), { transitionsMs: [], offsetsMs: [8 * HOUR], untilMs: Number.POSITIVE_INFINITY });
  assert.deepEqual(parseTzif(tzifFile({ footer: "<+0545>-5:45" })).offsetsMs, [(5 * 60 + 45) * 60_000]);
  assert.deepEqual(
    parseTzif(
      tzifFile({
        transitionsS: [1000],
        types: [
          [0, 0],
          [3600, 0],
        ],
        footer: "",
      }),
    ),
    { transitionsMs: [1_000_000], offsetsMs: [0, HOUR], untilMs: 1_000_000 },
  );
  // Version 1: the 32-bit data only, no footer, so after the last transition Intl answers.
  const v1 = parseTzif(
    tzifFile({
      version: 1,
      transitionsS: [-100, 500],
      types: [
        [100, 0],
        [200, 1],
        [300, 0],
      ],
    }),
  );
  assert.deepEqual(v1, { transitionsMs: [-100_000, 500_000], offsetsMs: [100_000, 200_000, 300_000], untilMs: 500_000 });
  // Version 3 is read as version 2.
  assert.deepEqual(parseTzif(tzifFile({ version: 3, footer: "<+07>-7" })).offsetsMs, [7 * HOUR]);
  for (const footer of ["EST5EDT", "EST5EDT,M3.2.0", "E5", "EST", "EST5EDT,M13.1.0,M11.1.0", "EST5EDT,J0,J100", "EST25", "EST5EDT,M3.2.0/168,M11.1.0", "EST5 ", "<AB>5"]) {
    const error = tzifError(() => parseTzif(tzifFile({ footer })));
    assert.equal(error.code, "E_TZIF_INVALID");
    assert.match(error.message, /footer/, footer);
  }
});

test("damaged files: every truncation, random bytes and flipped bytes are refused with a TzifError, never a crash", () => {
  const real = readFileSync(join(ZONE_DIR, "America/New_York"));
  for (let length = 0; length < real.length; length++) {
    const error = tzifError(() => parseTzif(real.subarray(0, length), "New_York"));
    assert.equal(error.code, "E_TZIF_INVALID");
    assert.match(error.message, /^New_York: /);
  }
  const randomBytes = fc.oneof(
    fc.uint8Array({ maxLength: 600 }),
    fc.uint8Array({ maxLength: 600 }).map((tail) => Buffer.concat([Buffer.from("TZif2"), tail])),
  );
  fc.assert(
    fc.property(randomBytes, (bytes) => {
      tzifError(() => parseTzif(bytes));
    }),
    { numRuns: runs },
  );
  // Flipped bytes may still make a file that reads (a changed offset): then a well-formed table.
  const flips = fc.array(fc.record({ at: fc.nat({ max: real.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 });
  fc.assert(
    fc.property(flips, (changes) => {
      const bytes = Buffer.from(real);
      for (const { at, value } of changes) bytes[at] = value;
      try {
        assertWellFormed(parseTzif(bytes));
      } catch (error) {
        if (!(error instanceof TzifError)) throw error;
      }
    }),
    { numRuns: runs },
  );
  // Counts that claim gigabytes are refused before anything is allocated.
  const huge = Buffer.from(real);
  huge.writeUInt32BE(0xffff_ffff, 20 + 4 * 3);
  assert.match(tzifError(() => parseTzif(huge)).message, /truncated/);
  assert.match(tzifError(() => parseTzif(readFileSync(join(ZONE_DIR, "right/UTC")))).message, /leap-second/);
});

test("zone names: '..', absolute paths and odd characters are refused; others stay inside the zone directory; TZDIR is honoured", () => {
  const dir = tempDir("lk-tzdir-");
  mkdirSync(join(dir, "Test"));
  writeFileSync(join(dir, "Test/Fixed"), tzifFile({ footer: "<+0930>-9:30" }));
  writeFileSync(join(dir, "Test/Garbled"), Buffer.from("TZif2 this is not a zone file"));
  writeFileSync(join(dir, "Test/Huge"), Buffer.alloc(300 * 1024));
  assert.deepEqual(readZoneFile("Test/Fixed", { dir }).offsetsMs, [9.5 * HOUR]);
  assert.deepEqual(readZoneFile("Test/Fixed", { env: { TZDIR: dir } }).offsetsMs, [9.5 * HOUR]);
  assert.equal(tzifError(() => readZoneFile("Test/Fixed", { env: {} })).code, "E_TZ_NOT_FOUND", "the system's directory without TZDIR");
  assert.equal(tzifError(() => readZoneFile("Test/Garbled", { dir })).code, "E_TZIF_INVALID");
  assert.match(tzifError(() => readZoneFile("Test/Huge", { dir })).message, /too large/);
  assert.equal(tzifError(() => readZoneFile("Test", { dir })).code, "E_TZ_NOT_FOUND");
  assert.equal(tzifError(() => readZoneFile("Test/Nothing", { dir })).code, "E_TZ_NOT_FOUND");
  assert.equal(tzifError(() => readZoneFile("Test/Fixed/x", { dir })).code, "E_TZ_NOT_FOUND");
  for (const name of [
    "..",
    "../etc/passwd",
    "Asia/../../etc/passwd",
    "/etc/passwd",
    "/usr/share/zoneinfo/UTC",
    "",
    "zone.tab",
    "Asia/./Shanghai",
    "Asia//Shanghai",
    "Asia\\Shanghai",
    "Asia/Shanghai\0",
    "x".repeat(129),
  ]) {
    const error = tzifError(() => readZoneFile(name, { dir }));
    assert.equal(error.code, "E_TZ_NAME", JSON.stringify(name));
    assert.ok(zoneNameProblem(name) !== undefined);
  }
  const root = resolve(dir) + sep;
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.array(fc.constantFrom("..", ".", "", "Asia", "Test", "Fixed", "/", "\\", "%2e"), { maxLength: 6 }).map((parts) => parts.join("/")),
      ),
      (name) => {
        if (zoneNameProblem(name) === undefined) assert.ok(resolve(dir, name).startsWith(root), name);
        try {
          readZoneFile(name, { dir });
        } catch (error) {
          if (!(error instanceof TzifError)) throw error;
        }
      },
    ),
    { numRuns: runs },
  );
});
