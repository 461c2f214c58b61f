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
 * maps lane ids to names.
 */
export function describeEvent(event, { label, zone, lanes }) {
  const parts = [lotTime(event.atMs, zone, { date: false })];
  if (event.laneId) parts.push(lanes?.get(event.laneId) ?? event.laneId);
  parts.push(label("event", event.type));
  if (event.command) parts.push(label("command", event.command));
  if (event.plate) parts.push(event.plate);
  if (typeof event.feeFen === "number") parts.push(yuan(event.feeFen));
  if (typeof event.path === "string") parts.push(label("path", event.path));
  if (event.operator) parts.push(`@${event.operator}`);
  if (event.reason && event.reason !== event.path) parts.push(`(${label("reason", event.reason)})`);
  return parts.filter(Boolean).join(" ");
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
