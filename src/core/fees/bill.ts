import { DAY_MS, MINUTE_MS, instantsAtLocalMinute, isValidTimeZone, localDayNumber, localMinuteOfDay, zoneOffsetMs } from "../time/zone.js";
import { BillError } from "./errors.js";
import { fixedCarFreeIntervals, fixedCarSchema } from "./fixed-car.js";
import { billExtrasSchema, readBillExtrasFast, type BillExtras, type Coupon, type Prepayment, type PreviousStay, type Stay } from "./stay.js";
import { checkTariffSemantics, pricingFor, vehicleTypes, type FirstPeriod, type Pricing, type Tariff, type VehicleType } from "./tariff-schema.js";

/**
 * The fee engine (the rules in operators' words: docs/tariffs.md). Pure: no clock, no IO; the
 * same tariff, stay and extras give the same bill on any host in any zone. Amounts are integer fen.
 *
 * One file on purpose, though long: the steps below share the billing parts, the scale's
 * running position and the breakdown lines, and the hot loop stays allocation-free only while
 * they are not passed between modules. For the same reason the working records (parts,
 * charges, the walk's position) are kept in this module and reused from bill to bill (see
 * ChargeList): the box bills with a 1 MB young generation, where every byte a bill allocates
 * costs scavenges. What a bill returns is always built fresh.
 *
 * How a bill is made, in order (docs/tariffs.md says the same for operators):
 * 1. The stay is cut into billing parts: the part up to the first in-lot payment, and after a
 *    payment whose grace ran out, a part that starts again from the first period without free
 *    minutes. A fixed car's free intervals are cut out too; what is left is temporary parking.
 * 2. Each part runs the scale, restarting every 24 h or at local midnight when the tariff says so:
 *    free minutes, then segment by segment (day/night) the first period and the units, with the
 *    tariff's rounding and boundary rule.
 * 3. Caps, in this order: per segment occurrence, the percent bands (new-energy relief), per day,
 *    then the re-entry cap across stays of one plate. payableFee is the sum of the breakdown.
 * 4. Coupons give discountFee; prepayments are subtracted; paidFee is what is still due now.
 */

export type FreeReason =
  /** Within the free minutes (or the free minutes not billed because the switch is off). */
  | "free-minutes"
  /** A started part unit not charged because the segment rounds down. */
  | "part-unit"
  /** Inside a fixed car's validity and time windows. */
  | "fixed-car"
  /** Leaving within the grace after an in-lot payment. */
  | "post-payment-grace";

export interface CapApplied {
  kind: "segment" | "day" | "reentry";
  capFen: number;
}

/** One line of the bill an operator can explain to a driver. */
export interface BillPiece {
  kind: "first-period" | "units" | "flat" | "free";
  segment?: string;
  fromMs: number;
  toMs: number;
  units?: number;
  unitMinutes?: number;
  unitPriceFen?: number;
  /** units × unit price, before caps and percent bands. */
  grossFen: number;
  /** The percent band that applied (50 = half price). */
  percent?: number;
  /** Caps that reduced this piece. */
  caps?: CapApplied[];
  /** What this piece adds to payableFee. */
  feeFen: number;
  reason?: FreeReason;
  /** Charged because the car stayed past the grace after an in-lot payment. */
  afterPayment?: true;
}

export interface DiscountLine {
  /** Position in `extras.coupons`. */
  index: number;
  coupon: Coupon;
  discountFen: number;
  applied: boolean;
  note?: string;
}

export interface Bill {
  /** What the stay costs (the platform's payableFee), after caps. */
  payableFee: number;
  /** What the coupons took off. */
  discountFee: number;
  /** Still due now: payable − discount − prepaid, never below 0 (the platform's paidFee). */
  paidFee: number;
  /** Sum of the prepayments. */
  prepaidFee: number;
  breakdown: BillPiece[];
  discounts: DiscountLine[];
}

interface NormalisedExtras {
  prepayments: Prepayment[];
  coupons: Coupon[];
  previousStays: PreviousStay[];
}

/** Bills one stay. Throws BillError (never a silent zero) for input it cannot bill. */
export function bill(tariff: Tariff, stay: Stay, extras: BillExtras = {}): Bill {
  const ctx = prepare(tariff, stay);
  const ex = normaliseExtras(extras, stay);
  let prepaidFee = 0;
  for (const p of ex.prepayments) prepaidFee += p.feeFen;
  const breakdown: BillPiece[] = [];
  const payableFee = payableOf(ctx, stay.enterAtMs, stay.leaveAtMs, ex.prepayments, ex.previousStays, breakdown);

  const discounts: DiscountLine[] = [];
  let remaining = payableFee;
  const coupons = ex.coupons;
  const honouredCount = Math.min(coupons.length, tariff.coupons.maxPerStay);
  for (let index = honouredCount; index < coupons.length; index++) {
    discounts.push({ index, coupon: coupons[index]!, discountFen: 0, applied: false, note: `at most ${tariff.coupons.maxPerStay} coupon(s) per stay` });
  }
  // Minutes first (they change the stay), then free, percent, amount: each works on what the
  // previous left, so the result does not depend on how coupons of different kinds are ordered.
  let startMinutes = 0;
  let endMinutes = 0;
  for (const kind of couponOrder) {
    for (let index = 0; index < honouredCount; index++) {
      const coupon = coupons[index]!;
      if (coupon.kind !== kind) continue;
      let discountFen = 0;
      if (coupon.kind === "minutes") {
        if (coupon.from === "start") startMinutes += coupon.minutes;
        else endMinutes += coupon.minutes;
        const enter = stay.enterAtMs + startMinutes * MINUTE_MS;
        const leave = stay.leaveAtMs - endMinutes * MINUTE_MS;
        // Only the fee of the shorter stay counts: no breakdown is built for it. Its
        // prepayments are moved inside it (billingParts clamps them).
        const shorter = leave > enter ? payableOf(ctx, enter, leave, ex.prepayments, ex.previousStays, undefined) : 0;
        discountFen = remaining - Math.min(remaining, shorter);
      } else if (coupon.kind === "free") {
        discountFen = remaining;
      } else if (coupon.kind === "percent") {
        discountFen = Math.floor((remaining * coupon.percent) / 100);
      } else {
        discountFen = Math.min(coupon.fen, remaining);
      }
      remaining -= discountFen;
      discounts.push({ index, coupon, discountFen, applied: true });
    }
  }
  if (discounts.length > 1) discounts.sort(byIndex);
  return {
    payableFee,
    discountFee: payableFee - remaining,
    paidFee: Math.max(0, remaining - prepaidFee),
    prepaidFee,
    breakdown,
    discounts,
  };
}

