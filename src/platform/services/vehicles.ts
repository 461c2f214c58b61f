import { z } from "zod";
import type { Payment, Vehicle } from "../../store/records.js";
import { fenToYuan, fenToYuanText, wInt, wIntOpt, wNum, wNumOpt, wStrOpt, wStrReq, yuanToFen } from "../wire.js";
import { plateKey, plateMatchesSearch, samePlate } from "../../core/plates/index.js";
import {
  defineService,
  findCarGroup,
  findVehicle,
  newUuid,
  nextId,
  ok,
  paginate,
  platformPayment,
  priorPayment,
  readTime,
  refuse,
  wireTime,
  type ServiceContext,
} from "./common.js";

/** Fixed vehicles: 4.4 lookup and 4.11.1–10 management. */

const mainType = (carTypeCode: number): number => Math.floor(carTypeCode / 10);

/** A vehicle as 4.11 spells it on the wire (money in yuan, times as wire text). */
export function vehicleItem(ctx: ServiceContext, v: Vehicle) {
  return {
    id: v.id,
    uuId: v.uuId,
    parkCode: ctx.config.lot.parkCode,
    region: v.region,
    code: v.code,
    virtualCardNum: v.virtualCardNum,
    carNum: v.carNum,
    owner: v.owner,
    carTypeCode: v.carTypeCode,
    carGroupID: v.carGroupID,
    carGroupUuid: v.carGroupUuid,
    carGroup: v.carGroup,
    balance: fenToYuan(v.balanceFen),
    carMMoney: fenToYuan(v.carMMoneyFen),
    refund: fenToYuan(v.refundFen ?? 0),
    timeStart: wireTime(ctx, v.timeStartMs),
    timeEnd: wireTime(ctx, v.timeEndMs),
    tel: v.tel,
    color: v.color,
    carSpaceNum: v.carSpaceNum,
    remark: v.remark,
    state: v.state,
    frozen: v.frozen ? 1 : 0,
  };
}

/** 4.4 fixed-car lookup [DOC request; response partly INFERRED]. */
export const queryMonthlyRent = defineService({
  id: "queryMonthlyRent",
  section: "4.4",
  mutates: false,
  lengths: { parkCode: 50 },
  schema: () => z.looseObject({ parkCode: wStrReq(), plateNums: wStrReq(), queryType: wInt(), recharge: wIntOpt() }),
  async handle(biz, ctx) {
    if (![0, 1, 2].includes(biz.queryType)) refuse("badBizContent", `queryType ${biz.queryType} is not 0, 1 or 2`);
    const dict = ctx.config.platform.dictionaries;
    const plates = [
      ...new Set(
        biz.plateNums
          .split(/[,\uFF0C]/) // "," or the full-width one (escaped: the bundle keeps its code ASCII)
          .map(plateKey)
          .filter((p) => p !== ""),
      ),
    ];
    const wanted = (v: Vehicle): boolean => {
      const t = mainType(v.carTypeCode);
      const monthly = dict.monthlyCarTypes.includes(t);
      const stored = dict.storedValueCarTypes.includes(t);
      return biz.queryType === 0 ? monthly : biz.queryType === 1 ? stored : monthly || stored;
    };
    const vehicles = await ctx.ports.vehicles.list();
    // Plates not held are simply absent (docs/protocol.md §4.4).
    const data = vehicles
      .filter((v) => plates.includes(plateKey(v.carNum)) && wanted(v))
      .map((v) => {
        const carType = mainType(v.carTypeCode);
        const monthly = dict.monthlyCarTypes.includes(carType);
        return {
          pcardId: v.id,
          pcardUuid: v.uuId,
          plateNum: v.carNum,
          status: v.timeEndMs !== null && v.timeEndMs < ctx.nowMs ? 2 : 1,
          carType,
          carSubType: v.carTypeCode,
          ...(monthly ? { price: fenToYuanText(v.carMMoneyFen), deadlineDate: wireTime(ctx, v.timeEndMs) } : { balance: fenToYuan(v.balanceFen) }),
          state: v.state,
          frozen: v.frozen ? 1 : 0,
          ...(biz.recharge === 1
            ? {
                timeStart: wireTime(ctx, v.timeStartMs),
                timeEnd: wireTime(ctx, v.timeEndMs),
                carMMoney: fenToYuan(v.carMMoneyFen),
                balance: fenToYuan(v.balanceFen),
                owner: v.owner,
              }
            : {}),
        };
      });
    return ok(data);
  },
});

