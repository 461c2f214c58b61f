import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { LotHarness } from "../helpers/lot-harness.js";
import { buildAlarmInfoPlate } from "../../src/io/camera/http-push.js";
import type { InParkRecord } from "../../src/store/records.js";

/*
 * The booth's needs through the real HTTP API with the simulated lanes: the exit card (entry,
 * stay, the bill's lines, how to pay, the photos of the exit and the entry), the cameras'
 * photos served from their ring, and the attendant's plate correction at an exit and an entry.
 */

const fixture = JSON.parse(readFileSync(new URL("../fixtures/camera/alarm-with-image.json", import.meta.url), "utf8")) as {
  AlarmInfoPlate: { result: { PlateResult: { imageFile: string } } };
};
const picture = fixture.AlarmInfoPlate.result.PlateResult.imageFile;
/** The same picture with one byte changed: another photo. */
const crop = Buffer.from(Buffer.from(picture, "base64").map((byte, i) => (i === 100 ? byte ^ 1 : byte))).toString("base64");

/** Both lanes take the camera's HTTP push; 5 元 the first hour from the first minute. */
function boothLot(mutate: (raw: Record<string, any>) => void = () => undefined): Promise<LotHarness> {
  return LotHarness.create({
    mutate: (raw) => {
      for (const lane of raw.lanes as Array<Record<string, any>>) lane.camera = "http";
      raw.fees.tariffs.standard = {
        name: "5 yuan the first hour",
        free: { minutes: 0 },
        segments: [{ name: "all day", from: "00:00", to: "24:00", firstPeriod: { minutes: 60, priceFen: 500 }, unitMinutes: 60, unitPriceFen: 100, rounding: "up" }],
      };
      mutate(raw);
    },
  });
}

let plateIds = 0;