const couponOrder: ReadonlyArray<Coupon["kind"]> = ["minutes", "free", "percent", "amount"];
const byIndex = (a: DiscountLine, b: DiscountLine): number => a.index - b.index;

// ---------------------------------------------------------------------------------------------
// Validation and compilation

interface CompiledFirstPeriod {
  ms: number;
  flatFen: number | undefined;
  unitMs: number;
  unitPriceFen: number;
}

interface CompiledSegment {
  index: number;
  name: string;
  startMin: number;
  lengthMin: number;
  firstPeriod: CompiledFirstPeriod | undefined;
  unitMs: number;
  unitPriceFen: number;
  rounding: "up" | "down";
  capFen: number | undefined;
  flatFen: number | undefined;
}

interface CompiledPricing {
  pricing: Pricing;
  /** The first period of the stay (top-level `firstPeriod`), whatever the segment. */
  firstPeriod: CompiledFirstPeriod | undefined;
  /** Sorted by start minute. */
  segments: CompiledSegment[];
  /** One segment covering the whole day: no boundaries. */
  single: boolean;
}

interface Ctx {
  tariff: Tariff;
  stay: Stay;
  tz: string;
  compiled: CompiledPricing;
  graceMs: number;
}

// Compiled once per tariff object and vehicle type. Tariffs are treated as immutable values:
// a new config makes new tariff objects.
const compiledCache = new WeakMap<Tariff, Map<VehicleType, CompiledPricing>>();

function prepare(tariff: Tariff, stay: Stay): Ctx {
  if (!stay || typeof stay !== "object") throw new BillError("invalid-stay", "a stay object is required", "stay");
  checkInstant(stay, "enterAtMs");
  checkInstant(stay, "leaveAtMs");
  if (!(vehicleTypes as readonly string[]).includes(stay.vehicleType)) {
    throw new BillError("unknown-vehicle-type", `unknown vehicle type ${JSON.stringify(stay.vehicleType)}; expected one of ${vehicleTypes.join(", ")}`, "stay.vehicleType");
  }
  if (!isValidTimeZone(stay.timeZone)) throw new BillError("invalid-time-zone", `${JSON.stringify(stay.timeZone)} is not an IANA time zone`, "stay.timeZone");
  if (stay.leaveAtMs < stay.enterAtMs) {
    throw new BillError("exit-before-entry", `the exit (${stay.leaveAtMs}) is before the entry (${stay.enterAtMs})`, "stay.leaveAtMs");
  }
  if (stay.fixedCar !== undefined) {
    const parsed = fixedCarSchema.safeParse(stay.fixedCar);
    if (!parsed.success) throw extrasError(parsed.error.issues, "stay.fixedCar");
  }
  const compiled = compile(tariff, stay.vehicleType);
  if (stay.leaveAtMs - stay.enterAtMs > tariff.maxStayDays * DAY_MS) {
    throw new BillError(
      "stay-too-long",
      `a stay of ${((stay.leaveAtMs - stay.enterAtMs) / DAY_MS).toFixed(1)} days is longer than maxStayDays (${tariff.maxStayDays})`,
      "stay.leaveAtMs",
    );
  }
  return { tariff, stay, tz: stay.timeZone, compiled, graceMs: tariff.postPayment.graceMinutes * MINUTE_MS };
}

function checkInstant(stay: Stay, key: "enterAtMs" | "leaveAtMs"): void {
  if (!Number.isSafeInteger(stay[key])) throw new BillError("invalid-instant", `must be whole epoch milliseconds, got ${String(stay[key])}`, `stay.${key}`);
}

function compile(tariff: Tariff, vehicleType: VehicleType): CompiledPricing {
  let byType = compiledCache.get(tariff);
  if (!byType) {
    if (!tariff || typeof tariff !== "object" || !Array.isArray(tariff.segments) || !tariff.coupons || !tariff.postPayment) {
      throw new BillError("invalid-tariff", "the tariff is not a parsed tariff (validate it with tariffSchema first)", "tariff");
    }
    const problems = checkTariffSemantics(tariff);
    if (problems.length > 0) {
      const first = problems[0]!;
      throw new BillError("invalid-tariff", `${problems.length} problem(s), first: ${first.path.join(".")}: ${first.message}`, "tariff");
    }
    byType = new Map();
    compiledCache.set(tariff, byType);
  }
  let compiled = byType.get(vehicleType);
  if (!compiled) {
    const pricing = pricingFor(tariff, vehicleType);
    if (pricing.segments.length === 0) throw new BillError("invalid-tariff", "the tariff has no segments", "tariff.segments");
    const segments = pricing.segments
      .map((seg, index): CompiledSegment => {
        const startMin = minuteOf(seg.from);
        const endMin = seg.to === "24:00" ? 1440 : minuteOf(seg.to);
        return {
          index,
          name: seg.name,
          startMin,
          lengthMin: (((endMin - startMin) % 1440) + 1440) % 1440 || 1440,
          firstPeriod: compileFirstPeriod(seg.firstPeriod),
          unitMs: (seg.unitMinutes ?? 1440) * MINUTE_MS,
          unitPriceFen: seg.unitPriceFen ?? 0,
          rounding: seg.rounding,
          capFen: seg.capFen,
          flatFen: seg.flatFen,
        };
      })
      .sort((a, b) => a.startMin - b.startMin);
    compiled = { pricing, firstPeriod: compileFirstPeriod(pricing.firstPeriod), segments, single: segments.length === 1 };
    byType.set(vehicleType, compiled);
  }
  return compiled;
}

