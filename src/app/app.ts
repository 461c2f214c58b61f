import { join } from "node:path";
import type { Config } from "../config/schema.js";
import type { Logger } from "../kernel/log.js";
import { systemClock, type Clock } from "../kernel/clock.js";
import { Lifecycle, type Component } from "../kernel/lifecycle.js";
import { EventBus } from "../kernel/event-bus.js";
import type { Gpio } from "../io/gpio/gpio.js";
import { SimGpio } from "../io/gpio/sim-gpio.js";
import { OnoffGpio } from "../io/gpio/onoff-gpio.js";
import { gpioLinesFromConfig } from "../io/gpio/lines.js";
import { LaneDevices } from "../io/lane-devices.js";
import { registerCameraPushRoute, type CameraPushReceiver } from "../io/camera/http-push.js";
import { PhotoRing } from "../io/camera/photo-ring.js";
import { registerSimDeviceRoutes } from "../io/sim-device-routes.js";
import { HttpServer } from "../api/http-server.js";
import { registerCoreRoutes } from "../api/core-routes.js";
import { registerSimRoutes } from "../api/sim-routes.js";
import { registerLaneRoutes } from "../api/lane-routes.js";
import { registerShiftRoutes } from "../api/shift-routes.js";
import { registerPanelRoutes } from "../api/panel-routes.js";
import { BoxMetrics, registerMetricsRoute } from "../api/metrics.js";
import { registerOpenApiRoute } from "../api/openapi.js";
import { registerLotRoutes } from "../api/lot-routes.js";
import type { LotShare } from "../lot/lot-share.js";
import type { EntryFirst } from "../lot/entry-first.js";
import { withDeliveryNotice } from "../lot/entry-report-hold.js";
import { LotStore, lotStoreOptionsFromConfig } from "../store/lot-store.js";
import { Outbox } from "../outbox/outbox.js";
import type { BackoffPolicy } from "../kernel/backoff.js";
import { platformOutboxSender } from "../outbox/platform-sender.js";
import { registerOutboxRoutes } from "../outbox/routes.js";
import { createPlatformClient, type PlatformClient } from "../platform/client.js";
import { createOpenInterfaceHandler, registerPlatformRoute } from "../platform/server.js";
import { LaneService } from "../lanes/lanes.js";
import { withDoublePaymentFields } from "../lanes/refunds.js";
import { ShiftBook } from "../shifts/shift-book.js";
import { createStoreLotPorts } from "./store-ports.js";
import { spacesSignsDriver } from "./spaces-signs.js";
import type { LotPorts, LotRemotePort } from "../platform/ports.js";
import type { FleetWiringOptions } from "./fleet-wiring.js";
import type { FleetLink } from "../fleet/index.js";
import { VERSION } from "../version.js";
import { adoptSystemZone } from "../config/time-zone.js";

export interface AppOptions {
  config: Config;
  log: Logger;
  clock?: Clock;
  /** Overrides for tests: e.g. port 0 for an ephemeral port. */
  apiPort?: number;
  /** Replaces the GPIO adapter (tests hand in an instrumented one). */
  gpio?: Gpio;
  /** Outbox retry pacing (tests shorten the outage probing; default DEFAULT_BACKOFF). */
  outboxBackoff?: BackoffPolicy;
  /** How the fleet link restarts the service, sets the log level and finds the config file. */
  fleet?: FleetWiringOptions;
}

export type StatusSection = () => unknown;

/**
 * The composition root: the only place that knows both the pure core and the adapters. It
 * picks real or simulated parts from the configuration (never from NODE_ENV), wires them,
 * and starts and stops them in order.
 */
