import { readFile, rename } from "node:fs/promises";
import { z } from "zod";
import type { Logger } from "../kernel/log.js";
import { writeFileDurable } from "./durable.js";
import { storedJobSchema, terminalStatuses } from "./job.js";

/**
 * The durable record of the update in progress (`<root>/update-state.json`). Every step is
 * written here (temp, fsync, rename, fsync dir) before its work starts, so whatever moment the
 * power goes, the next boot knows where the job stood and can finish it one way or the other.
 */
export const activeSteps = ["accepted", "waiting-idle", "downloading", "verifying", "unpacking", "switching", "restarting", "health-check", "rolling-back"] as const;
export type ActiveStep = (typeof activeSteps)[number];

const activeJobSchema = z.object({
  jobId: z.string(),
  job: storedJobSchema,
  step: z.enum(activeSteps),
  fromVersion: z.string(),
  /** What `current` pointed to before the switch: the rollback target. */
  previousTarget: z.string().nullable(),
  /** Boots of the new version inside its health window. */
  healthBoots: z.int().min(0),
  /** Restarts issued to complete a rollback. */
  rollbackBoots: z.int().min(0),
  code: z.string().optional(),
  reason: z.string().optional(),
  /**
   * Written by the boot guard (scripts/boot-guard.sh, outside the releases) when the new release
   * failed to start `failedBoots` times before committing and `current` was switched back. The
   * guard also sets step "rolling-back", code and reason, so the job ends as a rollback either way.
   */
  bootGuard: z.object({ failedBoots: z.int().min(1), maxBoots: z.int().min(1), at: z.number() }).optional(),
  startedAt: z.number(),
  updatedAt: z.number(),
});
export type ActiveJob = z.infer<typeof activeJobSchema>;

const finishedJobSchema = z.object({
  jobId: z.string(),
  version: z.string().optional(),
  fromVersion: z.string(),
  status: z.enum(terminalStatuses),
  code: z.string().optional(),
  reason: z.string().optional(),
  finishedAt: z.number(),
});
export type FinishedJob = z.infer<typeof finishedJobSchema>;

export const updateStateSchema = z.object({
  v: z.literal(1),
  active: activeJobSchema.nullable(),
  /** The most recent finished jobs, newest last (a re-delivered job id is answered from here). */
  history: z.array(finishedJobSchema),
});
export type UpdateState = z.infer<typeof updateStateSchema>;

export const HISTORY_LIMIT = 20;

export function emptyState(): UpdateState {
  return { v: 1, active: null, history: [] };
}

export class UpdateStateFile {
  constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {}

  async load(): Promise<UpdateState> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
      throw error;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const parsed = updateStateSchema.safeParse(raw);
    if (parsed.success) return parsed.data;
    // Writes are atomic, so this is damage from outside; keep the evidence, start clean, say so.
    const aside = `${this.file}.corrupt-${Date.now()}`;
    // If the move fails the next start finds the same bytes and tries again; the error line below says what happened.
    await rename(this.file, aside).catch(() => undefined);
    this.log.error({ file: this.file, movedTo: aside }, "update state unreadable; moved aside");
    return emptyState();
  }

  async save(state: UpdateState): Promise<void> {
    await writeFileDurable(this.file, `${JSON.stringify(state, null, 2)}\n`);
  }
}