function compileFirstPeriod(fp: FirstPeriod | undefined): CompiledFirstPeriod | undefined {
  if (!fp) return undefined;
  return { ms: fp.minutes * MINUTE_MS, flatFen: fp.priceFen, unitMs: (fp.unitMinutes ?? fp.minutes) * MINUTE_MS, unitPriceFen: fp.unitPriceFen ?? 0 };
}

function minuteOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

function normaliseExtras(extras: BillExtras, stay: Stay): NormalisedExtras {
  const empty = !extras || ((extras.prepayments?.length ?? 0) === 0 && (extras.coupons?.length ?? 0) === 0 && (extras.previousStays?.length ?? 0) === 0);
  if (empty) {
    if (extras !== undefined && (typeof extras !== "object" || extras === null)) throw new BillError("invalid-extras", "must be an object", "extras");
    return { prepayments: [], coupons: [], previousStays: [] };
  }
  // Well-formed extras skip the schema (its cost was a fifth of a bill); anything else gets
  // the schema's errors.
  let data = readBillExtrasFast(extras);
  if (!data) {
    const parsed = billExtrasSchema.safeParse(extras);
    if (!parsed.success) throw extrasError(parsed.error.issues, "extras");
    data = parsed.data;
  }
  const prepayments = data.prepayments;
  for (let i = 0; i < prepayments.length; i++) {
    const p = prepayments[i]!;
    if (p.atMs < stay.enterAtMs || p.atMs > stay.leaveAtMs) {
      throw new BillError("prepayment-outside-stay", `paid at ${p.atMs}, outside the stay ${stay.enterAtMs}..${stay.leaveAtMs}`, `extras.prepayments[${i}].atMs`);
    }
  }
  // The lists are fresh copies (reader and schema alike): sorted in place.
  if (prepayments.length > 1) prepayments.sort(byPaidAt);
  return data;
}

const byPaidAt = (a: Prepayment, b: Prepayment): number => a.atMs - b.atMs;

function extrasError(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>, root: string): BillError {
  const pathOf = (issue: { path: PropertyKey[] }): string => `${root}${issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")}`;
  const first = issues[0];
  return new BillError("invalid-extras", issues.map((issue) => `${pathOf(issue)}: ${issue.message}`).join("; "), first ? pathOf(first) : root);
}

// ---------------------------------------------------------------------------------------------
// Payable: parts → scale → caps

interface Part {
  fromMs: number;
  toMs: number;
  /** The free minutes apply (only the part that starts at the entry). */
  free: boolean;
  afterPayment: boolean;
}

/** Reused parts, like the charges (ChargeList). */
interface PartList {
  items: Part[];
  length: number;
}

function addPart(list: PartList, fromMs: number, toMs: number, free: boolean, afterPayment: boolean): void {
  let part = list.items[list.length];
  if (part === undefined) {
    part = { fromMs: Number.NaN, toMs: Number.NaN, free: false, afterPayment: false };
    list.items.push(part);
  }
  list.length++;
  part.fromMs = fromMs;
  part.toMs = toMs;
  part.free = free;
  part.afterPayment = afterPayment;
}

interface Charge {
  kind: "first-period" | "units" | "flat";
  /** Undefined for the stay's first period, which belongs to no segment. */
  segment: string | undefined;
  occurrence: number;
  capFen: number | undefined;
  startMs: number;
  endMs: number;
  unitMs: number;
  count: number;
  unitPriceFen: number;
  /** Flat charges are one block: never split, dated by their start. */
  block: boolean;
  afterPayment: boolean;
  /** count × unit price. */
  grossFen: number;
  /** After caps and percent (filled in by payableOf). */
  feeFen: number;
  // Always present (undefined until set): a property added later would change the object's
  // shape and make every access in the cap loops slow.
  percent: number | undefined;
  caps: CapApplied[] | undefined;
}

interface WalkState {
  charges: ChargeList;
  /** The free lines; undefined when no breakdown is built (a minutes coupon's shorter stay). */
  free: BillPiece[] | undefined;
  occurrence: number;
}

/**
 * Charges are scratch records, reused from bill to bill: a worst-case bill makes dozens, and
 * under the box's 1 MB young generation (systemd/lanekeeper.service, NODE_OPTIONS) making them
 * fresh each time had the scavenger take a fifth of the bill's time. The engine is synchronous
 * and calls no outside code, so payableOf never runs inside itself and one list of each kind is
 * enough; nothing in them outlives the call (bill lines are built fresh from them). A list
 * keeps the most records one bill needed.
 */
interface ChargeList {
  items: Charge[];
  length: number;
}

const walkCharges: ChargeList = { items: [], length: 0 };
const splitPieces: ChargeList = { items: [], length: 0 };
/** The parts of the stay (billingParts), and what a fixed car leaves of them: scratch too. */
const stayParts: PartList = { items: [], length: 0 };
const fixedCarParts: PartList = { items: [], length: 0 };
/** Fen used so far per segment occurrence, per cap day: scratch like the lists above. */
const usedByOccurrence: number[] = [];
const usedByDay: number[] = [];