/** 4.11.1 paged vehicle query [DOC]. startTime/stopTime bound the last change ([SIBLING]). */
export const queryCarPage = defineService({
  id: "queryCarPage",
  section: "4.11.1",
  mutates: false,
  lengths: { parkCode: 50, carNum: 20, carSpaceNum: 50, owner: 20, tel: 20 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      page: wInt(),
      pageSize: wInt(),
      carNum: wStrOpt(),
      carSpaceNum: wStrOpt(),
      owner: wStrOpt(),
      carTypeCode: wIntOpt(),
      carGroupID: wIntOpt(),
      tel: wStrOpt(),
      startTime: wStrOpt(),
      stopTime: wStrOpt(),
    }),
  async handle(biz, ctx) {
    if (biz.page < 1) refuse("badBizContent", "page starts at 1");
    if (biz.pageSize < 1) refuse("badBizContent", "pageSize must be at least 1");
    const from = readTime(ctx, biz.startTime, "startTime");
    const to = readTime(ctx, biz.stopTime, "stopTime");
    const has = (field: string, filter: string | undefined): boolean => filter === undefined || filter.trim() === "" || field.includes(filter.trim());
    const items = (await ctx.ports.vehicles.list()).filter(
      (v) =>
        plateMatchesSearch(v.carNum, biz.carNum) &&
        has(v.carSpaceNum, biz.carSpaceNum) &&
        has(v.owner, biz.owner) &&
        has(v.tel, biz.tel) &&
        (biz.carTypeCode === undefined || v.carTypeCode === biz.carTypeCode) &&
        (biz.carGroupID === undefined || biz.carGroupID === 0 || v.carGroupID === biz.carGroupID) &&
        (from === null || v.updatedAtMs >= from) &&
        (to === null || v.updatedAtMs <= to),
    );
    items.sort((a, b) => a.id - b.id);
    const page = paginate(items, biz.page, biz.pageSize, ctx.config.platform.server.maxPageSize);
    return ok({ ...page, items: page.items.map((v) => vehicleItem(ctx, v)) });
  },
});

/** The 4.11.2 / 4.11.3 field table; on edit, a field left out keeps its value (see docs/protocol.md). */
const vehicleFields = () => ({
  parkCode: wStrReq(),
  uuId: wStrOpt(),
  region: wStrOpt(),
  code: wStrOpt(),
  virtualCardNum: wStrOpt(),
  carNum: wStrReq(),
  owner: wStrReq(),
  carTypeCode: wInt(),
  carGroupID: wIntOpt(),
  carGroupUuid: wStrOpt(),
  carGroup: wStrOpt(),
  balance: wNumOpt(),
  carMMoney: wNumOpt(),
  timeStart: wStrOpt(),
  timeEnd: wStrOpt(),
  tel: wStrOpt(),
  color: wStrOpt(),
  carSpaceNum: wStrOpt(),
  remark: wStrOpt(),
  state: wInt(),
  refund: wNumOpt(),
  forceTimeStart: wStrOpt(),
});
const vehicleLengths = {
  parkCode: 50,
  uuId: 50,
  region: 50,
  code: 50,
  virtualCardNum: 50,
  carNum: 50,
  owner: 50,
  carGroupUuid: 50,
  carGroup: 50,
  tel: 50,
  color: 50,
  carSpaceNum: 50,
  remark: 50,
};

type VehicleFields = z.infer<z.ZodObject<ReturnType<typeof vehicleFields>, z.core.$loose>>;

