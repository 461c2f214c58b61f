import { CONFIG_VERSION } from "./schema.js";

/**
 * Explicit, stepwise migration of older config files. Each step takes the raw document of
 * version N and returns version N+1. Version 1 is the first format, so there are no steps
 * yet; a file without a version or with a future one is reported, not guessed at.
 */
type MigrationStep = (raw: Record<string, unknown>) => Record<string, unknown>;
const steps: Record<number, MigrationStep> = {};

export type MigrationResult = { ok: true; raw: unknown; migratedFrom?: number } | { ok: false; message: string };

export function migrateConfig(raw: unknown): MigrationResult {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: true, raw };
  const doc = raw as Record<string, unknown>;
  const version = doc.version;
  if (typeof version !== "number" || !Number.isInteger(version)) return { ok: true, raw };
  if (version > CONFIG_VERSION) {
    return { ok: false, message: `config version ${version} is newer than this build understands (${CONFIG_VERSION}); update lanekeeper first` };
  }
  let current = doc;
  for (let v = version; v < CONFIG_VERSION; v++) {
    const step = steps[v];
    if (!step) return { ok: false, message: `no migration from config version ${v}` };
    current = { ...step(current), version: v + 1 };
  }
  return version === CONFIG_VERSION ? { ok: true, raw: current } : { ok: true, raw: current, migratedFrom: version };
}