/** The next record of `list`, every field to be set by the caller. */
function nextCharge(list: ChargeList): Charge {
  let charge = list.items[list.length];
  if (charge === undefined) {
    // NaN, not 0: the instants are doubles from the start, so their fields never change kind.
    charge = {
      kind: "units",
      segment: undefined,
      occurrence: 0,
      capFen: undefined,
      startMs: Number.NaN,
      endMs: Number.NaN,
      unitMs: 0,
      count: 0,
      unitPriceFen: 0,
      block: false,
      afterPayment: false,
      grossFen: 0,
      feeFen: 0,
      percent: undefined,
      caps: undefined,
    };
    list.items.push(charge);
  }
  list.length++;
  return charge;
}

/** The payable fee of [enterMs, leaveMs); its bill lines are appended to `breakdown` when given. */
function payableOf(
  ctx: Ctx,
  enterMs: number,
  leaveMs: number,
  prepayments: readonly Prepayment[],
  previousStays: readonly PreviousStay[],
  breakdown: BillPiece[] | undefined,
): number {
  walkCharges.length = 0;
  const state: WalkState = { charges: walkCharges, free: breakdown ? [] : undefined, occurrence: 0 };
  let parts = billingParts(ctx, enterMs, leaveMs, prepayments, state.free);
  if (ctx.stay.fixedCar) parts = withoutFixedCarTime(ctx, parts, enterMs, leaveMs, state.free);
  for (let i = 0; i < parts.length; i++) billPart(ctx, parts.items[i]!, state);

  const pricing = ctx.compiled.pricing;
  const cuts = cutInstants(ctx, pricing, enterMs, leaveMs, previousStays);
  let pieces = walkCharges;
  if (cuts.all.length > 0) {
    pieces = splitPieces;
    pieces.length = 0;
    for (let i = 0; i < walkCharges.length; i++) splitCharge(walkCharges.items[i]!, cuts.all, pieces);
  }
  const items = pieces.items;
  const count = pieces.length;

  // 1. Segment caps, per occurrence of a segment.
  for (let i = 0; i <= state.occurrence; i++) usedByOccurrence[i] = 0;
  for (let i = 0; i < count; i++) {
    const piece = items[i]!;
    if (piece.capFen === undefined) continue;
    const used = usedByOccurrence[piece.occurrence]!;
    const fee = Math.min(piece.feeFen, Math.max(0, piece.capFen - used));
    if (fee < piece.feeFen) (piece.caps ??= []).push({ kind: "segment", capFen: piece.capFen });
    piece.feeFen = fee;
    usedByOccurrence[piece.occurrence] = used + fee;
  }
  // 2. Percent bands (new-energy relief), by the minute after the entry where a unit starts.
  const bands = pricing.percentBands;
  if (bands.length > 0) {
    for (let i = 0; i < count; i++) {
      const piece = items[i]!;
      const minute = (piece.startMs - enterMs) / MINUTE_MS;
      for (const band of bands) {
        if (minute < band.fromMinutes || (band.toMinutes !== undefined && minute >= band.toMinutes)) continue;
        piece.percent = band.percent;
        // Rounded down to whole fen, in the driver's favour.
        piece.feeFen = Math.floor((piece.feeFen * band.percent) / 100);
        break;
      }
    }
  }
  // 3. Daily cap, per day (24 h from the entry, or natural day) in which a unit starts.
  if (pricing.dailyCap) {
    const cap = pricing.dailyCap.capFen;
    for (let i = 0; i <= cuts.dayStarts.length; i++) usedByDay[i] = 0;
    for (let i = 0; i < count; i++) {
      const piece = items[i]!;
      const day = dayIndex(cuts.dayStarts, piece.startMs);
      const used = usedByDay[day]!;
      const fee = Math.min(piece.feeFen, Math.max(0, cap - used));
      if (fee < piece.feeFen) (piece.caps ??= []).push({ kind: "day", capFen: cap });
      piece.feeFen = fee;
      usedByDay[day] = used + fee;
    }
  }
  // 4. Re-entry cap: what earlier stays in the window paid counts against it.
  if (pricing.reentryCap && cuts.reentryEndMs !== undefined) {
    const cap = pricing.reentryCap.capFen;
    let room = Math.max(0, cap - cuts.reentryPaidFen);
    for (let i = 0; i < count; i++) {
      const piece = items[i]!;
      if (piece.startMs >= cuts.reentryEndMs) continue;
      const fee = Math.min(piece.feeFen, room);
      if (fee < piece.feeFen) (piece.caps ??= []).push({ kind: "reentry", capFen: cap });
      piece.feeFen = fee;
      room -= fee;
    }
  }

  let payableFee = 0;
  if (!breakdown) {
    for (let i = 0; i < count; i++) payableFee += items[i]!.feeFen;
    return payableFee;
  }
  for (let i = 0; i < count; i++) {
    const piece = items[i]!;
    payableFee += piece.feeFen;
    breakdown.push(lineOf(piece));
  }
  const free = state.free!;
  if (free.length > 0) {
    for (const line of free) breakdown.push(line);
    breakdown.sort(byTime);
  }
  return payableFee;
}

/**
 * The bill line of a charge. Its keys come in one fixed order (the bill's JSON is compared byte
 * for byte): each shape is one literal, so no line is built by spreading or deleting keys.
 */