/** The camera's own push (the real route), with an image field when given. */
async function push(lot: LotHarness, laneId: string, plate: string, imageFile?: unknown): Promise<number> {
  const body = buildAlarmInfoPlate({ plate, plateId: `t${++plateIds}`, atMs: Date.now() }) as { AlarmInfoPlate: { result: { PlateResult: Record<string, unknown> } } };
  if (imageFile !== undefined) body.AlarmInfoPlate.result.PlateResult.imageFile = imageFile;
  const res = await fetch(`${lot.apiUrl}/camera/${laneId}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  await res.body?.cancel();
  return res.status;
}

async function arriveWithPhoto(lot: LotHarness, laneId: string, plate: string, imageFile?: unknown): Promise<void> {
  await lot.onLoopA(laneId);
  assert.equal(await push(lot, laneId, plate, imageFile), 200);
}

/** A car comes in at in1, photographed; its stay. */
async function enteredWithPhoto(lot: LotHarness, plate: string): Promise<InParkRecord> {
  await arriveWithPhoto(lot, "in1", plate, crop);
  await lot.pass("in1");
  const stay = lot.stayOf(plate);
  assert.ok(stay, `${plate} is in the lot`);
  return stay;
}

interface Card {
  recordNo?: string;
  enterAtMs?: number;
  stayMs?: number;
  entryLaneId?: string;
  bill?: { payableFen: number; discountFen: number; prepaidFen: number; dueFen: number; discounts: Array<{ discountFen: number; applied: boolean; coupon: { kind: string } }> };
  payBy: string[];
  photos: { camera: string; exit: { id: string; url: string } | null; entry: { id: string; url: string } | null };
  readPlate?: string;
}

async function vehicle(lot: LotHarness, laneId: string): Promise<{ plate: string; dueFen?: number; card?: Card; readPlate?: string } | null> {
  const status = await lot.api("GET", "/api/status");
  return (status.body.lanes as Array<{ id: string; vehicle: any }>).find((l) => l.id === laneId)!.vehicle;
}

async function photoBytes(lot: LotHarness, url: string): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const res = await fetch(`${lot.apiUrl}${url}`);
  return { status: res.status, type: res.headers.get("content-type"), bytes: Buffer.from(await res.arrayBuffer()) };
}

test("the exit card: entry time and lane, stay, the bill's lines with the coupon, how to pay, and both photos served from the ring", async () => {
  const lot = await boothLot();
  try {
    const stay = await enteredWithPhoto(lot, "粤B12345");
    await lot.app.store.addCoupon(stay.recordNo, { couponId: "C1", kind: "amount", value: 100, source: "platform" });

    await arriveWithPhoto(lot, "out1", "粤B12345", picture);
    await lot.awaitingPayment("out1");
    const seen = await vehicle(lot, "out1");
    const card = seen!.card!;
    assert.equal(card.recordNo, stay.recordNo);
    assert.equal(card.enterAtMs, stay.enterAtMs);
    assert.equal(card.entryLaneId, "in1");
    assert.ok(card.stayMs! >= 0 && card.stayMs! < 60_000, `stay ${card.stayMs}`);
    assert.deepEqual(card.bill && { ...card.bill, discounts: card.bill.discounts.map((d) => [d.coupon.kind, d.discountFen, d.applied]) }, {
      payableFen: 500,
      discountFen: 100,
      prepaidFen: 0,
      dueFen: 400,
      discounts: [["amount", 100, true]],
    });
    assert.equal(seen!.dueFen, 400, "the fee due next to its lines");
    assert.deepEqual(card.payBy, ["platform", "scanner", "cash"], "out1 has a scanner in the demo lot");
    assert.equal(card.photos.camera, "http");
    assert.ok(card.photos.exit && card.photos.entry, JSON.stringify(card.photos));

    const exitPhoto = await photoBytes(lot, card.photos.exit.url);
    assert.equal(exitPhoto.status, 200);
    assert.equal(exitPhoto.type, "image/jpeg");
    assert.deepEqual(exitPhoto.bytes, Buffer.from(picture, "base64"));
    assert.deepEqual((await photoBytes(lot, card.photos.entry.url)).bytes, Buffer.from(crop, "base64"), "the entry read's photo");
    assert.deepEqual((await photoBytes(lot, "/api/lanes/out1/photos/latest")).bytes, exitPhoto.bytes);

    // Photos never go into the store.
    assert.ok(!lot.onDisk(picture.slice(0, 64)), "no image data in the store's files");

    assert.equal((await photoBytes(lot, "/api/lanes/out1/photos/1-1")).status, 404);
    assert.equal((await photoBytes(lot, "/api/lanes/out1/photos/..%2F..%2Fetc")).status, 400);
    assert.equal((await photoBytes(lot, "/api/lanes/nosuch/photos/latest")).status, 404);
  } finally {
    await lot.stop();
  }
});

test("a bad image is refused and counted while its read goes on; a serial camera's card says it sends no image", async () => {
  // in1 takes pushes; out1 keeps the demo lot's serial camera.
  const lot = await boothLot((raw) => (raw.lanes[1].camera = "cam-out1"));
  try {
    await arriveWithPhoto(lot, "in1", "粤C20002", "this is not a jpeg");
    await lot.pass("in1");
    assert.ok(lot.stayOf("粤C20002"), "the read was decided as usual");
    const status = await lot.api("GET", "/api/status");
    assert.equal(status.body.photos.in1.refused.E_PHOTO_BASE64, 1);
    assert.equal(status.body.photos.in1.kept, 0);

    await lot.arrive("out1", "粤C20002");
    await lot.awaitingPayment("out1");
    const seen = await vehicle(lot, "out1");
    assert.equal(seen?.card?.photos.camera, "serial");
    assert.equal(seen?.card?.photos.exit, null);
    assert.equal(seen?.card?.photos.entry, null, "the entry read's image was refused");
  } finally {
    await lot.stop();
  }
});

test("a misread at the exit corrected by the attendant: the right stay, billed again, reported with the right plate; the stay keeps the read plate", async () => {
  const lot = await boothLot();
  try {
    const stay = await enteredWithPhoto(lot, "粤B12345");

    // The exit camera reads another plate altogether (dirt on the plate): no such stay, so the
    // car waits for the attendant or is charged the flat amount.
    await arriveWithPhoto(lot, "out1", "粤E99999", picture);
    await lot.awaitingPayment("out1");
    const before = await vehicle(lot, "out1");
    assert.equal(before!.plate, "粤E99999");
    assert.notEqual(before!.card?.recordNo, stay.recordNo);

    const refusals: Array<[string, unknown, number, string]> = [
      ["/api/lanes/out1/correct-plate", { plate: "粤B12345", operator: "王芳" }, 400, "E_REASON_REQUIRED"],
      ["/api/lanes/out1/correct-plate", { plate: "粤B12345", operator: "王芳", reason: "  " }, 400, "E_REASON_REQUIRED"],
      ["/api/lanes/out1/correct-plate", { plate: "hello", operator: "王芳", reason: "misread" }, 400, "E_BAD_PLATE"],
      ["/api/lanes/out1/correct-plate", { plate: "粤E99999", operator: "王芳", reason: "misread" }, 409, "E_SAME_PLATE"],
      ["/api/lanes/nosuch/correct-plate", { plate: "粤B12345", operator: "王芳", reason: "misread" }, 404, "E_LANE_UNKNOWN"],
      ["/api/lanes/in1/correct-plate", { plate: "粤B12345", operator: "王芳", reason: "misread" }, 409, "E_NO_VEHICLE"],
    ];
    for (const [path, body, status, code] of refusals) {
      const answer = await lot.api("POST", path, body);
      assert.equal(answer.status, status, `${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, code);
    }
    assert.equal((await lot.api("POST", "/api/lanes/out1/correct-plate", { plate: "粤B12345", operator: "王芳", reason: "x" }, null)).status, 401);
    assert.equal((await vehicle(lot, "out1"))!.plate, "粤E99999", "nothing changed on a refusal");

    const corrected = await lot.api("POST", "/api/lanes/out1/correct-plate", { plate: "粤b12345", operator: "王芳", reason: "read another car's plate" });
    assert.equal(corrected.status, 200, JSON.stringify(corrected.body));
    assert.equal(corrected.body.plate, "粤B12345");
    assert.equal(corrected.body.readPlate, "粤E99999");
    await lot.awaitingPayment("out1");
    const after = await vehicle(lot, "out1");
    assert.equal(after!.plate, "粤B12345");
    assert.equal(after!.card!.recordNo, stay.recordNo, "matched to the right stay");
    assert.equal(after!.card!.readPlate, "粤E99999");
    assert.equal(after!.card!.bill!.dueFen, 500, "billed again for the right stay");
    assert.ok(after!.card!.photos.exit, "the exit photo is still the read's");
    assert.ok(after!.card!.photos.entry, "and the right stay's entry photo");
    const audit = lot.find("plate-corrected", { laneId: "out1" });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.operator, "王芳");
    assert.equal(audit[0]!.reason, "read another car's plate");
    assert.equal((lot.stayOf("粤B12345")!.extra?.plateCorrection as { readPlate?: string } | undefined)?.readPlate, "粤E99999", "the stay keeps the read plate");

    const paid = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王芳", reason: "cash" });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    await lot.pass("out1");
    const leave = await lot.emulator.waitFor({ service: "leaveNotify", recordNo: stay.recordNo });
    assert.equal(leave.biz.plateNum, "粤B12345", "the platform hears the corrected plate");
    assert.equal(lot.stayOf("粤E99999"), undefined, "no stay is left for the misread plate");
  } finally {
    await lot.stop();
  }
});

