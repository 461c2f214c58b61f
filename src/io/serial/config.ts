import { z } from "zod";
import { cameraOptionsSchema } from "../camera/config.js";
import { scannerOptionsSchema } from "../scanner/config.js";
import { displayOptionsSchema, spacesSignOptionsSchema } from "../display/config.js";

/** Port settings shared by every serial device. */
const portShape = {
  /** Prefer /dev/serial/by-id/... : ttyUSB numbers change across reboots. */
  path: z.string().startsWith("/").optional(),
  baudRate: z.int().positive().default(9600),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  /** A device that has sent nothing for this long is reported as silent. */
  silenceTimeoutS: z.int().min(1).default(600),
};

/**
 * A serial device: the plate camera's line output, the scanner gun, the LED/voice board, the
 * remaining-spaces sign. A device is real when it has a `path`, simulated otherwise
 * (docs/architecture.md "Layers"). `options` is typed by `kind`, so a typo in an option is reported.
 */
export const serialDeviceSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("camera"), ...portShape, options: cameraOptionsSchema.prefault({}) }),
  z.strictObject({ kind: z.literal("scanner"), ...portShape, options: scannerOptionsSchema.prefault({}) }),
  z.strictObject({ kind: z.literal("display"), ...portShape, options: displayOptionsSchema.prefault({}) }),
  z.strictObject({ kind: z.literal("sign"), ...portShape, options: spacesSignOptionsSchema.prefault({}) }),
]);
export type SerialDeviceConfig = z.infer<typeof serialDeviceSchema>;
export type SerialDeviceKind = SerialDeviceConfig["kind"];

/** The port settings of any device (what the serial link needs). */
export type SerialPortSettings = Pick<SerialDeviceConfig, "path" | "baudRate" | "dataBits" | "parity" | "stopBits" | "silenceTimeoutS">;
