import type { HttpServer } from "./http-server.js";
import type { InParkRecord } from "../store/records.js";
import type { LotBox } from "../lot/lot-view.js";
import type { LotShareStatus } from "../lot/lot-share.js";
import { formatWireTime } from "../platform/wire.js";

/** What the lot routes read: the box's store and config, and the lot share when it runs. */
export interface LotRoutesSource {
  deviceId: string;
  parkCode: string;
  timeZone: string;
  lanes: LotBox["lanes"];
  inPark(): InParkRecord[];
  freeSpaces(): number;
  /** Undefined when `lot.share` is off (or not started): the box answers for itself alone. */
  share(): LotShareStatus | undefined;
  now(): number;
}

/**
 * GET /api/lot and GET /api/lot/in-park (docs/api.md): the lot as this box sees it. The cars
 * are the store's in-park set, which holds the other boxes' stays as replicas when the lot is
 * shared: exactly what this box's decisions see. Without sharing, view "local".
 */
export function registerLotRoutes(http: HttpServer, source: LotRoutesSource): void {
  http.route("GET", "/api/lot", ({ send }) => {
    const share = source.share();
    const self: LotBox = { deviceId: source.deviceId, online: true, lanes: source.lanes, lastSeenMs: source.now() };
    const boxes = share ? share.boxes.map((b) => (b.deviceId === source.deviceId ? { ...b, online: share.broker === "connected" } : b)) : [self];
    if (!boxes.some((b) => b.deviceId === source.deviceId)) boxes.unshift(self);
    send(200, {
      parkCode: source.parkCode,
      deviceId: source.deviceId,
      view: share ? share.view : "local",
      ...(share?.staleSinceMs !== undefined ? { staleSinceMs: share.staleSinceMs } : {}),
      boxes,
      cars: source.inPark().length,
      freeSpaces: source.freeSpaces(),
      ...(share ? { counters: share.counters } : {}),
    });
  });

  http.route("GET", "/api/lot/in-park", ({ send }) => {
    const cars = source
      .inPark()
      .sort((a, b) => a.enterAtMs - b.enterAtMs || (a.recordNo < b.recordNo ? -1 : 1))
      .map((r) => ({
        plate: r.plate,
        recordNo: r.recordNo,
        enterTime: formatWireTime(r.enterAtMs, source.timeZone),
        enterAtMs: r.enterAtMs,
        enterDeviceId: r.replicaOf?.deviceId ?? source.deviceId,
        enterLaneId: r.laneId,
        vehicleType: r.vehicleType,
        prepaidFen: r.prepayments.reduce((sum, p) => sum + p.amountFen, 0),
        replica: r.replicaOf !== undefined,
      }));
    send(200, { cars });
  });
}