test("a misread at the entry refused as blacklisted, corrected: the entry decided again, opened, its stay and report under the right plate", async () => {
  const lot = await boothLot();
  try {
    const added = await lot.callBox("addBlacklist", { carNum: "粤C66661", remark: "unpaid", operator: "ops" });
    assert.equal((added.body as { code: number }).code, 200, added.bodyText);
    await arriveWithPhoto(lot, "in1", "粤C66661", crop);
    await lot.waitForEvent("entry-denied", { plate: "粤C66661" });
    assert.equal(lot.barrier("in1"), "closed");

    const corrected = await lot.api("POST", "/api/lanes/in1/correct-plate", { plate: "粤C66667", operator: "王芳", reason: "1 read for 7" });
    assert.equal(corrected.status, 200, JSON.stringify(corrected.body));
    await lot.pass("in1");
    const stay = lot.stayOf("粤C66667")!;
    assert.ok(stay, "the stay is under the corrected plate");
    assert.equal(stay.extra?.plateRaw, "粤C66661", "the plate the camera read");
    assert.equal((stay.extra?.plateCorrection as { operator?: string } | undefined)?.operator, "王芳");
    const report = await lot.emulator.waitFor({ service: "enterNotify", recordNo: stay.recordNo });
    assert.equal(report.biz.plateNum, "粤C66667");
    assert.equal(lot.find("plate-corrected", { laneId: "in1" }).length, 1);
  } finally {
    await lot.stop();
  }
});
