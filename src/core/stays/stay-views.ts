/**
 * What the lane's decisions read of the lot, as plain shapes. The store's records satisfy them
 * structurally (the core imports nothing from the store): a caller passes its records as they
 * are, and a test writes them as literals.
 */

/** A prepayment counted against a stay (a payment made in the lot before the exit). */
export interface PrepaymentView {
  orderNo: string;
  amountFen: number;
  payAtMs: number;
  payType?: string | undefined;
}

/** A coupon granted to a stay: `value` is fen, minutes or percent by kind. */
export interface CouponView {
  kind: "amount" | "minutes" | "free" | "percent";
  value: number;
  extra?: Record<string, unknown> | undefined;
}

/** The pre-leave bill a stay holds while its car waits at an exit (and after a stop). */
export interface PendingExitView {
  laneId: string;
  plateId: string;
  atMs: number;
  payableFen: number;
  discountFen: number;
  dueFen: number;
}

/** One stay in the lot (entered, not left). */
export interface StayView {
  recordNo: string;
  plate: string;
  plateColor?: number | undefined;
  laneId: string;
  enterAtMs: number;
  vehicleType?: string | undefined;
  carType?: number | undefined;
  carSubType?: number | undefined;
  prepayments: readonly PrepaymentView[];
  coupons: readonly CouponView[];
  pendingExit?: PendingExitView | undefined;
  extra?: Record<string, unknown> | undefined;
}

/** A registered (fixed, monthly) vehicle as the platform manages it. */
export interface VehicleView {
  /** Concrete type (e.g. 81); the main type is its tens. */
  carTypeCode: number;
  carGroupID: number;
  carGroupUuid: string;
  timeStartMs: number | null;
  timeEndMs: number | null;
  /** 0 disabled, 1 enabled. */
  state: number;
  frozen: boolean;
}

/** A stay of the plate that left recently (for the re-entry cap). */
export interface RecentExit {
  recordNo: string;
  enterAtMs: number;
  leaveAtMs: number;
  payableFee: number;
}

/** The platform's vehicle type and concrete type (carType, carSubType). */
export interface CarTypes {
  carType: number;
  carSubType: number;
}
