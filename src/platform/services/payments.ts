import { z } from "zod";
import { wInt, wIntOpt, wNumOpt, wStr, wStrOpt, wStrReq, yuanToFen } from "../wire.js";
import type { Coupon, StayCoupon, Vehicle } from "../../store/records.js";
import type { PaymentNotice } from "../ports.js";
import { defineService, findVehicle, type ServiceContext, ok, platformPayment, priorPayment, readTime, refuse, requireTime, samePlate, wireTime } from "./common.js";

/** Money the cloud reports: 4.2 stay payment, 4.5 fixed-car payment, 4.7 coupon. */

/** 4.2 payment result notification [OURS fields, docs/protocol.md §4.2]. Idempotent on orderNo. */
export const payNotify = defineService({
  id: "payNotify",
  section: "4.2",
  mutates: true,
  lengths: { parkCode: 50, recordNo: 50, plateNum: 20, orderNo: 50, outChannelid: 30 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      recordNo: wStr(),
      plateNum: wStrReq(),
      orderNo: wStrReq(),
      payType: wInt(),
      payFee: wInt(),
      payTime: wStrReq(),
      payScene: wInt(),
      outChannelid: wStrOpt(),
      plateId: wStrOpt(),
    }),
  async handle(biz, ctx) {
    if (biz.payFee < 0) refuse("badBizContent", "payFee must not be negative");
    if (![0, 1, 2].includes(biz.payScene)) refuse("badBizContent", `payScene ${biz.payScene} is not 0, 1 or 2`);
    const notice: PaymentNotice = {
      orderNo: biz.orderNo.trim(),
      recordNo: biz.recordNo.trim(),
      plateNum: biz.plateNum.trim(),
      payType: biz.payType,
      amountFen: biz.payFee,
      payTimeMs: requireTime(ctx, biz.payTime, "payTime"),
      plateId: biz.plateId?.trim() ?? "",
    };
    const channelId = biz.outChannelid?.trim() ?? "";
    const payment = {
      ...platformPayment(ctx, { ...notice, kind: "stay", plate: notice.plateNum, payAtMs: notice.payTimeMs }),
      payScene: biz.payScene,
      ...(channelId !== "" ? { channelId } : {}),
      ...(notice.plateId !== "" ? { plateId: notice.plateId } : {}),
    };
    if ((await priorPayment(ctx, payment)) === "duplicate") {
      ctx.log.info({ orderNo: payment.orderNo }, "payment notice repeated; already recorded");
      return ok();
    }
    if (notice.recordNo !== "" && !(await ctx.ports.inPark.get(notice.recordNo))) {
      // Money was taken: record it anyway, the exit flow matches it by plate.
      ctx.log.warn({ orderNo: payment.orderNo, recordNo: notice.recordNo }, "payment for a stay not in the park");
    }
    await ctx.ports.payments.put(payment);
    try {
      await ctx.ports.lane.paymentNotified(notice);
    } catch (error) {
      ctx.log.error({ err: error, orderNo: payment.orderNo }, "lane did not take the payment notice; it is stored");
    }
    return ok();
  },
});

/** 4.5 fixed-car payment success notice [OURS]: new validity and/or balance as absolute values. */
export const monthlyPayNotify = defineService({
  id: "monthlyPayNotify",
  section: "4.5",
  mutates: true,
  lengths: { parkCode: 50, orderNo: 50, plateNum: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      orderNo: wStrReq(),
      pcardUuid: wStrOpt(),
      pcardId: wIntOpt(),
      plateNum: wStrReq(),
      payType: wInt(),
      payFee: wInt(),
      payTime: wStrReq(),
      timeStart: wStrOpt(),
      timeEnd: wStrOpt(),
      balance: wNumOpt(),
    }),
  async handle(biz, ctx) {
    if (biz.payFee < 0) refuse("badBizContent", "payFee must not be negative");
    const validFromMs = readTime(ctx, biz.timeStart, "timeStart");
    const validToMs = readTime(ctx, biz.timeEnd, "timeEnd");
    if (validToMs === null && biz.balance === undefined) refuse("badBizContent", "a fixed-car payment must carry timeEnd or balance");
    const vehicle = await findVehicle(ctx, { uuId: biz.pcardUuid, id: biz.pcardId, carNum: biz.plateNum });
    if (!samePlate(vehicle.carNum, biz.plateNum)) refuse("conflict", `card ${vehicle.uuId} belongs to ${vehicle.carNum}, not ${biz.plateNum}`);
    const payment = platformPayment(ctx, {
      orderNo: biz.orderNo.trim(),
      kind: "fixed-car",
      plate: vehicle.carNum,
      targetUuid: vehicle.uuId,
      payType: biz.payType,
      amountFen: biz.payFee,
      payAtMs: requireTime(ctx, biz.payTime, "payTime"),
    });
    if ((await priorPayment(ctx, payment)) === "duplicate") return ok(vehicleValidity(ctx, vehicle));
    if (validFromMs !== null) vehicle.timeStartMs = validFromMs;
    if (validToMs !== null) vehicle.timeEndMs = validToMs;
    if (biz.balance !== undefined) vehicle.balanceFen = yuanToFen(biz.balance);
    vehicle.updatedAtMs = ctx.nowMs;
    // Vehicle first, payment last: a crash in between is repaired by the cloud's retry
    // (the values are absolute, so applying them twice is harmless).
    await ctx.ports.vehicles.put(vehicle);
    await ctx.ports.payments.put(payment);
    return ok(vehicleValidity(ctx, vehicle));
  },
});

