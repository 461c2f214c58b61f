import type { App } from "../app/app.js";
import type { Emulator } from "../platform/emulator/emulator.js";
import { feedSimCamera, feedSimScanner, type SimCameraFeed, type SimScannerFeed } from "../io/sim-device-routes.js";
import { lineKey } from "../io/gpio/lines.js";
import { formatWireTime } from "../platform/wire.js";

/** The demo's cast: each plate shows one path through the lanes. */
export const demoPlates = {
  temporary: "粤A10001",
  monthly: "粤B88888",
  frictionless: "粤B12345",
  scanner: "粤A20002",
  cash: "粤A30003",
  blacklisted: "粤C66666",
  unlicensed: "K7Q2M9X",
} as const;

const HOUR_MS = 3_600_000;

/** The box whose entry lane the cars come in by, and the one whose exit lane they leave by. */
export interface DemoGates {
  entry: App;
  exit: App;
}

/**
 * Cars that arrive on their own in the demo lot, so a newcomer watching the log or
 * /api/status sees every path within a minute. It drives the simulated loops, the camera and
 * the scanner through the same code paths as the real devices, and plays the attendant and
 * the cloud (through the platform emulator) where a path needs them. In a lot of two boxes
 * the cars enter at one box and leave at the other.
 */
export class DemoTraffic {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly sleepers = new Set<() => void>();
  private readonly cameras: Map<string, SimCameraFeed>;
  private readonly scanners: Map<string, SimScannerFeed>;
  private readonly entryLane: string;
  private readonly exitLane: string;
  /** The box the cars come in by (its store holds their stays; the cloud asks it about them). */
  private readonly app: App;
  private readonly exitApp: App;

  constructor(
    gates: App | DemoGates,
    private readonly emulator: Emulator,
    /** `pace` scales every pause of a car (1 = the demo's own speed; tests run faster). */
    private readonly options: { pauseMs?: number; pace?: number; say?: (line: string) => void } = {},
  ) {
    this.app = "entry" in gates ? gates.entry : gates;
    this.exitApp = "entry" in gates ? gates.exit : gates;
    const feeds = [this.app, this.exitApp].map((app) => app.devices.simFeeds(app.config, app.cameraPush));
    // Lane ids are unique in the lot, so the two boxes' devices fit in one map.
    this.cameras = new Map(feeds.flatMap((f) => [...f.cameras]));
    this.scanners = new Map(feeds.flatMap((f) => [...f.scanners]));
    this.entryLane = this.app.config.lanes.find((l) => l.direction === "in")?.id ?? "";
    this.exitLane = this.exitApp.config.lanes.find((l) => l.direction === "out")?.id ?? "";
  }

  /**
   * Registers the demo's monthly car and blacklisted car: once, at the entry box, when the boxes
   * share the lot (the lot gives its lists to the other box); else at every box.
   */
  async seed(): Promise<void> {
    const boxes = this.app.config.lot.share.enabled && this.exitApp.config.lot.share.enabled ? [this.app] : new Set([this.app, this.exitApp]);
    for (const { store, clock } of boxes) {
      const now = clock.now();
      if (store.vehiclesByPlate(demoPlates.monthly).length === 0) {
        await store.upsertVehicle({ carNum: demoPlates.monthly, owner: "张三", carTypeCode: 81, timeStartMs: now - 30 * 24 * HOUR_MS, timeEndMs: now + 200 * 24 * HOUR_MS });
      }
      if (store.blacklistFor(demoPlates.blacklisted, now).length === 0) {
        await store.addBlacklist({ carNum: demoPlates.blacklisted, remark: "demo: unpaid fees", operator: "demo" });
      }
    }
    this.emulator.setPlate(demoPlates.frictionless, "frictionless");
  }

  /** The box a lane belongs to. */
  private boxOf(laneId: string): App {
    return laneId === this.exitLane ? this.exitApp : this.app;
  }