function lineOf(piece: Charge): BillPiece {
  const segment = piece.segment;
  let line: BillPiece;
  if (piece.kind === "flat") {
    // Flat charges have no unit length; a flat charge always belongs to a segment.
    line = {
      kind: piece.kind,
      segment: segment ?? "",
      fromMs: piece.startMs,
      toMs: piece.endMs,
      units: piece.count,
      unitPriceFen: piece.unitPriceFen,
      grossFen: piece.grossFen,
      feeFen: piece.feeFen,
    };
    if (segment === undefined) delete line.segment;
  } else {
    const { kind, startMs: fromMs, endMs: toMs, count: units, unitPriceFen, grossFen, feeFen } = piece;
    const unitMinutes = piece.unitMs / MINUTE_MS;
    // The stay's first period belongs to no segment: its line has no `segment` key at all.
    if (piece.afterPayment && piece.percent === undefined && !piece.caps) {
      // The usual line after an in-lot payment, in one literal: a key added later costs the line
      // a second allocation for its properties.
      return segment === undefined
        ? { kind, fromMs, toMs, units, unitMinutes, unitPriceFen, grossFen, feeFen, afterPayment: true }
        : { kind, segment, fromMs, toMs, units, unitMinutes, unitPriceFen, grossFen, feeFen, afterPayment: true };
    }
    line =
      segment === undefined
        ? { kind, fromMs, toMs, units, unitMinutes, unitPriceFen, grossFen, feeFen }
        : { kind, segment, fromMs, toMs, units, unitMinutes, unitPriceFen, grossFen, feeFen };
  }
  if (piece.percent !== undefined) line.percent = piece.percent;
  if (piece.caps) line.caps = piece.caps;
  if (piece.afterPayment) line.afterPayment = true;
  return line;
}

/** Time order; a free line before a charge that starts at the same instant. */
function byTime(a: BillPiece, b: BillPiece): number {
  return a.fromMs - b.fromMs || (a.kind === "free" ? -1 : 0) - (b.kind === "free" ? -1 : 0);
}

/**
 * The stay cut at in-lot payments (docs/tariffs.md `postPayment`). Payments (sorted) are
 * moved inside [enterMs, leaveMs]: a no-op for the stay itself, where they were checked to
 * lie, and what a minutes coupon's shorter stay needs. Free lines go to `free` when given.
 */
function billingParts(ctx: Ctx, enterMs: number, leaveMs: number, prepayments: readonly Prepayment[], free: BillPiece[] | undefined): PartList {
  const parts = stayParts;
  parts.length = 0;
  if (prepayments.length === 0) {
    addPart(parts, enterMs, leaveMs, true, false);
    return parts;
  }
  const graceMs = ctx.graceMs;
  const fromGraceEnd = ctx.tariff.postPayment.restartFrom === "grace-end";
  let anchor = Math.min(leaveMs, Math.max(enterMs, prepayments[0]!.atMs));
  // Empty parts are left out.
  if (anchor > enterMs) addPart(parts, enterMs, anchor, true, false);
  for (let i = 1; i <= prepayments.length; i++) {
    // Each payment's grace runs until the next payment, the last one's until the exit.
    const endMs = i < prepayments.length ? Math.min(leaveMs, Math.max(enterMs, prepayments[i]!.atMs)) : leaveMs;
    if (endMs > anchor + graceMs) {
      // Past the grace: billing starts again from the first period, without free minutes.
      const restartMs = fromGraceEnd ? anchor + graceMs : anchor;
      if (restartMs > anchor) free?.push(freePiece(anchor, restartMs, "post-payment-grace"));
      if (endMs > restartMs) addPart(parts, restartMs, endMs, false, true);
    } else if (endMs > anchor) {
      free?.push(freePiece(anchor, endMs, "post-payment-grace"));
    }
    anchor = endMs;
  }
  return parts;
}

/** Cuts a fixed car's free time out of the parts; each remaining piece is priced on its own. */
function withoutFixedCarTime(ctx: Ctx, parts: PartList, enterMs: number, leaveMs: number, free: BillPiece[] | undefined): PartList {
  const car = ctx.stay.fixedCar!;
  const freeSpans = fixedCarFreeIntervals(car, enterMs, leaveMs, ctx.tz, { graceDays: ctx.tariff.fixedCars.graceDays });
  if (freeSpans.length === 0) return parts;
  if (free) for (const [a, b] of freeSpans) free.push(freePiece(a, b, "fixed-car"));
  const out = fixedCarParts;
  out.length = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts.items[i]!;
    let cursor = part.fromMs;
    let first = true;
    for (const [a, b] of freeSpans) {
      if (b <= cursor || a >= part.toMs) continue;
      if (a > cursor) addPart(out, cursor, a, part.free && first, part.afterPayment);
      first = false;
      cursor = Math.max(cursor, b);
    }
    if (cursor < part.toMs) addPart(out, cursor, part.toMs, part.free && first, part.afterPayment);
  }
  return out;
}

/** One part: scale runs (restarts), free minutes, the stay's first period, then the segment walk. */
function billPart(ctx: Ctx, part: Part, state: WalkState): void {
  const { free } = ctx.compiled.pricing;
  const stayFirstPeriod = ctx.compiled.firstPeriod;
  const freeMs = free.minutes * MINUTE_MS;
  const restart = ctx.compiled.pricing.restart;
  // The scale's runs: where it starts again from the first period (tariff `restart`).
  let nextDay = restart === "natural-day" ? localDayNumber(part.fromMs, ctx.tz) + 1 : 0;
  let runEnd = part.fromMs;
  for (let k = 0; runEnd < part.toMs; k++) {
    const runStart = runEnd;
    if (restart === "never") runEnd = part.toMs;
    else if (restart === "every-24h") runEnd = Math.min(part.toMs, runStart + DAY_MS);
    else {
      // The next local midnight inside (fromMs, toMs), else the part's end.
      runEnd = part.toMs;
      for (; ; nextDay++) {
        const midnight = instantsAtLocalMinute(nextDay, 0, ctx.tz)[0]!;
        if (midnight >= part.toMs) break;
        if (midnight > part.fromMs) {
          runEnd = midnight;
          nextDay++;
          break;
        }
      }
    }
    let billStart = runStart;
    if (part.free && freeMs > 0 && (k === 0 || free.againEachDay)) {
      if (runEnd - runStart <= freeMs) {
        if (runEnd > runStart) state.free?.push(freePiece(runStart, runEnd, "free-minutes"));
        continue;
      }
      if (!free.billedOnceExceeded) {
        state.free?.push(freePiece(runStart, runStart + freeMs, "free-minutes"));
        billStart = runStart + freeMs;
      }
    }
    if (stayFirstPeriod) {
      billStart = chargeStayFirstPeriod(ctx, part, stayFirstPeriod, billStart, runEnd, state);
      if (billStart >= runEnd) continue;
    }
    walkSegments(ctx, part, billStart, runEnd, state);
  }
}

