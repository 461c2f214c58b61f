/*
 * Documents written before the platform's fields became fields of the store's own records
 * kept them in each record's `extra` map: a car group's rent and validity, a stay's entry
 * channel and operator, a payment's kind and target, a coupon's expiry, and the whole text of
 * a field the store then cut (`extra.fullText.<field>`). Reading such a document moves them
 * to their fields (and out of `extra`), so an old lists.json / inpark.json loads as if
 * written today. A record without those keys passes unchanged. Pure functions, no IO.
 */

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** extra key → the record's field, with the value as the field wants it (undefined: dropped). */
type Moves = Record<string, { to: string; value?: (v: unknown) => unknown }>;

const nullToAbsent = (v: unknown): unknown => (v === null ? undefined : v);
/** The old records wrote "" for "none"; the fields are now absent then. */
const emptyToAbsent = (v: unknown): unknown => (v === "" ? undefined : v);

const carGroupMoves: Moves = {
  carTypeCode: { to: "carTypeCode" },
  validFromMs: { to: "timeStartMs" },
  validToMs: { to: "timeEndMs" },
  monthlyRentFen: { to: "carMMoneyFen" },
  balanceFen: { to: "balanceFen" },
  enabled: { to: "state", value: (v) => (v === false ? 0 : 1) },
};
const stayMoves: Moves = {
  inChannelId: { to: "inChannelId" },
  operator: { to: "operator" },
  updatedAtMs: { to: "updatedAtMs" },
  plateColor: { to: "plateColor" },
};
const couponMoves: Moves = {
  expiresAtMs: { to: "expiresAtMs", value: nullToAbsent },
  operator: { to: "operator" },
  // The stay's plate when granted: the stay holding the coupon says it.
  plateNum: { to: "", value: () => undefined },
};
const paymentMoves: Moves = {
  kind: { to: "kind" },
  targetUuid: { to: "targetUuid", value: emptyToAbsent },
  payScene: { to: "payScene", value: nullToAbsent },
  channelId: { to: "channelId", value: emptyToAbsent },
  plateId: { to: "plateId", value: emptyToAbsent },
  recordNo: { to: "recordNo", value: emptyToAbsent },
  plateNum: { to: "plate", value: emptyToAbsent },
};

/** The record with its legacy extra keys moved to their fields; the same object when there are none. */
function lift(record: unknown, moves: Moves): unknown {
  if (!isPlain(record) || !isPlain(record.extra)) return record;
  const extra: Plain = { ...record.extra };
  const out: Plain = { ...record };
  let changed = false;
  for (const [key, move] of Object.entries(moves)) {
    if (!Object.hasOwn(extra, key)) continue;
    const value = move.value ? move.value(extra[key]) : extra[key];
    delete extra[key];
    changed = true;
    if (move.to !== "" && value !== undefined && (out[move.to] === undefined || out[move.to] === "")) out[move.to] = value;
  }
  const full = extra.fullText;
  if (isPlain(full)) {
    delete extra.fullText;
    changed = true;
    for (const [field, whole] of Object.entries(full)) {
      const stored = out[field];
      if (typeof whole === "string" && typeof stored === "string" && whole.startsWith(stored)) out[field] = whole;
    }
  }
  if (!changed) return record;
  if (Object.keys(extra).length > 0) out.extra = extra;
  else delete out.extra;
  return out;
}

export const liftCarGroup = (g: unknown): unknown => lift(g, carGroupMoves);
/** Vehicles and blacklist entries kept only cut text in extra. */
export const liftListEntry = (r: unknown): unknown => lift(r, {});
export const liftPayment = (p: unknown): unknown => lift(p, paymentMoves);

/** A stay, with its coupons. */
export function liftStay(stay: unknown): unknown {
  const lifted = lift(stay, stayMoves);
  if (!isPlain(lifted) || !Array.isArray(lifted.coupons)) return lifted;
  const coupons: unknown[] = lifted.coupons;
  const liftedCoupons = coupons.map((c) => lift(c, couponMoves));
  return liftedCoupons.every((c, i) => c === coupons[i]) ? lifted : { ...lifted, coupons: liftedCoupons };
}
