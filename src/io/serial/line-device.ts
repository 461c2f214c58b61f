import type { Logger } from "../../kernel/log.js";
import type { SerialLink } from "./serial-link.js";

/** Rejections are logged at most this often (a noisy line at 9600 baud is ~1000 lines/s). */
const rejectLogIntervalMs = 10_000;

/** One parsed line: what the device accepts, or why the line was refused. */
export type LineOutcome<Parsed, Reason extends string> = ({ ok: true } & Parsed) | { ok: false; reason: Reason; detail: string };

/**
 * What the lane's line-oriented serial devices (the plate camera, the scanner gun) share: the
 * link's start and stop, the listeners of what they parse, and bad lines counted and logged
 * rate-limited, so that one never stops the next good one. A subclass turns link bytes into
 * line outcomes (`parse`) and takes each good one (`accept`), which hands it to `deliver`.
 */
export abstract class SerialLineDevice<Item, Reason extends string, Parsed extends object = object> {
  readonly name: string;
  protected readonly log: Logger;
  protected lastRejection: { reason: Reason; atMs: number } | undefined;
  private readonly listeners = new Set<(item: Item) => void>();
  private unsubscribe: (() => void) | undefined;
  private lastRejectLogMs = -Infinity;
  private rejectsSinceLog = 0;

  constructor(
    readonly laneId: string,
    readonly link: SerialLink,
    log: Logger,
    /** What a rejected line is, for the log ("camera line"). */
    private readonly lineName: string,
  ) {
    this.name = link.name;
    this.log = log.child({ device: link.name, laneId });
  }

  async start(): Promise<void> {
    this.unsubscribe ??= this.link.onData((chunk, atMs) => this.receive(chunk, atMs));
    await this.link.open();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.link.close();
  }

  protected abstract parse(chunk: Buffer, atMs: number): ReadonlyArray<LineOutcome<Parsed, Reason>>;

  protected abstract accept(parsed: Parsed, atMs: number): void;

  private receive(chunk: Buffer, atMs: number): void {
    for (const outcome of this.parse(chunk, atMs)) {
      if (outcome.ok) this.accept(outcome, atMs);
      else this.reject(outcome.reason, outcome.detail, atMs);
    }
  }

  protected listen(listener: (item: Item) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hands an item to every listener; one that throws is logged and the others still get it. */
  protected deliver(item: Item, logFields: Record<string, unknown>): void {
    for (const listener of this.listeners) {
      try {
        listener(item);
      } catch (error) {
        this.log.error({ err: error, ...logFields }, `${this.lineName} listener failed`);
      }
    }
  }

  protected reject(reason: Reason, detail: string | undefined, atMs: number): void {
    this.lastRejection = { reason, atMs };
    this.rejectsSinceLog++;
    if (atMs - this.lastRejectLogMs >= rejectLogIntervalMs) {
      this.log.warn({ reason, detail, rejectedSinceLastLog: this.rejectsSinceLog }, `${this.lineName} rejected`);
      this.lastRejectLogMs = atMs;
      this.rejectsSinceLog = 0;
    }
  }
}