/**
 * The first period of the stay (top-level `firstPeriod`): from where the run's billing starts,
 * across any segment boundary ("3 元 for the first 2 hours whatever the time of day"). It is
 * no segment's occurrence, so no segment cap counts it; percent bands and the daily and
 * re-entry caps do, like any charge. Returns where the segments take over.
 */
function chargeStayFirstPeriod(ctx: Ctx, part: Part, fp: CompiledFirstPeriod, startMs: number, runEnd: number, state: WalkState): number {
  const fpEnd = startMs + fp.ms;
  const to = Math.min(fpEnd, runEnd);
  if (fp.flatFen !== undefined) {
    // One price, charged in full once started, even if the run ends inside it.
    pushStayCharge(state, part, startMs, 1, fp.ms, fp.flatFen, to, true);
    return fpEnd;
  }
  const span = to - startMs;
  const full = Math.floor(span / fp.unitMs);
  if (span === full * fp.unitMs) {
    pushStayCharge(state, part, startMs, full, fp.unitMs, fp.unitPriceFen, to, false);
    return to;
  }
  // Only the run's end can cut a unit (the units divide the first period). The part unit is
  // rounded like the segment in force where it starts: the rule the driver sees on the sign
  // for that time of day.
  const partStart = startMs + full * fp.unitMs;
  const { segments, single } = ctx.compiled;
  const seg = single ? segments[0]! : segmentAt(segments, localMinuteOfDay(partStart, ctx.tz));
  if (seg.rounding === "up") pushStayCharge(state, part, startMs, full + 1, fp.unitMs, fp.unitPriceFen, to, false);
  else {
    pushStayCharge(state, part, startMs, full, fp.unitMs, fp.unitPriceFen, partStart, false);
    state.free?.push(freePiece(partStart, to, "part-unit"));
  }
  return runEnd;
}

function pushStayCharge(state: WalkState, part: Part, startMs: number, count: number, unitMs: number, unitPriceFen: number, endMs: number, block: boolean): void {
  // An empty run takes no occurrence number: the numbers of the bill's lines stay consecutive.
  if (count <= 0) return;
  addCharge(state.charges, "first-period", undefined, ++state.occurrence, undefined, part.afterPayment, startMs, endMs, unitMs, count, unitPriceFen, block);
}

/**
 * Walks [startMs, runEnd) segment occurrence by segment occurrence. A segment's first period is
 * charged in the first occurrence of that segment in the run; later occurrences start with
 * units. The run end acts like the end of the stay (its part unit is rounded).
 */
function walkSegments(ctx: Ctx, part: Part, startMs: number, runEnd: number, state: WalkState): void {
  const { segments, single } = ctx.compiled;
  const finishUnit = ctx.compiled.pricing.boundary === "finish-unit";
  // Which segments have had their first period in this run: bits of a number for the usual
  // handful of segments, a set beyond.
  let firstPeriodMask = 0;
  let firstPeriodUsed: Set<number> | undefined;
  const occ = (walkScratch ??= {
    seg: segments[0]!,
    id: 0,
    afterPayment: false,
    runEnd: Number.NaN,
    finishUnit: false,
    endMs: Number.NaN,
    fromMs: Number.NaN,
    toMs: Number.NaN,
    nextMs: Number.NaN,
  });
  occ.afterPayment = part.afterPayment;
  occ.runEnd = runEnd;
  occ.finishUnit = finishUnit;
  let t = startMs;
  let guard = 0;
  while (t < runEnd) {
    if (++guard > 100_000) throw new BillError("invalid-tariff", "the segment walk did not advance", "tariff.segments");
    let endMs = Number.POSITIVE_INFINITY;
    if (single) occ.seg = segments[0]!;
    else {
      locateOccurrence(segments, t, ctx.tz, occ);
      endMs = occ.endMs;
    }
    const seg = occ.seg;
    occ.id = ++state.occurrence;
    const limit = Math.min(endMs, runEnd);
    const atEnd = runEnd <= endMs;

    if (seg.flatFen !== undefined) {
      pushCharge(state, occ, "flat", t, 1, limit - t, seg.flatFen, limit, true);
      t = limit;
      continue;
    }
    let cursor = t;
    const fp = seg.firstPeriod;
    let firstPeriodDue = false;
    if (fp) {
      if (seg.index < 30) {
        const bit = 1 << seg.index;
        firstPeriodDue = (firstPeriodMask & bit) === 0;
        firstPeriodMask |= bit;
      } else {
        firstPeriodUsed ??= new Set();
        firstPeriodDue = !firstPeriodUsed.has(seg.index);
        firstPeriodUsed.add(seg.index);
      }
    }
    if (fp && firstPeriodDue) {
      const fpEnd = cursor + fp.ms;
      if (fp.flatFen !== undefined) {
        // One price for the whole first period, charged in full once it has started.
        pushCharge(state, occ, "first-period", cursor, 1, fp.ms, fp.flatFen, Math.min(fpEnd, limit), true);
        if (fpEnd >= limit) {
          if (atEnd) return;
          t = finishUnit ? Math.min(fpEnd, runEnd) : limit;
          continue;
        }
        cursor = fpEnd;
      } else {
        const to = Math.min(fpEnd, limit);
        occ.fromMs = cursor;
        occ.toMs = to;
        if (!chargeUnits(state, occ, "first-period", fp.unitMs, fp.unitPriceFen, atEnd && to === limit)) return;
        const next = occ.nextMs;
        if (to === limit || next > fpEnd) {
          t = next;
          continue;
        }
        cursor = fpEnd;
      }
    }
    occ.fromMs = cursor;
    occ.toMs = limit;
    if (!chargeUnits(state, occ, "units", seg.unitMs, seg.unitPriceFen, atEnd)) return;
    t = occ.nextMs;
  }
}