/** Applies the sent fields of 4.11.2/4.11.3 onto a record. */
async function applyVehicleFields(ctx: ServiceContext, v: Vehicle, biz: VehicleFields): Promise<void> {
  if (biz.state !== 0 && biz.state !== 1) refuse("badBizContent", `state ${biz.state} is not 0 or 1`);
  if (biz.carTypeCode < 10) refuse("badBizContent", `carTypeCode ${biz.carTypeCode} is a main type; send the concrete type (e.g. 81)`);
  for (const [name, value] of [
    ["balance", biz.balance],
    ["carMMoney", biz.carMMoney],
    ["refund", biz.refund],
  ] as const) {
    if (value !== undefined && value < 0) refuse("badBizContent", `${name} must not be negative`);
  }
  const from = readTime(ctx, biz.forceTimeStart ?? biz.timeStart, biz.forceTimeStart !== undefined ? "forceTimeStart" : "timeStart");
  const to = readTime(ctx, biz.timeEnd, "timeEnd");
  if (from !== null && to !== null && to < from) refuse("badBizContent", "timeEnd lies before timeStart");
  // carGroupUuid wins over carGroupID (4.11.2, the document's preference).
  const group = await findCarGroup(ctx, { carGroupUuid: biz.carGroupUuid, carGroupID: biz.carGroupID });
  if (group) {
    v.carGroupID = group.carGroupID;
    v.carGroupUuid = group.carGroupUuid;
  } else if (biz.carGroupUuid !== undefined || biz.carGroupID !== undefined) {
    v.carGroupID = 0;
    v.carGroupUuid = "";
  }
  v.owner = biz.owner;
  v.carTypeCode = biz.carTypeCode;
  v.state = biz.state;
  for (const name of ["region", "code", "virtualCardNum", "carGroup", "tel", "color", "carSpaceNum", "remark"] as const) {
    const value = biz[name];
    if (value !== undefined) v[name] = value;
  }
  if (biz.balance !== undefined) v.balanceFen = yuanToFen(biz.balance);
  if (biz.carMMoney !== undefined) v.carMMoneyFen = yuanToFen(biz.carMMoney);
  if (biz.refund !== undefined) v.refundFen = yuanToFen(biz.refund);
  if (biz.timeStart !== undefined || biz.forceTimeStart !== undefined) v.timeStartMs = from;
  if (biz.timeEnd !== undefined) v.timeEndMs = to;
  v.updatedAtMs = ctx.nowMs;
}

/** 4.11.2 add vehicle [DOC request, partly]. Answers the new record's id and uuId. */
/** What addCar and editCar share: the 4.11.2 / 4.11.3 field table. */
const vehicleWrite = { mutates: true, lengths: vehicleLengths, schema: () => z.looseObject({ id: wIntOpt(), ...vehicleFields() }) };

export const addCar = defineService({
  id: "addCar",
  section: "4.11.2",
  ...vehicleWrite,
  async handle(biz, ctx) {
    const all = await ctx.ports.vehicles.list();
    const uuId = biz.uuId?.trim() || newUuid();
    if (all.some((v) => v.uuId === uuId)) refuse("conflict", `a vehicle with uuId ${uuId} exists`);
    const clash = all.find((v) => samePlate(v.carNum, biz.carNum));
    if (clash) refuse("conflict", `plate ${biz.carNum} is already registered (uuId ${clash.uuId}); use editCar`);
    const v: Vehicle = {
      id: nextId(all.map((o) => o.id)),
      uuId,
      carNum: biz.carNum.trim(),
      owner: "",
      carTypeCode: 0,
      carGroupID: 0,
      carGroupUuid: "",
      carGroup: "",
      region: "",
      code: "",
      virtualCardNum: "",
      tel: "",
      color: "",
      carSpaceNum: "",
      remark: "",
      balanceFen: 0,
      carMMoneyFen: 0,
      refundFen: 0,
      timeStartMs: null,
      timeEndMs: null,
      state: 1,
      frozen: false,
      createdAtMs: ctx.nowMs,
      updatedAtMs: ctx.nowMs,
    };
    await applyVehicleFields(ctx, v, biz);
    await ctx.ports.vehicles.put(v);
    return ok({ id: v.id, uuId: v.uuId });
  },
});

/** 4.11.3 edit vehicle [DOC request, partly]: replacement of the sent fields; the plate cannot change here. */
export const editCar = defineService({
  id: "editCar",
  section: "4.11.3",
  ...vehicleWrite,
  async handle(biz, ctx) {
    const v = await findVehicle(ctx, { uuId: biz.uuId, id: biz.id });
    if (!samePlate(v.carNum, biz.carNum)) refuse("conflict", `carNum ${biz.carNum} differs from the stored ${v.carNum}; change plates with changeCarNum`);
    await applyVehicleFields(ctx, v, biz);
    await ctx.ports.vehicles.put(v);
    return ok({ id: v.id, uuId: v.uuId });
  },
});

