import type { Logger } from "./log.js";

/** Anything with a start and a stop: adapters, servers, the lanes. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class TimeoutError extends Error {
  readonly code = "E_TIMEOUT";
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface LifecycleOptions {
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

/**
 * Starts components in order and stops them in reverse. A component that fails to start
 * stops the ones already started; a stop that hangs is abandoned after its timeout so the
 * whole stop stays bounded (SIGTERM must end within 2 s with outputs safe).
 */
export class Lifecycle {
  private readonly components: Component[] = [];
  private started: Component[] = [];
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;

  constructor(
    private readonly log: Logger,
    options: LifecycleOptions = {},
  ) {
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 500;
  }

  add<C extends Component>(component: C): C {
    this.components.push(component);
    return component;
  }

  async start(): Promise<void> {
    for (const component of this.components) {
      const begun = performance.now();
      try {
        await withTimeout(component.start(), this.startTimeoutMs, `start of ${component.name}`);
      } catch (error) {
        this.log.error({ component: component.name, err: error }, "start failed");
        await this.stop();
        throw error;
      }
      this.started.push(component);
      this.log.debug({ component: component.name, ms: Math.round(performance.now() - begun) }, "started");
    }
  }

  async stop(): Promise<void> {
    const toStop = this.started.reverse();
    this.started = [];
    for (const component of toStop) {
      try {
        await withTimeout(component.stop(), this.stopTimeoutMs, `stop of ${component.name}`);
        this.log.debug({ component: component.name }, "stopped");
      } catch (error) {
        this.log.warn({ component: component.name, err: error }, "stop failed or timed out");
      }
    }
  }
}
