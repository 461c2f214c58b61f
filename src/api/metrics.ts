import { commonJsExports } from "../kernel/commonjs-exports.js";
import type { Counter, Histogram, Registry } from "prom-client";
import type { EventBus, SequencedEvent } from "../kernel/event-bus.js";
import type { PlatformAnswer, PlatformClient, PlatformResult } from "../platform/client.js";
import type { OutboxStatus } from "../outbox/types.js";
import type { HttpServer } from "./http-server.js";

/**
 * The box's Prometheus metrics (`GET /metrics`, docs/api.md "Metrics").
 *
 * prom-client costs about 80 ms of CPU and 13 MB of RSS to load, more than a third of the
 * start-up budgets (docs/architecture.md "Start-up and memory budgets"), so it is loaded at
 * the first scrape, never on the start-up path, and a box nobody scrapes never loads it.
 * Until then the counts are kept here in plain maps, exactly: counters as sums, histograms
 * as a count and a sum per bucket, handed to prom-client's own metrics when it loads; from
 * then on every observation goes straight to them. Either way a lane event costs a map
 * update in the bus listener and nothing is awaited on the lane path.
 *
 * Labels are lane ids, service names and codes only: never a plate, an operator or a typed
 * reason (unbounded values would grow the registry without end on a small heap). Values from
 * outside the configuration (a platform's business code, a service name) are capped per label
 * and fold into `other` beyond the cap.
 */

/** A label set of one metric, values in the order of its label names. */
type LabelValues = readonly string[];

interface CounterSpec {
  readonly kind: "counter";
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
}

interface HistogramSpec {
  readonly kind: "histogram";
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** Upper bounds in seconds, ascending; +Inf is implied. */
  readonly buckets: readonly number[];
}

/** Platform calls: a keep-alive exchange on a LAN is milliseconds, a deadline is 1–3 s. */
const platformBucketsS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30] as const;
/** Store commits: one journal append and one fdatasync on an SD card (ms, tens of ms when slow). */
const commitBucketsS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

const metricSpecs = {
  decisions: {
    kind: "counter",
    name: "lanekeeper_lane_decisions_total",
    help: "Decisions the lanes made, by lane and verdict (allow, deny, await).",
    labelNames: ["lane", "verdict"],
  },
  opens: {
    kind: "counter",
    name: "lanekeeper_lane_opens_total",
    help: "Barrier opens, by lane and why: decision (allowed at once), payment (after the car paid), manual (attendant), reopen (safety reopen), other.",
    labelNames: ["lane", "reason"],
  },
  faults: { kind: "counter", name: "lanekeeper_lane_faults_total", help: "Lane faults, by lane and kind (detector, barrier, decision).", labelNames: ["lane", "kind"] },
  platformCalls: {
    kind: "histogram",
    name: "lanekeeper_platform_call_duration_seconds",
    help: "Section-3 calls to the cloud platform as the caller saw them (a timeout counts at its deadline), by service and outcome.",
    labelNames: ["service", "outcome"],
    buckets: platformBucketsS,
  },
  platformAnswers: {
    kind: "counter",
    name: "lanekeeper_platform_answers_total",
    help: "HTTP answers of the cloud platform (on time or late), by service and business code (none: the answer had no code).",
    labelNames: ["service", "code"],
  },
  storeCommits: {
    kind: "histogram",
    name: "lanekeeper_store_commit_duration_seconds",
    help: "Durable commits of the store's documents (inpark, lists, settings), from the call to the data on disk.",
    labelNames: ["document", "outcome"],
    buckets: commitBucketsS,
  },
} as const satisfies Record<string, CounterSpec | HistogramSpec>;

type SpecKey = keyof typeof metricSpecs;

/** What the box tells at scrape time (read when Prometheus asks, never pushed). */
export interface MetricsSources {
  outbox(): OutboxStatus;
  httpRejections(): Record<string, number>;
}

export interface BoxMetricsOptions {
  /** The configured lanes: the only values the `lane` label takes (anything else is `other`). */
  laneIds: readonly string[];
  /** Section-3 ids as the platform names them (`platform.serviceNames`), so both platform metrics agree. */
  serviceNames?: Readonly<Record<string, string>>;
  /** Distinct values a label fed from outside (service, code, document) may take. Default 32. */
  maxLabelValues?: number;
}

interface PendingHistogram {
  /** Per bucket (the last one +Inf): how many observations and their sum. */
  counts: number[];
  sums: number[];
}

