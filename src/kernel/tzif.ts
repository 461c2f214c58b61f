/**
 * Time-zone rules from the system's tzdata: a reader of TZif files (RFC 8536, versions 1 to 4)
 * under /usr/share/zoneinfo (or $TZDIR). Asking Intl for a zone's offset maps about 5 MB of
 * the ICU data inside the node binary and costs ~20 ms of CPU on the box; a zone's TZif file
 * is a few kilobytes and parses in well under a millisecond.
 *
 * What it gives is a transitions table (sorted instants and the UTC offset from each one on),
 * the shape src/core/time/zone.ts takes in `useZoneRules`. For instants past the file's last
 * transition the footer's POSIX TZ string governs: a fixed offset ("CST-8") holds for ever; a
 * DST rule ("EST5EDT,M3.2.0,M11.1.0") is expanded into transitions up to RULES_UNTIL_YEAR,
 * and the table says where it ends (`untilMs`), so later instants go back to Intl.
 *
 * A zone name comes from a config file, which is hostile input: only names shaped like tzdata's
 * ("Area/City", letters, digits, `_`, `+`, `-`) are looked up, so neither `..` nor an absolute
 * path can reach a file outside the zone directory. A file that is not a well-formed TZif file
 * is refused with a TzifError naming what is wrong, never a crash.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";

export interface ZoneTable {
  /** Instants (ms since the epoch, ascending) at which the zone's UTC offset changes. */
  transitionsMs: number[];
  /** `offsetsMs[0]` before the first transition, `offsetsMs[i + 1]` from `transitionsMs[i]` on (local = UTC + offset). */
  offsetsMs: number[];
  /** The table answers for instants before this (Infinity: for all of them). */
  untilMs: number;
}

/** E_TZ_NAME: not a zone name; E_TZ_NOT_FOUND: no such file; E_TZ_READ: unreadable; E_TZIF_INVALID: not a usable TZif file. */
export type TzifErrorCode = "E_TZ_NAME" | "E_TZ_NOT_FOUND" | "E_TZ_READ" | "E_TZIF_INVALID";

export class TzifError extends Error {
  constructor(
    readonly code: TzifErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "TzifError";
  }
}

/** DST footer rules are expanded up to the end of this year; Intl answers after it. */
export const RULES_UNTIL_YEAR = 2200;

const DEFAULT_ZONE_DIR = "/usr/share/zoneinfo";
// The largest zone file of tzdata is under 4 KB; anything near this is not a zone file.
const MAX_FILE_BYTES = 256 * 1024;
const zoneNameShape = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;

/** Why `name` cannot be a zone name to look up in the zone directory, or undefined when it can. */
export function zoneNameProblem(name: string): string | undefined {
  if (name === "" || name.length > 128) return "must be 1-128 characters";
  if (name.startsWith("/")) return "must not be an absolute path";
  if (name.split("/").includes("..")) return "must not contain '..'";
  if (!zoneNameShape.test(name)) return "must be like Area/City: letters, digits, _ + - and / between parts";
  return undefined;
}

export interface ZoneDirOptions {
  /** The zone directory; default $TZDIR, else /usr/share/zoneinfo. */
  dir?: string;
  env?: NodeJS.ProcessEnv;
}

/** The zone directory to read: the option, $TZDIR, or the system's. */
export function zoneDirectory(options: ZoneDirOptions = {}): string {
  const fromEnv = (options.env ?? process.env).TZDIR;
  return options.dir ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_ZONE_DIR);
}

