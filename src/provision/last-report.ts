import { dirname } from "node:path";
import { z } from "zod";
import { systemClock, type Clock } from "../kernel/clock.js";
import { BoxDir } from "./box-dir.js";
import { ProvisionErrorCode } from "./errors.js";

/**
 * The box's own copy of the last provisioning report, beside the config it is about
 * (`/etc/lanekeeper/provision-report.json`, root:lanekeeper 0640). It is written whatever
 * happened on the stick, so a read-only or full stick, or one pulled too early, still leaves
 * the outcome on the box: in the journal (the provisioning unit prints the report) and at
 * `/api/status` under `provision` (read by the service from this file).
 */
export const PROVISION_REPORT_FILE = "provision-report.json";
const MAX_RECORD_BYTES = 256 * 1024;

const problemSchema = z.object({ path: z.string(), message: z.string(), code: z.enum(Object.values(ProvisionErrorCode) as [string, ...string[]]).optional() });

export const lastProvisionSchema = z.object({
  v: z.literal(1),
  status: z.enum(["applied", "unchanged", "rejected"]),
  at: z.string(),
  host: z.string(),
  deviceId: z.string().optional(),
  stick: z.string(),
  /** Whether lanekeeper-report.txt reached the stick, and why not. */
  reportOnStick: z.boolean(),
  reportError: z.string().optional(),
  problems: z.array(problemSchema),
  changes: z.int().min(0),
  restart: z.string().optional(),
  /** The text written to the stick (secrets already masked). */
  report: z.string(),
});
export type LastProvision = z.infer<typeof lastProvisionSchema>;

/**
 * The `provision` section of /api/status: the last report's outcome, re-read at most every
 * `refreshMs` (a stick that was refused does not restart the service, so the file changes under
 * a running process). Reads never block a status request: it answers from the last read.
 */
export class ProvisionStatus {
  private last: LastProvision | undefined;
  private error: string | undefined;
  private readAtMs = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly configPath: string,
    private readonly options: { clock?: Clock; refreshMs?: number } = {},
  ) {}

  /** Reads the file now (start-up, tests). */
  async refresh(): Promise<void> {
    this.readAtMs = (this.options.clock ?? systemClock).now();
    try {
      this.last = await readLastProvision(dirname(this.configPath));
      this.error = undefined;
    } catch (error) {
      this.error = (error as Error).message;
    }
  }

  snapshot(): Record<string, unknown> {
    const now = (this.options.clock ?? systemClock).now();
    if (!this.reading && now - this.readAtMs >= (this.options.refreshMs ?? 5000)) {
      this.reading = this.refresh().finally(() => (this.reading = undefined));
    }
    if (this.error !== undefined) return { state: "unreadable", error: this.error };
    if (!this.last) return { state: "never" };
    const { report: _text, v: _v, ...summary } = this.last;
    return { state: summary.status, ...summary, problemCount: summary.problems.length };
  }
}

export async function readLastProvision(configDir: string): Promise<LastProvision | undefined> {
  const dir = await BoxDir.open(configDir, undefined);
  if (!dir) return undefined;
  try {
    const bytes = await dir.read(PROVISION_REPORT_FILE, MAX_RECORD_BYTES);
    if (!bytes) return undefined;
    const parsed = lastProvisionSchema.safeParse(JSON.parse(bytes.toString("utf8")));
    if (!parsed.success) throw new Error(`${PROVISION_REPORT_FILE} is not a provisioning record`);
    return parsed.data;
  } finally {
    await dir.close();
  }
}
