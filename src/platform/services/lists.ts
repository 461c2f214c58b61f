import { z } from "zod";
import type { BlacklistEntry, CarGroup } from "../../store/records.js";
import { fenToYuan, wIntOpt, wNumOpt, wStrOpt, wStrReq, yuanToFen } from "../wire.js";
import {
  defineService,
  findCarGroup,
  newUuid,
  nextId,
  ok,
  paginate,
  plateMatchesSearch,
  platformPayment,
  priorPayment,
  readTime,
  refuse,
  samePlate,
  wireTime,
  type ServiceContext,
} from "./common.js";

/** Blacklist (4.9, [SIBLING] data model) and car groups (4.10), both [OURS] on the wire. */

function blacklistItem(ctx: ServiceContext, r: BlacklistEntry) {
  return {
    id: r.id,
    uuid: r.uuid,
    carNum: r.carNum,
    type: r.type,
    duration: wireTime(ctx, r.untilMs),
    operator: r.operator,
    remark: r.remark,
    denyIn: r.denyIn ? 1 : 0,
    denyOut: r.denyOut ? 1 : 0,
    inNotify: r.inNotify ? 1 : 0,
    createTime: wireTime(ctx, r.createdAtMs),
  };
}

const flag = (value: number | undefined, fallback: boolean, name: string): boolean => {
  if (value === undefined) return fallback;
  if (value !== 0 && value !== 1) refuse("badBizContent", `${name} must be 0 or 1`);
  return value === 1;
};

/** 4.9.1 blacklist query [OURS]: page/pageSize missing or ≤ 0 returns every record ([SIBLING]). */
export const queryBlacklist = defineService({
  id: "queryBlacklist",
  section: "4.9.1",
  mutates: false,
  schema: () => z.looseObject({ parkCode: wStrReq(), carNum: wStrOpt(), startTime: wStrOpt(), stopTime: wStrOpt(), page: wIntOpt(), pageSize: wIntOpt() }),
  async handle(biz, ctx) {
    const from = readTime(ctx, biz.startTime, "startTime");
    const to = readTime(ctx, biz.stopTime, "stopTime");
    const items = (await ctx.ports.blacklist.list())
      .filter((r) => plateMatchesSearch(r.carNum, biz.carNum))
      .filter((r) => (from === null || r.createdAtMs >= from) && (to === null || r.createdAtMs <= to))
      .sort((a, b) => a.id - b.id);
    const page = paginate(items, biz.page, biz.pageSize, Number.MAX_SAFE_INTEGER, true);
    return ok({ ...page, items: page.items.map((r) => blacklistItem(ctx, r)) });
  },
});

/** 4.9.2 blacklist add [OURS]: an existing uuid, or the same plate and type, is updated in place. */
export const addBlacklist = defineService({
  id: "addBlacklist",
  section: "4.9.2",
  mutates: true,
  lengths: { uuid: 32, carNum: 20, operator: 20, remark: 50 },
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      uuid: wStrOpt(),
      carNum: wStrReq(),
      type: wIntOpt(),
      duration: wStrOpt(),
      operator: wStrOpt(),
      remark: wStrOpt(),
      denyIn: wIntOpt(),
      denyOut: wIntOpt(),
      inNotify: wIntOpt(),
    }),
  async handle(biz, ctx) {
    const type = biz.type ?? 0;
    if (type !== 0 && type !== 1) refuse("badBizContent", `type ${type} is not 0 (restriction) or 1 (coupon)`);
    const untilMs = readTime(ctx, biz.duration, "duration");
    const all = await ctx.ports.blacklist.list();
    const uuid = biz.uuid?.trim() ?? "";
    const prior = uuid !== "" ? all.find((r) => r.uuid === uuid) : all.find((r) => samePlate(r.carNum, biz.carNum) && r.type === type);
    const record: BlacklistEntry = {
      id: prior?.id ?? nextId(all.map((r) => r.id)),
      uuid: prior?.uuid ?? (uuid || newUuid()),
      carNum: biz.carNum.trim(),
      type,
      untilMs,
      operator: biz.operator ?? "",
      remark: biz.remark ?? "",
      denyIn: flag(biz.denyIn, true, "denyIn"),
      denyOut: flag(biz.denyOut, true, "denyOut"),
      inNotify: flag(biz.inNotify, false, "inNotify"),
      createdAtMs: prior?.createdAtMs ?? ctx.nowMs,
      updatedAtMs: ctx.nowMs,
    };
    await ctx.ports.blacklist.put(record);
    ctx.log.info({ uuid: record.uuid, carNum: record.carNum, operator: record.operator, updated: prior !== undefined }, "blacklist entry stored");
    return ok({ id: record.id, uuid: record.uuid });
  },
});

