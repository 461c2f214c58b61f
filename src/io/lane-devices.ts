import type { Clock } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { Logger } from "../kernel/log.js";
import type { Config } from "../config/schema.js";
import { SerialCamera } from "./camera/serial-camera.js";
import { LaneDisplay, createLaneDisplay } from "./display/lane-display.js";
import { SpacesSign } from "./display/spaces-sign.js";
import { SerialScanner } from "./scanner/serial-scanner.js";
import { createSerialLink } from "./serial/create-serial-link.js";
import type { SerialLink } from "./serial/serial-link.js";
import type { SerialPortLinkOptions } from "./serial/serialport-link.js";
import { simScannerFeed, simSerialCameraFeed, type SimCameraFeed, type SimScannerFeed } from "./sim-device-routes.js";
import type { CameraPushReceiver } from "./camera/http-push.js";

/**
 * Every serial device of the box, built from the config: one link per device (real with a
 * `path`, simulated without), and per lane its camera, scanner and display adapters. The
 * composition root starts `components()` and puts `status()` in /api/status.
 */
export class LaneDevices {
  readonly links = new Map<string, SerialLink>();
  /** laneId → serial camera (lanes whose camera is "http" have none here). */
  readonly cameras = new Map<string, SerialCamera>();
  readonly scanners = new Map<string, SerialScanner>();
  readonly displays = new Map<string, LaneDisplay>();
  /** device name → remaining-spaces sign (not tied to a lane). */
  readonly spacesSigns = new Map<string, SpacesSign>();

  constructor(config: Pick<Config, "lanes" | "serial" | "lot">, clock: Clock, log: Logger, linkOptions: SerialPortLinkOptions = {}) {
    const serialLog = log.child({ sub: "serial" });
    const link = (name: string): SerialLink => {
      let existing = this.links.get(name);
      const device = config.serial[name];
      if (!device) throw new Error(`no serial device named "${name}"`);
      if (!existing) this.links.set(name, (existing = createSerialLink(name, device, clock, serialLog, linkOptions)));
      return existing;
    };
    for (const lane of config.lanes) {
      if (lane.camera !== "http") {
        const device = config.serial[lane.camera];
        if (device?.kind === "camera") this.cameras.set(lane.id, new SerialCamera(lane.id, link(lane.camera), device.options, log.child({ sub: "camera" })));
      }
      if (lane.scanner) {
        const device = config.serial[lane.scanner];
        if (device?.kind === "scanner") this.scanners.set(lane.id, new SerialScanner(lane.id, link(lane.scanner), device.options, log.child({ sub: "scanner" })));
      }
      if (lane.display) {
        const device = config.serial[lane.display];
        if (device?.kind === "display") {
          this.displays.set(lane.id, createLaneDisplay(lane.id, link(lane.display), device.options, clock, log.child({ sub: "display" }), config.lot.timeZone));
        }
      }
    }
    for (const [name, device] of Object.entries(config.serial)) {
      if (device.kind === "sign") this.spacesSigns.set(name, new SpacesSign(link(name), device.options, clock, log.child({ sub: "display" })));
    }
  }

  /** One component per adapter, for the lifecycle (links open in start, close in stop). */
  components(): Component[] {
    const out: Component[] = [];
    for (const [laneId, c] of this.cameras) out.push({ name: `camera:${laneId}`, start: () => c.start(), stop: () => c.stop() });
    for (const [laneId, s] of this.scanners) out.push({ name: `scanner:${laneId}`, start: () => s.start(), stop: () => s.stop() });
    for (const [laneId, d] of this.displays) out.push({ name: `display:${laneId}`, start: () => d.start(), stop: () => d.stop() });
    for (const [name, s] of this.spacesSigns) out.push({ name: `sign:${name}`, start: () => s.start(), stop: () => s.stop() });
    return out;
  }

  /** Per device: link state and every counter of rejected input, for /api/status. */
  status(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of this.cameras.values()) out[c.name] = c.status();
    for (const s of this.scanners.values()) out[s.name] = s.status();
    for (const d of this.displays.values()) out[d.name] = d.status();
    for (const s of this.spacesSigns.values()) out[s.name] = s.status();
    return out;
  }

  /**
   * Feeds for the simulator routes: simulated serial cameras and scanners, and for lanes
   * whose camera is "http", the push receiver.
   */
  simFeeds(config: Pick<Config, "lanes">, receiver?: CameraPushReceiver): { cameras: Map<string, SimCameraFeed>; scanners: Map<string, SimScannerFeed> } {
    const cameras = new Map<string, SimCameraFeed>();
    const scanners = new Map<string, SimScannerFeed>();
    for (const lane of config.lanes) {
      const camera = this.cameras.get(lane.id);
      const feed = camera ? simSerialCameraFeed(camera) : lane.camera === "http" && receiver ? ({ kind: "http", receiver } as const) : undefined;
      if (feed) cameras.set(lane.id, feed);
      const scanner = this.scanners.get(lane.id);
      const scannerFeed = scanner ? simScannerFeed(scanner) : undefined;
      if (scannerFeed) scanners.set(lane.id, scannerFeed);
    }
    return { cameras, scanners };
  }
}
