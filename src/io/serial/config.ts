import { z } from "zod";

/**
 * A serial device: the plate camera's line output, the scanner gun, the LED/voice board.
 * A device is real when it has a `path`, simulated otherwise (architecture.md §2).
 */
export const serialDeviceSchema = z.strictObject({
  kind: z.enum(["camera", "scanner", "display"]),
  /** Prefer /dev/serial/by-id/... : ttyUSB numbers change across reboots. */
  path: z.string().startsWith("/").optional(),
  baudRate: z.int().positive().default(9600),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  /** A device that has sent nothing for this long is reported as silent. */
  silenceTimeoutS: z.int().min(1).default(600),
  /** Device-specific protocol options (line template, encoding, display address...). */
  options: z.record(z.string(), z.unknown()).default({}),
});
export type SerialDeviceConfig = z.infer<typeof serialDeviceSchema>;
