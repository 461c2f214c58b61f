import { UpdateErrorCode } from "../../update/errors.js";
import type { AnswerQueue } from "../answers.js";
import { MAX_PAYLOAD_BYTES, TOO_DEEP_MESSAGE, tooDeep } from "../commands.js";
import { checked, errorText, topicFor, type FleetContext, type FleetExtension, type InboundMessage } from "../extension.js";
import { jobRequestSchema, jobStatusPayloadSchema, schemaMessage, type JobRequest, type JobStatusInput } from "../payloads.js";
import type { SeenIds } from "../seen-ids.js";
import { isTopicLevel } from "../topics.js";

/**
 * Runs a new job, or (`repeat`) answers for one whose id was accepted before: the handler then
 * re-publishes that job's last known status and must not start it again.
 */
export type JobHandler = (jobId: string, job: JobRequest, delivery: { repeat: boolean }) => Promise<void> | void;

/**
 * `jobs/<id>` → `jobs/<id>/status`: accepts an update job once (its id is remembered durably
 * before the handler starts) and hands it to the handler, which reports its own progress.
 */
export class Jobs implements FleetExtension {
  readonly name = "jobs";
  readonly inbound = "job";
  handler: JobHandler | undefined;

  constructor(
    private readonly ctx: FleetContext,
    private readonly answers: AnswerQueue,
    private readonly seen: SeenIds,
  ) {}

  /** QoS 1; held (bounded) while offline. Resolves once acknowledged or held; never rejects. */
  publishStatus(jobId: string, status: JobStatusInput): Promise<void> {
    const topic = topicFor(() => this.ctx.topics.jobStatus(jobId));
    const payload = checked(jobStatusPayloadSchema, { v: 1, jobId, ...status, ts: this.ctx.clock.now() });
    return this.answers.send({ topic, payload: JSON.stringify(payload), options: { qos: 1, retain: false } });
  }

  async handle({ route, payload, packet }: InboundMessage): Promise<void> {
    if (route.kind !== "job") return;
    const { jobId } = route;
    const { counters, log } = this.ctx;
    if (!isTopicLevel(jobId)) {
      counters.count("jobInvalid");
      log.warn({ jobId }, "job id cannot be a topic level; ignored");
      return;
    }
    const refuse = (detail: string, counter: string): void => {
      counters.count(counter);
      log.warn({ jobId, detail, bytes: payload.length }, "job refused");
      void this.publishStatus(jobId, { status: "rejected", detail: detail.slice(0, 2000) });
    };
    // An unreadable job gets the update agent's code for "not a job" (docs/mqtt.md §7.4).
    const invalid = (reason: string, counter: string): void => refuse(`${UpdateErrorCode.JobInvalid} ${reason}`, counter);
    if (payload.length === 0) {
      // How a backend clears a retained `jobs/<id>`: nothing was asked, nothing to answer.
      counters.count("jobEmpty");
      log.debug({ jobId }, "empty job payload ignored");
      return;
    }
    if (payload.length > MAX_PAYLOAD_BYTES) return invalid(`payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "jobOversized");
    const key = `job:${jobId}`;
    if (packet.retain) {
      // On MQTT 3.1.1 a retained job published while the box was online ran (the broker cleared
      // the flag); its stored copy comes back at every connect. It must not put a `rejected` on
      // the status topic of a job that is running or done: a known id stays silent.
      if (this.seen.get(key)) {
        counters.count("jobDuplicate");
        log.info({ jobId }, "stored retained copy of a job already started; ignored");
        return;
      }
      return refuse("retained jobs are not run", "jobRetained");
    }
    const text = payload.toString("utf8");
    if (tooDeep(text)) return invalid(TOO_DEEP_MESSAGE, "jobTooDeep");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return invalid("payload is not JSON", "jobNonJson");
    }
    const job = jobRequestSchema.safeParse(raw);
    if (!job.success) return invalid(schemaMessage(job.error), "jobInvalid");
    if (this.seen.get(key)) {
      counters.count("jobDuplicate");
      log.info({ jobId }, "job id seen before; not started again, its last status is published again");
      // A console resuming a rollout repeats jobs it cannot know were delivered; a box that
      // finished one while the console was away says so again instead of staying silent.
      try {
        await this.handler?.(jobId, job.data, { repeat: true });
      } catch (error) {
        log.warn({ err: error, jobId }, "repeated job's status could not be published again");
      }
      return;
    }
    if (!this.handler) return refuse("jobs are not enabled on this box", "jobNoHandler");
    await this.seen.remember(key, job.data.type, this.ctx.clock.now(), undefined);
    try {
      await this.handler(jobId, job.data, { repeat: false });
      counters.count("jobsStarted");
    } catch (error) {
      counters.count("jobFailed");
      log.error({ err: error, jobId }, "job handler failed");
      void this.publishStatus(jobId, { status: "failed", detail: errorText(error).slice(0, 2000) });
    }
  }
}
