import type { CarGroupRecord, InParkRecord, VehicleRecord } from "../../src/platform/ports.js";
import { parseWireTime } from "../../src/platform/wire.js";

/**
 * The lot the section-4 handler tests run against (test/integration/platform-server.test.ts
 * and store-ports.test.ts): a monthly car in a car group, a stored-value car, an empty group
 * and one car in the lot, at the box's "now" of 2024-01-15 10:00:00 in Shanghai.
 */
export const zone = "Asia/Shanghai";
export const t = (text: string): number => parseWireTime(text, zone)!;
export const nowMs = t("2024-01-15 10:00:00");

// Stamps are "now": the store stamps updatedAtMs with its clock (see src/app/store-ports.ts).
export const monthly: VehicleRecord = {
  id: 5,
  uuId: "C6B410C4FF634D13AAC544F4B4397418",
  carNum: "粤B12345",
  owner: "张三",
  carTypeCode: 81,
  carGroupId: 3,
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
  monthlyRentFen: 20050,
  refundFen: 0,
  validFromMs: t("2023-12-01 00:00:00"),
  validToMs: t("2024-11-30 23:59:59"),
  enabled: true,
  frozen: false,
  updatedAtMs: nowMs,
};
export const storedValue: VehicleRecord = {
  ...monthly,
  id: 2,
  uuId: "5F000000000000000000000000000002",
  carNum: "粤B77777",
  carTypeCode: 71,
  carGroupId: 0,
  carGroupUuid: "",
  balanceFen: 5000,
  monthlyRentFen: 0,
  validFromMs: null,
  validToMs: null,
};
export const group: CarGroupRecord = {
  id: 3,
  uuid: "G0000000000000000000000000000003",
  name: "Tower B",
  spaceCount: 2,
  carTypeCode: 81,
  validFromMs: null,
  validToMs: t("2024-12-31 23:59:59"),
  monthlyRentFen: 40000,
  balanceFen: 0,
  remark: "",
  enabled: true,
  updatedAtMs: nowMs,
};
export const emptyGroup: CarGroupRecord = { ...group, id: 4, uuid: "G0000000000000000000000000000004", name: "Empty" };
export const stay: InParkRecord = {
  recordNo: "in1_20240115080000000",
  plateNum: "粤B88888",
  plateColor: 0,
  carType: 9,
  carSubType: 91,
  enterTimeMs: t("2024-01-15 08:00:00"),
  inChannelId: "1",
  source: "lane",
  operator: "",
  updatedAtMs: t("2024-01-15 08:00:00"),
};
