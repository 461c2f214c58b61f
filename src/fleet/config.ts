import { z } from "zod";

/** The fleet link over MQTT (architecture.md §7). */
export const mqttConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, "must be an mqtt://, mqtts://, ws:// or wss:// URL"),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
  username: z.string().optional(),
  password: z.string().optional(),
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  topicRoot: z.string().regex(/^[^#+]+$/, "must not contain MQTT wildcards").default("lanekeeper/v1"),
  healthIntervalS: z.int().min(5).max(86_400).default(60),
});
export type MqttConfig = z.infer<typeof mqttConfigSchema>;
