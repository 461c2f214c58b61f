import { z } from "zod";
import { versionSchema } from "./version.js";

/**
 * An update job as it arrives on `jobs/<jobId>` (docs/mqtt.md §7, modelled on AWS IoT Jobs):
 * what to install, where to fetch it and how to check it. Unknown keys are refused so a typo
 * in `allowDowngrade` cannot silently mean "no".
 */
export const jobIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must be 1-64 letters, digits, '.', ':', '-' or '_'");

const MAX_BUNDLE_BYTES = 2 * 1024 * 1024 * 1024;

export const updateJobSchema = z.strictObject({
  v: z.literal(1),
  /** The fleet link routes jobs by type (src/fleet/payloads.ts); this agent runs "update". */
  type: z.literal("update").optional(),
  version: versionSchema,
  url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits")
    .transform((s) => s.toLowerCase()),
  size: z.int().min(1).max(MAX_BUNDLE_BYTES),
  /** Epoch milliseconds or an ISO date-time with offset. */
  expiresAt: z.union([z.int().min(0), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))]),
  allowDowngrade: z.boolean().default(false),
});
export type UpdateJob = z.output<typeof updateJobSchema>;
export type UpdateJobInput = z.input<typeof updateJobSchema>;

/** The job as stored in update-state.json (already normalised). */
export const storedJobSchema = z.object({
  v: z.literal(1),
  type: z.literal("update").optional(),
  version: versionSchema,
  url: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.int().min(1),
  expiresAt: z.number(),
  allowDowngrade: z.boolean(),
});

export const jobSteps = ["validate", "wait-idle", "download", "verify", "unpack", "switch", "restart", "health", "commit", "rollback"] as const;
export type JobStep = (typeof jobSteps)[number];

export const terminalStatuses = ["succeeded", "failed", "rejected", "rolled-back"] as const;
export type TerminalStatus = (typeof terminalStatuses)[number];
export type JobState = "in-progress" | TerminalStatus;

/** One message on `jobs/<jobId>/status`. */
export interface JobStatus {
  v: 1;
  jobId: string;
  status: JobState;
  step: JobStep;
  /** 0..1 within the step. */
  progress: number;
  /** The version the job installs (absent when the payload was unreadable). */
  version?: string;
  /** The version running when the job started. */
  fromVersion: string;
  /** Stable error code for failed, rejected and rolled-back jobs. */
  code?: string;
  reason?: string;
  ts: number;
}

/**
 * The same status in the fleet link's `jobs/<jobId>/status` shape (src/fleet/payloads.ts
 * `JobStatusInput`): "in-progress" is "running", and code, reason and versions travel in
 * `detail`.
 */
export function toFleetJobStatus(status: JobStatus): { status: "running" | TerminalStatus; step: JobStep; progress: number; detail?: string } {
  const versions = status.version !== undefined ? `${status.fromVersion} → ${status.version}` : `running ${status.fromVersion}`;
  const parts = [status.code, status.reason, `(${versions})`].filter((p): p is string => p !== undefined && p !== "");
  return {
    status: status.status === "in-progress" ? "running" : status.status,
    step: status.step,
    progress: status.progress,
    detail: parts.join(" ").slice(0, 2000),
  };
}
