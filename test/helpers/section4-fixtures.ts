import { parseWireTime } from "../../src/platform/wire.js";
import type { CarGroup, InParkRecord, Vehicle } from "../../src/store/records.js";

/**
 * The lot the section-4 handler tests run against (test/integration/platform-server.test.ts
 * and store-ports.test.ts): a monthly car in a car group, a stored-value car, an empty group
 * and one car in the lot, at the box's "now" of 2024-01-15 10:00:00 in Shanghai.
 */
export const zone = "Asia/Shanghai";
export const t = (text: string): number => parseWireTime(text, zone)!;
export const nowMs = t("2024-01-15 10:00:00");

// Stamps are "now": the store stamps createdAtMs/updatedAtMs with its clock (see src/app/store-ports.ts).
export const monthly: Vehicle = {
  id: 5,
  uuId: "C6B410C4FF634D13AAC544F4B4397418",
  carNum: "粤B12345",
  owner: "张三",
  carTypeCode: 81,
  carGroupID: 3,
  carGroupUuid: "G0000000000000000000000000000003",
  carGroup: "",
  region: "A",
  code: "M-01",
  virtualCardNum: "",
  tel: "13800000000",
  color: "white",
  carSpaceNum: "B2-017",
  remark: "",
  balanceFen: 0,
  carMMoneyFen: 20050,
  refundFen: 0,
  timeStartMs: t("2023-12-01 00:00:00"),
  timeEndMs: t("2024-11-30 23:59:59"),
  state: 1,
  frozen: false,
  createdAtMs: nowMs,
  updatedAtMs: nowMs,
};
export const storedValue: Vehicle = {
  ...monthly,
  id: 2,
  uuId: "5F000000000000000000000000000002",
  carNum: "粤B77777",
  carTypeCode: 71,
  carGroupID: 0,
  carGroupUuid: "",
  balanceFen: 5000,
  carMMoneyFen: 0,
  timeStartMs: null,
  timeEndMs: null,
};
export const group: CarGroup = {
  carGroupID: 3,
  carGroupUuid: "G0000000000000000000000000000003",
  name: "Tower B",
  spaces: 2,
  carTypeCode: 81,
  timeStartMs: null,
  timeEndMs: t("2024-12-31 23:59:59"),
  carMMoneyFen: 40000,
  balanceFen: 0,
  remark: "",
  state: 1,
  createdAtMs: nowMs,
  updatedAtMs: nowMs,
};
export const emptyGroup: CarGroup = { ...group, carGroupID: 4, carGroupUuid: "G0000000000000000000000000000004", name: "Empty" };
/** A stay the entry lane in1 (channel "1") made. */
export const stay: InParkRecord = {
  recordNo: "in1_20240115080000000",
  plate: "粤B88888",
  plateColor: 0,
  laneId: "in1",
  enterAtMs: t("2024-01-15 08:00:00"),
  vehicleType: "temporary",
  carType: 9,
  carSubType: 91,
  source: "camera",
  entryReport: "delivered",
  prepayments: [],
  coupons: [],
};
