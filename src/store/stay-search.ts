import { DAY_MS } from "../core/time/zone.js";
import type { History, HistoryLine } from "./history.js";
import { finishedStaySchema, type FinishedStay } from "./records.js";

/*
 * Read-only queries over the history for the booth's records search and a stay's detail page.
 * They read what the history already holds (stay lines and event lines, with `recordNo` and
 * `plate` top-level) and never write; bounded like every history query (segments and bytes).
 */

export interface FinishedSearchOptions {
  /** Only stays that left at or after this instant (also bounds the segments read). */
  leftSinceMs?: number;
  /** Most stays returned. */
  limit: number;
  /** Most history bytes read; default the history's own bound. */
  maxBytes?: number;
}

/**
 * Finished stays the predicate accepts, newest departure first, one per recordNo (a crash may
 * have written a stay's line twice; the newest line is the stay).
 */
export async function searchFinishedStays(history: History, accept: (stay: FinishedStay) => boolean, options: FinishedSearchOptions): Promise<FinishedStay[]> {
  const seen = new Set<string>();
  const parsed = new Map<HistoryLine, FinishedStay>();
  const since = options.leftSinceMs;
  const lines = await history.recent(
    (line) => {
      if (line.t !== "stay" || typeof line.recordNo !== "string" || seen.has(line.recordNo)) return false;
      if (since !== undefined && line.atMs < since) return false;
      const stay = finishedStaySchema.safeParse(line.stay);
      if (!stay.success) return false;
      // Marked seen whether accepted or not: an older line of the same stay must not stand in for it.
      seen.add(line.recordNo);
      if (!accept(stay.data)) return false;
      parsed.set(line, stay.data);
      return true;
    },
    {
      limit: options.limit,
      prefilter: '"t":"stay"',
      ...(since !== undefined ? { sinceMs: since } : {}),
      ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    },
  );
  return lines.map((line) => parsed.get(line)!);
}

/**
 * The instant a box-made recordNo (`<laneId>_<YYYYMMDDHHmmssSSS>`, the entry's local time)
 * cannot be earlier than by more than a day, whatever the lot's zone; undefined for other
 * shapes (a stay the platform made).
 */
export function recordNoFloorMs(recordNo: string): number | undefined {
  const m = /_(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})$/.exec(recordNo);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second, milli] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, milli);
  // A zone is at most 14 h from UTC; a day of margin keeps the bound safe.
  return Number.isFinite(ms) ? ms - DAY_MS : undefined;
}

export interface RecordHistory {
  /** The stay's line when it has finished (the newest, if written twice). */
  stay: FinishedStay | undefined;
  /** Its event lines (entry, bills, payments, attendant commands, exit), oldest first. */
  events: HistoryLine[];
}

/** What the history holds about one stay, read from its entry time on when the recordNo tells it. */
export async function recordHistory(history: History, recordNo: string, options: { limit?: number; maxBytes?: number } = {}): Promise<RecordHistory> {
  const sinceMs = recordNoFloorMs(recordNo);
  // The recordNo as it appears inside the JSON text: most lines are skipped unparsed.
  const needle = JSON.stringify(recordNo).slice(1, -1);
  const lines = await history.recent((line) => line.recordNo === recordNo && (line.t === "stay" || line.t === "event"), {
    limit: options.limit ?? 200,
    prefilter: needle,
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
  });
  let stay: FinishedStay | undefined;
  const events: HistoryLine[] = [];
  for (const line of lines) {
    if (line.t === "stay") {
      if (stay) continue;
      const parsed = finishedStaySchema.safeParse(line.stay);
      if (parsed.success) stay = parsed.data;
    } else events.push(line);
  }
  events.reverse();
  return { stay, events };
}
