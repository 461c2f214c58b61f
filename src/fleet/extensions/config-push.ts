import { join } from "node:path";
import { z } from "zod";
import { MAX_PAYLOAD_BYTES, TOO_DEEP_MESSAGE, tooDeep } from "../commands.js";
import type { FleetConnection } from "../connection.js";
import { checked, errorText, type Connection, type FleetContext, type FleetExtension, type InboundMessage } from "../extension.js";
import { configDesiredSchema, configReportedSchema, schemaMessage, type ConfigDetail } from "../payloads.js";
import { JsonStateFile } from "../state-file.js";

export type ConfigDesiredHandler = (version: number, config: Record<string, unknown>) => Promise<{ status: "applied" | "rejected"; detail: ConfigDetail }>;

const configStateSchema = z.strictObject({
  appliedVersion: z.int().min(0),
  lastRejectedVersion: z.int().min(0).nullable(),
});

type ConfigReport = z.infer<typeof configReportedSchema>;

/**
 * `cfg/desired` → `cfg/reported` (retained). The handler validates and applies; this module
 * keeps the version bookkeeping (durable, so the retained document that comes back at every
 * connect is not applied twice) and reports the outcome.
 */
export class ConfigPush implements FleetExtension {
  readonly name = "config";
  readonly inbound = "configDesired";
  handler: ConfigDesiredHandler | undefined;
  private readonly stateFile: JsonStateFile<z.infer<typeof configStateSchema>>;
  private appliedVersion = 0;
  private lastRejectedVersion: number | null = null;
  private lastReport: ConfigReport | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: FleetContext,
    private readonly connection: FleetConnection,
    stateDir: string,
    /** Called once a version is applied: the status carries the config version. */
    private readonly onApplied: () => void,
  ) {
    this.stateFile = new JsonStateFile(join(stateDir, "config-version.json"), configStateSchema, ctx.log);
  }

  /** The config version the box runs. */
  get version(): number {
    return this.appliedVersion;
  }

  get warning(): string | undefined {
    return this.stateFile.warning;
  }

  async start(): Promise<void> {
    const state = await this.stateFile.read();
    this.appliedVersion = state?.appliedVersion ?? 0;
    this.lastRejectedVersion = state?.lastRejectedVersion ?? null;
  }

  async stop(): Promise<void> {
    await this.stateFile.idle();
  }

  onConnected(conn: Connection): void {
    if (!this.lastReport) return;
    this.connection
      .send(conn, this.ctx.topics.configReported(), this.lastReport, { qos: 1, retain: true })
      .catch((error: unknown) => this.ctx.log.warn({ err: error }, "cfg/reported not sent"));
  }

  handle({ payload }: InboundMessage): Promise<void> {
    // One push at a time: two versions racing must not apply out of order.
    const next = this.chain.then(() => this.apply(payload));
    // The caller gets `next` and its error; the chain only keeps the order.
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async apply(payload: Buffer): Promise<void> {
    const { counters, log, clock } = this.ctx;
    const reject = (version: number | null, detail: string, counter: string): void => {
      counters.count(counter);
      log.warn({ version, detail }, "config push refused");
      this.report({ v: 1, version, status: "rejected", detail, ts: clock.now() });
    };
    if (payload.length === 0) {
      counters.count("cfgEmpty"); // a cleared retained message: nothing desired
      return;
    }
    if (payload.length > MAX_PAYLOAD_BYTES) return reject(null, `payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "cfgOversized");
    const text = payload.toString("utf8");
    if (tooDeep(text)) return reject(null, TOO_DEEP_MESSAGE, "cfgTooDeep");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return reject(null, "payload is not JSON", "cfgNonJson");
    }
    const record = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
    const readableVersion = typeof record.version === "number" && Number.isInteger(record.version) && record.version >= 1 ? record.version : null;
    if (record.v !== 1) return reject(readableVersion, `unsupported payload version ${JSON.stringify(record.v ?? null)}; this box speaks v 1`, "cfgWrongVersion");
    const desired = configDesiredSchema.safeParse(raw);
    if (!desired.success) return reject(readableVersion, schemaMessage(desired.error), "cfgInvalid");
    const { version, config } = desired.data;
    // The retained document comes back at every reconnect: versions already answered are quiet.
    if (version <= this.appliedVersion) {
      counters.count("cfgIgnored");
      if (version < this.appliedVersion) log.info({ version, applied: this.appliedVersion }, "older config version ignored");
      return;
    }
    if (version === this.lastRejectedVersion) {
      counters.count("cfgIgnored");
      return;
    }
    if (!this.handler) return reject(version, "config push is not enabled on this box", "cfgNoHandler");
    let outcome: { status: "applied" | "rejected"; detail: ConfigDetail };
    try {
      outcome = await this.handler(version, config);
    } catch (error) {
      outcome = { status: "rejected", detail: `apply failed: ${errorText(error)}` };
    }
    if (outcome.status === "applied") {
      this.appliedVersion = version;
      this.lastRejectedVersion = null;
      counters.count("cfgApplied");
      log.info({ version }, "config push applied");
    } else {
      this.lastRejectedVersion = version;
      counters.count("cfgRejected");
      log.warn({ version, detail: outcome.detail }, "config push rejected");
    }
    await this.stateFile
      .write({ appliedVersion: this.appliedVersion, lastRejectedVersion: this.lastRejectedVersion })
      .catch((error: unknown) => log.error({ err: error }, "applied config version not saved"));
    this.report({ v: 1, version, status: outcome.status, detail: outcome.detail, ts: clock.now() });
    if (outcome.status === "applied") this.onApplied();
  }

  private report(report: ConfigReport): void {
    const payload = checked(configReportedSchema, report);
    this.lastReport = payload;
    this.connection.sendRetainedLatest(this.ctx.topics.configReported(), payload);
  }
}