export class App {
  readonly config: Config;
  readonly log: Logger;
  readonly clock: Clock;
  readonly gpio: Gpio;
  readonly simGpio: SimGpio | undefined;
  readonly http: HttpServer;
  readonly bus: EventBus;
  readonly store: LotStore;
  readonly outbox: Outbox;
  readonly platform: PlatformClient;
  readonly devices: LaneDevices;
  readonly lanes: LaneService;
  /** Attendant shifts and their reports (cash, hand releases, refunds owed). */
  readonly shifts: ShiftBook;
  /** Prometheus metrics (`GET /metrics`): this app's own registry. */
  readonly metrics: BoxMetrics;
  readonly cameraPush: CameraPushReceiver;
  /** The last camera photos of each HTTP-push lane, on disk (never in the store). */
  readonly photos: PhotoRing;
  /** The fleet link, once the app has started (never without MQTT in the config). */
  get fleet(): FleetLink | undefined {
    return this.fleetLink;
  }
  private fleetLink: FleetLink | undefined;
  /** The lot share, once started (only with `lot.share.enabled`). */
  get lotShare(): LotShare | undefined {
    return this.lotShareLink;
  }
  private lotShareLink: LotShare | undefined;
  /** Entry report before exit report across the lot's boxes (only with `lot.share.enabled`). */
  private entryFirst: EntryFirst | undefined;
  readonly bootAtMs: number;
  private readonly lifecycle: Lifecycle;
  private readonly statusSections = new Map<string, StatusSection>();
  private ready = false;