  start(): void {
    if (this.running || !this.entryLane || !this.exitLane) return;
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Stops the cars and resolves once the current step is abandoned: every wait wakes up at once
   * (the service must be down within 2 s of a signal, and a cycle is ~45 s of sleeps).
   */
  async stop(): Promise<void> {
    this.running = false;
    for (const wake of [...this.sleepers]) wake();
    // Only waiting: the loop reports its own errors (say) and ends on TrafficStopped.
    await this.loop?.catch(() => undefined);
  }

  private say(line: string): void {
    this.options.say?.(line);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.cycle();
        await this.sleep(this.options.pauseMs ?? 5000);
      } catch (error) {
        if (error instanceof TrafficStopped) return;
        if (this.running) this.say(`demo traffic: ${(error as Error).message}`);
        // Rejects only with TrafficStopped; the loop condition then ends the run.
        await this.sleep(this.options.pauseMs ?? 5000).catch(() => undefined);
      }
    }
  }

  /** One round of every path, about 45 s. */
  async cycle(): Promise<void> {
    const { entryLane: inLane, exitLane: outLane } = this;
    await this.parkEarlier([demoPlates.frictionless, demoPlates.scanner, demoPlates.cash], 2.5 * HOUR_MS);

    this.say(`demo: temporary car ${demoPlates.temporary} enters`);
    await this.drive(inLane, demoPlates.temporary);
    this.say(`demo: monthly car ${demoPlates.monthly} enters`);
    await this.drive(inLane, demoPlates.monthly);

    this.say(`demo: blacklisted car ${demoPlates.blacklisted} is refused and backs out`);
    await this.arrive(inLane, demoPlates.blacklisted);
    await this.sleep(1500);
    await this.set(inLane, "loopA", 0);
    await this.sleep(1500);

    this.say(`demo: unlicensed car scans the entry QR code (${demoPlates.unlicensed})`);
    await this.set(inLane, "loopA", 1);
    await this.sleep(400);
    const lane = this.app.config.lanes.find((l) => l.id === inLane)!;
    await this.emulator.callBox(this.boxPlatformUrl(), "unlicensedReq", {
      parkCode: this.app.config.lot.parkCode,
      plateNum: demoPlates.unlicensed,
      channelid: lane.channelId,
      requestTime: formatWireTime(this.app.clock.now(), this.app.config.lot.timeZone),
    });
    await this.passThrough(inLane);

    this.say(`demo: ${demoPlates.frictionless} leaves, paid frictionless by the platform`);
    await this.drive(outLane, demoPlates.frictionless);

    this.say(`demo: ${demoPlates.scanner} leaves, pays by showing a payment code to the scanner`);
    await this.arrive(outLane, demoPlates.scanner);
    await this.waitFor(() => this.awaiting(outLane), 5000);
    await this.sleep(800);
    const scanner = this.scanners.get(outLane);
    if (scanner) feedSimScanner(scanner, "134567890123456789");
    await this.passThrough(outLane);

    this.say(`demo: ${demoPlates.cash} leaves, pays cash to the attendant`);
    await this.arrive(outLane, demoPlates.cash);
    await this.waitFor(() => this.awaiting(outLane), 5000);
    await this.sleep(1500);
    if (this.exitApp.config.lanes.find((l) => l.id === outLane)?.inputs.cashConfirm) {
      await this.set(outLane, "cashConfirm", 1);
      await this.sleep(200);
      await this.set(outLane, "cashConfirm", 0);
    } else {
      this.exitApp.lanes.command(outLane, "cash-paid", "demo-attendant", "cash");
    }
    await this.passThrough(outLane);

    this.say(`demo: ${demoPlates.temporary} and ${demoPlates.monthly} leave (within the free time / monthly)`);
    await this.drive(outLane, demoPlates.temporary);
    await this.drive(outLane, demoPlates.monthly);
    await this.drive(outLane, demoPlates.unlicensed);
  }

  /** Cars that "came in hours ago", so their exits have something to pay. */
  private async parkEarlier(plates: readonly string[], agoMs: number): Promise<void> {
    const { store, clock } = this.app;
    for (const plate of plates) {
      if (store.findInParkByPlate(plate).length > 0) continue;
      const enterAtMs = clock.now() - agoMs;
      await store.addInPark({
        recordNo: `${this.entryLane}_DEMO${String(enterAtMs).slice(-9)}${plates.indexOf(plate)}`,
        plate,
        laneId: this.entryLane,
        enterAtMs,
        vehicleType: "temporary",
        carType: this.app.config.platform.dictionaries.temporaryCarType,
        carSubType: this.app.config.platform.dictionaries.temporaryCarSubType,
        source: "camera",
        // One box: its exit sends the entry report first. Two gates: the south box cannot, so
        // the stay counts as reported long ago (its exit report is not held for it, docs/mqtt.md 12.8).
        entryReport: this.exitApp === this.app ? "none" : "delivered",
      });
    }
  }

  private boxPlatformUrl(): string {
    const { port } = this.app.http.address();
    return `http://127.0.0.1:${port}${this.app.config.platform.server.path}`;
  }

  private async drive(laneId: string, plate: string): Promise<void> {
    await this.arrive(laneId, plate);
    await this.passThrough(laneId);
  }

  private async arrive(laneId: string, plate: string): Promise<void> {
    await this.set(laneId, "loopA", 1);
    await this.sleep(300);
    const camera = this.cameras.get(laneId);
    if (camera) feedSimCamera(camera, laneId, { plate, confidence: 96 }, this.boxOf(laneId).clock);
  }

  /** Waits for the arm to open, then drives over the safety loop and away. */
  private async passThrough(laneId: string): Promise<void> {
    const opened = await this.waitFor(() => this.barrier(laneId) === "open", 8000);
    if (!opened) {
      await this.set(laneId, "loopA", 0);
      return;
    }
    await this.set(laneId, "loopB", 1);
    await this.sleep(600);
    await this.set(laneId, "loopA", 0);
    await this.sleep(900);
    await this.set(laneId, "loopB", 0);
    await this.waitFor(() => this.barrier(laneId) === "closed", 8000);
    await this.sleep(500);
  }

  private barrier(laneId: string): string | undefined {
    return this.boxOf(laneId).lanes.runners.get(laneId)?.snapshot().barrier;
  }

  private awaiting(laneId: string): boolean {
    return (
      this.boxOf(laneId)
        .lanes.runners.get(laneId)
        ?.snapshot()
        .pending.some((tx) => tx.phase === "awaitingPayment") ?? false
    );
  }

  private async set(laneId: string, input: string, level: 0 | 1): Promise<void> {
    // A stopped demo drives nothing more (the service is shutting down around it).
    if (!this.running) throw new TrafficStopped();
    this.boxOf(laneId).simGpio?.setInput(lineKey(laneId, input), level);
  }

  private async waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.running && Date.now() < until) {
      if (check()) return true;
      await this.sleep(100);
    }
    return check();
  }

  /** Sleeps `ms`; rejects with TrafficStopped as soon as the demo is stopped. */
  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.reject(new TrafficStopped());
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        reject(new TrafficStopped());
      };
      const timer = setTimeout(
        () => {
          this.sleepers.delete(wake);
          resolve();
        },
        ms * (this.options.pace ?? 1),
      );
      this.sleepers.add(wake);
    });
  }
}

class TrafficStopped extends Error {
  constructor() {
    super("demo traffic stopped");
  }
}
