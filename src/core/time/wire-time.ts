import { epochFromLocal, localDateTime } from "./zone.js";

/**
 * The platform's wire times: `YYYY-MM-DD HH:mm:ss` on the lot's wall clock (docs/protocol.md
 * §3), no offset in the text. Pure and Intl-based, so the answer does not depend on the host's
 * own zone.
 */

const wireTimePattern = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/;

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/**
 * `YYYY-MM-DD HH:mm:ss` read on the wall clock of `timeZone` → epoch ms. Undefined for text
 * that is not a real time there: a malformed string, 2023-02-30, 24:00:00, or a local time a
 * DST change skips. A time a DST change repeats takes its earlier instant. (A `T` between date
 * and time is accepted too, as some senders use it.)
 */
export function parseWireTime(text: string, timeZone: string): number | undefined {
  if (typeof text !== "string") return undefined;
  const m = wireTimePattern.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = epochFromLocal({ year, month, day, hour, minute, second }, timeZone);
  const back = localDateTime(ms, timeZone);
  // The round trip rejects dates that roll over (Feb 30) and hours skipped by DST.
  if (back.year !== year || back.month !== month || back.day !== day || back.hour !== hour || back.minute !== minute || back.second !== second) {
    return undefined;
  }
  return ms;
}

/** Epoch ms → `YYYY-MM-DD HH:mm:ss` on the wall clock of `timeZone` (milliseconds dropped). */
export function formatWireTime(ms: number, timeZone: string): string {
  const l = localDateTime(ms, timeZone);
  return `${pad(l.year, 4)}-${pad(l.month)}-${pad(l.day)} ${pad(l.hour)}:${pad(l.minute)}:${pad(l.second)}`;
}