const vehicleRef = () => ({ parkCode: wStrReq(), uuId: wStrOpt(), id: wIntOpt(), carNum: wStrOpt() });

/** 4.11.4 delete vehicle [OURS]. */
export const deleteCar = defineService({
  id: "deleteCar",
  section: "4.11.4",
  mutates: true,
  schema: () => z.looseObject({ ...vehicleRef(), operator: wStrOpt() }),
  async handle(biz, ctx) {
    const v = await findVehicle(ctx, biz);
    await ctx.ports.vehicles.remove(v.uuId);
    ctx.log.info({ uuId: v.uuId, carNum: v.carNum, operator: biz.operator }, "vehicle deleted by the platform");
    return ok({ id: v.id, uuId: v.uuId });
  },
});

/** 4.11.5 plate change [OURS]. `carNum`, when sent, must be the stored plate. */
export const changeCarNum = defineService({
  id: "changeCarNum",
  section: "4.11.5",
  mutates: true,
  lengths: { newCarNum: 50 },
  schema: () => z.looseObject({ parkCode: wStrReq(), uuId: wStrOpt(), id: wIntOpt(), carNum: wStrOpt(), newCarNum: wStrReq(), operator: wStrOpt() }),
  async handle(biz, ctx) {
    const v = await findVehicle(ctx, { uuId: biz.uuId, id: biz.id, carNum: biz.uuId || biz.id ? undefined : biz.carNum });
    if (biz.carNum !== undefined && biz.carNum.trim() !== "" && !samePlate(v.carNum, biz.carNum)) {
      refuse("conflict", `the vehicle's plate is ${v.carNum}, not ${biz.carNum}`);
    }
    const clash = (await ctx.ports.vehicles.list()).find((o) => o.uuId !== v.uuId && samePlate(o.carNum, biz.newCarNum));
    if (clash) refuse("conflict", `plate ${biz.newCarNum} is already registered (uuId ${clash.uuId})`);
    const old = v.carNum;
    v.carNum = biz.newCarNum.trim();
    v.updatedAtMs = ctx.nowMs;
    await ctx.ports.vehicles.put(v);
    ctx.log.info({ uuId: v.uuId, from: old, to: v.carNum, operator: biz.operator }, "vehicle plate changed by the platform");
    return ok({ id: v.id, uuId: v.uuId, carNum: v.carNum });
  },
});

const moneyOrder = () => ({ orderNo: wStrReq(), payType: wIntOpt(), payTime: wStrOpt(), timeStart: wStrOpt(), timeEnd: wStrOpt(), balance: wNumOpt() });

/** 4.11.6 recharge / extend [OURS]: absolute new validity and/or balance; idempotent on orderNo. */
export const rechargeCar = defineService({
  id: "rechargeCar",
  section: "4.11.6",
  mutates: true,
  schema: () => z.looseObject({ ...vehicleRef(), ...moneyOrder(), amount: wNumOpt() }),
  async handle(biz, ctx) {
    const v = await findVehicle(ctx, biz);
    const from = readTime(ctx, biz.timeStart, "timeStart");
    const to = readTime(ctx, biz.timeEnd, "timeEnd");
    if (to === null && biz.balance === undefined) refuse("badBizContent", "a recharge must carry timeEnd or balance");
    if ((biz.amount ?? 0) < 0 || (biz.balance ?? 0) < 0) refuse("badBizContent", "amounts must not be negative");
    const payment = vehiclePayment(ctx, v, biz.orderNo, "fixed-car", biz.amount ?? 0, biz.payType, biz.payTime);
    return oncePerOrder(ctx, v, payment, () => {
      if (from !== null) v.timeStartMs = from;
      if (to !== null) v.timeEndMs = to;
      if (biz.balance !== undefined) v.balanceFen = yuanToFen(biz.balance);
    });
  },
});