interface Live {
  registry: Registry;
  counters: Map<SpecKey, Counter>;
  histograms: Map<SpecKey, Histogram>;
}

const outcomeOf = (result: PlatformResult): string => (result.ok ? "ok" : result.kind);

/**
 * The metrics of one App: its own registry (several apps in one process, as in the tests,
 * never share counts), its bus listener, and the platform and store hooks.
 */
export class BoxMetrics {
  private readonly lanes: ReadonlySet<string>;
  private readonly serviceNames: Readonly<Record<string, string>>;
  private readonly maxLabelValues: number;
  private readonly pendingCounters = new Map<SpecKey, Map<string, { labels: LabelValues; value: number }>>();
  private readonly pendingHistograms = new Map<SpecKey, Map<string, { labels: LabelValues; data: PendingHistogram }>>();
  /** Values seen per capped label (`<metric>.<label>`), for the cap. */
  private readonly seenValues = new Map<string, Set<string>>();
  /** Per lane: what allowed its last transaction to open (decided allow, settled, manual open). */
  private readonly openCause = new Map<string, { txId: unknown; cause: string }>();
  private live: Live | undefined;
  private loading: Promise<Live> | undefined;
  private sources: MetricsSources | undefined;

  constructor(options: BoxMetricsOptions) {
    this.lanes = new Set(options.laneIds);
    this.serviceNames = options.serviceNames ?? {};
    this.maxLabelValues = options.maxLabelValues ?? 32;
  }

  /** Where the scrape-time figures come from (the outbox and the HTTP server exist after the metrics). */
  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** Counts the lanes' decisions, opens and faults from the event bus. Returns the unsubscribe. */
  watchBus(bus: EventBus): () => void {
    return bus.on((event) => this.laneEvent(event));
  }

  /** The client with every call timed (the same promise goes back: no extra turn for the caller). */
  instrumentPlatform(client: PlatformClient): PlatformClient {
    client.onAnswer((answer) => this.platformAnswer(answer));
    const timed = <D>(service: string, promise: Promise<PlatformResult<D>>): Promise<PlatformResult<D>> => {
      // A rejection is the caller's to handle (it awaits this same promise); nothing to time.
      promise.then(
        (result) => this.platformCall(service, result),
        () => undefined,
      );
      return promise;
    };
    return {
      enterNotify: (biz, options) => timed("enterNotify", client.enterNotify(biz, options)),
      leaveNotify: (biz, options) => timed("leaveNotify", client.leaveNotify(biz, options)),
      preLeaveNotify: (biz, options) => timed("preLeaveNotify", client.preLeaveNotify(biz, options)),
      preEnterNotify: (biz, options) => timed("preEnterNotify", client.preEnterNotify(biz, options)),
      call: (service, biz, options) => timed(service, client.call(service, biz, options)),
      onAnswer: (listener) => client.onAnswer(listener),
      urlFor: (serviceName) => client.urlFor(serviceName),
      stats: () => client.stats(),
      close: () => client.close(),
    };
  }

  laneEvent(event: SequencedEvent): void {
    const laneId = typeof event.laneId === "string" ? event.laneId : undefined;
    if (laneId === undefined) return;
    const lane = this.lanes.has(laneId) ? laneId : "other";
    switch (event.type) {
      case "decided": {
        const verdict = event.verdict === "allow" || event.verdict === "deny" || event.verdict === "await" ? event.verdict : "other";
        this.inc("decisions", [lane, verdict]);
        if (verdict === "allow") this.openCause.set(lane, { txId: event.txId, cause: "decision" });
        return;
      }
      case "settled":
        this.openCause.set(lane, { txId: event.txId, cause: "payment" });
        return;
      case "manual-open":
        this.openCause.set(lane, { txId: event.txId, cause: "manual" });
        return;
      case "barrier-opening": {
        const cause = this.openCause.get(lane);
        this.openCause.delete(lane);
        // The machine opens in the same step as the event that allowed it: a cause for another
        // transaction (a manual open while the arm was already up) does not carry over.
        this.inc("opens", [lane, cause !== undefined && cause.txId === event.txId ? cause.cause : "other"]);
        return;
      }
      case "barrier-reopened":
        this.inc("opens", [lane, "reopen"]);
        return;
      case "detector-fault":
        this.inc("faults", [lane, "detector"]);
        return;
      case "barrier-fault":
        this.inc("faults", [lane, "barrier"]);
        return;
      case "decision-failed":
        this.inc("faults", [lane, "decision"]);
        return;
    }
  }

