/**
 * What the booth panel shows of a car waiting at an exit (the lane card): when it came in and
 * by which lane, how long it stayed, the bill's lines next to the fee due, how it may pay on
 * this lane, and the camera's photos of its exit and entry reads. Read from the exit's context
 * and its stay; nothing here decides anything.
 */
import type { Coupon } from "../core/fees/index.js";
import type { PhotoMeta } from "../io/camera/photo-ring.js";
import type { ExitCtx, LanesState } from "./lane-state.js";

export interface PhotoRef {
  id: string;
  laneId: string;
  atMs: number;
  /** Where the panel loads it (`GET /api/lanes/:laneId/photos/:id`). */
  url: string;
}

export interface ExitCard {
  recordNo?: string;
  enterAtMs?: number;
  /** From the entry to the exit read. */
  stayMs?: number;
  entryLaneId?: string;
  entryLaneName?: string;
  /**
   * The box whose gate the car came in by, when that is another box of the lot: its entry photo
   * stays on that box (photos are never shared over the lot broker), so the card says where.
   */
  entryDeviceId?: string;
  bill?: {
    payableFen: number;
    discountFen: number;
    prepaidFen: number;
    dueFen: number;
    /** Each coupon of the stay with what it took off (a coupon that did not apply says so). */
    discounts: Array<{ coupon: Coupon; discountFen: number; applied: boolean; note?: string }>;
  };
  /** The ways this lane takes payment: the platform's QR code always, the scanner when the lane has one, cash at the booth. */
  payBy: Array<"platform" | "scanner" | "cash">;
  photos: {
    /** "serial": the lane's camera sends no image. */
    camera: "http" | "serial";
    exit: PhotoRef | null;
    entry: PhotoRef | null;
  };
  /** The plate the camera read, when an attendant corrected it. */
  readPlate?: string;
}

function photoRef(photo: PhotoMeta | undefined): PhotoRef | null {
  if (!photo) return null;
  return { id: photo.id, laneId: photo.laneId, atMs: photo.atMs, url: `/api/lanes/${encodeURIComponent(photo.laneId)}/photos/${photo.id}` };
}

export function exitCard(lanes: LanesState, ctx: ExitCtx): ExitCard {
  const lane = lanes.configs.get(ctx.laneId);
  const record = ctx.record;
  // A stay made at this exit for a car with no entry record (its flat charge) has no entry to show.
  const entered = record !== undefined && record.extra?.noEntryRecord !== true;
  const photos = lanes.deps.photos;
  const readPlate = ctx.readPlate ?? ctx.plate;
  const entryLane = record ? lanes.configs.get(record.laneId) : undefined;
  const entryPlate = typeof record?.extra?.plateRaw === "string" && record.extra.plateRaw !== "" ? record.extra.plateRaw : record?.plate;
  const card: ExitCard = {
    payBy: ["platform", ...(lane?.scanner ? (["scanner"] as const) : []), "cash"],
    photos: {
      camera: lane?.camera === "http" ? "http" : "serial",
      exit: photoRef(photos?.forRead(ctx.laneId, readPlate, ctx.atMs)),
      entry: entered && record && entryPlate !== undefined ? photoRef(photos?.forRead(record.laneId, entryPlate, record.enterAtMs)) : null,
    },
  };
  if (ctx.readPlate !== undefined) card.readPlate = ctx.readPlate;
  if (record) card.recordNo = record.recordNo;
  if (entered) {
    card.enterAtMs = record.enterAtMs;
    card.stayMs = Math.max(0, ctx.atMs - record.enterAtMs);
    card.entryLaneId = record.laneId;
    if (entryLane?.name) card.entryLaneName = entryLane.name;
    if (record.replicaOf) card.entryDeviceId = record.replicaOf.deviceId;
  }
  if (ctx.bill) {
    card.bill = {
      payableFen: ctx.bill.payableFee,
      discountFen: ctx.bill.discountFee,
      prepaidFen: ctx.bill.prepaidFee,
      dueFen: ctx.dueFen,
      discounts: ctx.bill.discounts.map((line) => ({
        coupon: line.coupon,
        discountFen: line.discountFen,
        applied: line.applied,
        ...(line.note === undefined ? {} : { note: line.note }),
      })),
    };
  }
  return card;
}
