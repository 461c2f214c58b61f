import { z } from "zod";
import type { InParkRecord } from "../../store/records.js";
import { compactWireTime, wIntOpt, wStrOpt, wStrReq } from "../wire.js";
import { defineService, laneByChannel, ok, paginate, plateMatchesSearch, readTime, refuse, requireTime, samePlate, wireTime, type ServiceContext } from "./common.js";

/** Stays in the car park: 4.6 presence query, 4.13.1–4 manual record management. */

/** The wire's source: lane (a camera or a hand-made stay at a lane), unlicensed or platform. */
function wireSource(source: string | undefined): "lane" | "unlicensed" | "platform" {
  return source === "platform" || source === "unlicensed" ? source : "lane";
}

function recordItem(ctx: ServiceContext, r: InParkRecord) {
  return {
    recordNo: r.recordNo,
    plateNum: r.plate,
    plateColor: r.plateColor ?? null,
    carType: r.carType ?? 0,
    carSubType: r.carSubType ?? 0,
    enterTime: wireTime(ctx, r.enterAtMs),
    // A stay the platform added names the channel it sent; a lane's stay, the lane's channel.
    inChannelid: r.inChannelId ?? ctx.config.lanes.find((lane) => lane.id === r.laneId)?.channelId ?? "",
    source: wireSource(r.source),
  };
}

/** `<laneId>_<YYYYMMDDHHmmssSSS>` (docs/protocol.md §3.1) → laneId. */
function laneFromRecordNo(recordNo: string): string | undefined {
  return /^(.{1,32})_\d{17}$/.exec(recordNo)?.[1];
}

/** 4.6 in-park vehicle query [OURS]: whether, and since when, a plate is inside. */
export const queryInPark = defineService({
  id: "queryInPark",
  section: "4.6",
  mutates: false,
  lengths: { parkCode: 50, plateNum: 20 },
  schema: () => z.looseObject({ parkCode: wStrReq(), plateNum: wStrReq() }),
  async handle(biz, ctx) {
    const stays = (await ctx.ports.inPark.list()).filter((r) => samePlate(r.plate, biz.plateNum));
    const latest = stays.sort((a, b) => b.enterAtMs - a.enterAtMs)[0];
    if (!latest) return ok({ inPark: 0, plateNum: biz.plateNum.trim() });
    return ok({ inPark: 1, ...recordItem(ctx, latest), parkedSeconds: Math.max(0, Math.floor((ctx.nowMs - latest.enterAtMs) / 1000)) });
  },
});

/** 4.13.1 paged in-park record query [OURS]. startTime/stopTime bound the entry time. */
export const queryParkRecordPage = defineService({
  id: "queryParkRecordPage",
  section: "4.13.1",
  mutates: false,
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      plateNum: wStrOpt(),
      startTime: wStrOpt(),
      stopTime: wStrOpt(),
      page: wIntOpt(),
      pageSize: wIntOpt(),
    }),
  async handle(biz, ctx) {
    const from = readTime(ctx, biz.startTime, "startTime");
    const to = readTime(ctx, biz.stopTime, "stopTime");
    const items = (await ctx.ports.inPark.list())
      .filter((r) => plateMatchesSearch(r.plate, biz.plateNum))
      .filter((r) => (from === null || r.enterAtMs >= from) && (to === null || r.enterAtMs <= to))
      .sort((a, b) => a.enterAtMs - b.enterAtMs || (a.recordNo < b.recordNo ? -1 : 1));
    const page = paginate(items, biz.page, biz.pageSize, ctx.config.platform.server.maxPageSize);
    return ok({ ...page, items: page.items.map((r) => recordItem(ctx, r)) });
  },
});

/**
 * 4.13.2 edit an in-park record [OURS]: the fields sent replace the stored ones, the rest stay.
 * A manual fix changes the presence table only; no exit report follows (docs/protocol.md §4.13).
 */
