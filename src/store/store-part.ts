import type { Clock } from "../kernel/clock.js";
import type { Logger } from "../kernel/log.js";
import type { StoreWarning } from "./errors.js";

/**
 * What the LotStore façade hands each of its parts (stays, lists, settings): the clock, the
 * logger, whether the store is open, and the options every durable document shares.
 */
export interface StorePart {
  readonly dir: string;
  readonly clock: Clock;
  readonly log: Logger | undefined;
  /** E_STORE_CLOSED unless the store is started: a write after stop() must not be lost silently. */
  ensureOpen(): void;
  isOpen(): boolean;
  /** Spread into every DurableDoc's options. */
  readonly docOptions: {
    clock: Clock;
    log?: Logger;
    retryMs: number;
    onWarning: (warning: StoreWarning) => void;
    onCommit?: (file: string, elapsedMs: number, ok: boolean) => void;
  };
}
