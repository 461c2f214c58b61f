import { openSync, writeSync, fsyncSync, closeSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One figure per JSON line, as `npm run bench` promises. */
export function report(figure: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ figure, ...fields }));
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * The raw cost of one durable write on this disk: write 200 bytes and fsync, p50/p99 in ms.
 * Every durability figure is reported next to it, since machines and disks differ widely.
 */
export function measureRawFsync(dir?: string, iterations = 200): { p50: number; p99: number } {
  const base = dir ?? mkdtempSync(join(tmpdir(), "lk-fsync-"));
  const file = join(base, "fsync-probe.bin");
  const fd = openSync(file, "w");
  const payload = Buffer.alloc(200, 0x61);
  const samples: number[] = [];
  try {
    for (let i = 0; i < iterations; i++) {
      const t0 = performance.now();
      writeSync(fd, payload);
      fsyncSync(fd);
      samples.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    if (!dir) rmSync(base, { recursive: true, force: true });
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/**
 * The environment systemd/lanekeeper.service gives the service (its `Environment=` lines:
 * NODE_OPTIONS, MALLOC_ARENA_MAX, …), for benches that start it, or a bare node beside it, as
 * the box does.
 */
export function unitEnvironment(): Record<string, string> {
  const unit = readFileSync(new URL("../systemd/lanekeeper.service", import.meta.url), "utf8");
  return Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}
