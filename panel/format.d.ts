// Types for panel/format.js (plain JavaScript served to the browser as is), for the tests.
export function yuan(fen: unknown): string;
export function lotTime(ms: unknown, zone: string, options?: { date?: boolean }): string;
export function duration(ms: unknown): string;
export const quietEvents: ReadonlySet<string>;
export function describeEvent(
  event: { type: string; atMs?: number; laneId?: string; plate?: string; feeFen?: number; path?: string; operator?: string; reason?: string; command?: string },
  options: { label: (group: string, key: string) => string; zone: string; lanes?: ReadonlyMap<string, string>; english?: boolean },
): string;
export function reasonText(reason: unknown, options: { label: (group: string, key: string) => string; english?: boolean; typed?: boolean }): string;
export function lotLocalToMs(text: unknown, zone: string): number | undefined;
export function outboxSummary(
  outbox:
    { depth?: number; parked?: number; retrying?: number; held?: number; oldestAgeMs?: number; lastRefusal?: { code: number; platformMsg?: string } | null } | null | undefined,
  ui: (key: string) => string,
): string;
export function listOrEmpty(items: HTMLElement[], emptyText: string): HTMLElement[];
