import type { z } from "zod";
import { exceedsJsonDepth, maxJsonDepth } from "../platform/json-scan.js";
import { healthPayloadSchema, infoPayloadSchema, statusPayloadSchema, type HealthPayload, type InfoPayload, type StatusPayload } from "../fleet/payloads.js";

/**
 * The console's picture of the fleet, folded from what boxes publish: retained `status` and
 * `info`, and the last `health` seen. Pure: messages and the time come in as arguments. A
 * payload that fails its schema is counted and remembered per box with a stable code; it never
 * replaces a good value and never stops the fold.
 */

export const ConsoleErrorCodes = {
  /** A box published a payload that does not match the contract (docs/mqtt.md). */
  BadPayload: "E_CONSOLE_BAD_PAYLOAD",
} as const;

/** The largest payload the console parses (the box's own limit, docs/mqtt.md §1). */
export const MAX_PAYLOAD_BYTES = 262_144;

export interface BoxView {
  deviceId: string;
  status?: StatusPayload;
  info?: InfoPayload;
  health?: HealthPayload;
  /** When the console received the last health (the payload's `ts` is the box's clock). */
  healthSeenAtMs?: number;
  /** The last refused payload: its topic and why. */
  problem?: { code: string; topic: string; message: string };
}

export class FleetView {
  readonly boxes = new Map<string, BoxView>();
  badPayloads = 0;

  private box(deviceId: string): BoxView {
    let box = this.boxes.get(deviceId);
    if (!box) {
      box = { deviceId };
      this.boxes.set(deviceId, box);
    }
    return box;
  }

  /**
   * Folds one message (`rest` is the topic below `<root>/<deviceId>/`). Returns what it was, or
   * null when the topic is not one the view keeps or the payload was refused.
   */
  apply(deviceId: string, rest: string, payload: Buffer, nowMs: number): "status" | "info" | "health" | null {
    if (payload.length === 0) {
      // A cleared retained message: the box is gone from the broker's memory.
      if (rest === "status" || rest === "info") {
        const box = this.boxes.get(deviceId);
        if (box) delete box[rest];
        if (box && !box.status && !box.info) this.boxes.delete(deviceId);
      }
      return null;
    }
    const refuse = (message: string): null => {
      this.badPayloads += 1;
      this.box(deviceId).problem = { code: ConsoleErrorCodes.BadPayload, topic: rest, message };
      return null;
    };
    if (rest === "status") {
      const parsed = parsePayload(statusPayloadSchema, payload);
      if (!parsed.ok) return refuse(parsed.message);
      this.box(deviceId).status = parsed.value;
      return "status";
    }
    if (rest === "info") {
      const parsed = parsePayload(infoPayloadSchema, payload);
      if (!parsed.ok) return refuse(parsed.message);
      this.box(deviceId).info = parsed.value;
      return "info";
    }
    if (rest === "health") {
      const parsed = parsePayload(healthPayloadSchema, payload);
      if (!parsed.ok) return refuse(parsed.message);
      const box = this.box(deviceId);
      box.health = parsed.value;
      box.healthSeenAtMs = nowMs;
      return "health";
    }
    return null;
  }

  /** Boxes whose id matches `filter` (a glob), sorted by id. */
  list(filter?: string): BoxView[] {
    const match = filter === undefined ? () => true : globMatcher(filter);
    return [...this.boxes.values()].filter((b) => match(b.deviceId)).sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }
}

export function parsePayload<S extends z.ZodType>(schema: S, payload: Buffer): { ok: true; value: z.output<S> } | { ok: false; message: string } {
  if (payload.length > MAX_PAYLOAD_BYTES) return { ok: false, message: `payload too large: ${payload.length} bytes` };
  const text = payload.toString("utf8");
  if (exceedsJsonDepth(text)) return { ok: false, message: `payload nests deeper than ${maxJsonDepth} levels` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, message: "payload is not JSON" };
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const first = result.error.issues[0];
    return { ok: false, message: first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "invalid" };
  }
  return { ok: true, value: result.data };
}

/** `*` any run of characters, `?` one character; everything else literal. Anchored. */
export function globMatcher(glob: string): (text: string) => boolean {
  const pattern = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  const re = new RegExp(`^${pattern}$`);
  return (text) => re.test(text);
}

// ------------------------------------------------------------------ the table

export interface LsRow {
  deviceId: string;
  lot: string;
  version: string;
  state: string;
  sinceMs: number | null;
  boot: number | null;
  outboxDepth: number | null;
  outboxParked: number | null;
  platform: string;
  healthAgeS: number | null;
  lanes: string;
  problem: string | null;
}

export function lsRow(box: BoxView, nowMs: number): LsRow {
  const hardware = box.info?.hardware ?? {};
  const lot = typeof hardware.lot === "string" ? hardware.lot : box.deviceId.includes("-") ? box.deviceId.slice(0, box.deviceId.indexOf("-")) : "";
  return {
    deviceId: box.deviceId,
    lot,
    version: box.status?.version ?? box.info?.version ?? "?",
    state: box.status?.state ?? "unknown",
    sinceMs: box.status?.ts ?? null,
    boot: box.status?.boot ?? null,
    outboxDepth: box.health?.outbox?.depth ?? null,
    outboxParked: box.health?.outbox?.parked ?? null,
    platform: box.health?.links.platform ?? "?",
    healthAgeS: box.healthSeenAtMs === undefined ? null : Math.max(0, Math.round((nowMs - box.healthSeenAtMs) / 1000)),
    lanes: (box.info?.lanes ?? []).map((l) => `${l.id}(${l.direction})`).join(" "),
    problem: box.problem ? `${box.problem.code} ${box.problem.topic}: ${box.problem.message}` : null,
  };
}

/** Local time, as the operator reads a wall clock: `2024-05-01 08:30:01`. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Columns padded to their widest cell; the header row first. */
export function renderTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function renderLs(rows: readonly LsRow[]): string {
  const header = ["DEVICE", "LOT", "VERSION", "STATE", "SINCE", "OUTBOX", "PARKED", "PLATFORM", "HEALTH", "LANES"];
  const cells = rows.map((r) => [
    r.deviceId,
    r.lot,
    r.version,
    r.state,
    r.sinceMs === null ? "-" : localTime(r.sinceMs),
    r.outboxDepth === null ? "-" : String(r.outboxDepth),
    r.outboxParked === null ? "-" : String(r.outboxParked),
    r.platform,
    r.healthAgeS === null ? "-" : `${r.healthAgeS}s ago`,
    r.problem ? `${r.lanes} [${r.problem}]`.trim() : r.lanes,
  ]);
  return renderTable(header, cells);
}