/** 4.11.10 refund [OURS]: records the amount paid back; may shorten validity or set a balance. */
export const refundCar = defineService({
  id: "refundCar",
  section: "4.11.10",
  mutates: true,
  schema: () => z.looseObject({ ...vehicleRef(), ...moneyOrder(), refund: wNum() }),
  async handle(biz, ctx) {
    const v = await findVehicle(ctx, biz);
    if (biz.refund <= 0) refuse("badBizContent", "refund must be positive");
    if ((biz.balance ?? 0) < 0) refuse("badBizContent", "balance must not be negative");
    const to = readTime(ctx, biz.timeEnd, "timeEnd");
    const payment = vehiclePayment(ctx, v, biz.orderNo, "refund", biz.refund, biz.payType, biz.payTime);
    return oncePerOrder(ctx, v, payment, () => {
      v.refundFen = (v.refundFen ?? 0) + yuanToFen(biz.refund);
      if (to !== null) v.timeEndMs = to;
      if (biz.balance !== undefined) v.balanceFen = yuanToFen(biz.balance);
    });
  },
});

/**
 * A money order's change to the vehicle, made once per orderNo: a repeat answers the vehicle as
 * it is. Vehicle first, payment last: a crash between them is repaired by the cloud's retry
 * (the values are absolute, so applying them twice is harmless).
 */
async function oncePerOrder(ctx: ServiceContext, v: Vehicle, payment: Payment, change: () => void) {
  if ((await priorPayment(ctx, payment)) === "new") {
    change();
    v.updatedAtMs = ctx.nowMs;
    await ctx.ports.vehicles.put(v);
    await ctx.ports.payments.put(payment);
  }
  return ok(vehicleItem(ctx, v));
}

function vehiclePayment(
  ctx: ServiceContext,
  v: Vehicle,
  orderNo: string,
  kind: "fixed-car" | "refund",
  yuan: number,
  payType: number | undefined,
  payTime: string | undefined,
): Payment {
  return platformPayment(ctx, {
    orderNo: orderNo.trim(),
    kind,
    plate: v.carNum,
    targetUuid: v.uuId,
    payType: payType ?? 0,
    amountFen: yuanToFen(yuan),
    payAtMs: readTime(ctx, payTime, "payTime") ?? ctx.nowMs,
  });
}

function freezeService(id: "freezeCar" | "unfreezeCar", section: string, frozen: boolean) {
  return defineService({
    id,
    section,
    mutates: true,
    schema: () => z.looseObject({ ...vehicleRef(), operator: wStrOpt(), remark: wStrOpt() }),
    async handle(biz, ctx) {
      const v = await findVehicle(ctx, biz);
      if (v.frozen !== frozen) {
        v.frozen = frozen;
        v.updatedAtMs = ctx.nowMs;
        await ctx.ports.vehicles.put(v);
        ctx.log.info({ uuId: v.uuId, carNum: v.carNum, operator: biz.operator, frozen }, frozen ? "vehicle frozen by the platform" : "vehicle unfrozen by the platform");
      }
      return ok({ id: v.id, uuId: v.uuId, frozen: frozen ? 1 : 0 });
    },
  });
}

/** 4.11.7 freeze [OURS]: the car is treated as temporary until unfrozen. */
export const freezeCar = freezeService("freezeCar", "4.11.7", true);
/** 4.11.8 unfreeze [OURS]. */
export const unfreezeCar = freezeService("unfreezeCar", "4.11.8", false);

/** 4.11.9 clear all vehicles [OURS]: destructive, so gated by config and always logged. */
export const clearCar = defineService({
  id: "clearCar",
  section: "4.11.9",
  mutates: true,
  schema: () => z.looseObject({ parkCode: wStrReq(), operator: wStrOpt() }),
  async handle(biz, ctx) {
    if (!ctx.config.platform.server.allowClearAllVehicles) {
      ctx.log.warn({ operator: biz.operator }, "platform asked to clear all vehicles; refused (platform.server.allowClearAllVehicles is off)");
      refuse("forbidden", "clearing all vehicles is disabled on this box (platform.server.allowClearAllVehicles)");
    }
    const deleted = await ctx.ports.vehicles.clear();
    ctx.log.warn({ operator: biz.operator, deleted }, "all vehicles cleared by the platform");
    return ok({ deleted });
  },
});

export const vehicleServices = [queryMonthlyRent, queryCarPage, addCar, editCar, deleteCar, changeCarNum, rechargeCar, freezeCar, unfreezeCar, clearCar, refundCar];
