import { readFile } from "node:fs/promises";
import type { IClientOptions } from "mqtt";
import { z } from "zod";

/** The fleet link over MQTT (docs/mqtt.md). */
export const mqttConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, "must be an mqtt://, mqtts://, ws:// or wss:// URL"),
  /** 5 = MQTT 5, falling back to 3.1.1 when the broker refuses the protocol version; 4 = 3.1.1 only. */
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
  username: z.string().optional(),
  password: z.string().optional(),
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  topicRoot: z
    .string()
    .regex(/^[^#+]+$/, "must not contain MQTT wildcards")
    .default("lanekeeper/v1"),
  healthIntervalS: z.int().min(5).max(86_400).default(60),
  /** MQTT keepalive; the broker declares the box lost (will message) after 1.5 × this. */
  keepaliveS: z.int().min(5).max(3600).default(30),
  /** QoS 1 events kept on disk while offline; beyond this the oldest are dropped and counted. */
  spoolMaxEvents: z.int().min(10).max(1_000_000).default(10_000),
  /** MQTT 5 message expiry of events: a backend offline longer than this does not get them late. */
  eventExpiryS: z
    .int()
    .min(1)
    .max(30 * 86_400)
    .default(7 * 86_400),
  /** Off only for a lab broker with a self-signed certificate and no CA file at hand. */
  rejectUnauthorized: z.boolean().default(true),
});
export type MqttConfig = z.infer<typeof mqttConfigSchema>;

/**
 * Adds the broker credentials and TLS files of `config` to `options`. Files are read at every
 * connection attempt, so a rotated certificate is picked up without a restart. Without files
 * nothing is awaited (undefined), so a plain connection starts in the same turn as before.
 */
export function addBrokerCredentials(options: IClientOptions, config: MqttConfig): Promise<void> | undefined {
  if (config.username !== undefined) options.username = config.username;
  if (config.password !== undefined) options.password = config.password;
  if (!config.caFile && !config.certFile && !config.keyFile) return undefined;
  return (async () => {
    if (config.caFile) options.ca = await readFile(config.caFile);
    if (config.certFile) options.cert = await readFile(config.certFile);
    if (config.keyFile) options.key = await readFile(config.keyFile);
  })();
}