/**
 * The segment occurrence being walked, and the span of it chargeUnits charges. The instants
 * travel in this record, not as arguments or return values: epoch milliseconds are no small
 * integers, and such a number passed to or returned from a call that is not inlined costs an
 * allocation each time.
 */
interface Occurrence {
  seg: CompiledSegment;
  id: number;
  afterPayment: boolean;
  runEnd: number;
  finishUnit: boolean;
  /** Where the occurrence ends (set by locateOccurrence). */
  endMs: number;
  /** The span chargeUnits charges next. */
  fromMs: number;
  toMs: number;
  /** Where the next occurrence starts (set by chargeUnits when the run goes on). */
  nextMs: number;
}

/** One record for every walk, changed in place (walkSegments never runs inside itself). */
let walkScratch: Occurrence | undefined;

function pushCharge(
  state: WalkState,
  occ: Occurrence,
  kind: Charge["kind"],
  startMs: number,
  count: number,
  unitMs: number,
  unitPriceFen: number,
  endMs: number,
  block: boolean,
): void {
  addCharge(state.charges, kind, occ.seg.name, occ.id, occ.seg.capFen, occ.afterPayment, startMs, endMs, unitMs, count, unitPriceFen, block);
}

/**
 * Appends `count` units as one charge line (nothing for no units); caps and discounts come
 * later. Every field is set: the record is reused (nextCharge).
 */
function addCharge(
  list: ChargeList,
  kind: Charge["kind"],
  segment: string | undefined,
  occurrence: number,
  capFen: number | undefined,
  afterPayment: boolean,
  startMs: number,
  endMs: number,
  unitMs: number,
  count: number,
  unitPriceFen: number,
  block: boolean,
): void {
  if (count <= 0) return;
  const charge = nextCharge(list);
  charge.kind = kind;
  charge.segment = segment;
  charge.occurrence = occurrence;
  charge.capFen = capFen;
  charge.startMs = startMs;
  charge.endMs = endMs;
  charge.unitMs = unitMs;
  charge.count = count;
  charge.unitPriceFen = unitPriceFen;
  charge.block = block;
  charge.afterPayment = afterPayment;
  charge.grossFen = count * unitPriceFen;
  charge.feeFen = charge.grossFen;
  charge.percent = undefined;
  charge.caps = undefined;
}

/**
 * Units over [occ.fromMs, occ.toMs) (up to the end of the stay or run when `endsHere`, else a
 * segment boundary). Returns false when the run is done, else true with occ.nextMs set to
 * where the next occurrence starts.
 */
function chargeUnits(state: WalkState, occ: Occurrence, kind: Charge["kind"], unitMs: number, priceFen: number, endsHere: boolean): boolean {
  const cursor = occ.fromMs;
  const to = occ.toMs;
  const span = to - cursor;
  const full = Math.floor(span / unitMs);
  const rest = span - full * unitMs;
  if (rest === 0) {
    pushCharge(state, occ, kind, cursor, full, unitMs, priceFen, to, false);
    return continuesAt(occ, endsHere, to);
  }
  const roundUp = occ.seg.rounding === "up";
  if (endsHere || !occ.finishUnit) {
    // The stay (or run) ends here, or the boundary splits the unit: round the part unit.
    if (roundUp) pushCharge(state, occ, kind, cursor, full + 1, unitMs, priceFen, to, false);
    else {
      pushCharge(state, occ, kind, cursor, full, unitMs, priceFen, cursor + full * unitMs, false);
      state.free?.push(freePiece(cursor + full * unitMs, to, "part-unit", occ.seg.name));
    }
    return continuesAt(occ, endsHere, to);
  }
  // finish-unit: the unit under way at the boundary is finished at this segment's rate and
  // length; the next segment starts where it ends (Beijing's boundary rule, docs/tariffs.md `boundary`).
  const carriedEnd = cursor + (full + 1) * unitMs;
  if (carriedEnd <= occ.runEnd) {
    pushCharge(state, occ, kind, cursor, full + 1, unitMs, priceFen, carriedEnd, false);
    return continuesAt(occ, carriedEnd >= occ.runEnd, carriedEnd);
  }
  // The stay ends inside the finished unit: it is the stay's last part unit.
  if (roundUp) pushCharge(state, occ, kind, cursor, full + 1, unitMs, priceFen, occ.runEnd, false);
  else {
    pushCharge(state, occ, kind, cursor, full, unitMs, priceFen, cursor + full * unitMs, false);
    state.free?.push(freePiece(cursor + full * unitMs, occ.runEnd, "part-unit", occ.seg.name));
  }
  return false;
}