  platformCall(service: string, result: PlatformResult): void {
    const name = Object.hasOwn(this.serviceNames, service) ? (this.serviceNames[service] ?? service) : service;
    this.observe("platformCalls", [this.capped("platformCalls", "service", name), outcomeOf(result)], result.elapsedMs / 1000);
  }

  platformAnswer(answer: PlatformAnswer): void {
    const code = answer.code === undefined ? "none" : String(answer.code);
    this.inc("platformAnswers", [this.capped("platformAnswers", "service", answer.serviceName), this.capped("platformAnswers", "code", code)]);
  }

  /** A store document's commit (`file`: its path; the label is its base name without `.json`). */
  storeCommit(file: string, elapsedMs: number, ok: boolean): void {
    const document = (file.split(/[\\/]/).pop() ?? file).replace(/\.json$/, "");
    this.observe("storeCommits", [this.capped("storeCommits", "document", document), ok ? "ok" : "error"], elapsedMs / 1000);
  }

  /** The exposition in Prometheus text format, and its content type. Loads prom-client the first time. */
  async render(): Promise<{ contentType: string; text: string }> {
    // A failed load is tried again at the next scrape (the counts stay here meanwhile).
    const live =
      this.live ??
      (await (this.loading ??= this.load().catch((error: unknown) => {
        this.loading = undefined;
        throw error;
      })));
    return { contentType: live.registry.contentType, text: await live.registry.metrics() };
  }

  /** A value from outside the configuration, folded into `other` once the label has seen enough. */
  private capped(metric: SpecKey, label: string, value: string): string {
    const key = `${metric}.${label}`;
    let seen = this.seenValues.get(key);
    if (!seen) this.seenValues.set(key, (seen = new Set()));
    if (seen.has(value)) return value;
    if (seen.size >= this.maxLabelValues) return "other";
    seen.add(value);
    return value;
  }

  private inc(metric: SpecKey, labels: LabelValues): void {
    if (this.live) {
      this.live.counters.get(metric)?.inc(labelObject(metricSpecs[metric].labelNames, labels), 1);
      return;
    }
    let series = this.pendingCounters.get(metric);
    if (!series) this.pendingCounters.set(metric, (series = new Map()));
    const key = labels.join("\u0000");
    const entry = series.get(key);
    if (entry) entry.value++;
    else series.set(key, { labels, value: 1 });
  }

  private observe(metric: SpecKey, labels: LabelValues, valueS: number): void {
    const spec = metricSpecs[metric];
    if (spec.kind !== "histogram" || !Number.isFinite(valueS) || valueS < 0) return;
    if (this.live) {
      this.live.histograms.get(metric)?.observe(labelObject(spec.labelNames, labels), valueS);
      return;
    }
    let series = this.pendingHistograms.get(metric);
    if (!series) this.pendingHistograms.set(metric, (series = new Map()));
    const key = labels.join("\u0000");
    let entry = series.get(key);
    if (!entry)
      series.set(key, (entry = { labels, data: { counts: new Array<number>(spec.buckets.length + 1).fill(0), sums: new Array<number>(spec.buckets.length + 1).fill(0) } }));
    const bucket = bucketIndex(spec.buckets, valueS);
    entry.data.counts[bucket]!++;
    entry.data.sums[bucket]! += valueS;
  }

  private async load(): Promise<Live> {
    const prom = commonJsExports(await import("prom-client"), "Registry");
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    const counters = new Map<SpecKey, Counter>();
    const histograms = new Map<SpecKey, Histogram>();
    for (const [key, spec] of Object.entries(metricSpecs) as Array<[SpecKey, CounterSpec | HistogramSpec]>) {
      const common = { name: spec.name, help: spec.help, labelNames: [...spec.labelNames], registers: [registry] };
      if (spec.kind === "counter") {
        const counter = new prom.Counter(common);
        for (const { labels, value } of this.pendingCounters.get(key)?.values() ?? []) counter.inc(labelObject(spec.labelNames, labels), value);
        counters.set(key, counter);
      } else {
        const histogram = new prom.Histogram({ ...common, buckets: [...spec.buckets] });
        for (const { labels, data } of this.pendingHistograms.get(key)?.values() ?? []) replay(histogram, labelObject(spec.labelNames, labels), spec.buckets, data);
        histograms.set(key, histogram);
      }
    }
    this.pendingCounters.clear();
    this.pendingHistograms.clear();
    this.addScrapeTimeMetrics(prom, registry);
    this.live = { registry, counters, histograms };
    return this.live;
  }

