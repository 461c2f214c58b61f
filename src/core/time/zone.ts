/**
 * Wall-clock arithmetic in a named IANA zone with nothing but Intl (no time-zone package), so
 * every answer is the same whatever zone the host runs in: only UTC methods of Date and Intl
 * with an explicit `timeZone` are used, never the host's local time.
 *
 * China has no DST, but zones are configurable (a tariff must be time-zone and DST correct), so
 * local times that do not exist (spring forward) or exist twice (fall back) are resolved the
 * way Temporal's "compatible" disambiguation does: a skipped time moves forward by the gap, a
 * repeated time takes its earlier instant.
 *
 * Offsets come from zone rules handed in with `useZoneRules` when there are some for the zone
 * (the service reads them from the system's tzdata at start: src/kernel/tzif.ts), else from
 * Intl. Asking Intl maps megabytes of ICU data and costs milliseconds on the box; a rules table
 * is a binary search. Both give the same answers (test/unit/kernel/tzif.test.ts checks).
 */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export interface LocalDateTime {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  /** 0..23 */
  hour: number;
  minute: number;
  second: number;
}

export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      // h23: "en-US" with hour12:false prints midnight as "24" on some ICU versions.
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      era: "short",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * A zone's offsets as a table: `offsetsMs[0]` before the first transition, `offsetsMs[i + 1]`
 * from `transitionsMs[i]` on (ascending instants, ms; local = UTC + offset). Instants from
 * `untilMs` on are not covered (Intl answers them); Infinity covers all time.
 */
export interface ZoneRules {
  readonly transitionsMs: readonly number[];
  readonly offsetsMs: readonly number[];
  readonly untilMs: number;
}

const zoneRules = new Map<string, ZoneRules>();
const MAX_DATE_MS = 8.64e15;

/** Hands in the rules of zone `timeZone`; from now on its offsets come from them, not from Intl. */
export function useZoneRules(timeZone: string, rules: ZoneRules): void {
  const { transitionsMs, offsetsMs } = rules;
  if (offsetsMs.length !== transitionsMs.length + 1) throw new RangeError(`zone rules of ${timeZone}: ${offsetsMs.length} offsets for ${transitionsMs.length} transitions`);
  for (let i = 1; i < transitionsMs.length; i++) {
    if (!(transitionsMs[i]! >= transitionsMs[i - 1]!)) throw new RangeError(`zone rules of ${timeZone}: transition ${i} is before the one before it`);
  }
  zoneRules.set(timeZone, rules);
  // Offsets memoised from Intl before are dropped: every answer now comes from the rules.
  offsetCache.delete(timeZone);
  minuteCache.delete(timeZone);
  lastZoneName = "";
}

/** True when zone `timeZone` has rules handed in by useZoneRules. */
export function hasZoneRules(timeZone: string): boolean {
  return zoneRules.has(timeZone);
}

/** The offset the rules give at `ms`, or undefined when they do not cover it. */
function offsetFromRules(rules: ZoneRules, ms: number): number | undefined {
  if (!(ms < rules.untilMs)) return undefined;
  const transitions = rules.transitionsMs;
  // lo ends as the number of transitions at or before ms: offsetsMs[lo] is in force then.
  let lo = 0;
  let hi = transitions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (transitions[mid]! <= ms) lo = mid + 1;
    else hi = mid - 1;
  }
  return rules.offsetsMs[lo];
}

/** True for a zone name the zone rules or Intl know (e.g. "Asia/Shanghai", "UTC"). */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== "string" || timeZone === "") return false;
  if (zoneRules.has(timeZone) || formatters.has(timeZone)) return true;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock reading of instant `ms` in `timeZone` (seconds truncated, not rounded). */
