import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { PhotoRing, decodeJpegBase64, photoRingConfigSchema, type PhotoRingConfig } from "../../../../src/io/camera/photo-ring.js";
import { CameraPushReceiver, buildAlarmInfoPlate } from "../../../../src/io/camera/http-push.js";
import type { PlateRead } from "../../../../src/io/camera/plate-read.js";

/*
 * The lanes' photo ring on real files in a temp dir: bounded by count and bytes with the oldest
 * evicted (from disk too), bad input refused and counted, and a restart rebuilds the ring from
 * the folder alone.
 */

/** A real camera picture's base64 (SOI … EOI), from the fixture of a push with images. */
const fixture = JSON.parse(readFileSync(new URL("../../../fixtures/camera/alarm-with-image.json", import.meta.url), "utf8")) as {
  AlarmInfoPlate: { result: { PlateResult: { imageFile: string } } };
};
const picture = fixture.AlarmInfoPlate.result.PlateResult.imageFile;
const pictureBytes = Buffer.from(picture, "base64");

/** A small JPEG-shaped image of `size` bytes (SOI, filler, EOI), distinct per `mark`. */
function jpeg(size: number, mark = 0): string {
  const bytes = Buffer.alloc(size, mark & 0x7f);
  bytes.set([0xff, 0xd8, 0xff, 0xe0], 0);
  bytes.set([0xff, 0xd9], size - 2);
  return bytes.toString("base64");
}

function withDir(run: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "lk-photos-"));
    try {
      await run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const config = (fields: Partial<PhotoRingConfig> = {}): PhotoRingConfig => photoRingConfigSchema.parse(fields);
const files = (dir: string, laneId: string): string[] => (existsSync(join(dir, laneId)) ? readdirSync(join(dir, laneId)).sort() : []);

test(
  "a camera picture is kept on disk and read back byte for byte; latest, by id and by read",
  withDir(async (dir) => {
    const ring = new PhotoRing(dir, ["in1"], config());
    const taken = ring.take("in1", "苏E12345", 1_000, picture);
    assert.ok(taken.ok);
    await ring.settled();
    assert.deepEqual(await ring.read("in1", taken.photo.id), pictureBytes);
    assert.equal(ring.latest("in1")?.id, taken.photo.id);
    assert.equal(ring.byId("in1", taken.photo.id)?.plate, "苏E12345");
    assert.equal(ring.forRead("in1", "苏E12345", 2_000)?.id, taken.photo.id, "the read's photo, a second later");
    assert.equal(ring.forRead("in1", "苏E99999", 2_000), undefined, "another plate's read has no photo");
    assert.equal(ring.forRead("in1", "苏E12345", 1_000 + 11 * 60_000), undefined, "too long after the read");
    assert.equal(ring.forRead("out1", "苏E12345", 2_000), undefined, "a lane without a ring");
    assert.equal(files(dir, "in1").length, 1);
    assert.equal(ring.status().in1!.saved, 1);
  }),
);

test(
  "bounded by count: the oldest go first, from the disk too",
  withDir(async (dir) => {
    const ring = new PhotoRing(dir, ["in1"], config({ perLane: 3 }));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const taken = ring.take("in1", `粤B1000${i}`, 1_000 + i, jpeg(2048, i));
      assert.ok(taken.ok);
      ids.push(taken.photo.id);
    }
    await ring.settled();
    assert.deepEqual(
      ring.list("in1").map((p) => p.id),
      ids.slice(2),
    );
    assert.equal(files(dir, "in1").length, 3, "evicted files are deleted");
    assert.equal(await ring.read("in1", ids[0]!), undefined, "an evicted photo is gone");
    assert.equal(ring.status().in1!.evicted, 2);
  }),
);

test(
  "bounded by bytes: a lane's photos never add up to more than maxLaneBytes",
  withDir(async (dir) => {
    const ring = new PhotoRing(dir, ["in1"], config({ perLane: 100, maxLaneBytes: 64 * 1024, maxImageBytes: 30 * 1024 }));
    for (let i = 0; i < 6; i++) assert.ok(ring.take("in1", "粤B12345", 1_000 + i, jpeg(20 * 1024, i)).ok);
    await ring.settled();
    assert.equal(ring.list("in1").length, 3, "three of 20 KiB fit in 64 KiB");
    assert.ok(ring.status().in1!.bytes <= 64 * 1024);
    const onDisk = files(dir, "in1").reduce((sum, name) => sum + readFileSync(join(dir, "in1", name)).length, 0);
    assert.ok(onDisk <= 64 * 1024, `${onDisk} bytes on disk`);
  }),
);

test(
  "bad images are refused with a stable code, counted, and nothing is written",
  withDir(async (dir) => {
    const ring = new PhotoRing(dir, ["in1"], config({ maxImageBytes: 4096 }));
    const cases: Array<[unknown, string]> = [
      [42, "E_PHOTO_NOT_TEXT"],
      [{ data: picture }, "E_PHOTO_NOT_TEXT"],
      [picture, "E_PHOTO_TOO_LARGE"],
      ["not base64 at all!", "E_PHOTO_BASE64"],
      [Buffer.from("GIF89a just a gif, not a jpeg").toString("base64"), "E_PHOTO_NOT_JPEG"],
      [Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]).toString("base64"), "E_PHOTO_NOT_JPEG"],
    ];
    for (const [field, code] of cases) {
      const taken = ring.take("in1", "粤B12345", 1_000, field);
      assert.ok(!taken.ok);
      assert.equal(taken.code, code, JSON.stringify(field).slice(0, 40));
    }
    await ring.settled();
    assert.deepEqual(files(dir, "in1"), []);
    const refused = ring.status().in1!.refused;
    assert.deepEqual(refused, { E_PHOTO_NOT_TEXT: 2, E_PHOTO_TOO_LARGE: 1, E_PHOTO_BASE64: 1, E_PHOTO_NOT_JPEG: 2 });
    assert.equal(ring.take("nosuch", "粤B12345", 1_000, picture).ok, false, "a lane without a ring");
  }),
);

