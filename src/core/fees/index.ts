/** The fee engine's public surface (docs/tariffs.md). */
export { bill, type Bill, type BillPiece, type CapApplied, type DiscountLine, type FreeReason } from "./bill.js";
export { BillError, type BillErrorCode } from "./errors.js";
export { classifyFixedCar, fixedCarFreeIntervals, fixedCarSchema, type FixedCar, type FixedCarReason, type FixedCarStatus, type FixedCarWindow } from "./fixed-car.js";
export { formatFen } from "./money.js";
export {
  billExtrasSchema,
  couponSchema,
  prepaymentSchema,
  previousStaySchema,
  staySchema,
  type BillExtras,
  type Coupon,
  type Prepayment,
  type PreviousStay,
  type Stay,
} from "./stay.js";
export {
  checkTariffSemantics,
  pricingFor,
  tariffSchema,
  vehicleTypes,
  type Pricing,
  type Segment,
  type Tariff,
  type TariffInput,
  type TariffProblem,
  type VehicleType,
} from "./tariff-schema.js";
export { validateTariff, type TariffResult } from "./validate-tariff.js";
