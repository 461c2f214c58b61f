import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";

const demoPath = new URL("../../config/demo.json", import.meta.url);

/** The demo config as raw JSON (what a file holds). */
export function demoRaw(): Record<string, unknown> {
  return JSON.parse(readFileSync(demoPath, "utf8")) as Record<string, unknown>;
}

/** A fresh temp dir for a test. */
export function tempDir(prefix = "lk-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The demo config, validated, with its store in a fresh temp dir and the API on an ephemeral
 * port; `mutate` edits the raw document before validation.
 */
export function testConfig(mutate?: (raw: Record<string, any>) => void): Config {
  const raw = demoRaw() as Record<string, any>;
  raw.store.dir = tempDir("lk-store-");
  raw.api.port = 0;
  raw.log = { level: "silent" };
  mutate?.(raw);
  const result = validateConfig(raw);
  if (!result.ok) throw new Error(`test config invalid: ${JSON.stringify(result.problems)}`);
  return result.config;
}

/** Writes a raw config document to a temp file and returns its path. */
export function writeConfigFile(raw: unknown, dir = tempDir()): string {
  const file = join(dir, "lanekeeper.json");
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}
