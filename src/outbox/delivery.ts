import { z } from "zod";
import { systemClock, type Clock, type TimerHandle } from "../kernel/clock.js";
import { backoffDelayMs, type BackoffPolicy } from "../kernel/backoff.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import { DAY_MS } from "../core/time/zone.js";
import { StoreError, StoreErrorCode } from "../store/errors.js";
import { DEFAULT_BACKOFF, DEFAULT_PERMANENT_CODES } from "./config.js";
import { OutboxJournal } from "./journal.js";
import { decideFailure, type ParkedInfo, type RefusalPolicy } from "./refusal.js";
import type { EnqueueInput, EnqueueResult, OutboxEntry, OutboxOptions, OutboxSender, OutboxStatus, SendResult } from "./types.js";

/** How long stop() waits for the aborted deliveries to come back (the lifecycle allows 500 ms). */
const STOP_WAIT_MS = 300;

const enqueueSchema = z.object({
  recordNo: z.string().min(1).max(64),
  kind: z.string().min(1).max(32),
  service: z.string().min(1).max(64),
  biz: z.record(z.string(), z.unknown()),
  key: z.string().min(1).max(160).optional(),
  notBeforeMs: z.number().finite().optional(),
});

/**
 * The durable offline queue of reports to the platform, and its delivery loop. What is
 * queued, parked and on disk is the journal's (journal.ts); this class decides what is sent
 * when: order, retries, park rules, probes, the link's state.
 *
 * Order: per record, entries go out in enqueue order and one at a time; different records
 * flow independently, up to `maxInFlight` at once. An exit report never overtakes its entry
 * report: while a record's earlier report is retrying or parked, its later reports wait
 * ("held"). One record the platform keeps refusing never holds up another record. An
 * operator who decides a parked report will never go through discards it; the record's
 * next report (the exit carries what the platform needs to rebuild the stay) then goes.
 *
 * Refusals (refusal.ts): a business code is retried with backoff like a transport failure;
 * a permanent code parks the report at once, and a report still refused `parkAfterMs` after
 * it was queued is parked. Parked reports are probed again by themselves: every
 * `probeParkedMs`, and whenever the platform answers 200 to anything (`platformAnswered`,
 * at most once per `probeOnAnswerGapMs`). A probe sends each record's parked head once; a
 * delivered head lets the record's next reports follow in order.
 *
 * Retries: each transient failure backs the entry off (capped exponential, full jitter).
 * After `probeAfterFailures` consecutive transient failures the link counts as down: one
 * report at a time probes it on its own backoff instead of every entry hammering a dead
 * server; the first success reopens the link and makes every entry due at once, so the
 * backlog drains at full speed after an outage. Live lane calls (preLeaveNotify) never go
 * through here, so they never wait behind the backlog; the in-flight bound keeps the
 * drain from taking every socket.
 */
