import { z } from "zod";
import { mqttConfigSchema } from "../fleet/config.js";

/** `lot.share`: one lot, many boxes, through an MQTT broker (docs/mqtt.md "Sharing one lot between boxes"). */
export const lotShareConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** A broker of the lot's own; without it the box's `mqtt` section names the broker. */
  mqtt: mqttConfigSchema.optional(),
  /** How long a finished stay stays retained (MQTT 5 message expiry; cleared by the boxes on 3.1.1). */
  leftExpiryS: z
    .int()
    .min(60)
    .max(30 * 86_400)
    .default(86_400),
  /** After the subscriptions are granted, the retained burst is over once the broker is quiet this long. */
  quietMs: z.int().min(20).max(10_000).default(300),
  /** The lanes start at most this long after the box looks for the lot (a broker down does not stop them). */
  startWaitMs: z.int().min(0).max(60_000).default(2000),
});
export type LotShareConfig = z.infer<typeof lotShareConfigSchema>;
