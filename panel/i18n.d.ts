// Types for panel/i18n.js (plain JavaScript served to the browser as is), for the tests.
export const LABELS: Record<"zh" | "en", Record<string, Record<string, string>>>;
export function translator(lang: string): (group: string, key: string) => string;
export function errorText(lang: string, code: unknown, status?: number): string;
