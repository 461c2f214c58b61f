import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { HealthPayload } from "./payloads.js";

/**
 * What the process can say about itself for the health report: uptime, memory, and the
 * event-loop delay since the previous sample (a blocked loop is what makes a barrier late).
 */
export class ProcessProbe {
  private histogram: IntervalHistogram | undefined;

  start(): void {
    if (this.histogram) return;
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
  }

  stop(): void {
    this.histogram?.disable();
    this.histogram = undefined;
  }

  sample(): Pick<HealthPayload, "uptimeS" | "memory" | "eventLoopDelayMs"> {
    const memory = process.memoryUsage();
    let eventLoopDelayMs: HealthPayload["eventLoopDelayMs"] = null;
    const h = this.histogram;
    if (h && h.count > 0) {
      const ms = (ns: number): number => Math.round((ns / 1e6) * 100) / 100;
      eventLoopDelayMs = { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
      h.reset();
    }
    return {
      uptimeS: Math.round(process.uptime()),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal },
      eventLoopDelayMs,
    };
  }
}