/** 4.9.3 blacklist delete [OURS]: by uuid, id, or every entry of a plate. */
export const deleteBlacklist = defineService({
  id: "deleteBlacklist",
  section: "4.9.3",
  mutates: true,
  schema: () => z.looseObject({ parkCode: wStrReq(), uuid: wStrOpt(), id: wIntOpt(), carNum: wStrOpt(), operator: wStrOpt() }),
  async handle(biz, ctx) {
    const all = await ctx.ports.blacklist.list();
    const uuid = biz.uuid?.trim() ?? "";
    const carNum = biz.carNum?.trim() ?? "";
    let targets: BlacklistEntry[];
    if (uuid !== "") targets = all.filter((r) => r.uuid === uuid);
    else if (biz.id !== undefined && biz.id > 0) targets = all.filter((r) => r.id === biz.id);
    else if (carNum !== "") targets = all.filter((r) => samePlate(r.carNum, carNum));
    else refuse("badBizContent", "identify the entry by uuid, id or carNum");
    if (targets.length === 0) refuse("notFound", "no such blacklist entry");
    for (const r of targets) await ctx.ports.blacklist.remove(r.uuid);
    ctx.log.info({ uuids: targets.map((r) => r.uuid), operator: biz.operator }, "blacklist entries deleted");
    return ok({ deleted: targets.length });
  },
});

// ---- 4.10 car groups ----

async function carGroupItem(ctx: ServiceContext, g: CarGroup) {
  const carCount = (await ctx.ports.vehicles.list()).filter((v) => v.carGroupUuid === g.carGroupUuid).length;
  return {
    carGroupID: g.carGroupID,
    carGroupUuid: g.carGroupUuid,
    name: g.name,
    spaceCount: g.spaces ?? 0,
    carTypeCode: g.carTypeCode,
    timeStart: wireTime(ctx, g.timeStartMs),
    timeEnd: wireTime(ctx, g.timeEndMs),
    carMMoney: fenToYuan(g.carMMoneyFen),
    balance: fenToYuan(g.balanceFen),
    remark: g.remark,
    state: g.state,
    carCount,
  };
}

/** 4.10.1 paged car-group query [OURS]. */
export const queryCarGroupPage = defineService({
  id: "queryCarGroupPage",
  section: "4.10.1",
  mutates: false,
  schema: () => z.looseObject({ parkCode: wStrReq(), page: wIntOpt(), pageSize: wIntOpt(), name: wStrOpt() }),
  async handle(biz, ctx) {
    const name = biz.name?.trim() ?? "";
    const groups = (await ctx.ports.carGroups.list()).filter((g) => name === "" || g.name.includes(name)).sort((a, b) => a.carGroupID - b.carGroupID);
    const page = paginate(groups, biz.page, biz.pageSize, ctx.config.platform.server.maxPageSize);
    const items = [];
    for (const g of page.items) items.push(await carGroupItem(ctx, g));
    return ok({ ...page, items });
  },
});