export function localDateTime(ms: number, timeZone: string): LocalDateTime {
  const d = new Date(ms + zoneOffsetMs(ms, timeZone));
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

// Offsets are memoised per zone in 6-hour buckets. A bucket is cached only when the offset is
// the same at both of its ends (no transition inside); a bucket holding a transition is marked
// and every instant in it asks Intl again. tzdb has no two transitions within 6 hours.
const BUCKET_MS = 6 * HOUR_MS;
const MAX_CACHED_BUCKETS = 20_000;
const offsetCache = new Map<string, Map<number, number | null>>();
let lastBucket = Number.NaN;
let lastZoneName = "";
let lastOffset: number | null = null;

/** UTC offset of `timeZone` at instant `ms` (local = UTC + offset), in ms. */
export function zoneOffsetMs(ms: number, timeZone: string): number {
  const bucket = Math.floor(ms / BUCKET_MS);
  // The last answer again: a bill asks about the same few hours many times in a row.
  if (bucket === lastBucket && timeZone === lastZoneName && lastOffset !== null) return lastOffset;
  let zone = offsetCache.get(timeZone);
  if (!zone) {
    zone = new Map();
    offsetCache.set(timeZone, zone);
  }
  let cached = zone.get(bucket);
  if (cached === undefined) {
    const start = bucket * BUCKET_MS;
    const first = rawOffsetMs(start, timeZone);
    cached = first === rawOffsetMs(start + BUCKET_MS - 1000, timeZone) ? first : null;
    if (zone.size >= MAX_CACHED_BUCKETS) zone.clear();
    zone.set(bucket, cached);
  }
  lastBucket = bucket;
  lastZoneName = timeZone;
  lastOffset = cached;
  return cached ?? rawOffsetMs(ms, timeZone);
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/**
 * The zone rules' offset when they cover `ms`; else Intl's: "longOffset" text ("…, GMT+08:00")
 * is several times cheaper than formatToParts.
 */
function rawOffsetMs(ms: number, timeZone: string): number {
  const rules = zoneRules.get(timeZone);
  // Outside Date's range (and NaN) Intl throws; so the rules leave those to it.
  const fromRules = rules === undefined || !(Math.abs(ms) <= MAX_DATE_MS) ? undefined : offsetFromRules(rules, ms);
  if (fromRules !== undefined) return fromRules;
  let f = offsetFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" });
    offsetFormatters.set(timeZone, f);
  }
  const text = f.format(ms);
  const at = text.lastIndexOf("GMT");
  const m = at === -1 ? null : /^GMT(?:([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?)?$/.exec(text.slice(at).trim());
  if (!m) return offsetFromParts(ms, timeZone);
  if (m[1] === undefined) return 0;
  const sign = m[1] === "-" ? -1 : 1;
  return sign * (Number(m[2]) * 3_600_000 + Number(m[3] ?? 0) * 60_000 + Number(m[4] ?? 0) * 1000);
}

/** The slow, sure way (kept for an ICU whose offset text this module cannot read). */
function offsetFromParts(ms: number, timeZone: string): number {
  let year = 0;
  let month = 0;
  let day = 0;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const part of formatter(timeZone).formatToParts(ms)) {
    switch (part.type) {
      case "year":
        year = Number(part.value);
        break;
      case "month":
        month = Number(part.value);
        break;
      case "day":
        day = Number(part.value);
        break;
      case "hour":
        hour = Number(part.value);
        break;
      case "minute":
        minute = Number(part.value);
        break;
      case "second":
        second = Number(part.value);
        break;
      case "era":
        bc = part.value === "BC" || part.value === "B";
        break;
      default:
        break;
    }
  }
  return utcOf(bc ? 1 - year : year, month, day, hour, minute, second) - (ms - mod(ms, 1000));
}

/**
 * The instant at which the wall clock of `timeZone` reads the given local time. Skipped local
 * times (DST gap) move forward by the gap; repeated ones (DST overlap) take the earlier instant.
 * Out-of-range fields roll over like Date.UTC (minute 1500 is 01:00 the next day).
 */
export function epochFromLocal(local: LocalDateTime, timeZone: string): number {
  const asUtc = utcOf(local.year, local.month, local.day, local.hour, local.minute, local.second);
  const found = resolveLocal(asUtc, timeZone);
  // A gap: read the wall time with the offset in force before the jump, which lands after it.
  return found.valid[0] ?? asUtc - found.before;
}

/**
 * The first instant at which the wall clock of `timeZone` shows `local` or later. The same as
 * epochFromLocal except for a local time skipped by DST: this gives the instant of the jump
 * (a segment that starts at 02:30 on a spring-forward night starts when the clock jumps to
 * 03:00, not at 03:30).
 */
export function firstInstantAtLocal(local: LocalDateTime, timeZone: string): number {
  const asUtc = utcOf(local.year, local.month, local.day, local.hour, local.minute, local.second);
  const found = resolveLocal(asUtc, timeZone);
  if (found.valid[0] !== undefined) return found.valid[0];
  // Binary search (whole seconds) for the jump between the two readings of the skipped time.
  let lo = asUtc - found.after; // still on the old offset
  let hi = asUtc - found.before; // already on the new one
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (zoneOffsetMs(mid, timeZone) === found.after) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Every instant whose wall-clock reading is `asUtc` read as UTC fields, earliest first. */
function resolveLocal(asUtc: number, timeZone: string): { valid: number[]; before: number; after: number } {
  // The offsets a day either side bracket any single transition near this wall time.
  const before = zoneOffsetMs(asUtc - DAY_MS, timeZone);
  const after = zoneOffsetMs(asUtc + DAY_MS, timeZone);
  if (before === after) {
    const direct = asUtc - before;
    const actual = zoneOffsetMs(direct, timeZone);
    if (actual === before) return { valid: [direct], before, after };
    // Two transitions inside the two days (rare): take the offset in force there.
    const second = asUtc - actual;
    return { valid: zoneOffsetMs(second, timeZone) === actual ? [second] : [], before, after: actual };
  }
  const valid: number[] = [];
  for (const candidate of [asUtc - Math.max(before, after), asUtc - Math.min(before, after)]) {
    if (zoneOffsetMs(candidate, timeZone) === asUtc - candidate) valid.push(candidate);
  }
  return { valid, before, after };
}

// ---- Whole-minute local times by day number (the fee engine's hot path) ----------------------

/** Days since 1970-01-01 of the local date at instant `ms` in `timeZone`. */
export function localDayNumber(ms: number, timeZone: string): number {
  return Math.floor((ms + zoneOffsetMs(ms, timeZone)) / DAY_MS);
}

/** Minutes after local midnight at instant `ms` (0..1439). */
export function localMinuteOfDay(ms: number, timeZone: string): number {
  const local = ms + zoneOffsetMs(ms, timeZone);
  return Math.floor((local - Math.floor(local / DAY_MS) * DAY_MS) / MINUTE_MS);
}

/** ISO weekday (1 = Monday … 7 = Sunday) of a day number; day 0 was a Thursday. */
export function isoWeekdayOfDay(dayNumber: number): number {
  return ((((dayNumber + 3) % 7) + 7) % 7) + 1;
}

const minuteCache = new Map<string, Map<number, readonly number[]>>();
const MAX_CACHED_MINUTES = 100_000;

/**
 * The instants at which the wall clock of `timeZone` reaches minute `minute` of local day
 * `dayNumber` (minutes past 1439 roll into the next days): one instant normally, two for a time
 * a DST overlap repeats (earlier first), and for a time a DST gap skips, the instant of the jump.
 * Memoised: day/night boundaries and midnights repeat across bills.
 */
export function instantsAtLocalMinute(dayNumber: number, minute: number, timeZone: string): readonly number[] {
  const day = dayNumber + Math.floor(minute / 1440);
  const minuteOfDay = ((minute % 1440) + 1440) % 1440;
  let zone = minuteCache.get(timeZone);
  if (!zone) {
    zone = new Map();
    minuteCache.set(timeZone, zone);
  }
  const key = day * 1440 + minuteOfDay;
  let found = zone.get(key);
  if (!found) {
    const asUtc = key * MINUTE_MS;
    const resolved = resolveLocal(asUtc, timeZone);
    if (resolved.valid.length > 0) found = resolved.valid;
    else {
      const d = new Date(asUtc);
      found = [
        firstInstantAtLocal({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: 0 }, timeZone),
      ];
    }
    if (zone.size >= MAX_CACHED_MINUTES) zone.clear();
    zone.set(key, found);
  }
  return found;
}

/** The local date `days` calendar days after `date` (negative goes back). */
export function addLocalDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(utcOf(date.year, date.month, date.day, 0, 0, 0) + days * DAY_MS);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** Date.UTC that also handles years 0..99 literally (Date.UTC maps them to 1900..1999). */
function utcOf(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}