export const editParkRecord = defineService({
  id: "editParkRecord",
  section: "4.13.2",
  mutates: true,
  lengths: { recordNo: 50, plateNum: 20, operator: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      recordNo: wStrReq(),
      plateNum: wStrOpt(),
      plateColor: wIntOpt(),
      carType: wIntOpt(),
      carSubType: wIntOpt(),
      enterTime: wStrOpt(),
      operator: wStrOpt(),
    }),
  async handle(biz, ctx) {
    const record = await ctx.ports.inPark.get(biz.recordNo.trim());
    if (!record) refuse("notFound", `no in-park record ${biz.recordNo}`);
    const enterTimeMs = readTime(ctx, biz.enterTime, "enterTime");
    if (enterTimeMs !== null && enterTimeMs > ctx.nowMs) refuse("badBizContent", "enterTime lies in the future");
    if (biz.plateNum !== undefined && biz.plateNum.trim() === "") refuse("badBizContent", "plateNum must not be empty");
    if (biz.plateNum !== undefined) record.plate = biz.plateNum.trim();
    if (biz.plateColor !== undefined) record.plateColor = biz.plateColor;
    if (biz.carType !== undefined) record.carType = biz.carType;
    if (biz.carSubType !== undefined) record.carSubType = biz.carSubType;
    if (enterTimeMs !== null) record.enterAtMs = enterTimeMs;
    if (biz.operator !== undefined) record.operator = biz.operator;
    record.updatedAtMs = ctx.nowMs;
    await ctx.ports.inPark.put(record);
    ctx.log.info({ recordNo: record.recordNo, operator: biz.operator }, "in-park record edited by the platform");
    return ok(recordItem(ctx, record));
  },
});

/** 4.13.3 delete an in-park record [OURS]; no exit report is sent for it. */
export const deleteParkRecord = defineService({
  id: "deleteParkRecord",
  section: "4.13.3",
  mutates: true,
  schema: () => z.looseObject({ parkCode: wStrReq(), recordNo: wStrReq(), operator: wStrOpt() }),
  async handle(biz, ctx) {
    const removed = await ctx.ports.inPark.remove(biz.recordNo.trim());
    if (!removed) refuse("notFound", `no in-park record ${biz.recordNo}`);
    ctx.log.info({ recordNo: biz.recordNo, operator: biz.operator }, "in-park record deleted by the platform");
    return ok();
  },
});

/** 4.13.4 add an in-park record [OURS] (a car that entered while the lane could not record it). */
export const addParkRecord = defineService({
  id: "addParkRecord",
  section: "4.13.4",
  mutates: true,
  lengths: { recordNo: 50, plateNum: 20, inChannelid: 30, operator: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      recordNo: wStrOpt(),
      plateNum: wStrReq(),
      plateColor: wIntOpt(),
      carType: wIntOpt(),
      carSubType: wIntOpt(),
      enterTime: wStrReq(),
      inChannelid: wStrOpt(),
      operator: wStrOpt(),
    }),
  async handle(biz, ctx) {
    const enterTimeMs = requireTime(ctx, biz.enterTime, "enterTime");
    if (enterTimeMs > ctx.nowMs) refuse("badBizContent", "enterTime lies in the future");
    const channel = biz.inChannelid?.trim() ?? "";
    const lane = channel === "" ? undefined : laneByChannel(ctx, channel);
    if (channel !== "" && (!lane || lane.direction !== "in")) refuse("laneInvalid", `channel ${channel} is not an entry lane of this car park`);
    const stays = await ctx.ports.inPark.list();
    const inside = stays.find((s) => samePlate(s.plate, biz.plateNum));
    if (inside) refuse("conflict", `${biz.plateNum} is already in the park (${inside.recordNo})`);
    let recordNo = biz.recordNo?.trim() ?? "";
    if (recordNo !== "" && stays.some((s) => s.recordNo === recordNo)) refuse("conflict", `recordNo ${recordNo} exists`);
    if (recordNo === "") {
      // recordNo = <laneId>_<YYYYMMDDHHmmssSSS> (docs/protocol.md §3.1); step a millisecond on a clash.
      const prefix = lane?.id ?? "cloud";
      let at = enterTimeMs;
      do recordNo = `${prefix}_${compactWireTime(at++, ctx.config.lot.timeZone)}`;
      while (stays.some((s) => s.recordNo === recordNo));
    }
    const dict = ctx.config.platform.dictionaries;
    const record: InParkRecord = {
      recordNo,
      plate: biz.plateNum.trim(),
      ...(biz.plateColor !== undefined ? { plateColor: biz.plateColor } : {}),
      // The entry lane: the one of the channel sent, else the recordNo's prefix, else "cloud".
      laneId: lane?.id ?? laneFromRecordNo(recordNo) ?? "cloud",
      enterAtMs: enterTimeMs,
      vehicleType: "temporary",
      carType: biz.carType ?? dict.temporaryCarType,
      carSubType: biz.carSubType ?? dict.temporaryCarSubType,
      source: "platform",
      inChannelId: channel,
      operator: biz.operator ?? "",
      updatedAtMs: ctx.nowMs,
      // The platform told us of this stay: there is no entry to report to it.
      entryReport: "none",
      prepayments: [],
      coupons: [],
    };
    await ctx.ports.inPark.put(record);
    ctx.log.info({ recordNo, operator: biz.operator }, "in-park record added by the platform");
    return ok({ recordNo });
  },
});

export const inParkServices = [queryInPark, queryParkRecordPage, editParkRecord, deleteParkRecord, addParkRecord];
