// Pure formatting for the panel (no DOM), shared by the page and its unit tests.

/**
 * Money is integer fen everywhere (docs/tariffs.md); the page shows 元 with two decimals,
 * built from the integer so no floating-point rounding can show 4.99 for 500 fen.
 */
export function yuan(fen) {
  if (typeof fen !== "number" || !Number.isInteger(fen)) return "—";
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")} 元`;
}

const formatters = new Map();

function partsIn(zone, ms) {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(zone, formatter);
  }
  const parts = {};
  for (const part of formatter.formatToParts(new Date(ms))) parts[part.type] = part.value;
  return parts;
}

/**
 * A time on the lot's clock (lot.timeZone), whatever zone the laptop is set to: the operators
 * compare it with receipts and the platform, which use the lot's local time.
 */
export function lotTime(ms, zone, { date = true } = {}) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  let p;
  try {
    p = partsIn(zone || "Asia/Shanghai", ms);
  } catch {
    p = partsIn("UTC", ms);
  }
  const time = `${p.hour}:${p.minute}:${p.second}`;
  return date ? `${p.year}-${p.month}-${p.day} ${time}` : time;
}

/** "3 h 05 min", "42 s": for uptime and queue ages. */
export function duration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Events the page leaves out of the list: the loop dots already show them. */
export const quietEvents = new Set(["presence", "input-ignored", "close-deferred"]);

/**
 * One line of the event list. `label(group, key)` translates (falls back to the key), `lanes`
 * maps lane ids to names, `english: false` leaves untranslated English out (see reasonText).
 */
export function describeEvent(event, { label, zone, lanes, english = true }) {
  const parts = [lotTime(event.atMs, zone, { date: false })];
  if (event.laneId) parts.push(lanes?.get(event.laneId) ?? event.laneId);
  parts.push(label("event", event.type));
  if (event.command) parts.push(label("command", event.command));
  if (event.plate) parts.push(event.plate);
  if (typeof event.feeFen === "number") parts.push(yuan(event.feeFen));
  if (typeof event.path === "string") parts.push(label("path", event.path));
  if (event.operator) parts.push(`@${event.operator}`);
  const reason = event.reason && event.reason !== event.path ? reasonText(event.reason, { label, english, typed: Boolean(event.operator) }) : "";
  if (reason) parts.push(`(${reason})`);
  return parts.filter(Boolean).join(" ");
}

/**
 * An event's reason as the page shows it: a machine key translated; a person's words (typed
 * with an operator) or the platform's own Chinese text as they are; "manual: <words>" as the
 * translation of "manual" and the words. Untranslated English (a key the page does not know,
 * an error message) is left out of the Chinese page and shown in the English one.
 */
export function reasonText(reason, { label, english = true, typed = false }) {
  const text = String(reason);
  const manual = /^manual: (.*)$/s.exec(text);
  if (manual) return `${label("reason", "manual")}: ${manual[1]}`;
  const translated = label("reason", text);
  if (translated !== text || english || typed || /[^ -~]/.test(text)) return translated;
  return "";
}

/**
 * A "YYYY-MM-DDTHH:mm" wall-clock time in the lot's zone (what a datetime-local field holds)
 * as epoch ms; undefined when it is not such a time. Found by correcting a first guess with the
 * zone's offset at it, twice, so a daylight-saving change in between settles.
 */
export function lotLocalToMs(text, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(String(text ?? ""));
  if (!m) return undefined;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  if (!Number.isFinite(wall)) return undefined;
  let ms = wall;
  for (let i = 0; i < 2; i++) ms = wall - offsetAt(zone, ms);
  return ms;
}

function safeParts(zone, ms) {
  try {
    return partsIn(zone || "Asia/Shanghai", ms);
  } catch {
    return partsIn("UTC", ms);
  }
}

/** The zone's offset from UTC at an instant, in ms (the wall clock minus UTC). */
function offsetAt(zone, ms) {
  const p = safeParts(zone, ms);
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return wall - Math.floor(ms / 1000) * 1000;
}

/**
 * The outbox line of the health list: reports waiting, how many are parked and how many are
 * being retried, the oldest one's age, and the platform's last refusal (its code and its own
 * text, `platformMsg`), so an operator sees "busy" apart from "refused for good".
 */
export function outboxSummary(outbox, ui) {
  const o = outbox && typeof outbox === "object" ? outbox : {};
  const parts = [`${ui("parked")} ${o.parked ?? 0}`, `${ui("retrying")} ${o.retrying ?? 0}`];
  if (o.held) parts.push(`${ui("held")} ${o.held}`);
  if (o.oldestAgeMs) parts.push(`${ui("oldest")} ${duration(o.oldestAgeMs)}`);
  let text = `${o.depth ?? 0} (${parts.join(", ")})`;
  const refusal = o.lastRefusal;
  if (refusal && typeof refusal.code === "number") {
    const message = typeof refusal.platformMsg === "string" && refusal.platformMsg ? ` ${refusal.platformMsg.slice(0, 80)}` : "";
    text += ` · ${ui("lastRefusal")} ${refusal.code}${message}`;
  }
  return text;
}

/** The list items, or one "empty" item saying so when there are none (for lists on the panel). */
export function listOrEmpty(items, emptyText) {
  if (items.length > 0) return items;
  const li = document.createElement("li");
  li.className = "empty";
  li.textContent = emptyText;
  return [li];
}
