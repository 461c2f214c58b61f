import { formatPath, redactConfig } from "../config/load.js";

/** One changed leaf of the config, as the report shows it (secrets already masked). */
export interface ConfigChange {
  kind: "added" | "removed" | "changed";
  path: string;
  before?: string;
  after?: string;
  /** A secret changed: both sides show HIDDEN, and this says they differ. */
  secret?: boolean;
}

type Leaves = Map<string, unknown>;

function flatten(value: unknown, path: PropertyKey[], out: Leaves): void {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(formatPath(path), []);
    value.forEach((item, i) => flatten(item, [...path, i], out));
    return;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(formatPath(path), {});
    for (const [k, v] of entries) flatten(v, [...path, k], out);
    return;
  }
  out.set(formatPath(path), value);
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/**
 * Key-by-key difference between two config documents. Values are compared in clear (so a new
 * password counts as a change) but shown from the redacted copies (so it never shows).
 */
export function diffConfigs(before: unknown, after: unknown): ConfigChange[] {
  const rawBefore: Leaves = new Map();
  const rawAfter: Leaves = new Map();
  const shownBefore: Leaves = new Map();
  const shownAfter: Leaves = new Map();
  flatten(before ?? {}, [], rawBefore);
  flatten(after ?? {}, [], rawAfter);
  flatten(redactConfig(before ?? {}), [], shownBefore);
  flatten(redactConfig(after ?? {}), [], shownAfter);
  const changes: ConfigChange[] = [];
  const paths = [...new Set([...rawBefore.keys(), ...rawAfter.keys()])];
  for (const path of paths) {
    const inBefore = rawBefore.has(path);
    const inAfter = rawAfter.has(path);
    if (inBefore && !inAfter) changes.push({ kind: "removed", path, before: show(shownBefore.get(path)) });
    else if (!inBefore && inAfter) changes.push({ kind: "added", path, after: show(shownAfter.get(path)) });
    else if (JSON.stringify(rawBefore.get(path)) !== JSON.stringify(rawAfter.get(path))) {
      const change: ConfigChange = { kind: "changed", path, before: show(shownBefore.get(path)), after: show(shownAfter.get(path)) };
      if (change.before === change.after) change.secret = true;
      changes.push(change);
    }
  }
  return changes;
}