const groupFields = () => ({
  parkCode: wStrReq(),
  carGroupUuid: wStrOpt(),
  carGroupID: wIntOpt(),
  name: wStrOpt(),
  spaceCount: wIntOpt(),
  carTypeCode: wIntOpt(),
  timeStart: wStrOpt(),
  timeEnd: wStrOpt(),
  carMMoney: wNumOpt(),
  balance: wNumOpt(),
  remark: wStrOpt(),
  state: wIntOpt(),
});
const groupSchema = () => z.looseObject(groupFields());

function applyGroupFields(ctx: ServiceContext, g: CarGroup, biz: z.infer<ReturnType<typeof groupSchema>>): void {
  if (biz.name !== undefined) {
    if (biz.name.trim() === "") refuse("badBizContent", "name must not be empty");
    g.name = biz.name.trim();
  }
  if (biz.spaceCount !== undefined) {
    if (biz.spaceCount < 1) refuse("badBizContent", "spaceCount must be at least 1");
    g.spaces = biz.spaceCount;
  }
  if (biz.carTypeCode !== undefined) g.carTypeCode = biz.carTypeCode;
  if (biz.timeStart !== undefined) g.timeStartMs = readTime(ctx, biz.timeStart, "timeStart");
  if (biz.timeEnd !== undefined) g.timeEndMs = readTime(ctx, biz.timeEnd, "timeEnd");
  if (g.timeStartMs !== null && g.timeEndMs !== null && g.timeEndMs < g.timeStartMs) refuse("badBizContent", "timeEnd lies before timeStart");
  if ((biz.carMMoney ?? 0) < 0 || (biz.balance ?? 0) < 0) refuse("badBizContent", "amounts must not be negative");
  if (biz.carMMoney !== undefined) g.carMMoneyFen = yuanToFen(biz.carMMoney);
  if (biz.balance !== undefined) g.balanceFen = yuanToFen(biz.balance);
  if (biz.remark !== undefined) g.remark = biz.remark;
  if (biz.state !== undefined) {
    if (biz.state !== 0 && biz.state !== 1) refuse("badBizContent", `state ${biz.state} is not 0 or 1`);
    g.state = biz.state;
  }
  g.updatedAtMs = ctx.nowMs;
}

/** 4.10.2 add car group [OURS]; answers its carGroupID and carGroupUuid. */
export const addCarGroup = defineService({
  id: "addCarGroup",
  section: "4.10.2",
  mutates: true,
  lengths: { carGroupUuid: 50, name: 50, remark: 50 },
  schema: groupSchema,
  async handle(biz, ctx) {
    if (biz.name === undefined || biz.name.trim() === "") refuse("badBizContent", "name is required");
    if (biz.spaceCount === undefined) refuse("badBizContent", "spaceCount is required");
    const all = await ctx.ports.carGroups.list();
    const uuid = biz.carGroupUuid?.trim() || newUuid();
    if (all.some((g) => g.carGroupUuid === uuid)) refuse("conflict", `a car group with uuid ${uuid} exists`);
    if (all.some((g) => g.name === biz.name!.trim())) refuse("conflict", `a car group named ${biz.name} exists`);
    const g: CarGroup = {
      carGroupID: nextId(all.map((o) => o.carGroupID)),
      carGroupUuid: uuid,
      name: "",
      spaces: 1,
      carTypeCode: 81,
      timeStartMs: null,
      timeEndMs: null,
      carMMoneyFen: 0,
      balanceFen: 0,
      remark: "",
      state: 1,
      createdAtMs: ctx.nowMs,
      updatedAtMs: ctx.nowMs,
    };
    applyGroupFields(ctx, g, biz);
    await ctx.ports.carGroups.put(g);
    return ok({ carGroupID: g.carGroupID, carGroupUuid: g.carGroupUuid });
  },
});

async function requireGroup(ctx: ServiceContext, biz: { carGroupUuid?: string | undefined; carGroupID?: number | undefined }): Promise<CarGroup> {
  const g = await findCarGroup(ctx, biz);
  if (!g) refuse("badBizContent", "identify the car group by carGroupUuid or carGroupID");
  return g;
}