/** chargeUnits' answer: done, or going on at `nextMs`. */
function continuesAt(occ: Occurrence, done: boolean, nextMs: number): boolean {
  if (done) return false;
  occ.nextMs = nextMs;
  return true;
}

/** The segment in force at minute `minute` of the local day. */
function segmentAt(segments: readonly CompiledSegment[], minute: number): CompiledSegment {
  let seg = segments[segments.length - 1]!;
  for (const candidate of segments) {
    if (candidate.startMin <= minute) seg = candidate;
    else break;
  }
  return seg;
}

/** Sets `occ.seg` to the segment in force at `t` and `occ.endMs` to the instant its occurrence ends. */
function locateOccurrence(segments: readonly CompiledSegment[], t: number, tz: string, occ: Occurrence): void {
  const local = t + zoneOffsetMs(t, tz);
  const day = Math.floor(local / DAY_MS);
  const minute = Math.floor((local - day * DAY_MS) / MINUTE_MS);
  const seg = segmentAt(segments, minute);
  // A segment that spans midnight and is seen after midnight started the day before.
  const startDay = minute >= seg.startMin ? day : day - 1;
  const instants = instantsAtLocalMinute(startDay, seg.startMin + seg.lengthMin, tz);
  let endMs = t + MINUTE_MS;
  // Only a DST change can leave no later instant; a minute's progress keeps the walk moving.
  // By index, not for…of: the iterator was not optimised away here and cost an allocation
  // per occurrence.
  for (let i = 0; i < instants.length; i++) {
    if (instants[i]! > t) {
      endMs = instants[i]!;
      break;
    }
  }
  occ.seg = seg;
  occ.endMs = endMs;
}

/** Local midnights strictly inside (fromMs, toMs). */
function midnightsBetween(fromMs: number, toMs: number, tz: string): number[] {
  const out: number[] = [];
  for (let day = localDayNumber(fromMs, tz) + 1; ; day++) {
    const midnight = instantsAtLocalMinute(day, 0, tz)[0]!;
    if (midnight >= toMs) return out;
    if (midnight > fromMs) out.push(midnight);
  }
}

interface Cuts {
  /** Every instant where a unit run is split for accounting. */
  all: readonly number[];
  /** Start of each cap day after the first (sorted). */
  dayStarts: readonly number[];
  reentryEndMs: number | undefined;
  reentryPaidFen: number;
}

/** A tariff without percent bands and caps across segments cuts nothing. */
const noCuts: Cuts = { all: [], dayStarts: [], reentryEndMs: undefined, reentryPaidFen: 0 };

function cutInstants(ctx: Ctx, pricing: Pricing, enterMs: number, leaveMs: number, previousStays: readonly PreviousStay[]): Cuts {
  if (pricing.percentBands.length === 0 && !pricing.dailyCap && !pricing.reentryCap) return noCuts;
  const all: number[] = [];
  for (const band of pricing.percentBands) {
    all.push(enterMs + band.fromMinutes * MINUTE_MS);
    if (band.toMinutes !== undefined) all.push(enterMs + band.toMinutes * MINUTE_MS);
  }
  let dayStarts: number[] = [];
  if (pricing.dailyCap) {
    if (pricing.dailyCap.basis === "natural-day") dayStarts = midnightsBetween(enterMs, leaveMs, ctx.tz);
    else for (let start = enterMs + DAY_MS; start < leaveMs; start += DAY_MS) dayStarts.push(start);
    all.push(...dayStarts);
  }
  let reentryEndMs: number | undefined;
  let reentryPaidFen = 0;
  if (pricing.reentryCap) {
    const windowMs = pricing.reentryCap.windowHours * 3_600_000;
    let windowStart = enterMs;
    for (const previous of previousStays) {
      if (previous.enterAtMs < enterMs && previous.enterAtMs >= enterMs - windowMs) {
        reentryPaidFen += previous.payableFee;
        windowStart = Math.min(windowStart, previous.enterAtMs);
      }
    }
    reentryEndMs = windowStart + windowMs;
    all.push(reentryEndMs);
  }
  all.sort(ascending);
  return { all, dayStarts, reentryEndMs, reentryPaidFen };
}

const ascending = (a: number, b: number): number => a - b;

function dayIndex(dayStarts: readonly number[], ms: number): number {
  let index = 0;
  while (index < dayStarts.length && dayStarts[index]! <= ms) index++;
  return index;
}

/** Splits a unit run at the given instants, by where each unit starts; appends to `out`. */
function splitCharge(charge: Charge, cuts: readonly number[], out: ChargeList): void {
  let startMs = charge.startMs;
  let count = charge.count;
  if (!charge.block && count > 1) {
    for (const cut of cuts) {
      if (cut <= startMs) continue;
      const lastStart = startMs + (count - 1) * charge.unitMs;
      if (cut > lastStart) break;
      const before = Math.ceil((cut - startMs) / charge.unitMs);
      const splitAt = startMs + before * charge.unitMs;
      addSlice(out, charge, startMs, before, splitAt);
      startMs = splitAt;
      count -= before;
    }
  }
  addSlice(out, charge, startMs, count, charge.endMs);
}

/** `count` units of `charge` from `startMs`, appended to `out`. */
function addSlice(out: ChargeList, charge: Charge, startMs: number, count: number, endMs: number): void {
  addCharge(out, charge.kind, charge.segment, charge.occurrence, charge.capFen, charge.afterPayment, startMs, endMs, charge.unitMs, count, charge.unitPriceFen, charge.block);
}

function freePiece(fromMs: number, toMs: number, reason: FreeReason, segment?: string): BillPiece {
  const piece: BillPiece = { kind: "free", fromMs, toMs, grossFen: 0, feeFen: 0, reason };
  if (segment !== undefined) piece.segment = segment;
  return piece;
}