  constructor(options: AppOptions) {
    const { config, log } = options;
    this.config = config;
    this.log = log;
    this.clock = options.clock ?? systemClock;
    const clock = this.clock;
    this.bootAtMs = clock.now();
    this.lifecycle = new Lifecycle(log.child({ sub: "lifecycle" }));
    // The lot's zone from tzdata (the config check usually read it already): fees, wire times
    // and the log's clock then never map ICU's zone data. Without it, Intl answers as before.
    const zone = adoptSystemZone(config.lot.timeZone);
    if (!zone.ok) log.warn({ code: zone.code, timeZone: config.lot.timeZone }, `${zone.message}; the time zone's offsets come from Intl instead`);
    this.bus = new EventBus((error, event) => log.error({ err: error, event: event.type }, "event listener failed"));

    // Every lane event is one log line (journald keeps them); presence edges only at debug.
    const eventLog = log.child({ sub: "event" });
    this.bus.on((event) => {
      if (event.type === "presence") eventLog.debug(event, event.type);
      else eventLog.info(event, event.type);
    });

    const lines = gpioLinesFromConfig(config);
    if (options.gpio) {
      this.gpio = options.gpio;
      this.simGpio = options.gpio instanceof SimGpio ? options.gpio : undefined;
    } else if (config.hardware.gpio === "sim") {
      this.simGpio = new SimGpio(lines, clock);
      this.gpio = this.simGpio;
    } else {
      this.simGpio = undefined;
      this.gpio = new OnoffGpio(lines, clock, log.child({ sub: "gpio" }), {
        sysfsRoot: config.hardware.sysfsRoot,
        ...(config.hardware.chipLabel === undefined ? {} : { chipLabel: config.hardware.chipLabel }),
      });
    }

    // Counted from the bus, the platform client and the store's commits: before any of them runs.
    this.metrics = new BoxMetrics({ laneIds: config.lanes.map((lane) => lane.id), serviceNames: config.platform.serviceNames });
    this.metrics.watchBus(this.bus);
    const metrics = this.metrics;
    this.store = new LotStore(
      lotStoreOptionsFromConfig(config.store, { clock, log: log.child({ sub: "store" }), onCommit: (file, elapsedMs, ok) => metrics.storeCommit(file, elapsedMs, ok) }),
    );
    this.platform = this.metrics.instrumentPlatform(createPlatformClient({ config: config.platform, clock, log: log.child({ sub: "platform" }) }));
    this.outbox = new Outbox({
      dir: config.store.dir,
      clock,
      log: log.child({ sub: "outbox" }),
      sender: platformOutboxSender(this.platform, { deadlineMs: config.platform.deadlines.reportMs }),
      ...(options.outboxBackoff ? { backoff: options.outboxBackoff } : {}),
      permanentCodes: config.outbox.permanentCodes,
      parkAfterMs: config.outbox.parkAfterMs,
      probeParkedMs: config.outbox.probeParkedMs,
    });
    // A 200 to anything (a lane's pre-leave bill too, even one heard after its deadline) means
    // the platform takes requests again: the outbox probes its parked reports.
    this.platform.onAnswer((answer) => {
      if (answer.code === 200) this.outbox.platformAnswered();
    });
    this.devices = new LaneDevices(config, clock, log);
    this.photos = new PhotoRing(
      join(config.store.dir, "photos"),
      config.lanes.filter((lane) => lane.camera === "http").map((lane) => lane.id),
      config.photos,
      log,
    );
    this.lanes = new LaneService({
      config,
      gpio: this.gpio,
      clock,
      log,
      bus: this.bus,
      store: this.store,
      outbox: this.outbox,
      platform: this.platform,
      displays: this.devices.displays,
      photos: this.photos,
      // A no-record exit while the lot is apart is provisional (docs/mqtt.md "Partitions and reconciliation").
      lotApart: () => this.lotShareLink?.apart() === true,
    });
    // Exit reports go out with the double payments the lanes found after the car left; a
    // delivered entry report is told to the lot (another box's leave report waits for it).
    this.outbox.setSender(
      withDeliveryNotice(
        withDoublePaymentFields(platformOutboxSender(this.platform, { deadlineMs: config.platform.deadlines.reportMs }), this.lanes.refunds, config.lot.timeZone),
        (entry) => this.entryFirst?.delivered(entry),
      ),
    );
    this.shifts = new ShiftBook({
      dir: config.store.dir,
      store: this.store,
      refunds: this.lanes.refunds,
      context: {
        deviceId: config.deviceId,
        lot: { name: config.lot.name, parkCode: config.lot.parkCode, timeZone: config.lot.timeZone },
        laneIds: config.lanes.map((lane) => lane.id),
      },
      clock,
      log: log.child({ sub: "shifts" }),
    });
    for (const [laneId, camera] of this.devices.cameras) camera.onRead((read) => this.lanes.plateRead(laneId, read));
    for (const [laneId, scanner] of this.devices.scanners) scanner.onCode(({ code }) => this.lanes.scannerCode(laneId, code));

    this.http = new HttpServer(
      { host: config.api.host, port: options.apiPort ?? config.api.port, token: config.api.token, openReads: config.api.openReads },
      log.child({ sub: "api" }),
    );
    this.cameraPush = registerCameraPushRoute(this.http, {
      lanes: config.lanes.filter((lane) => lane.camera === "http").map((lane) => lane.id),
      ...(config.api.cameraKey === undefined ? {} : { cameraKey: config.api.cameraKey }),
      onRead: (laneId, read) => this.lanes.plateRead(laneId, read),
      photos: this.photos,
      onHistory: (laneId, read) =>
        void this.store
          .appendEvent({ type: "camera-offline-read", laneId, plate: read.plate, atMs: read.atMs })
          .catch((error: unknown) => log.warn({ err: error, laneId }, "could not record a camera read from its offline buffer in the history")),
      clock,
      log: log.child({ sub: "camera" }),
    });

    const lanePort = this.lanes.lanePort();
    // A remoteDev for a channel of another box of the lot goes to that box (docs/mqtt.md "Forwarded remote control").
    const lotRemote: LotRemotePort = { remoteControl: (command) => this.lotShareLink?.forwardRemoteControl(command) };
    const ports: LotPorts = {
      ...createStoreLotPorts(this.store, lanePort, { clock, log: log.child({ sub: "platform" }), timeZone: config.lot.timeZone }),
      ...(config.lot.share.enabled ? { lotRemote } : {}),
    };
    const platformHandler = createOpenInterfaceHandler({ config, ports, clock, log: log.child({ sub: "platform" }) });
    this.openInterface = platformHandler;
    registerPlatformRoute(this.http, platformHandler);

    registerCoreRoutes(this.http, this);
    registerLaneRoutes(this.http, this);
    registerShiftRoutes(this.http, this.shifts);
    registerOutboxRoutes(this.http, this.outbox);
    registerPanelRoutes(this.http, { status: () => this.status(), onChange: (listener) => this.bus.onChange(listener) });
    this.metrics.setSources({ outbox: () => this.outbox.status(), httpRejections: () => this.http.rejectionCounts() });
    registerMetricsRoute(this.http, this.metrics);
    registerLotRoutes(this.http, {
      deviceId: config.deviceId,
      parkCode: config.lot.parkCode,
      timeZone: config.lot.timeZone,
      lanes: config.lanes.map((lane) => ({ laneId: lane.id, direction: lane.direction })),
      inPark: () => this.store.inPark.values(),
      freeSpaces: () => this.lanes.freeSpaces(),
      share: () => this.lotShareLink?.status(),
      now: () => clock.now(),
    });
    if (this.simGpio) {
      registerSimRoutes(this.http, this.simGpio);
      registerSimDeviceRoutes(this.http, { ...this.devices.simFeeds(config, this.cameraPush), displays: this.devices.displays, clock });
    }
    registerOpenApiRoute(this.http, { platformPath: config.platform.server.path });

    this.addStatus("lot", () => ({
      name: config.lot.name,
      parkCode: config.lot.parkCode,
      timeZone: config.lot.timeZone,
      totalSpaces: config.lot.totalSpaces,
      freeSpaces: this.lanes.freeSpaces(),
      inPark: this.store.inParkCount(),
    }));
    this.addStatus("lanes", () => this.lanes.status());
    this.addStatus("outbox", () => this.outbox.status());
    // Refunds owed to drivers who paid a stay twice (GET /api/refunds lists them).
    this.addStatus("refunds", () => this.lanes.refunds.totals());
    this.addStatus("shift", () => this.shifts.status());
    // The cameras' photo rings: kept, refused and evicted per lane.
    this.addStatus("photos", () => this.photos.status());
    this.addStatus("links", () => ({
      platform: { state: this.outbox.status().link === "up" ? "up" : "down", ...this.platform.stats() },
      mqtt: this.fleet ? { state: this.fleet.state } : { state: "not configured" },
      serial: this.devices.status(),
      cameraPush: this.cameraPush.status(),
    }));
    this.addStatus("store", () => {
      const status = this.store.status();
      return { inPark: status.inPark, alarms: status.alarms, warnings: status.warnings, history: status.history };
    });
    this.addStatus("platformServer", () => platformHandler.stats());
    this.addStatus("events", () => this.bus.last(50));

    this.lifecycle.add(
      component(
        "gpio",
        () => this.gpio.start(),
        () => this.gpio.stop(),
      ),
    );
    this.lifecycle.add(this.store);
    // The client stops after the outbox and the lanes (stops run in reverse): they abort their
    // own calls first, so closing it never waits for a report or bill the platform hangs on,
    // and an aborted report is not counted as a failure.
    this.lifecycle.add(
      component(
        "platform-client",
        async () => undefined,
        () => this.platform.close(),
      ),
    );
    this.lifecycle.add(this.outbox);
    for (const device of this.devices.components()) this.lifecycle.add(device);
    // The fleet link starts before the lanes so their first events already have a boot number.
    // Its modules (and mqtt) load at start and only when MQTT is configured: a box without a
    // fleet never loads them (start-up CPU and idle memory on a Pi).
    if (config.mqtt?.enabled) {
      const wiring = options.fleet ?? { restart: () => undefined, setLogLevel: (level: string) => (log.level = level) };
      this.lifecycle.add(
        component(
          "fleet",
          async () => {
            const { createFleet } = await import("./fleet-wiring.js");
            const fleet = createFleet(this, wiring);
            if (!fleet) return;
            this.fleetLink = fleet;
            await wiring.onCreated?.(fleet);
            await fleet.start();
          },
          async () => {
            await this.fleetLink?.stop();
          },
        ),
      );
    }
    // Lot sharing (docs/mqtt.md "Sharing one lot between boxes"): before the lanes, so their
    // first decision sees the lot's stays (it waits at most lot.share.startWaitMs for them).
    // Loaded only when enabled, like the fleet link.
    const lotBroker = config.lot.share.mqtt ?? config.mqtt;
    if (config.lot.share.enabled && lotBroker) {
      this.lifecycle.add(
        component(
          "lot-share",
          async () => {
            const { LotShare } = await import("../lot/lot-share.js");
            this.lotShareLink = new LotShare({
              share: config.lot.share,
              mqtt: lotBroker,
              deviceId: config.deviceId,
              parkCode: config.lot.parkCode,
              lanes: config.lanes.map((lane) => ({ laneId: lane.id, direction: lane.direction, channelId: lane.channelId })),
              store: this.store,
              // What another box forwards is decided as if the platform had asked this box.
              remoteControl: (command) => {
                const lane = config.lanes.find((l) => l.channelId === command.channelId);
                if (!lane) return Promise.resolve({ ok: false, reason: "lane-invalid", msg: `channel ${command.channelId} is not a lane of ${config.deviceId}` });
                return lanePort.remoteControl({ ...command, laneId: lane.id });
              },
              clock,
              log: log.child({ sub: "lot" }),
            });
            await this.lotShareLink.start();
          },
          async () => {
            await this.lotShareLink?.stop();
          },
        ),
      );
      this.addStatus("lotShare", () => this.lotShareLink?.status() ?? { view: "stale" });
    }
    this.lifecycle.add(this.lanes);
    // The remaining-spaces signs follow the in-park set (the whole lot's with lot.share).
    this.lifecycle.add(spacesSignsDriver([...this.devices.spacesSigns.values()], this.store, () => this.lanes.freeSpaces(), clock));
    if (config.lot.share.enabled && lotBroker) {
      // After the lanes (their refunds ledger and bills): what a partition left is reconciled
      // at every turn of the lot view to live (docs/mqtt.md "Partitions and reconciliation").
      this.addLotPart("lot-provisional", "lotProvisional", async (lot) => {
        const { ProvisionalExits } = await import("../lot/provisional-exits.js");
        return new ProvisionalExits({
          deviceId: config.deviceId,
          share: config.lot.share,
          lot,
          store: this.store,
          outbox: this.outbox,
          refunds: this.lanes.refunds,
          billFor: (record, atMs, laneId) => this.lanes.billFor(record, atMs, laneId),
          fuzzy: config.policy.exit.fuzzy,
          duplicateEntry: config.policy.entry.duplicateEntry,
          timeZone: config.lot.timeZone,
          clock,
          log: log.child({ sub: "lot-provisional" }),
        });
      });
      // A leave report held for another box's entry report goes once the lot says it was delivered.
      this.addLotPart("lot-entry-first", "lotEntryFirst", async (lot) => {
        const { EntryFirst } = await import("../lot/entry-first.js");
        this.entryFirst = new EntryFirst({ deviceId: config.deviceId, lot, store: this.store, outbox: this.outbox, log: log.child({ sub: "lot-entry-first" }) });
        return this.entryFirst;
      });
    }
    // After the lanes (their refunds ledger) and the fleet link (a report kept from it goes now).
    this.lifecycle.add(this.shifts);
    this.lifecycle.add(this.http);
  }

  readonly openInterface: ReturnType<typeof createOpenInterfaceHandler>;

  /**
   * A part of lot sharing made once the lot share has started (loaded only then), stopped
   * before it; its counters are the status section `statusName`.
   */
  private addLotPart(name: string, statusName: string, make: (lot: LotShare) => Promise<Component & { readonly counters: Record<string, number> }>): void {
    let part: (Component & { readonly counters: Record<string, number> }) | undefined;
    this.addStatus(statusName, () => ({ ...(part?.counters ?? {}) }));
    this.lifecycle.add(
      component(
        name,
        async () => {
          const lot = this.lotShareLink;
          if (!lot) return;
          part = await make(lot);
          await part.start();
        },
        async () => {
          await part?.stop();
        },
      ),
    );
  }

  /** Adds a named section to /api/status and the health report. */
  addStatus(name: string, section: StatusSection): void {
    this.statusSections.set(name, section);
  }

  /** Adds a component that starts after the core parts (and stops before them). */
  addComponent(component: Component): void {
    this.lifecycle.add(component);
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
      sim: this.simGpio !== undefined,
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
    this.bus.changed();
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
