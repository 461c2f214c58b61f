import { test } from "node:test";
import assert from "node:assert/strict";
import { CameraLineParser, formatCameraLine } from "../../../../src/io/camera/line-parser.js";
import { cameraOptionsSchema } from "../../../../src/io/camera/config.js";
import { seededRandom } from "../../../helpers/seeded-random.js";

const provinces = [..."京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"];
const letters = "ABCDEFGHJKLMNPQRSTUVWXYZ";
const serialChars = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

for (const encoding of ["gbk", "utf8"] as const) {
  test(`fuzz (${encoding}): 1 MB of random bytes interleaved with valid lines; no throw, every valid line read`, () => {
    const seed = encoding === "gbk" ? 0x5eed1 : 0x5eed2;
    const random = seededRandom(seed);
    const int = (n: number) => Math.floor(random() * n);
    const options = cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%", encoding });
    const terminators = ["\r\n", "\n", "\r"].map((t) => Buffer.from(t, "latin1"));

    const parts: Buffer[] = [];
    const expected: Array<{ plate: string; colorCode: number; confidence: number }> = [];
    let noiseBytes = 0;
    while (noiseBytes < 1024 * 1024) {
      const noise = Buffer.alloc(int(2048));
      for (let i = 0; i < noise.length; i++) noise[i] = int(256);
      noiseBytes += noise.length;
      parts.push(noise, terminators[int(3)]!); // a terminator before each valid line makes it well-defined
      let serial = String(int(10)); // at least one digit
      while (serial.length < 5) serial += serialChars[int(serialChars.length)];
      const fields = { plate: `${provinces[int(provinces.length)]}${letters[int(letters.length)]}${serial}`, colorCode: int(7), confidence: int(101) };
      expected.push(fields);
      parts.push(formatCameraLine({ ...options, lineEnding: (["crlf", "lf", "cr"] as const)[int(3)]! }, fields));
    }
    const stream = Buffer.concat(parts);

    const parser = new CameraLineParser(options);
    const reads: Array<{ plate: string; colorCode: number | undefined; confidence: number | undefined }> = [];
    // Random chunk sizes: lines and double-byte characters split across reads, as on a UART.
    for (let at = 0; at < stream.length;) {
      const size = 1 + int(4096);
      for (const result of parser.push(stream.subarray(at, at + size), 0)) {
        if (result.ok) reads.push({ plate: result.read.plate, colorCode: result.read.colorCode, confidence: result.read.confidence });
      }
      at += size;
    }

    // Every valid line is read, in order; random noise may (very rarely) form a read of its
    // own, so the expected reads must be a subsequence of what came out.
    let next = 0;
    for (const read of reads) {
      const want = expected[next];
      if (want && read.plate === want.plate && read.colorCode === want.colorCode && read.confidence === want.confidence) next++;
    }
    assert.equal(next, expected.length, `only ${next} of ${expected.length} valid lines were read`);
    assert.ok(reads.length - expected.length <= expected.length / 100, `${reads.length - expected.length} reads came out of noise`);
    const stats = parser.stats();
    assert.ok(stats.rejected > expected.length / 2, "noise lines are counted as rejected");
    assert.ok(stats.byReason.tooLong > 0 && stats.byReason.binary > 0, "over-long and binary lines were seen and counted");
    assert.equal(stats.reads, reads.length);
    assert.ok(expected.length > 500);
  });
}