/** Reads and parses the TZif file of zone `name` (synchronously: a few kilobytes, read once at start). Throws TzifError. */
export function readZoneFile(name: string, options: ZoneDirOptions = {}): ZoneTable {
  const problem = zoneNameProblem(name);
  if (problem !== undefined) throw new TzifError("E_TZ_NAME", `time zone ${JSON.stringify(name)} ${problem}`);
  const file = join(zoneDirectory(options), name);
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new TzifError("E_TZ_NOT_FOUND", `${file}: no such zone file`);
    throw new TzifError("E_TZ_READ", `${file}: ${(error as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new TzifError("E_TZ_NOT_FOUND", `${file}: not a zone file`);
    if (stat.size > MAX_FILE_BYTES) throw new TzifError("E_TZIF_INVALID", `${file}: ${stat.size} bytes is too large for a zone file`);
    const bytes = Buffer.alloc(stat.size);
    let filled = 0;
    while (filled < bytes.length) {
      const n = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return parseTzif(bytes.subarray(0, filled), file);
  } catch (error) {
    if (error instanceof TzifError) throw error;
    throw new TzifError("E_TZ_READ", `${file}: ${(error as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

// ---- TZif ----------------------------------------------------------------------------------

const HEADER_BYTES = 44;
// RFC 8536 says a UT offset SHOULD be within [-89999, 93599] s (about -25 h to +26 h).
const MIN_UTOFF_S = -89_999;
const MAX_UTOFF_S = 93_599;

interface Header {
  version: number;
  isutcnt: number;
  isstdcnt: number;
  leapcnt: number;
  timecnt: number;
  typecnt: number;
  charcnt: number;
}

interface DataBlock {
  transitionsS: number[];
  typeOfTransition: number[];
  utoffsS: number[];
}

/** Parses a TZif file's bytes (`source` names it in errors). Throws TzifError E_TZIF_INVALID. */
export function parseTzif(bytes: Uint8Array, source = "zone file"): ZoneTable {
  const fail = (what: string): never => {
    throw new TzifError("E_TZIF_INVALID", `${source}: ${what}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = readHeader(view, 0, fail);
  const v1End = HEADER_BYTES + blockBytes(first, 4);
  if (v1End > bytes.length) fail(`truncated: the version 1 data needs ${v1End} bytes, the file has ${bytes.length}`);
  if (first.version === 1) return tableOf(readBlock(view, HEADER_BYTES, first, 4, fail), undefined);

  // Version 2 and later repeat the data with 64-bit times, then a footer: "\n<TZ string>\n".
  const second = readHeader(view, v1End, fail);
  if (second.version !== first.version) fail(`the second header says version ${second.version}, the first ${first.version}`);
  const v2Start = v1End + HEADER_BYTES;
  const v2End = v2Start + blockBytes(second, 8);
  if (v2End > bytes.length) fail(`truncated: the 64-bit data needs ${v2End} bytes, the file has ${bytes.length}`);
  const block = readBlock(view, v2Start, second, 8, fail);
  if (bytes[v2End] !== 0x0a) fail("truncated: the footer is missing");
  const close = bytes.indexOf(0x0a, v2End + 1);
  if (close === -1) fail("truncated: the footer has no closing newline");
  if (close !== bytes.length - 1) fail(`${bytes.length - 1 - close} stray byte(s) after the footer`);
  let footer = "";
  for (let i = v2End + 1; i < close; i++) {
    const byte = bytes[i]!;
    if (byte < 0x20 || byte > 0x7e) fail("the footer is not printable ASCII");
    footer += String.fromCharCode(byte);
  }
  return tableOf(block, footer === "" ? undefined : parsePosixTz(footer, fail));
}

function readHeader(view: DataView, at: number, fail: (what: string) => never): Header {
  if (at + HEADER_BYTES > view.byteLength) fail(`truncated: a header needs ${HEADER_BYTES} bytes at ${at}, the file has ${view.byteLength}`);
  if (view.getUint32(at) !== 0x545a6966) fail(at === 0 ? 'not a TZif file (no "TZif" magic)' : 'no "TZif" magic at the 64-bit header');
  const versionByte = view.getUint8(at + 4);
  // Version 4 differs from 3 only in the leap-second table, which is refused below anyway.
  const version = versionByte === 0 ? 1 : versionByte >= 0x32 && versionByte <= 0x34 ? versionByte - 0x30 : 0;
  if (version === 0) fail(`unknown TZif version byte 0x${versionByte.toString(16)}`);
  const count = (index: number): number => view.getUint32(at + 20 + 4 * index);
  const header = { version, isutcnt: count(0), isstdcnt: count(1), leapcnt: count(2), timecnt: count(3), typecnt: count(4), charcnt: count(5) };
  if (header.typecnt === 0) fail("no local time types");
  if (header.charcnt === 0) fail("no time zone designations");
  if (header.isstdcnt !== 0 && header.isstdcnt !== header.typecnt) fail(`${header.isstdcnt} standard/wall indicators for ${header.typecnt} types`);
  if (header.isutcnt !== 0 && header.isutcnt !== header.typecnt) fail(`${header.isutcnt} UT/local indicators for ${header.typecnt} types`);
  // Leap-second files ("right/…") count TAI-like seconds, not POSIX time.
  if (header.leapcnt !== 0) fail("leap-second zone files are not supported");
  return header;
}

function blockBytes(h: Header, timeSize: number): number {
  return h.timecnt * timeSize + h.timecnt + h.typecnt * 6 + h.charcnt + h.leapcnt * (timeSize + 4) + h.isstdcnt + h.isutcnt;
}

function readBlock(view: DataView, at: number, h: Header, timeSize: 4 | 8, fail: (what: string) => never): DataBlock {
  const transitionsS: number[] = [];
  for (let i = 0; i < h.timecnt; i++) {
    const s = timeSize === 4 ? view.getInt32(at + 4 * i) : Number(view.getBigInt64(at + 8 * i));
    if (i > 0 && s <= transitionsS[i - 1]!) fail(`transition ${i} is not after the one before it`);
    transitionsS.push(s);
  }
  let p = at + h.timecnt * timeSize;
  const typeOfTransition: number[] = [];
  for (let i = 0; i < h.timecnt; i++) {
    const type = view.getUint8(p + i);
    if (type >= h.typecnt) fail(`transition ${i} names type ${type} of ${h.typecnt}`);
    typeOfTransition.push(type);
  }
  p += h.timecnt;
  const utoffsS: number[] = [];
  for (let i = 0; i < h.typecnt; i++) {
    const utoff = view.getInt32(p + 6 * i);
    if (utoff < MIN_UTOFF_S || utoff > MAX_UTOFF_S) fail(`type ${i} has a UT offset of ${utoff} s`);
    if (view.getUint8(p + 6 * i + 4) > 1) fail(`type ${i} has a DST flag other than 0 or 1`);
    if (view.getUint8(p + 6 * i + 5) >= h.charcnt) fail(`type ${i} names designation ${view.getUint8(p + 6 * i + 5)} of ${h.charcnt} bytes`);
    utoffsS.push(utoff);
  }
  return { transitionsS, typeOfTransition, utoffsS };
}

/** The table of one data block and its footer rule (RFC 8536 §3.2: type 0 before the first transition). */
function tableOf(block: DataBlock, footer: PosixRule | undefined): ZoneTable {
  const transitionsMs = block.transitionsS.map((s) => s * 1000);
  const offsetsMs = [block.utoffsS[0]! * 1000, ...block.typeOfTransition.map((type) => block.utoffsS[type]! * 1000)];
  if (footer === undefined) {
    // Without a footer, time after the last transition is unspecified: Intl answers there.
    return { transitionsMs, offsetsMs, untilMs: transitionsMs.length === 0 ? Number.POSITIVE_INFINITY : transitionsMs.at(-1)! };
  }
  if (footer.dst === undefined) {
    offsetsMs[offsetsMs.length - 1] = footer.stdOffsetS * 1000;
    return { transitionsMs, offsetsMs, untilMs: Number.POSITIVE_INFINITY };
  }
  // From the last transition on (for all time when there is none) the footer's rule holds.
  const anchorMs = transitionsMs.at(-1) ?? Number.NEGATIVE_INFINITY;
  const fromYear = new Date(Math.max(anchorMs, Date.UTC(1900, 0, 1))).getUTCFullYear() - 1;
  // A last transition past the years expanded (or past Date's range): the table ends there.
  if (!(fromYear <= RULES_UNTIL_YEAR)) return { transitionsMs, offsetsMs, untilMs: anchorMs };
  const events = ruleTransitions(footer, footer.dst, fromYear, RULES_UNTIL_YEAR + 1);
  // Before the rule's first change, the offset its year began with (the other of the two).
  let inForce = events[0]!.offsetMs === footer.stdOffsetS * 1000 ? footer.dst.offsetS * 1000 : footer.stdOffsetS * 1000;
  for (const event of events) if (event.atMs <= anchorMs) inForce = event.offsetMs;
  offsetsMs[offsetsMs.length - 1] = inForce;
  for (const event of events) {
    if (event.atMs <= anchorMs || event.offsetMs === offsetsMs.at(-1)) continue;
    transitionsMs.push(event.atMs);
    offsetsMs.push(event.offsetMs);
  }
  return { transitionsMs, offsetsMs, untilMs: Date.UTC(RULES_UNTIL_YEAR + 1, 0, 1) };
}

// ---- POSIX TZ strings (the footer) ---------------------------------------------------------

type RuleDay = { kind: "julian1"; day: number } | { kind: "julian0"; day: number } | { kind: "month"; month: number; week: number; weekday: number };

interface DstRule {
  offsetS: number;
  start: RuleDay;
  startTimeS: number;
  end: RuleDay;
  endTimeS: number;
}

interface PosixRule {
  /** UT offset of standard time, east positive (the TZ string's sign is the other way round). */
  stdOffsetS: number;
  dst?: DstRule;
}

/** `std offset [dst [offset] ,start[/time],end[/time]]` with RFC 8536's extensions (hours to ±167). */
function parsePosixTz(text: string, fail: (what: string) => never): PosixRule {
  let at = 0;
  const bad = (what: string): never => fail(`footer ${JSON.stringify(text)}: ${what} at ${at}`);
  const name = (): void => {
    const m = text[at] === "<" ? /^<[A-Za-z0-9+-]{3,}>/.exec(text.slice(at)) : /^[A-Za-z]{3,}/.exec(text.slice(at));
    if (!m) bad("no zone abbreviation");
    at += m![0].length;
  };
  const hms = (maxHours: number): number => {
    const m = /^([+-]?)(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}))?)?/.exec(text.slice(at));
    if (!m) return bad("no time");
    const hours = Number(m[2]);
    const minutes = Number(m[3] ?? 0);
    const seconds = Number(m[4] ?? 0);
    if (hours > maxHours || minutes > 59 || seconds > 59) bad("time out of range");
    at += m[0].length;
    return (m[1] === "-" ? -1 : 1) * (hours * 3600 + minutes * 60 + seconds);
  };
  const day = (): RuleDay => {
    let m: RegExpExecArray | null;
    if ((m = /^J(\d{1,3})/.exec(text.slice(at)))) {
      at += m[0].length;
      if (Number(m[1]) < 1 || Number(m[1]) > 365) bad("Julian day out of 1..365");
      return { kind: "julian1", day: Number(m[1]) };
    }
    if ((m = /^M(\d{1,2})\.(\d)\.(\d)/.exec(text.slice(at)))) {
      at += m[0].length;
      const [month, week, weekday] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (month < 1 || month > 12 || week < 1 || week > 5 || weekday > 6) bad("M rule out of range");
      return { kind: "month", month, week, weekday };
    }
    if ((m = /^(\d{1,3})/.exec(text.slice(at)))) {
      at += m[0].length;
      if (Number(m[1]) > 365) bad("day out of 0..365");
      return { kind: "julian0", day: Number(m[1]) };
    }
    return bad("no rule date");
  };
  const timeAfterSlash = (): number => {
    if (text[at] !== "/") return 7200;
    at++;
    return hms(167);
  };

  name();
  const stdOffsetS = 0 - hms(24); // 0 - x, not -x: no -0 offsets
  if (at === text.length) return { stdOffsetS };
  name();
  const dstOffsetS = text[at] === "," ? stdOffsetS + 3600 : 0 - hms(24);
  // POSIX leaves a DST zone without rules to the implementation; zic always writes them.
  if (text[at] !== ",") bad("a DST zone without rules");
  at++;
  const start = day();
  const startTimeS = timeAfterSlash();
  if (text[at] !== ",") bad("no end rule");
  at++;
  const end = day();
  const endTimeS = timeAfterSlash();
  if (at !== text.length) bad("unexpected text");
  for (const offset of [stdOffsetS, dstOffsetS]) if (offset < MIN_UTOFF_S || offset > MAX_UTOFF_S) bad("offset out of range");
  return { stdOffsetS, dst: { offsetS: dstOffsetS, start, startTimeS, end, endTimeS } };
}

const DAY_MS = 86_400_000;

/** Midnight (as UTC fields) of the rule's day in `year`. */
function ruleDayMs(year: number, rule: RuleDay): number {
  const jan1 = Date.UTC(year, 0, 1);
  if (rule.kind === "julian0") return jan1 + rule.day * DAY_MS;
  if (rule.kind === "julian1") {
    // Jn never counts 29 February: J60 is 1 March every year.
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return jan1 + (rule.day - 1 + (leap && rule.day >= 60 ? 1 : 0)) * DAY_MS;
  }
  const firstWeekday = new Date(Date.UTC(year, rule.month - 1, 1)).getUTCDay();
  const daysInMonth = new Date(Date.UTC(year, rule.month, 0)).getUTCDate();
  let day = 1 + ((rule.weekday - firstWeekday + 7) % 7) + (rule.week - 1) * 7;
  while (day > daysInMonth) day -= 7; // week 5: the last such weekday of the month
  return Date.UTC(year, rule.month - 1, day);
}

/** The rule's changes in years `from`..`to`, in order; one of two at the same instant (all-year DST) gives way. */
function ruleTransitions(rule: PosixRule, dst: DstRule, from: number, to: number): Array<{ atMs: number; offsetMs: number }> {
  const events: Array<{ atMs: number; offsetMs: number }> = [];
  for (let year = from; year <= to; year++) {
    // The start is given in standard local time, the end in daylight local time.
    events.push({ atMs: ruleDayMs(year, dst.start) + (dst.startTimeS - rule.stdOffsetS) * 1000, offsetMs: dst.offsetS * 1000 });
    events.push({ atMs: ruleDayMs(year, dst.end) + (dst.endTimeS - dst.offsetS) * 1000, offsetMs: rule.stdOffsetS * 1000 });
  }
  events.sort((a, b) => a.atMs - b.atMs);
  const merged: Array<{ atMs: number; offsetMs: number }> = [];
  for (const event of events) {
    if (merged.length > 0 && merged.at(-1)!.atMs === event.atMs) merged.pop();
    merged.push(event);
  }
  return merged;
}
