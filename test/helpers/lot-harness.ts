import { readdirSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { App } from "../../src/app/app.js";
import { systemClock, type Clock } from "../../src/kernel/clock.js";
import { silentLogger } from "../../src/kernel/log.js";
import type { SequencedEvent } from "../../src/kernel/event-bus.js";
import type { Config } from "../../src/config/schema.js";
import { SimGpio } from "../../src/io/gpio/sim-gpio.js";
import { gpioLinesFromConfig, lineKey } from "../../src/io/gpio/lines.js";
import type { Level } from "../../src/io/gpio/gpio.js";
import { feedSimCamera, feedSimScanner, type SimFeedResult } from "../../src/io/sim-device-routes.js";
import { startEmulator, type BoxAnswer, type Emulator } from "../../src/platform/emulator/emulator.js";
import { formatWireTime } from "../../src/platform/wire.js";
import type { InParkRecord, InParkRecordInput } from "../../src/store/records.js";
import { testConfig } from "./demo-config.js";

/**
 * A real lot for scenario tests: the App built from config/demo.json with its store in
 * a fresh temp dir, the local API on an ephemeral port, simulated GPIO and serial devices, and
 * the platform emulator on loopback as the cloud. Time is real; the lane timers, detector
 * debounce and platform deadlines are shortened through the config so a car passes in well
 * under a second. Cars are driven the way the demo traffic does it: loop levels through
 * SimGpio.setInput and plate reads / scanner codes through the simulated devices' real parsers.
 */

/** Relay writes seen by the instrumented GPIO, with whatever the hook returned at that moment. */
export interface RelayWrite {
  key: string;
  level: Level;
  atMs: number;
}

/** SimGpio that lets a test look at the world at the exact moment an output is written. */
export class ProbedGpio extends SimGpio {
  onWrite: ((key: string, level: Level) => void) | undefined;
  readonly writes: RelayWrite[] = [];

  override write(key: string, level: Level): void {
    this.writes.push({ key, level, atMs: Date.now() });
    this.onWrite?.(key, level);
    super.write(key, level);
  }
}

export interface HarnessOptions {
  /** Edits the raw demo config before validation (after the harness's short timers). */
  mutate?: (raw: Record<string, any>) => void;
  /** Reuse a store dir (restart scenarios); default a fresh temp dir. */
  storeDir?: string;
  /** Reuse a running emulator (restart scenarios); default a new one, stopped by stop(). */
  emulator?: Emulator;
  /** Start the app (default true). */
  start?: boolean;
  /** The box's clock (default the system's): a box whose clock runs ahead or behind. */
  clock?: Clock;
}

export type EventFilter = Record<string, unknown>;

/** The short timers every scenario runs with (config values, all within the schema's limits). */
export function shortTimers(raw: Record<string, any>): void {
  for (const lane of raw.lanes as Array<Record<string, any>>) {
    lane.detector = { minOnMs: 20, minOffMs: 40 };
    lane.relayPulseMs = 80;
    lane.timers = { plateWindowMs: 1500, dedupeWindowMs: 4000, recloseMs: 4000, travelTimeMs: 120, travelTimeoutMs: 2000, backoutGraceMs: 600 };
  }
  raw.platform.deadlines = { preLeaveMs: 1000, preEnterMs: 800, reportMs: 1000 };
  raw.policy = { entry: { confirmWaitMs: 1200 } };
}

export class LotHarness {
  readonly events: SequencedEvent[] = [];
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  /** The arguments of every in-park store write the store acknowledged, as JSON, in order. */
  readonly durableWrites: string[] = [];

  private constructor(
    readonly app: App,
    readonly emulator: Emulator,
    readonly gpio: ProbedGpio,
    private readonly ownsEmulator: boolean,
  ) {
    this.unsubscribe = app.bus.on((event) => this.events.push(event));
    // The lanes call these on this very object: a resolved promise is a durable write.
    const store = app.store as unknown as Record<"addInPark" | "updateInPark", (...args: unknown[]) => Promise<unknown>>;
    for (const method of ["addInPark", "updateInPark"] as const) {
      const original = store[method].bind(app.store);
      store[method] = (...args: unknown[]) =>
        original(...args).then((result) => {
          this.durableWrites.push(JSON.stringify(args));
          return result;
        });
    }
  }

  static async create(options: HarnessOptions = {}): Promise<LotHarness> {
    const ownsEmulator = options.emulator === undefined;
    // The demo config's pid and key are the emulator's defaults (docs/protocol.md §7).
    const emulator = options.emulator ?? (await startEmulator({ timeZone: "Asia/Shanghai" }));
    let config: Config;
    try {
      config = testConfig((raw) => {
        shortTimers(raw);
        raw.platform.baseUrl = emulator.url;
        if (options.storeDir) raw.store.dir = options.storeDir;
        options.mutate?.(raw);
      });
    } catch (error) {
      if (ownsEmulator) await emulator.stop();
      throw error;
    }
    // The edges carry the box's time, as the app's own GPIO adapter stamps them.
    const gpio = new ProbedGpio(gpioLinesFromConfig(config), options.clock ?? systemClock);
    const app = new App({
      config,
      log: silentLogger(),
      gpio,
      apiPort: 0,
      // Probing after an outage starts at 50 ms and never waits more than 400 ms, so a report
      // queued during an outage goes out promptly once the platform is back.
      outboxBackoff: { baseMs: 50, capMs: 400, minMs: 20 },
      ...(options.clock ? { clock: options.clock } : {}),
    });
    const harness = new LotHarness(app, emulator, gpio, ownsEmulator);
    if (options.start !== false) await app.start();
    return harness;
  }

  get config(): Config {
    return this.app.config;
  }

  get storeDir(): string {
    return this.app.config.store.dir;
  }

  get token(): string {
    return this.app.config.api.token;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.app.http.address().port}`;
  }

  /** The box's section-4 URL (what the cloud calls). */
  get platformUrl(): string {
    return `${this.apiUrl}${this.app.config.platform.server.path}`;
  }

  channelOf(laneId: string): string {
    return this.app.config.lanes.find((l) => l.id === laneId)!.channelId;
  }

  wireTime(ms: number): string {
    return formatWireTime(ms, this.app.config.lot.timeZone);
  }

  // ---- driving cars ---------------------------------------------------------------------

  set(laneId: string, input: string, level: Level): void {
    this.gpio.setInput(lineKey(laneId, input), level);
  }

  snapshot(laneId: string) {
    return this.app.lanes.runners.get(laneId)!.snapshot();
  }

  barrier(laneId: string): string {
    return this.snapshot(laneId).barrier;
  }

  /** A vehicle drives onto loopA (resolves once the debounced loop counts it). */
  async onLoopA(laneId: string): Promise<void> {
    this.set(laneId, "loopA", 1);
    await this.until(() => this.snapshot(laneId).loopA, 2000, `${laneId} loopA occupied`);
  }

  /** The lane's camera reads a plate ("" = no plate), through the camera's real parser. */
  read(laneId: string, plate: string, confidence = 95): SimFeedResult {
    const feeds = this.app.devices.simFeeds(this.app.config, this.app.cameraPush);
    const camera = feeds.cameras.get(laneId);
    if (!camera) throw new Error(`lane ${laneId} has no simulated camera`);
    const result = feedSimCamera(camera, laneId, { plate: plate === "" ? "_无_" : plate, confidence }, this.app.clock);
    if (!result.delivered) throw new Error(`camera read on ${laneId} not delivered: ${result.reason}`);
    return result;
  }

  /** The lane's scanner gun reads a payment code. */
  scan(laneId: string, code: string): void {
    const feeds = this.app.devices.simFeeds(this.app.config, this.app.cameraPush);
    const scanner = feeds.scanners.get(laneId);
    if (!scanner) throw new Error(`lane ${laneId} has no simulated scanner`);
    const result = feedSimScanner(scanner, code);
    if (!result.delivered) throw new Error(`scan on ${laneId} not delivered: ${result.reason}`);
  }

  /** A car arrives: loopA first, then the camera read (the usual order). */
  async arrive(laneId: string, plate: string): Promise<void> {
    await this.onLoopA(laneId);
    this.read(laneId, plate);
  }

  /** Waits for the arm to be up, then drives over loopB and away; resolves when the arm is down. */
  async pass(laneId: string, options: { closed?: boolean } = {}): Promise<void> {
    await this.until(() => this.barrier(laneId) === "open", 4000, `${laneId} barrier open`);
    this.set(laneId, "loopB", 1);
    await this.until(() => this.snapshot(laneId).loopB, 2000, `${laneId} loopB occupied`);
    this.set(laneId, "loopA", 0);
    await this.until(() => !this.snapshot(laneId).loopA, 2000, `${laneId} loopA clear`);
    this.set(laneId, "loopB", 0);
    await this.until(() => !this.snapshot(laneId).loopB, 2000, `${laneId} loopB clear`);
    if (options.closed !== false) await this.until(() => this.barrier(laneId) === "closed", 4000, `${laneId} barrier closed`);
  }

  /** The car on loopA reverses away without passing. */
  async backOut(laneId: string): Promise<void> {
    this.set(laneId, "loopA", 0);
    await this.until(() => !this.snapshot(laneId).loopA, 2000, `${laneId} loopA clear`);
  }

  /** arrive + pass. */
  async drive(laneId: string, plate: string): Promise<void> {
    await this.arrive(laneId, plate);
    await this.pass(laneId);
  }

  /** An attendant button (cashConfirm, manualOpen): pressed and released. */
  async press(laneId: string, input: "cashConfirm" | "manualOpen"): Promise<void> {
    this.set(laneId, input, 1);
    await sleep(60);
    this.set(laneId, input, 0);
  }

  /** A car that "came in" `agoMs` ago (its stay is billed); the entry report has not gone out. */
  async park(plate: string, agoMs: number, fields: Partial<InParkRecordInput> = {}): Promise<InParkRecord> {
    const { store, clock, config } = this.app;
    const enterAtMs = clock.now() - agoMs;
    const laneId = config.lanes.find((l) => l.direction === "in")!.id;
    return store.addInPark({
      recordNo: `${laneId}_${formatWireTime(enterAtMs, config.lot.timeZone).replace(/\D/g, "")}${String(++parkedSeq % 1000).padStart(3, "0")}`,
      plate,
      laneId,
      enterAtMs,
      vehicleType: "temporary",
      carType: config.platform.dictionaries.temporaryCarType,
      carSubType: config.platform.dictionaries.temporaryCarSubType,
      source: "camera",
      entryReport: "none",
      ...fields,
    });
  }

  /** The car waiting at the exit has been billed and is awaiting payment. */
  async awaitingPayment(laneId: string, timeoutMs = 3000): Promise<void> {
    await this.until(() => this.snapshot(laneId).pending.some((tx) => tx.phase === "awaitingPayment"), timeoutMs, `${laneId} awaiting payment`);
  }

  // ---- observing -------------------------------------------------------------------------

  /** Events so far matching the type and every field of the filter. */
  find(type: string, filter: EventFilter = {}): SequencedEvent[] {
    return this.events.filter((e) => e.type === type && Object.entries(filter).every(([k, v]) => e[k] === v));
  }

  /** The first event (already seen or arriving) matching type and filter. */
  async waitForEvent(type: string, filter: EventFilter = {}, timeoutMs = 4000): Promise<SequencedEvent> {
    let found: SequencedEvent | undefined;
    await this.until(() => (found = this.find(type, filter)[0]) !== undefined, timeoutMs, `event ${type} ${JSON.stringify(filter)}`);
    return found!;
  }

  /** Polls `condition` every 5 ms (real time). */
  async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) {
        const recent = this.events.slice(-25).map((e) => `${e.type}${e.plate ? ` ${String(e.plate)}` : ""}${e.reason ? ` (${String(e.reason)})` : ""}`);
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last events: ${recent.join(", ")}`);
      }
      await sleep(5);
    }
  }

  /** What the lane's display board shows now (rendered lines). */
  displayLines(laneId: string): string[] {
    const display = this.app.devices.displays.get(laneId);
    return display?.board?.currentLines() ?? [];
  }

  /** Every rendered line the lane's display has shown. */
  displayHistory(laneId: string): string[] {
    const display = this.app.devices.displays.get(laneId);
    return (display?.shown() ?? []).flatMap((m) => ((m as { lines?: string[] }).lines ?? []).concat((m as { voice?: string }).voice ?? []));
  }

  /** The in-park record of a plate, from the store's memory. */
  stayOf(plate: string): InParkRecord | undefined {
    return this.app.store.findInParkByPlate(plate)[0];
  }

  /** Whether `text` is in a file of the store directory on disk right now (synchronous read). */
  onDisk(text: string): boolean {
    const dir = this.storeDir;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (!statSync(path).isFile()) continue;
      if (readFileSync(path, "utf8").includes(text)) return true;
    }
    return false;
  }

  /**
   * Watches the next open pulse of `laneId`: at the moment its relay is written, had a store
   * write containing the text `probe()` names (looked up then) been acknowledged as durable
   * (its promise resolved, i.e. after the fsync)? The returned function stops watching and
   * answers (undefined: no open seen).
   */
  durableAtOpen(laneId: string, probe: () => string | undefined): () => boolean | undefined {
    let seen: boolean | undefined;
    this.gpio.onWrite = (key, level) => {
      if (seen !== undefined || key !== `${laneId}.relayOpen` || level !== 1) return;
      const text = probe();
      seen = text !== undefined && this.durableWrites.some((write) => write.includes(text));
    };
    return () => {
      this.gpio.onWrite = undefined;
      return seen;
    };
  }

  // ---- the cloud and the local API ----------------------------------------------------------

  /** A signed section-4 call from the emulated cloud to the box. */
  callBox(serviceName: string, biz: Record<string, unknown>): Promise<BoxAnswer> {
    return this.emulator.callBox(this.platformUrl, serviceName, { parkCode: this.app.config.lot.parkCode, ...biz });
  }

  /** A local API call; `token: null` sends none. */
  async api(method: string, path: string, body?: unknown, token: string | null = this.token): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${this.apiUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed };
  }

  /** Waits until the outbox has delivered everything it holds. */
  async drained(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.app.outbox.status().depth === 0, timeoutMs, "outbox drained");
  }

  async stop(options: { keepStore?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    await this.app.stop();
    if (this.ownsEmulator) await this.emulator.stop();
    if (!options.keepStore) await rm(this.storeDir, { recursive: true, force: true });
  }
}

let parkedSeq = 0;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
