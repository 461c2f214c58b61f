import { z } from "zod";

/** The cloud platform link: credentials, URLs, service names, deadlines (platform-api.md §12). */
export const platformConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Base URL of the cloud side; with pathStyle "single" every service is POSTed here. */
  baseUrl: z.url({ protocol: /^https?$/ }),
  pathStyle: z.enum(["single", "per-service"]).default("single"),
  /** Used with pathStyle "per-service"; `{service}` is replaced by the serviceName. */
  pathTemplate: z.string().default("/api/{service}"),
  pid: z.string().min(1).max(20),
  key: z.string().min(1),
  serviceNames: z
    .strictObject({
      enterNotify: z.string().min(1).default("enterNotify"),
      leaveNotify: z.string().min(1).default("leaveNotify"),
      preLeaveNotify: z.string().min(1).default("preLeaveNotify"),
      preEnterNotify: z.string().min(1).default("preEnterNotify"),
    })
    .prefault({}),
  deadlines: z
    .strictObject({
      preLeaveMs: z.int().min(100).max(60_000).default(3000),
      preEnterMs: z.int().min(100).max(60_000).default(3000),
      reportMs: z.int().min(100).max(120_000).default(5000),
    })
    .prefault({}),
  /** Section-4 requests from the cloud (open interfaces). */
  server: z
    .strictObject({
      path: z.string().startsWith("/").default("/platform"),
      timestampWindowS: z.int().min(1).max(86_400).default(300),
    })
    .prefault({}),
});
export type PlatformConfig = z.infer<typeof platformConfigSchema>;