  /** Figures read when Prometheus asks: the outbox queue and the HTTP refusals. */
  private addScrapeTimeMetrics(prom: typeof import("prom-client"), registry: Registry): void {
    const outbox = (): OutboxStatus | undefined => this.sources?.outbox();
    const gauge = (name: string, help: string, read: (status: OutboxStatus) => number): void => {
      new prom.Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          const status = outbox();
          if (status) this.set(read(status));
        },
      });
    };
    const total = (name: string, help: string, read: (status: OutboxStatus) => number): void => {
      new prom.Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const status = outbox();
          if (!status) return;
          // The outbox keeps the running total; the counter shows it as it is.
          this.reset();
          this.inc(read(status));
        },
      });
    };
    gauge("lanekeeper_outbox_depth", "Reports waiting for delivery (parked ones not counted).", (s) => s.depth);
    gauge("lanekeeper_outbox_parked", "Reports parked after a permanent refusal or too long refused (retried by hand or by the probe).", (s) => s.parked);
    gauge("lanekeeper_outbox_retrying", "Waiting reports that failed at least once and wait for their next attempt.", (s) => s.retrying);
    gauge("lanekeeper_outbox_held", "Waiting reports held behind a parked earlier report of their record.", (s) => s.held);
    gauge("lanekeeper_outbox_in_flight", "Reports being sent now.", (s) => s.inFlight);
    gauge("lanekeeper_outbox_oldest_age_seconds", "Age of the oldest waiting report (0 when none).", (s) => s.oldestAgeMs / 1000);
    gauge("lanekeeper_outbox_link_up", "1 while reports flow; 0 while the platform looks down and one report at a time probes it.", (s) => (s.link === "up" ? 1 : 0));
    total("lanekeeper_outbox_send_attempts_total", "Delivery attempts since the start (attempts minus deliveries: the retries and failures).", (s) => s.sendAttempts);
    total("lanekeeper_outbox_delivered_total", "Reports the platform accepted since the start.", (s) => s.delivered);
    const rejections = (): Record<string, number> => this.sources?.httpRejections() ?? {};
    new prom.Counter({
      name: "lanekeeper_http_rejections_total",
      help: "Requests the local API refused, by route pattern (or `(unrouted) <code>`).",
      labelNames: ["route"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [route, count] of Object.entries(rejections())) this.inc({ route }, count);
      },
    });
  }
}

function labelObject(names: readonly string[], values: LabelValues): Record<string, string> {
  const out: Record<string, string> = {};
  names.forEach((name, i) => (out[name] = values[i] ?? ""));
  return out;
}

function bucketIndex(buckets: readonly number[], value: number): number {
  for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!) return i;
  return buckets.length;
}

/**
 * Hands one series kept before prom-client loaded to its histogram: each bucket's n
 * observations become n observations of their mean, which lies in the same bucket, so the
 * bucket counts, the count and the sum come out as if observed live.
 */
function replay(histogram: Histogram, labels: Record<string, string>, buckets: readonly number[], data: PendingHistogram): void {
  data.counts.forEach((count, i) => {
    if (count === 0) return;
    const upper = buckets[i] ?? Infinity;
    const lower = i === 0 ? -Infinity : buckets[i - 1]!;
    // Rounding must not move the mean across a bound.
    const mean = Math.min(upper, data.sums[i]! / count);
    const value = mean > lower ? mean : upper === Infinity ? lower * (1 + Number.EPSILON * 4) : upper;
    for (let n = 0; n < count; n++) histogram.observe(labels, value);
  });
}

/**
 * `GET /metrics`. Access "read", the rule of `/api/status` (which tells more): open on
 * loopback by default (`api.openReads`), the bearer token from elsewhere. Prometheus sends it
 * with `authorization: { credentials: <api.token> }` in the scrape job.
 */
export function registerMetricsRoute(http: HttpServer, metrics: BoxMetrics): void {
  http.route("GET", "/metrics", async ({ send }) => {
    const { contentType, text } = await metrics.render();
    send(200, text, { "content-type": contentType });
  });
}
