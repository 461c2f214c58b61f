import { z } from "zod";

/**
 * Options of a plate camera that prints each read on its serial port (hw/serial-wiring.md
 * "Config"). The template names the fields of a line; anything between fields is literal text.
 */
export const cameraOptionsSchema = z.strictObject({
  /**
   * Fields: %PLATE% (required), %COLOR% (colour code 0-6 or a name: 蓝, 黄, blue...),
   * %CONFIDENCE% (0-100). Example: "%PLATE%,%COLOR%,%CONFIDENCE%".
   */
  template: z
    .string()
    .min(7)
    .max(200)
    .refine((t) => t.split("%PLATE%").length === 2, { message: "must contain %PLATE% exactly once" })
    .refine((t) => !/[\r\n]/.test(t), { message: "must not contain a line terminator" })
    .default("%PLATE%"),
  /**
   * How the camera ends a line. Reading accepts CR, LF and CR LF whatever this says (a
   * reconfigured camera must not go blind); the simulator writes lines this way.
   */
  lineEnding: z.enum(["crlf", "lf", "cr"]).default("crlf"),
  /** Character set of the line: Chinese cameras print GBK unless set to UTF-8. */
  encoding: z.enum(["gbk", "utf8"]).default("gbk"),
  /** Longer lines are noise: dropped up to the next terminator and counted. */
  maxLineBytes: z.int().min(16).max(4096).default(256),
});
export type CameraOptions = z.infer<typeof cameraOptionsSchema>;
