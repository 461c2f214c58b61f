import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { FakeClock } from "../../helpers/fake-clock.js";
import { freshDir } from "../../helpers/store-fixtures.js";
import { LotStore } from "../../../src/store/lot-store.js";
import { liftCarGroup, liftPayment, liftStay } from "../../../src/store/legacy-extra.js";

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);

/** Documents as the store wrote them while the platform's fields lived in `extra` (and long text was cut). */
const oldLists = {
  version: 1,
  seq: 0,
  vehicles: {
    U1: {
      id: 1,
      uuId: "U1",
      carNum: "粤B12345",
      carTypeCode: 81,
      owner: "王".repeat(64),
      remark: "",
      createdAtMs: T0,
      updatedAtMs: T0,
      extra: { integrator: 7, fullText: { owner: "王".repeat(70) } },
    },
  },
  carGroups: {
    G1: {
      carGroupID: 1,
      carGroupUuid: "G1",
      name: "Tower",
      spaces: 3,
      createdAtMs: T0,
      updatedAtMs: T0,
      extra: { carTypeCode: 82, validFromMs: T0, validToMs: null, monthlyRentFen: 40000, balanceFen: -5, enabled: false },
    },
  },
  blacklist: {},
  nextId: { vehicle: 2, carGroup: 2, blacklist: 1 },
};

const oldStay = {
  recordNo: "cloud_20260601080000000",
  plate: "粤B1",
  laneId: "cloud",
  enterAtMs: T0,
  source: "platform",
  entryReport: "none",
  prepayments: [],
  coupons: [{ couponId: "CP1", kind: "amount", value: 300, grantedAtMs: T0, source: "platform", extra: { plateNum: "粤B1", expiresAtMs: null, operator: "shop" } }],
  extra: { inChannelId: "1", operator: "ops", updatedAtMs: T0 + 5, plateColor: 150 },
};

const oldInPark = {
  version: 1,
  seq: 0,
  inPark: { [oldStay.recordNo]: oldStay },
  finishing: {},
  payments: {
    M1: {
      orderNo: "M1",
      amountFen: 20050,
      payAtMs: T0,
      payType: "1",
      source: "platform",
      receivedAtMs: T0,
      extra: { kind: "fixed-car", targetUuid: "U1", payScene: null, channelId: "", plateId: "", recordNo: "", plateNum: "粤B12345" },
    },
  },
};

async function withOldDocuments(run: (store: LotStore, dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await freshDir("lk-legacy-");
  await writeFile(join(dir, "lists.json"), JSON.stringify(oldLists));
  await writeFile(join(dir, "inpark.json"), JSON.stringify(oldInPark));
  const store = new LotStore({ dir, clock: new FakeClock(T0), pruneJob: false });
  await store.start();
  try {
    await run(store, dir);
  } finally {
    await store.stop();
    await cleanup();
  }
}

test("documents written with the platform's fields in extra load with them as fields", () =>
  withOldDocuments(async (store) => {
    const v = store.getVehicle({ uuId: "U1" })!;
    assert.equal(v.owner, "王".repeat(70), "the whole text replaces the cut one");
    assert.deepEqual(v.extra, { integrator: 7 }, "keys the store does not manage stay");
    const g = store.getCarGroup({ carGroupUuid: "G1" })!;
    assert.deepEqual([g.carTypeCode, g.timeStartMs, g.timeEndMs, g.carMMoneyFen, g.balanceFen, g.state, g.extra], [82, T0, null, 40000, -5, 0, undefined]);
    const stay = store.getInPark(oldStay.recordNo)!;
    assert.deepEqual([stay.inChannelId, stay.operator, stay.updatedAtMs, stay.plateColor, stay.extra], ["1", "ops", T0 + 5, 150, undefined]);
    assert.deepEqual(stay.coupons, [{ couponId: "CP1", kind: "amount", value: 300, grantedAtMs: T0, source: "platform", operator: "shop" }]);
    const p = store.payments.get("M1")!;
    assert.deepEqual([p.kind, p.targetUuid, p.plate, p.recordNo, p.payScene, p.extra], ["fixed-car", "U1", "粤B12345", undefined, undefined, undefined]);
  }));

test("an old-shape record replayed from the journal is lifted too", async () => {
  const { dir, cleanup } = await freshDir("lk-legacy-journal-");
  const clock = new FakeClock(T0);
  try {
    const first = new LotStore({ dir, clock, pruneJob: false });
    await first.start();
    await first.upsertCarGroup({ name: "Seed" });
    await first.stop();
    const journal = (await readdir(dir)).filter((n) => n.startsWith("lists.json.journal.")).sort();
    const old = oldLists.carGroups.G1;
    await appendFile(join(dir, journal.at(-1)!), JSON.stringify({ s: 1000, o: [["carGroups", "G1", old]] }) + "\n");
    const again = new LotStore({ dir, clock, pruneJob: false });
    await again.start();
    try {
      const g = again.getCarGroup({ carGroupUuid: "G1" })!;
      assert.deepEqual([g.carTypeCode, g.carMMoneyFen, g.state, g.extra], [82, 40000, 0, undefined]);
    } finally {
      await again.stop();
    }
  } finally {
    await cleanup();
  }
});

test("lifting leaves a record without legacy keys as it is, and is idempotent (property)", () => {
  const value = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constant(null));
  const record = fc.record({
    plate: fc.string({ maxLength: 6 }),
    coupons: fc.array(
      fc.record({ couponId: fc.string({ maxLength: 4 }), extra: fc.option(fc.dictionary(fc.constantFrom("operator", "expiresAtMs", "plateNum", "x"), value), { nil: undefined }) }),
      {
        maxLength: 2,
      },
    ),
    extra: fc.option(fc.dictionary(fc.constantFrom("kind", "inChannelId", "operator", "carTypeCode", "enabled", "fullText", "other"), value), { nil: undefined }),
  });
  fc.assert(
    fc.property(record, (r) => {
      for (const lift of [liftStay, liftPayment, liftCarGroup]) {
        const once = lift(r);
        assert.deepEqual(lift(once), once);
      }
      const plain = { ...r, extra: { other: 1 }, coupons: [] };
      assert.equal(liftStay(plain), plain);
    }),
  );
});