export class Outbox implements Component {
  readonly name = "outbox";
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly random: () => number;
  private readonly maxInFlight: number;
  private readonly backoff: BackoffPolicy;
  private readonly probeAfterFailures: number;
  private readonly refusalPolicy: RefusalPolicy;
  private readonly probeParkedMs: number;
  private readonly probeOnAnswerGapMs: number;
  private readonly journal: OutboxJournal;
  private sender: OutboxSender | undefined;
  private readonly inFlight = new Set<string>();
  private pumpTimer: TimerHandle | undefined;
  private pumpTimerDueMs = Infinity;
  private consecutiveFailures = 0;
  private linkRetryAtMs = 0;
  private delivered = 0;
  private sendAttempts = 0;
  private lastErrorInfo: OutboxStatus["lastError"] = null;
  private lastRefusalInfo: OutboxStatus["lastRefusal"] = null;
  private probeTimer: TimerHandle | undefined;
  private probeTimerDueMs: number | null = null;
  private answerProbeTimer: TimerHandle | undefined;
  private lastProbeAtMs: number | null = null;
  private running = false;
  /** Aborted by stop(): the deliveries in flight are cut off, not failed (see send()). */
  private stopController = new AbortController();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: OutboxOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log;
    this.random = options.random ?? Math.random;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 8);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.probeAfterFailures = Math.max(1, options.probeAfterFailures ?? 3);
    this.refusalPolicy = {
      permanentCodes: new Set(options.permanentCodes ?? DEFAULT_PERMANENT_CODES),
      parkAfterMs: options.parkAfterMs ?? DAY_MS,
    };
    this.probeParkedMs = Math.max(1000, options.probeParkedMs ?? 3_600_000);
    this.probeOnAnswerGapMs = Math.max(0, options.probeOnAnswerGapMs ?? this.backoff.capMs);
    this.journal = new OutboxJournal({
      dir: options.dir,
      clock: this.clock,
      log: this.log,
      persistRetryMs: options.persistRetryMs ?? 5000,
      compactMinOps: options.compactMinOps ?? 2000,
      ...(options.minFreeBytes !== undefined ? { minFreeBytes: options.minFreeBytes } : {}),
    });
    this.sender = options.sender;
  }

  /** Plugs the platform client in (the integrator does this once at wiring time). */
  setSender(sender: OutboxSender): void {
    this.sender = sender;
    this.pump();
  }

  async start(): Promise<void> {
    await this.journal.load();
    this.stopController = new AbortController();
    this.running = true;
    this.log?.info({ depth: this.journal.size, parked: this.journal.parkedCount() }, "outbox loaded");
    this.scheduleParkedProbe();
    this.pump();
  }

  /**
   * Stops sending: the deliveries in flight are aborted (through the sender's signal) and
   * waited for, at most STOP_WAIT_MS; an aborted delivery is not a failure, its report stays
   * queued as it was and goes at the next start. Then writes what it can and closes the
   * journal. Nothing of the outbox runs after stop resolves (a sender that ignores its
   * signal and still answers later only updates memory; an undelivered `done` means one
   * harmless re-send).
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const cutOff = this.inFlight.size;
    this.stopController.abort();
    if (cutOff > 0) {
      await this.idleWithin(STOP_WAIT_MS);
      this.log?.info({ count: cutOff, stillInFlight: this.inFlight.size }, "outbox: deliveries in flight aborted at stop; sent again at the next start");
    }
    for (const timer of [this.pumpTimer, this.probeTimer, this.answerProbeTimer]) if (timer) this.clock.clearTimeout(timer);
    this.pumpTimer = undefined;
    this.probeTimer = undefined;
    this.probeTimerDueMs = null;
    this.answerProbeTimer = undefined;
    await this.journal.close();
  }

  /**
   * Queues a report. Resolves after its `add` line is fsynced (`durable: true`). If the disk
   * refuses, the entry is kept in memory and still delivered, an alarm shows in status and
   * persisting is retried (`durable: false`); enqueue never rejects for a disk problem.
   * Rejects only for invalid input (E_STORE_INVALID) or when stopped (E_STORE_CLOSED).
   */
  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    if (!this.running) throw new StoreError(StoreErrorCode.Closed, "the outbox is not started", this.journal.path);
    const parsed = enqueueSchema.safeParse(input);
    if (!parsed.success) {
      throw new StoreError(StoreErrorCode.Invalid, `outbox entry: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    const key = parsed.data.key ?? `${parsed.data.recordNo}:${parsed.data.kind}`;
    if (this.journal.has(key)) return { key, durable: this.journal.isPersisted(key), duplicate: true };
    const now = this.clock.now();
    const entry: OutboxEntry = {
      key,
      recordNo: parsed.data.recordNo,
      kind: parsed.data.kind,
      service: parsed.data.service,
      biz: parsed.data.biz,
      createdAtMs: now,
      seq: this.journal.takeSeq(),
      attempts: 0,
      nextAttemptAtMs: Math.max(now, parsed.data.notBeforeMs ?? now),
      ...(parsed.data.notBeforeMs !== undefined ? { notBeforeMs: parsed.data.notBeforeMs } : {}),
    };
    const durable = await this.journal.add(entry);
    this.pump();
    return { key, durable, duplicate: false };
  }

  /** Makes parked entries due again: one key, or every parked entry with "all". Returns how many. */
  async retryParked(keyOrAll: string): Promise<number> {
    const targets = keyOrAll === "all" ? [...this.journal.entryValues()].filter((e) => e.parked) : [this.journal.entry(keyOrAll)].filter((e): e is OutboxEntry => !!e?.parked);
    if (targets.length === 0) return 0;
    const now = this.clock.now();
    for (const entry of targets) {
      delete entry.probing;
      entry.attempts = 0;
      entry.nextAttemptAtMs = now;
    }
    await this.journal.unpark(targets);
    this.log?.info({ count: targets.length, key: keyOrAll }, "outbox: parked entries retried");
    this.pump();
    return targets.length;
  }

  /** Drops an entry on purpose (an operator's decision, logged); returns whether it existed. */
  async discard(key: string, reason = "discarded by operator"): Promise<boolean> {
    const entry = this.journal.entry(key);
    if (!entry || this.inFlight.has(key)) return false;
    await this.journal.discard(entry, reason);
    this.log?.warn({ key, reason }, "outbox entry discarded");
    // The record's next report (held behind this one) may go now.
    this.pump();
    return true;
  }

  /** A snapshot of the entries (oldest first), for the API and the CLI. */
  list(filter: { parked?: boolean; recordNo?: string; limit?: number } = {}): OutboxEntry[] {
    return this.journal.list(filter);
  }

  get(key: string): OutboxEntry | undefined {
    const entry = this.journal.entry(key);
    return entry ? structuredClone(entry) : undefined;
  }

  status(): OutboxStatus {
    let depth = 0;
    let parked = 0;
    let retrying = 0;
    let held = 0;
    let oldest = Infinity;
    for (const list of this.journal.records()) {
      let blocked = false;
      for (const entry of list) {
        if (entry.parked) {
          parked++;
          blocked = true;
          continue;
        }
        depth++;
        oldest = Math.min(oldest, entry.createdAtMs);
        if (blocked) held++;
        else if (entry.lastError !== undefined) retrying++;
      }
    }
    return {
      depth,
      oldestAgeMs: depth > 0 ? Math.max(0, this.clock.now() - oldest) : 0,
      parked,
      retrying,
      held,
      inFlight: this.inFlight.size,
      delivered: this.delivered,
      sendAttempts: this.sendAttempts,
      lastError: this.lastErrorInfo,
      lastRefusal: this.lastRefusalInfo,
      parkedProbe: { lastAtMs: this.lastProbeAtMs, nextAtMs: this.probeTimerDueMs },
      link: this.consecutiveFailures >= this.probeAfterFailures ? "probing" : "up",
      unpersisted: this.journal.unpersistedCount,
      alarm: this.journal.alarm,
      journalBytes: this.journal.sizeBytes,
      warnings: this.journal.warnings,
    };
  }

  /** Resolves when nothing is in flight (tests and benches wait on it between clock steps). */
  whenIdle(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** whenIdle, bounded on the real clock (a stop must end even with a fake clock standing still). */
  private async idleWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** Re-evaluates what is due now (e.g. after the platform link came back by other means). */
  kick(): void {
    this.pump();
  }

  /**
   * The platform answered 200 to something (any section-3 call, e.g. a lane's
   * preLeaveNotify): it is taking requests again, so the parked reports are probed — at
   * once, or at the end of the gap since the last probe.
   */
  platformAnswered(): void {
    // Cheap on purpose: a drain calls this for every delivered report.
    if (!this.running || this.answerProbeTimer) return;
    const dueAtMs = this.lastProbeAtMs === null ? -Infinity : this.lastProbeAtMs + this.probeOnAnswerGapMs;
    const now = this.clock.now();
    if (now >= dueAtMs) {
      this.probeParked("platform answered 200");
      return;
    }
    this.answerProbeTimer = this.clock.setTimeout(() => {
      this.answerProbeTimer = undefined;
      this.probeParked("platform answered 200");
    }, dueAtMs - now);
  }

  /** Sends each record's parked head once more (see the class comment); returns how many. */
  probeParked(trigger = "requested"): number {
    if (!this.running) return 0;
    const now = this.clock.now();
    this.lastProbeAtMs = now;
    let count = 0;
    for (const list of this.journal.records()) {
      const head = list[0];
      if (!head?.parked || head.probing || this.inFlight.has(head.key)) continue;
      head.probing = true;
      head.nextAttemptAtMs = now;
      count++;
    }
    if (count > 0) this.log?.info({ count, trigger }, "outbox: probing parked reports");
    this.pump();
    return count;
  }

  // ---- delivery -----------------------------------------------------------------------

  private pump(): void {
    if (!this.running || !this.sender) return;
    const now = this.clock.now();
    const probing = this.consecutiveFailures >= this.probeAfterFailures;
    if (probing) {
      if (this.inFlight.size > 0) return;
      if (now < this.linkRetryAtMs) {
        this.schedulePump(this.linkRetryAtMs);
        return;
      }
      // The probe: the waiting head whose own retry is soonest, so an entry that keeps
      // failing on its own does not monopolise the probes.
      let probe: OutboxEntry | undefined;
      let notBeforeDue = Infinity;
      for (const list of this.journal.records()) {
        const head = this.headOf(list);
        // A report held until a later instant is no probe before then.
        if (head?.notBeforeMs !== undefined && head.notBeforeMs > now) notBeforeDue = Math.min(notBeforeDue, head.notBeforeMs);
        else if (head && (!probe || head.nextAttemptAtMs < probe.nextAttemptAtMs)) probe = head;
      }
      if (probe) this.send(probe);
      else if (notBeforeDue !== Infinity) this.schedulePump(notBeforeDue);
      return;
    }
    let nextDue = Infinity;
    for (const list of this.journal.records()) {
      if (this.inFlight.size >= this.maxInFlight) return;
      const head = this.headOf(list);
      if (!head || this.inFlight.has(head.key)) continue;
      if (head.nextAttemptAtMs > now) {
        nextDue = Math.min(nextDue, head.nextAttemptAtMs);
        continue;
      }
      this.send(head);
    }
    if (nextDue !== Infinity) this.schedulePump(nextDue);
  }

  /**
   * The record's first entry, if it may be sent: not parked, or parked and picked for a probe.
   * A parked head holds the record's later entries back (an exit never overtakes its entry).
   */
  private headOf(list: readonly OutboxEntry[]): OutboxEntry | undefined {
    const head = list[0];
    return head && (!head.parked || head.probing) ? head : undefined;
  }

  private scheduleParkedProbe(): void {
    if (!this.running) return;
    this.probeTimerDueMs = this.clock.now() + this.probeParkedMs;
    this.probeTimer = this.clock.setTimeout(() => {
      this.probeTimer = undefined;
      this.probeParked("timer");
      this.scheduleParkedProbe();
    }, this.probeParkedMs);
  }

  private schedulePump(atMs: number): void {
    if (this.pumpTimer && this.pumpTimerDueMs <= atMs) return;
    if (this.pumpTimer) this.clock.clearTimeout(this.pumpTimer);
    this.pumpTimerDueMs = atMs;
    this.pumpTimer = this.clock.setTimeout(
      () => {
        this.pumpTimer = undefined;
        this.pumpTimerDueMs = Infinity;
        this.pump();
      },
      Math.max(0, atMs - this.clock.now()),
    );
  }

  private send(entry: OutboxEntry): void {
    const sender = this.sender;
    if (!sender) return;
    this.inFlight.add(entry.key);
    entry.attempts++;
    this.sendAttempts++;
    const sentAtMs = this.clock.now();
    const signal = this.stopController.signal;
    let outcome: Promise<SendResult>;
    try {
      outcome = sender(entry, { signal });
    } catch (error) {
      outcome = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    outcome
      .catch((error: unknown): SendResult => ({ ok: false, retry: "transient", reason: error instanceof Error ? error.message : String(error) }))
      .then((result) => {
        // Cut off by stop: not a failure of the report or the link. It stays queued as it
        // was (attempts, backoff, link state, journal untouched) and goes at the next start.
        if (signal.aborted && !result.ok) entry.attempts--;
        else this.settle(entry, result, sentAtMs);
      })
      .catch((error: unknown) => this.log?.error({ err: error, key: entry.key }, "outbox: settling a send failed"))
      .finally(() => {
        this.inFlight.delete(entry.key);
        if (this.inFlight.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        this.pump();
      });
  }

  private settle(entry: OutboxEntry, result: SendResult, sentAtMs: number): void {
    const now = this.clock.now();
    const probed = entry.probing === true;
    delete entry.probing;
    if (!this.journal.has(entry.key)) return;
    if (result.ok) {
      if (this.consecutiveFailures >= this.probeAfterFailures) {
        this.log?.info({ failures: this.consecutiveFailures }, "outbox: platform reachable again; draining");
        // Everything that waited out the outage is due now: drain at full speed.
        for (const e of this.journal.entryValues()) if (e.lastErrorKind === "transient") e.nextAttemptAtMs = now;
      }
      this.consecutiveFailures = 0;
      this.journal.done(entry);
      this.delivered++;
      if (probed) {
        // The probe goes on down the record in order: its next report, if parked too, is next.
        const next = this.journal.firstOf(entry.recordNo);
        if (next?.parked && !this.inFlight.has(next.key)) {
          next.probing = true;
          next.nextAttemptAtMs = now;
        }
      }
      // This 200 counts as the platform answering. Over the platform client the app hears
      // it already (its answer listener); a probe made since this send began covered it.
      if (this.lastProbeAtMs === null || this.lastProbeAtMs < sentAtMs) this.platformAnswered();
      return;
    }
    const { reason, code } = result;
    const platformMsg = result.platformMsg ?? "";
    entry.lastError = reason;
    entry.lastErrorAtMs = now;
    entry.lastErrorKind = result.retry;
    if (code !== undefined) {
      entry.lastCode = code;
      entry.platformMsg = platformMsg;
      this.lastRefusalInfo = { key: entry.key, code, platformMsg, atMs: now };
    }
    this.lastErrorInfo = { key: entry.key, reason, atMs: now, ...(code !== undefined ? { code, platformMsg } : {}) };
    // An answer, even a refusal, shows the link is up.
    if (result.retry !== "transient") this.consecutiveFailures = 0;
    const decision = decideFailure({ retry: result.retry, code, createdAtMs: entry.createdAtMs, nowMs: now }, this.refusalPolicy);
    if (decision.action === "park") {
      const parked: ParkedInfo = { reason, atMs: entry.parked?.atMs ?? now, cause: decision.cause, ...(code !== undefined ? { code, platformMsg } : {}) };
      const changed = !entry.parked || entry.parked.reason !== parked.reason || entry.parked.cause !== parked.cause;
      if (!changed) {
        entry.parked = parked;
        return;
      }
      this.log?.warn({ key: entry.key, reason, cause: decision.cause, code, platformMsg, probe: probed }, "outbox: report refused by the platform; parked");
      this.journal.park(entry, parked);
      return;
    }
    if (entry.parked && result.retry === "refused") {
      // A probe answered with a passing refusal (busy) while the report is young enough:
      // it goes back to being retried with backoff.
      this.log?.info({ key: entry.key, code, platformMsg }, "outbox: parked report refused for a passing reason; retrying it with backoff");
      void this.journal.unpark([entry]);
    }
    // A probe that got no answer at all leaves the report parked until the next probe.
    entry.nextAttemptAtMs = now + backoffDelayMs(entry.attempts, this.backoff, this.random);
    if (result.retry !== "transient") return;
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= this.probeAfterFailures) {
      const linkAttempt = this.consecutiveFailures - this.probeAfterFailures + 1;
      this.linkRetryAtMs = now + backoffDelayMs(linkAttempt, this.backoff, this.random);
      if (linkAttempt === 1) this.log?.warn({ reason }, "outbox: platform unreachable; probing with backoff");
    }
  }
}
