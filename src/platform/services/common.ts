import { randomUUID } from "node:crypto";
import type { z } from "zod";
import type { Logger } from "../../kernel/log.js";
import { samePlate } from "../../core/plates/index.js";
import type { PlatformConfig, ReturnCodeName, Section4ServiceId } from "../config.js";
import { pageOf, wholePage, type Page } from "../../store/collection.js";
import type { CarGroup, Payment, Vehicle } from "../../store/records.js";
import type { LaneRefusalReason, LotPorts } from "../ports.js";
import { formatWireTime, parseWireTime } from "../wire.js";

/** The slice of the app config the section-4 handlers read; `Config` fits it as is. */
export interface OpenInterfaceConfig {
  platform: PlatformConfig;
  lot: { parkCode: string; timeZone: string; totalSpaces: number };
  lanes: ReadonlyArray<{ id: string; channelId: string; direction: "in" | "out" }>;
}

export interface ServiceContext {
  readonly ports: LotPorts;
  readonly config: OpenInterfaceConfig;
  /** Epoch ms when the request was accepted. */
  readonly nowMs: number;
  readonly log: Logger;
}

export interface Reply {
  code: ReturnCodeName;
  msg?: string;
  data?: unknown;
}

/** A handler's refusal: answered with the mapped code and this message; nothing was changed. */
export class Refusal extends Error {
  constructor(
    readonly codeName: ReturnCodeName,
    message: string,
  ) {
    super(message);
  }
}

export function refuse(codeName: ReturnCodeName, message: string): never {
  throw new Refusal(codeName, message);
}

export interface ServiceDef<S extends z.ZodObject = z.ZodObject> {
  readonly id: Section4ServiceId;
  /** The document's section number, for logs and docs. */
  readonly section: string;
  readonly schema: S;
  /** Declared String(n) lengths: exceeded → a warning, never a rejection (docs/protocol.md §2: the document's own examples exceed them). */
  readonly lengths?: Readonly<Record<string, number>>;
  /** Changes stored lists: such handlers run one at a time. */
  readonly mutates: boolean;
  handle(biz: z.infer<S>, ctx: ServiceContext): Promise<Reply>;
}

/**
 * A service as its module declares it: the schema as a function, built at the first request
 * for the service rather than when the box starts. The services' schemas were over a third of
 * the zod schemas built before the ready line (docs/architecture.md, start-up budgets), for
 * requests most boxes see rarely or never.
 */
export type ServiceSpec<S extends z.ZodObject> = Omit<ServiceDef<S>, "schema"> & { readonly schema: () => S };

export function defineService<S extends z.ZodObject>(spec: ServiceSpec<S>): ServiceDef<S> {
  const { schema: build, ...rest } = spec;
  let built: S | undefined;
  return {
    ...rest,
    get schema(): S {
      return (built ??= build());
    },
  };
}

export const ok = (data?: unknown, msg?: string): Reply => {
  const reply: Reply = { code: "success" };
  if (data !== undefined) reply.data = data;
  if (msg !== undefined) reply.msg = msg;
  return reply;
};

export const laneReasonCode: Record<LaneRefusalReason, ReturnCodeName> = {
  "not-found": "notFound",
  "no-vehicle": "noVehicle",
  "lane-invalid": "laneInvalid",
  "lot-full": "lotFull",
  busy: "busy",
  expired: "expired",
  denied: "denied",
  unavailable: "unavailable",
  "box-unreachable": "boxUnreachable",
};

/** 32 upper-case hex characters, the shape of the document's uuIds. */
export function newUuid(): string {
  return randomUUID().replace(/-/g, "").toUpperCase();
}

export function nextId(ids: readonly number[]): number {
  return ids.reduce((max, id) => Math.max(max, id), 0) + 1;
}

export function wireTime(ctx: ServiceContext, ms: number | null): string {
  return ms === null ? "" : formatWireTime(ms, ctx.config.lot.timeZone);
}

/** Reads an optional wire time: absent or "" → null; anything unparseable is refused. */
export function readTime(ctx: ServiceContext, value: string | undefined, field: string): number | null {
  if (value === undefined || value.trim() === "") return null;
  const ms = parseWireTime(value, ctx.config.lot.timeZone);
  if (ms === undefined) refuse("badBizContent", `${field} "${value}" is not YYYY-MM-DD HH:mm:ss`);
  return ms;
}

export function requireTime(ctx: ServiceContext, value: string, field: string): number {
  const ms = readTime(ctx, value, field);
  if (ms === null) refuse("badBizContent", `${field} is required`);
  return ms;
}

/**
 * One page, 1-based (4.11.1 [INFERRED]). `page`/`pageSize` missing or ≤ 0 returns everything
 * when `allWhenMissing` ([SIBLING] blacklist query); pageSize is clamped to maxPageSize.
 */
