/**
 * The GPIO contract shared by the real adapter (onoff over sysfs) and its simulated twin.
 * Lines are addressed by key (`<laneId>.<logical name>`, e.g. `in1.loopA`); levels are
 * logical (1 = active: a car on the loop, a relay energised) after active-low inversion.
 */
export type Level = 0 | 1;

export interface GpioLineSpec {
  /** `<laneId>.<logical>` */
  key: string;
  /** BCM line number on the SoC's pin controller. */
  line: number;
  direction: "in" | "out";
  /** The electrical level is the inverse of the logical one (opto-isolated inputs pull low). */
  activeLow: boolean;
}

export interface GpioEdge {
  key: string;
  level: Level;
  /** Epoch ms when the edge was seen. */
  atMs: number;
}

export type GpioListener = (edge: GpioEdge) => void;

export interface Gpio {
  readonly kind: "sim" | "onoff";
  start(): Promise<void>;
  /** Drives every output to its safe (inactive) level, then releases the lines. */
  stop(): Promise<void>;
  read(key: string): Level;
  write(key: string, level: Level): void;
  /** Subscribes to input edges; returns an unsubscribe function. */
  onEdge(listener: GpioListener): () => void;
  /** Drives every output inactive at once, synchronously (crash path). */
  allOutputsSafe(): void;
}

export class GpioError extends Error {
  constructor(
    readonly code: "E_GPIO_UNKNOWN_LINE" | "E_GPIO_DIRECTION" | "E_GPIO_EXPORT" | "E_GPIO_CHIP" | "E_GPIO_NOT_STARTED",
    message: string,
  ) {
    super(message);
    this.name = "GpioError";
  }
}
