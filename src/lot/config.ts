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
  /**
   * Partitions (docs/mqtt.md "Partitions and reconciliation"): a provisional exit no stay of the
   * lot claimed goes out as an ordinary no-record exit once the view has been live this long
   * with every box of the lot online.
   */
  provisionalWaitMs: z.int().min(0).max(86_400_000).default(300_000),
  /** The longest a provisional exit's reports are held, whatever the lot says (a box that never hears the lot again). */
  provisionalHoldS: z.int().min(60).max(604_800).default(86_400),
  /** How far another box's clock may run ahead: a stay entered up to this much after a provisional exit still matches it. */
  clockSkewMs: z.int().min(0).max(3_600_000).default(600_000),
  /**
   * A car that entered at another box: its leave report waits (held in the outbox) until the
   * lot says the entering box's entry report was delivered, at most this long; 0 never waits.
   */
  entryReportWaitS: z.int().min(0).max(86_400).default(1800),
  /** A forwarded `remoteDev` waits this long for the other box's answer: keep it below the platform's own deadline. */
  forwardWaitMs: z.int().min(200).max(10_000).default(2000),
});
export type LotShareConfig = z.infer<typeof lotShareConfigSchema>;
