/** Why a bill could not be made. Stable codes: the lane and the CLI branch on them. */
export type BillErrorCode =
  /** The exit instant lies before the entry instant (a clock step, or swapped fields). */
  | "exit-before-entry"
  /** `stay.vehicleType` is not small, large or nev. */
  | "unknown-vehicle-type"
  /** `stay.timeZone` is not a zone Intl knows. */
  | "invalid-time-zone"
  /** No stay object at all. */
  | "invalid-stay"
  /** An instant is not a finite whole number of epoch milliseconds. */
  | "invalid-instant"
  /** Longer than the tariff's `maxStayDays`: most likely a clock that was wrong at entry. */
  | "stay-too-long"
  /** Prepayments, coupons, previous stays or the fixed-car record do not have the right shape. */
  | "invalid-extras"
  /** A prepayment made before the entry or after the exit. */
  | "prepayment-outside-stay"
  /** The tariff object did not come from the schema (or was changed afterwards). */
  | "invalid-tariff";

/**
 * A bill that cannot be made. The engine never answers a bad input with a zero bill: a zero
 * that should not be one opens the barrier for free.
 */
export class BillError extends Error {
  override readonly name = "BillError";
  constructor(
    readonly code: BillErrorCode,
    message: string,
    /** Where in the input, e.g. `stay.leaveAtMs` or `extras.coupons[1].percent`. */
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}
