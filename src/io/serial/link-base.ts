import type { Clock, TimerHandle } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import type { DataListener, LinkState, SerialLink, SerialLinkStatus, StateListener } from "./serial-link.js";

/**
 * What the real link and its simulated twin share: counters, listeners (a throwing listener
 * is logged and does not break the link), and the silence watchdog.
 */
export abstract class BaseSerialLink implements SerialLink {
  abstract readonly kind: "serialport" | "sim";
  protected readonly log: Logger;
  protected linkState: LinkState = "down";
  protected sinceMs: number;
  protected retryAtMs: number | undefined;
  protected rxBytes = 0;
  protected txBytes = 0;
  protected errors = 0;
  protected reconnects = 0;
  protected lastError: string | undefined;
  private lastRxAtMs: number | null = null;
  private upSinceMs = 0;
  private silent = false;
  private silenceTimer: TimerHandle | undefined;
  private readonly dataListeners = new Set<DataListener>();
  private readonly stateListeners = new Set<StateListener>();

  constructor(
    readonly name: string,
    protected readonly clock: Clock,
    log: Logger,
    /** 0 disables the watchdog (devices that only listen: displays, signs). */
    private readonly silenceTimeoutMs: number,
  ) {
    this.log = log.child({ device: name });
    this.sinceMs = clock.now();
  }

  abstract open(): Promise<void>;
  abstract close(): Promise<void>;
  abstract write(bytes: Uint8Array): Promise<void>;

  onData(listener: DataListener): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  onStateChange(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  status(): SerialLinkStatus {
    const now = this.clock.now();
    const status: SerialLinkStatus = {
      name: this.name,
      kind: this.kind,
      state: this.linkState,
      sinceMs: this.sinceMs,
      lastRxAtMs: this.lastRxAtMs,
      rxBytes: this.rxBytes,
      txBytes: this.txBytes,
      errors: this.errors,
      reconnects: this.reconnects,
      silent: this.silent,
      ...this.extraStatus(),
    };
    if (this.linkState === "retrying" && this.retryAtMs !== undefined) status.retryInS = Math.max(0, Math.ceil((this.retryAtMs - now) / 1000));
    if (this.lastError !== undefined) status.lastError = this.lastError;
    return status;
  }

  protected extraStatus(): Partial<SerialLinkStatus> {
    return {};
  }

  /** Hands received bytes to the listeners. */
  protected deliver(chunk: Buffer): void {
    const atMs = this.clock.now();
    this.rxBytes += chunk.length;
    this.lastRxAtMs = atMs;
    if (this.silent) {
      this.silent = false;
      this.log.info("serial device talks again after a silence");
      this.armSilence(this.silenceTimeoutMs);
      this.notifyState();
    }
    for (const listener of this.dataListeners) {
      try {
        listener(chunk, atMs);
      } catch (error) {
        this.log.error({ err: error }, "serial data listener failed");
      }
    }
  }

  protected noteError(error: unknown): string {
    this.errors++;
    const text = error instanceof Error ? `${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}` : String(error);
    this.lastError = text;
    return text;
  }

  protected setState(state: LinkState, retryAtMs?: number): void {
    const changed = state !== this.linkState || retryAtMs !== this.retryAtMs;
    if (state !== this.linkState) this.sinceMs = this.clock.now();
    this.linkState = state;
    this.retryAtMs = retryAtMs;
    if (state === "up") {
      this.upSinceMs = this.clock.now();
      this.silent = false;
      this.armSilence(this.silenceTimeoutMs);
    } else {
      this.disarmSilence();
      this.silent = false;
    }
    if (changed) this.notifyState();
  }

  private notifyState(): void {
    if (this.stateListeners.size === 0) return;
    const status = this.status();
    for (const listener of this.stateListeners) {
      try {
        listener(status);
      } catch (error) {
        this.log.error({ err: error }, "serial state listener failed");
      }
    }
  }

  // One timer, re-armed only when it fires: received data must not cost a timer per chunk.
  private armSilence(ms: number): void {
    this.disarmSilence();
    if (this.silenceTimeoutMs <= 0) return;
    this.silenceTimer = this.clock.setTimeout(() => this.checkSilence(), ms);
  }

  private disarmSilence(): void {
    if (this.silenceTimer) this.clock.clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
  }

  private checkSilence(): void {
    this.silenceTimer = undefined;
    if (this.linkState !== "up") return;
    const lastActivity = Math.max(this.lastRxAtMs ?? 0, this.upSinceMs);
    const quietMs = this.clock.now() - lastActivity;
    if (quietMs >= this.silenceTimeoutMs) {
      // No timer while silent: the next byte clears the flag and re-arms (deliver()).
      this.silent = true;
      this.log.warn({ quietS: Math.round(quietMs / 1000) }, "serial device silent");
      this.notifyState();
    } else {
      this.armSilence(this.silenceTimeoutMs - quietMs);
    }
  }

  /** Stops the watchdog (on close). */
  protected stopWatchdog(): void {
    this.disarmSilence();
  }
}