export function paginate<T>(items: readonly T[], page: number | undefined, pageSize: number | undefined, maxPageSize: number, allWhenMissing = false): Page<T> {
  if (allWhenMissing && (!page || page <= 0 || !pageSize || pageSize <= 0)) return wholePage(items);
  return pageOf(items, Math.max(1, page ?? 1), Math.min(Math.max(1, pageSize ?? maxPageSize), maxPageSize));
}

// Plates compare by the core's one plate key (a virtual plate matches with or without 无, 4.1,
// 4.3); re-exported so the services keep one import for their helpers.
export { plateMatchesSearch, samePlate } from "../../core/plates/index.js";

export function laneByChannel(ctx: ServiceContext, channelId: string): { id: string; channelId: string; direction: "in" | "out" } | undefined {
  return ctx.config.lanes.find((lane) => lane.channelId === channelId.trim());
}

export interface VehicleRef {
  uuId?: string | undefined;
  id?: number | undefined;
  carNum?: string | undefined;
}

/** Finds a fixed vehicle by uuId, falling back to id, then plate (4.11.3 edge cases). */
export async function findVehicle(ctx: ServiceContext, ref: VehicleRef): Promise<Vehicle> {
  const uuId = ref.uuId?.trim() ?? "";
  if (uuId !== "") {
    const found = await ctx.ports.vehicles.get(uuId);
    if (!found) refuse("notFound", `no vehicle with uuId ${uuId}`);
    return found;
  }
  const all = await ctx.ports.vehicles.list();
  if (ref.id !== undefined && ref.id > 0) {
    const found = all.find((v) => v.id === ref.id);
    if (!found) refuse("notFound", `no vehicle with id ${ref.id}`);
    return found;
  }
  const carNum = ref.carNum?.trim() ?? "";
  if (carNum !== "") {
    const found = all.find((v) => samePlate(v.carNum, carNum));
    if (!found) refuse("notFound", `no vehicle with plate ${carNum}`);
    return found;
  }
  refuse("badBizContent", "identify the vehicle by uuId, id or carNum");
}

export interface CarGroupRef {
  carGroupUuid?: string | undefined;
  carGroupID?: number | undefined;
}

/** Finds a car group by uuid (preferred, 4.11.2) or id; undefined when neither is given. */
export async function findCarGroup(ctx: ServiceContext, ref: CarGroupRef): Promise<CarGroup | undefined> {
  const uuid = ref.carGroupUuid?.trim() ?? "";
  if (uuid !== "") {
    const found = await ctx.ports.carGroups.get(uuid);
    if (!found) refuse("notFound", `no car group with uuid ${uuid}`);
    return found;
  }
  if (ref.carGroupID !== undefined && ref.carGroupID > 0) {
    const found = (await ctx.ports.carGroups.list()).find((g) => g.carGroupID === ref.carGroupID);
    if (!found) refuse("notFound", `no car group with id ${ref.carGroupID}`);
    return found;
  }
  return undefined;
}

/**
 * Idempotency on orderNo (docs/protocol.md §4.2): the same notice again is answered 200 and
 * changes nothing; the same orderNo with other content is a conflict.
 */
export async function priorPayment(ctx: ServiceContext, candidate: Payment): Promise<"new" | "duplicate"> {
  const prior = await ctx.ports.payments.get(candidate.orderNo);
  if (!prior) return "new";
  const same =
    prior.kind === candidate.kind &&
    (prior.recordNo ?? "") === (candidate.recordNo ?? "") &&
    (prior.targetUuid ?? "") === (candidate.targetUuid ?? "") &&
    prior.amountFen === candidate.amountFen &&
    samePlate(prior.plate ?? "", candidate.plate ?? "");
  if (!same) refuse("conflict", `orderNo ${candidate.orderNo} is already recorded with other content`);
  return "duplicate";
}

/** A payment the platform reported, as the store keeps it (pay type as its decimal text). */
export function platformPayment(
  ctx: ServiceContext,
  fields: { orderNo: string; kind: Payment["kind"]; recordNo?: string; plate?: string; targetUuid?: string; payType: number; amountFen: number; payAtMs: number },
): Payment {
  const text = (key: "recordNo" | "plate" | "targetUuid") => (fields[key] ? { [key]: fields[key] } : {});
  return {
    orderNo: fields.orderNo,
    kind: fields.kind,
    ...text("recordNo"),
    ...text("plate"),
    ...text("targetUuid"),
    amountFen: fields.amountFen,
    payAtMs: fields.payAtMs,
    payType: String(fields.payType),
    source: "platform",
    receivedAtMs: ctx.nowMs,
  };
}
