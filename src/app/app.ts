import type { Config } from "../config/schema.js";
import type { Logger } from "./log.js";
import { systemClock, type Clock } from "./clock.js";
import { Lifecycle, type Component } from "./lifecycle.js";
import type { Gpio } from "../io/gpio/gpio.js";
import { SimGpio } from "../io/gpio/sim-gpio.js";
import { gpioLinesFromConfig } from "../io/gpio/lines.js";
import { HttpServer } from "../api/http-server.js";
import { registerCoreRoutes } from "../api/core-routes.js";
import { registerSimRoutes } from "../api/sim-routes.js";
import { VERSION } from "../version.js";

export interface AppOptions {
  config: Config;
  log: Logger;
  clock?: Clock;
  /** Overrides for tests: e.g. port 0 for an ephemeral port. */
  apiPort?: number;
  /** Replaces the GPIO adapter (tests hand in an instrumented one). */
  gpio?: Gpio;
}

export type StatusSection = () => unknown;

/**
 * The composition root: the only place that knows both the pure core and the adapters. It
 * picks real or simulated parts from the configuration (never from NODE_ENV) and starts and
 * stops them in order.
 */
export class App {
  readonly config: Config;
  readonly log: Logger;
  readonly clock: Clock;
  readonly gpio: Gpio;
  readonly simGpio: SimGpio | undefined;
  readonly http: HttpServer;
  readonly bootAtMs: number;
  private readonly lifecycle: Lifecycle;
  private readonly statusSections = new Map<string, StatusSection>();
  private ready = false;

  constructor(options: AppOptions) {
    this.config = options.config;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.bootAtMs = this.clock.now();
    this.lifecycle = new Lifecycle(this.log.child({ sub: "lifecycle" }));

    const lines = gpioLinesFromConfig(this.config);
    if (options.gpio) {
      this.gpio = options.gpio;
      this.simGpio = options.gpio instanceof SimGpio ? options.gpio : undefined;
    } else if (this.config.hardware.gpio === "sim") {
      this.simGpio = new SimGpio(lines, this.clock);
      this.gpio = this.simGpio;
    } else {
      throw new Error("the onoff GPIO adapter is not available in this build; use hardware.gpio \"sim\"");
    }

    this.http = new HttpServer(
      {
        host: this.config.api.host,
        port: options.apiPort ?? this.config.api.port,
        token: this.config.api.token,
        openReads: this.config.api.openReads,
      },
      this.log.child({ sub: "api" }),
    );

    this.lifecycle.add(component("gpio", () => this.gpio.start(), () => this.gpio.stop()));
    this.lifecycle.add(this.http);
    registerCoreRoutes(this.http, this);
    if (this.simGpio) registerSimRoutes(this.http, this.simGpio);
  }

  /** Adds a named section to /api/status and the health report. */
  addStatus(name: string, section: StatusSection): void {
    this.statusSections.set(name, section);
  }

  isReady(): boolean {
    return this.ready;
  }

  status(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      deviceId: this.config.deviceId,
      version: VERSION,
      uptimeS: Math.round((this.clock.now() - this.bootAtMs) / 1000),
      gpio: this.gpio.kind,
    };
    for (const [name, section] of this.statusSections) {
      try {
        out[name] = section();
      } catch (error) {
        out[name] = { error: String(error) };
      }
    }
    out.httpRejections = this.http.rejectionCounts();
    return out;
  }

  async start(): Promise<void> {
    await this.lifecycle.start();
    this.ready = true;
  }

  async stop(): Promise<void> {
    this.ready = false;
    await this.lifecycle.stop();
    // Whatever happened above, the relays end inactive.
    this.gpio.allOutputsSafe();
  }
}

export function component(name: string, start: () => Promise<void>, stop: () => Promise<void>): Component {
  return { name, start, stop };
}