function vehicleValidity(ctx: ServiceContext, vehicle: Pick<Vehicle, "uuId" | "timeStartMs" | "timeEndMs" | "balanceFen">) {
  return { pcardUuid: vehicle.uuId, timeStart: wireTime(ctx, vehicle.timeStartMs), timeEnd: wireTime(ctx, vehicle.timeEndMs), balance: vehicle.balanceFen / 100 };
}

const couponKinds: Record<number, Coupon["kind"]> = { 1: "amount", 2: "minutes", 3: "free", 4: "percent" };

/** 4.7 issue a coupon to a stay [OURS]. Idempotent on couponNo. */
export const issueCoupon = defineService({
  id: "issueCoupon",
  section: "4.7",
  mutates: true,
  lengths: { parkCode: 50, couponNo: 50, recordNo: 50, plateNum: 20, operator: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      couponNo: wStrReq(),
      recordNo: wStrOpt(),
      plateNum: wStrOpt(),
      couponType: wInt(),
      value: wIntOpt(),
      expireTime: wStrOpt(),
      operator: wStrOpt(),
    }),
  async handle(biz, ctx) {
    const kind = couponKinds[biz.couponType];
    if (!kind) refuse("badBizContent", `couponType ${biz.couponType} is not 1 (amount), 2 (minutes), 3 (free) or 4 (percent)`);
    const value = kind === "free" ? 0 : biz.value;
    if (value === undefined) refuse("badBizContent", `value is required for couponType ${biz.couponType}`);
    if (kind !== "free" && value <= 0) refuse("badBizContent", "value must be positive");
    if (kind === "percent" && value > 100) refuse("badBizContent", "a percentage is at most 100");
    const expiresAtMs = readTime(ctx, biz.expireTime, "expireTime");
    if (expiresAtMs !== null && expiresAtMs < ctx.nowMs) refuse("expired", "the coupon has already expired");

    const recordNo = biz.recordNo?.trim() ?? "";
    const plateNum = biz.plateNum?.trim() ?? "";
    if (recordNo === "" && plateNum === "") refuse("badBizContent", "recordNo or plateNum is required");
    const stays = await ctx.ports.inPark.list();
    const stay = recordNo !== "" ? stays.find((s) => s.recordNo === recordNo) : stays.find((s) => samePlate(s.plate, plateNum));
    if (!stay) refuse("notFound", `no stay in the park for ${recordNo || plateNum}`);
    if (plateNum !== "" && !samePlate(stay.plate, plateNum)) refuse("conflict", `stay ${stay.recordNo} is ${stay.plate}, not ${plateNum}`);

    const coupon: StayCoupon = {
      couponId: biz.couponNo.trim(),
      recordNo: stay.recordNo,
      kind,
      value,
      ...(expiresAtMs !== null ? { expiresAtMs } : {}),
      operator: biz.operator ?? "",
      grantedAtMs: ctx.nowMs,
      source: "platform",
    };
    const coupons = await ctx.ports.coupons.list();
    const prior = coupons.find((c) => c.couponId === coupon.couponId);
    if (prior) {
      if (prior.recordNo === coupon.recordNo && prior.kind === coupon.kind && prior.value === coupon.value) return ok({ couponNo: prior.couponId, recordNo: prior.recordNo });
      refuse("conflict", `couponNo ${coupon.couponId} is already issued with other content`);
    }
    const held = coupons.filter((c) => c.recordNo === stay.recordNo).length;
    if (held >= ctx.config.platform.server.maxCouponsPerStay) refuse("conflict", `stay ${stay.recordNo} already holds ${held} coupon(s)`);
    await ctx.ports.coupons.put(coupon);
    return ok({ couponNo: coupon.couponId, recordNo: coupon.recordNo });
  },
});

export const paymentServices = [payNotify, monthlyPayNotify, issueCoupon];