test(
  "a restart keeps the ring: same photos, same order, new ids never collide, half-written files dropped",
  withDir(async (dir) => {
    const first = new PhotoRing(dir, ["in1", "out1"], config({ perLane: 4 }));
    for (let i = 0; i < 3; i++) first.take("in1", `粤B2000${i}`, 5_000 + i, jpeg(1024, i));
    first.take("out1", "粤C30003", 6_000, jpeg(1024, 9));
    await first.settled();
    writeFileSync(join(dir, "in1", ".tmp-9-9.00.jpg"), "cut short");
    writeFileSync(join(dir, "in1", "notes.txt"), "not a photo");

    const again = new PhotoRing(dir, ["in1", "out1"], config({ perLane: 4 }));
    assert.deepEqual(again.list("in1"), first.list("in1"));
    assert.deepEqual(again.list("out1"), first.list("out1"));
    assert.equal(again.forRead("in1", "粤B20001", 5_500)?.atMs, 5_001);
    assert.ok(!existsSync(join(dir, "in1", ".tmp-9-9.00.jpg")), "the temporary file of a cut write is removed");
    const next = again.take("in1", "粤B20009", 5_000, jpeg(1024, 3));
    assert.ok(next.ok);
    assert.ok(!first.list("in1").some((p) => p.id === next.photo.id), "a new id after a restart");
    await again.settled();

    // A smaller ring after a config change trims at start.
    const smaller = new PhotoRing(dir, ["in1"], config({ perLane: 2 }));
    await smaller.settled();
    assert.equal(smaller.list("in1").length, 2);
    assert.equal(files(dir, "in1").filter((name) => name.endsWith(".jpg")).length, 2);
  }),
);

test("decodeJpegBase64 never throws and never decodes past its bound, whatever the field holds", () => {
  const maxBytes = 2048;
  const field = fc.oneof(
    fc.string({ maxLength: 6000 }),
    fc.base64String({ maxLength: 6000 }),
    fc
      .uint8Array({ minLength: 0, maxLength: 4000 })
      .map((bytes) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(bytes), Buffer.from([0xff, 0xd9])]).toString("base64")),
    fc.anything(),
  );
  fc.assert(
    fc.property(field, (value) => {
      const result = decodeJpegBase64(value, maxBytes);
      if (result.ok) {
        assert.ok(result.jpeg.length <= maxBytes);
        assert.deepEqual([...result.jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
      } else {
        assert.match(result.code, /^E_PHOTO_[A-Z0-9_]+$/);
        if (typeof value === "string" && value.length > 4 * maxBytes) assert.equal(result.code, "E_PHOTO_TOO_LARGE", "a long text is refused on its length");
      }
    }),
    { numRuns: 400 },
  );
});

test("a huge field is refused on its length alone, before any decoding", () => {
  const huge = "A".repeat(50 * 1024 * 1024);
  const started = process.hrtime.bigint();
  const result = decodeJpegBase64(huge, 1024 * 1024);
  const tookMs = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.code, "E_PHOTO_TOO_LARGE");
  assert.ok(tookMs < 20, `took ${tookMs} ms`);
});

test(
  "through the camera push: whatever the image field holds, the read reaches the lane and the ring stays in its bounds",
  withDir(async (dir) => {
    const ring = new PhotoRing(dir, ["in1"], config({ perLane: 4, maxImageBytes: 8 * 1024, maxLaneBytes: 64 * 1024 }));
    const reads: PlateRead[] = [];
    const receiver = new CameraPushReceiver({ lanes: ["in1"], onRead: (_lane, read) => reads.push(read), photos: ring });
    let n = 0;
    const image = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.integer({ min: 4, max: 12 * 1024 }).map((size) => jpeg(size, size)),
      fc.constant(picture),
      fc.anything(),
    );
    await fc.assert(
      fc.asyncProperty(image, async (field) => {
        const before = reads.length;
        const body = buildAlarmInfoPlate({ plate: "粤B12345", plateId: `p${++n}`, atMs: 1_000 + n }) as { AlarmInfoPlate: { result: { PlateResult: Record<string, unknown> } } };
        body.AlarmInfoPlate.result.PlateResult.imageFile = field;
        const outcome = receiver.receive("in1", JSON.parse(JSON.stringify(body)));
        assert.equal(outcome.kind, "live");
        assert.equal(reads.length, before + 1, "the read went to the lane");
        await ring.settled();
        const status = ring.status().in1!;
        assert.ok(status.kept <= 4 && status.bytes <= 64 * 1024, JSON.stringify(status));
        assert.equal(files(dir, "in1").filter((name) => name.endsWith(".jpg")).length, status.kept, "the folder holds exactly the ring");
      }),
      { numRuns: 60 },
    );
  }),
);
