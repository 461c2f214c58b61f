/** Integer fen → yuan text with two decimals: `1250` → `"12.50"`, `-5` → `"-0.05"`. */
export function formatFen(fen: number): string {
  if (!Number.isSafeInteger(fen)) throw new RangeError(`formatFen: ${String(fen)} is not a whole number of fen`);
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  // Integer arithmetic: (fen / 100).toFixed(2) is exact here too, but this reads as intended.
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}
