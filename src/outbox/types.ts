import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { StoreAlarm, StoreWarning } from "../store/errors.js";
import type { BackoffPolicy } from "../kernel/backoff.js";
import type { ParkedInfo } from "./refusal.js";

/** The outbox's public types (the queue itself is delivery.ts over journal.ts). */

export type OutboxKind = "enter" | "leave" | "preEnter" | "payment" | (string & {});

export interface OutboxEntry {
  /** Idempotency key: `<recordNo>:<kind>` unless the caller gave one. */
  key: string;
  recordNo: string;
  kind: OutboxKind;
  /** The platform serviceName (e.g. enterNotify). */
  service: string;
  /** The bizContent to send. A leave report must carry what the platform needs to rebuild
   * the stay (enterTime, plate, recordNo), since its entry report may never have arrived. */
  biz: Record<string, unknown>;
  createdAtMs: number;
  /** Enqueue order; delivery order within a record. */
  seq: number;
  attempts: number;
  nextAttemptAtMs: number;
  /** Not sent before this instant (EnqueueInput.notBeforeMs; kept across restarts). */
  notBeforeMs?: number;
  lastError?: string;
  lastErrorAtMs?: number;
  lastErrorKind?: "transient" | "refused" | "permanent";
  /** The business code and text of the platform's last refusal of this report. */
  lastCode?: number;
  platformMsg?: string;
  parked?: ParkedInfo;
  /** In memory only: a parked report picked for the next probe. */
  probing?: boolean;
}

export type SendResult =
  | { ok: true }
  | {
      ok: false;
      /**
       * transient: no answer (refused, timeout, HTTP status) → backoff, counts towards the
       * link being down; refused: the platform answered with business code `code` → backoff,
       * or parked when the code is permanent or the report too old; permanent: park now.
       */
      retry: "transient" | "refused" | "permanent";
      reason: string;
      code?: number;
      /** The platform's own text (its `msg`), kept apart from the logger's `msg`. */
      platformMsg?: string;
    };

export interface SendOptions {
  /**
   * Aborted when the outbox stops: the sender gives up the delivery at once (the platform
   * client resolves as `aborted`). Whatever it then returns, a failure is not counted: the
   * report stays queued as it was and goes at the next start.
   */
  signal: AbortSignal;
}

/**
 * Delivers one report. The platform client maps its outcomes: `code = 200` → ok; another
 * business code → refused (with the code); refused connection, timeout, HTTP status →
 * transient. A throw is treated as transient.
 */
export type OutboxSender = (entry: Readonly<OutboxEntry>, options: SendOptions) => Promise<SendResult>;

export interface EnqueueInput {
  recordNo: string;
  kind: OutboxKind;
  service: string;
  biz: Record<string, unknown>;
  /** Defaults to `<recordNo>:<kind>`; give one for kinds that repeat within a stay. */
  key?: string;
  /**
   * Queued durably now, sent no earlier than this (epoch ms, the outbox's clock): a report
   * that may still be completed by an answer the box is waiting for (an exit report during
   * its bill's late-answer window). Its record's later reports wait behind it.
   */
  notBeforeMs?: number;
}

export interface EnqueueResult {
  key: string;
  /** On disk (journal fsynced). False: held in memory, alarm raised, persisting retried. */
  durable: boolean;
  /** The key was already queued; nothing new was added. */
  duplicate: boolean;
}

export interface OutboxStatus {
  /** Entries waiting for delivery (parked ones not counted). */
  depth: number;
  /** Age of the oldest waiting entry, 0 when none. */
  oldestAgeMs: number;
  parked: number;
  /** Waiting entries that failed at least once and wait for their next attempt. */
  retrying: number;
  /** Waiting entries held behind a parked earlier report of their record. */
  held: number;
  inFlight: number;
  delivered: number;
  sendAttempts: number;
  lastError: { key: string; reason: string; atMs: number; code?: number; platformMsg?: string } | null;
  /** The platform's last business refusal of any report. */
  lastRefusal: { key: string; code: number; platformMsg: string; atMs: number } | null;
  /** When parked reports were last probed, and when the next timed probe is due. */
  parkedProbe: { lastAtMs: number | null; nextAtMs: number | null };
  /** "probing": the platform looks down; one report at a time tests the link. */
  link: "up" | "probing";
  /** Entries accepted while the disk refused writes, not yet on disk. */
  unpersisted: number;
  alarm: StoreAlarm | null;
  journalBytes: number;
  warnings: StoreWarning[];
}

export interface OutboxOptions {
  /** The store directory; the journal is `<dir>/outbox.journal`. */
  dir: string;
  clock?: Clock;
  log?: Logger;
  sender?: OutboxSender;
  /** Random source for the jitter, [0, 1). */
  random?: () => number;
  /** Reports in flight at once while draining. Default 8. */
  maxInFlight?: number;
  backoff?: BackoffPolicy;
  /** Consecutive transient failures after which the link counts as down. Default 3. */
  probeAfterFailures?: number;
  /** Retry period for persisting entries while the disk refuses writes. Default 5 s. */
  persistRetryMs?: number;
  /** Compact once the journal has this many lines and 4× more than live entries. Default 2000. */
  compactMinOps?: number;
  minFreeBytes?: number;
  /** Business codes that park a report at once (default DEFAULT_PERMANENT_CODES). */
  permanentCodes?: readonly number[];
  /** A report still refused by the platform this long after it was queued is parked. Default 24 h. */
  parkAfterMs?: number;
  /** Parked reports are probed this often. Default 1 h. */
  probeParkedMs?: number;
  /**
   * A 200 from the platform probes the parked reports, at most once per this gap (a drain
   * of a thousand reports must not re-send a refused report a thousand times). Default the
   * backoff cap: a parked report is never sent more often than a retrying one.
   */
  probeOnAnswerGapMs?: number;
}
