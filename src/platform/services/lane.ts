import { z } from "zod";
import { wInt, wIntOpt, wStrOpt, wStrReq } from "../wire.js";
import { defineService, laneByChannel, laneReasonCode, ok, refuse, requireTime, wireTime, type Reply } from "./common.js";
import type { LaneAnswer, RemoteControl } from "../ports.js";

/** The lane-facing interfaces: 4.1, 4.3, 4.8, 4.12. The lane flows decide; we validate and map. */

function fromLane<T>(answer: LaneAnswer<T>, onOk: (value: T) => Reply): Reply {
  if (!answer.ok) refuse(laneReasonCode[answer.reason], answer.msg);
  const reply = onOk(answer.value);
  if (answer.msg !== undefined && reply.msg === undefined) reply.msg = answer.msg;
  return reply;
}

/** 4.1 real-time fee query [DOC request; response partly INFERRED]. */
export const queryParkFee = defineService({
  id: "queryParkFee",
  section: "4.1",
  mutates: false,
  lengths: { parkCode: 50, plateNum: 20, recordNo: 50, outChannelid: 30 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      payScene: wInt(),
      plateNum: wStrOpt(),
      recordNo: wStrOpt(),
      outChannelid: wStrOpt(),
    }),
  async handle(biz, ctx) {
    const scene = biz.payScene;
    if (scene !== 0 && scene !== 1 && scene !== 2) refuse("badBizContent", `payScene ${scene} is not 0, 1 or 2`);
    const plateNum = biz.plateNum?.trim() ?? "";
    const channel = biz.outChannelid?.trim() ?? "";
    if ((scene === 0 || scene === 2) && plateNum === "") refuse("badBizContent", `plateNum is required with payScene ${scene}`);
    if ((scene === 1 || scene === 2) && channel === "") refuse("badBizContent", `outChannelid is required with payScene ${scene}`);
    let laneId: string | undefined;
    if (channel !== "") {
      const lane = laneByChannel(ctx, channel);
      if (!lane || lane.direction !== "out") refuse("laneInvalid", `channel ${channel} is not an exit lane of this car park`);
      laneId = lane.id;
    }
    const answer = await ctx.ports.lane.feeQuery({
      payScene: scene,
      ...(plateNum !== "" ? { plateNum } : {}),
      ...(biz.recordNo !== undefined ? { recordNo: biz.recordNo.trim() } : {}),
      ...(channel !== "" ? { channelId: channel } : {}),
      ...(laneId !== undefined ? { laneId } : {}),
    });
    return fromLane(answer, (quote) =>
      ok({
        recordNo: quote.recordNo,
        plateNum: quote.plateNum,
        enterTime: wireTime(ctx, quote.enterTimeMs),
        leaveTime: wireTime(ctx, quote.leaveTimeMs),
        payableFee: quote.payableFee,
        discountFee: quote.discountFee,
        paidFee: quote.paidFee,
        carType: quote.carType,
        carSubType: quote.carSubType,
        ...(quote.channelId !== undefined ? { outChannelid: quote.channelId } : {}),
        ...(quote.orderNo !== undefined ? { orderNo: quote.orderNo } : {}),
      }),
    );
  },
});

/** 4.3 unlicensed-car entry request [DOC]. */
export const unlicensedReq = defineService({
  id: "unlicensedReq",
  section: "4.3",
  mutates: true,
  lengths: { parkCode: 50, plateNum: 20, channelid: 30, requestTime: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      plateNum: wStrReq(),
      channelid: wStrReq(),
      requestTime: wStrReq(),
    }),
  async handle(biz, ctx) {
    const raw = biz.plateNum.trim();
    const plateNum = raw.startsWith("无") ? raw.slice(1) : raw;
    if (!/^[0-9A-Z]{7}$/.test(plateNum)) refuse("badBizContent", `plateNum "${raw}" is not a 7-character virtual plate of digits and upper-case letters`);
    const lane = laneByChannel(ctx, biz.channelid);
    if (!lane || lane.direction !== "in") refuse("laneInvalid", `channel ${biz.channelid} is not an entry lane of this car park`);
    const requestTimeMs = requireTime(ctx, biz.requestTime, "requestTime");
    const answer = await ctx.ports.lane.unlicensedEntry({ plateNum, channelId: lane.channelId, laneId: lane.id, requestTimeMs });
    // 4.3's response has no data.
    return fromLane(answer, () => ok());
  },
});

/** 4.8 free-space count [OURS]. */
export const queryFreeSpace = defineService({
  id: "queryFreeSpace",
  section: "4.8",
  mutates: false,
  schema: () => z.looseObject({ parkCode: wStrReq() }),
  async handle(_biz, ctx) {
    const { total, free } = await ctx.ports.lane.freeSpaces();
    return ok({ totalSpaces: total, freeSpaces: free });
  },
});

/** 4.12 remote entry/exit control [DOC]. */
export const remoteDev = defineService({
  id: "remoteDev",
  section: "4.12",
  mutates: true,
  lengths: { parkCode: 50, channelid: 20, plateId: 20, operator: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      channelid: wStrReq(),
      type: wInt(),
      plateId: wStrReq(),
      operator: wStrReq(),
      cmd: wIntOpt(),
      openGateCase: wIntOpt(),
    }),
  async handle(biz, ctx) {
    const type = biz.type;
    const cmd = biz.cmd ?? 0;
    if (type !== 0 && type !== 1 && type !== 2) refuse("badBizContent", `type ${type} is not 0, 1 or 2`);
    if (cmd !== 0 && cmd !== 1) refuse("badBizContent", `cmd ${cmd} is not 0 or 1`);
    if ((type === 2 || cmd === 1) && biz.openGateCase === undefined) {
      refuse("badBizContent", "openGateCase is required for a free/abnormal release and for a manual raise");
    }
    const command: Omit<RemoteControl, "laneId" | "channelId"> = { type, plateId: biz.plateId.trim(), operator: biz.operator, cmd, openGateCase: biz.openGateCase ?? null };
    const lane = laneByChannel(ctx, biz.channelid);
    if (!lane) {
      // A lane of another box of the lot: that box decides, and its answer is ours.
      const forwarded = ctx.ports.lotRemote?.remoteControl({ channelId: biz.channelid.trim(), ...command });
      if (!forwarded) refuse("laneInvalid", `channel ${biz.channelid} is not a lane of this car park`);
      return fromLane(await forwarded, () => ok("操作成功"));
    }
    const answer = await ctx.ports.lane.remoteControl({ channelId: lane.channelId, laneId: lane.id, ...command });
    return fromLane(answer, () => ok("操作成功"));
  },
});

export const laneServices = [queryParkFee, unlicensedReq, queryFreeSpace, remoteDev];
