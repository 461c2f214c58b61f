/**
 * A plate read as the lane machines consume it, whatever camera path it came by (serial
 * line, HTTP push, simulator).
 */
export interface PlateRead {
  laneId?: string;
  /** Normalised plate text ("京A12345"); "" when `noPlate`. */
  plate: string;
  color?: PlateColor;
  /** Vzenith colour code: 0 unknown, 1 blue, 2 yellow, 3 white, 4 black, 5 green, 6 yellow-green. */
  colorCode?: number;
  /** 0-100 as the camera reports it. */
  confidence?: number;
  /** Epoch ms when the box received the read (the box's clock: camera clocks drift). */
  atMs: number;
  /** Epoch ms the camera stamped on the read (HTTP push), for history and diagnosis. */
  cameraAtMs?: number;
  /** The path it came by; "sim" for reads made up by tests or the demo outside any device path. */
  source: "serial" | "http" | "sim";
  /** The camera's own id of the read (HTTP push `plateid`), used to de-duplicate re-sends. */
  plateId?: string;
  /** Vzenith trigger type: 1 video, 2 external input (loop), 4 software, 8 virtual loop. */
  triggerType?: number;
  /** Vzenith plate type (31 = unlicensed). */
  plateType?: number;
  /** A read from the camera's offline queue: history, never a car at the lane now. */
  offline?: boolean;
  /** The camera saw a vehicle but no plate ("_无_"). */
  noPlate?: boolean;
  /**
   * Further plate texts of the same vehicle when the camera reports several joined by `|`
   * (cross-border "three-region" vehicles carry a mainland plate plus a Hong Kong and/or
   * Macau one). `plate` holds the mainland one when there is one.
   */
  altPlates?: string[];
}

export const plateColors = ["unknown", "blue", "yellow", "white", "black", "green", "yellow-green"] as const;
export type PlateColor = (typeof plateColors)[number];

/** Colour names seen in camera output and sim requests, by code. */
const colorWords: ReadonlyArray<readonly string[]> = [
  ["unknown", "未知", "其他", "其它"],
  ["blue", "蓝", "蓝色", "蓝牌"],
  ["yellow", "黄", "黄色", "黄牌"],
  ["white", "白", "白色", "白牌"],
  ["black", "黑", "黑色", "黑牌"],
  ["green", "绿", "绿色", "绿牌", "新能源", "渐变绿"],
  ["yellow-green", "黄绿", "黄绿色", "黄绿牌"],
];

/** Colour code → name; codes outside 0-6 are "unknown". */
export function colorFromCode(code: number): PlateColor {
  return plateColors[code] ?? "unknown";
}

/**
 * Reads a colour given as a code (number or digit string) or a name (English or Chinese).
 * Returns undefined when it is neither.
 */
export function parseColor(value: unknown): { color: PlateColor; colorCode: number } | undefined {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 0 && value <= 6 ? { color: colorFromCode(value), colorCode: value } : undefined;
  }
  if (typeof value !== "string") return undefined;
  const text = value.trim().toLowerCase();
  if (/^\d{1,2}$/.test(text)) return parseColor(Number(text));
  const code = colorWords.findIndex((words) => words.includes(text));
  return code >= 0 ? { color: colorFromCode(code), colorCode: code } : undefined;
}
