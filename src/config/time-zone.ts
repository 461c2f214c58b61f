/**
 * The lot's time zone from the system's tzdata: the zone's TZif file (src/kernel/tzif.ts) is
 * read once and its rules handed to the core (src/core/time/zone.ts `useZoneRules`), so the
 * config check, the fees and the log's clock never ask Intl (and never map ICU's data) for a
 * zone tzdata has. A zone tzdata lacks, or whose file is damaged, is left to Intl as before.
 */
import { hasZoneRules, isValidTimeZone, useZoneRules } from "../core/time/zone.js";
import { readZoneFile, TzifError, zoneDirectory, type TzifErrorCode, type ZoneDirOptions } from "../kernel/tzif.js";

export type SystemZone = { ok: true } | { ok: false; code: TzifErrorCode; message: string };

// One read per zone directory and name, misses included: a config pushed again over MQTT is
// checked without touching the disk, and a damaged file is reported once. Bounded: names come
// from outside.
const attempts = new Map<string, SystemZone>();
const MAX_ATTEMPTS = 64;

/** Reads zone `name` from tzdata into the core's zone rules (once); why not, when it cannot. */
export function adoptSystemZone(name: string, options: ZoneDirOptions = {}): SystemZone {
  const key = `${zoneDirectory(options)}\u0000${name}`;
  let attempt = attempts.get(key);
  if (attempt === undefined) {
    try {
      useZoneRules(name, readZoneFile(name, options));
      attempt = { ok: true };
    } catch (error) {
      if (!(error instanceof TzifError)) throw error;
      attempt = { ok: false, code: error.code, message: error.message };
    }
    if (attempts.size >= MAX_ATTEMPTS) attempts.clear();
    attempts.set(key, attempt);
  }
  return attempt;
}

/**
 * True for a zone tzdata has (read into the core on the way) or, failing that, one Intl knows.
 * The config's `lot.timeZone` is checked with it.
 */
export function isKnownTimeZone(name: string): boolean {
  return hasZoneRules(name) || adoptSystemZone(name).ok || isValidTimeZone(name);
}