/** 4.10.3 edit car group [OURS]: the fields sent replace the stored ones. */
export const editCarGroup = defineService({
  id: "editCarGroup",
  section: "4.10.3",
  mutates: true,
  lengths: { name: 50, remark: 50 },
  schema: groupSchema,
  async handle(biz, ctx) {
    const g = await requireGroup(ctx, biz);
    if (biz.name !== undefined && (await ctx.ports.carGroups.list()).some((o) => o.carGroupUuid !== g.carGroupUuid && o.name === biz.name!.trim())) {
      refuse("conflict", `a car group named ${biz.name} exists`);
    }
    applyGroupFields(ctx, g, biz);
    await ctx.ports.carGroups.put(g);
    return ok(await carGroupItem(ctx, g));
  },
});

/** 4.10.4 delete car group [OURS]: refused while vehicles still belong to it. */
export const deleteCarGroup = defineService({
  id: "deleteCarGroup",
  section: "4.10.4",
  mutates: true,
  schema: () => z.looseObject({ parkCode: wStrReq(), carGroupUuid: wStrOpt(), carGroupID: wIntOpt(), operator: wStrOpt() }),
  async handle(biz, ctx) {
    const g = await requireGroup(ctx, biz);
    const members = (await ctx.ports.vehicles.list()).filter((v) => v.carGroupUuid === g.carGroupUuid).length;
    if (members > 0) refuse("conflict", `car group ${g.name} still has ${members} vehicle(s)`);
    await ctx.ports.carGroups.remove(g.carGroupUuid);
    ctx.log.info({ uuid: g.carGroupUuid, operator: biz.operator }, "car group deleted by the platform");
    return ok({ carGroupID: g.carGroupID, carGroupUuid: g.carGroupUuid });
  },
});

/** 4.10.5 car-group recharge / extend [OURS]: absolute validity and/or balance; idempotent on orderNo. */
export const rechargeCarGroup = defineService({
  id: "rechargeCarGroup",
  section: "4.10.5",
  mutates: true,
  schema: () =>
    z.looseObject({
      parkCode: wStrReq(),
      carGroupUuid: wStrOpt(),
      carGroupID: wIntOpt(),
      orderNo: wStrReq(),
      payType: wIntOpt(),
      payTime: wStrOpt(),
      amount: wNumOpt(),
      timeStart: wStrOpt(),
      timeEnd: wStrOpt(),
      balance: wNumOpt(),
    }),
  async handle(biz, ctx) {
    const g = await requireGroup(ctx, biz);
    const from = readTime(ctx, biz.timeStart, "timeStart");
    const to = readTime(ctx, biz.timeEnd, "timeEnd");
    if (to === null && biz.balance === undefined) refuse("badBizContent", "a recharge must carry timeEnd or balance");
    if ((biz.amount ?? 0) < 0 || (biz.balance ?? 0) < 0) refuse("badBizContent", "amounts must not be negative");
    const payment = platformPayment(ctx, {
      orderNo: biz.orderNo.trim(),
      kind: "car-group",
      targetUuid: g.carGroupUuid,
      payType: biz.payType ?? 0,
      amountFen: yuanToFen(biz.amount ?? 0),
      payAtMs: readTime(ctx, biz.payTime, "payTime") ?? ctx.nowMs,
    });
    if ((await priorPayment(ctx, payment)) === "new") {
      if (from !== null) g.timeStartMs = from;
      if (to !== null) g.timeEndMs = to;
      if (biz.balance !== undefined) g.balanceFen = yuanToFen(biz.balance);
      g.updatedAtMs = ctx.nowMs;
      await ctx.ports.carGroups.put(g);
      await ctx.ports.payments.put(payment);
    }
    return ok(await carGroupItem(ctx, g));
  },
});

export const listServices = [queryBlacklist, addBlacklist, deleteBlacklist, queryCarGroupPage, addCarGroup, editCarGroup, deleteCarGroup, rechargeCarGroup];
