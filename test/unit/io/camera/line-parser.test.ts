import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import iconv from "iconv-lite";
import { CameraLineParser, compileTemplate, formatCameraLine, type CameraLineResult } from "../../../../src/io/camera/line-parser.js";
import { parseColor } from "../../../../src/io/camera/plate-read.js";
import { readPlate } from "../../../../src/core/plates/index.js";
import { cameraOptionsSchema } from "../../../../src/io/camera/config.js";
import { LineSplitter } from "../../../../src/io/serial/line-splitter.js";

const fixture = (name: string) => new URL(`../../../fixtures/camera/${name}`, import.meta.url);
const AT = 1_705_284_000_000;

function summarise(results: CameraLineResult[]): unknown[] {
  return results.map((r) => {
    if (!r.ok) return { rejected: r.reason };
    const { atMs, source, ...rest } = r.read;
    assert.equal(atMs, AT);
    assert.equal(source, "serial");
    return rest;
  });
}

test("GBK capture fixture: every line read or rejected as expected, in order", () => {
  const expected = JSON.parse(readFileSync(fixture("serial-gbk-capture.expected.json"), "utf8")) as { template: string; results: unknown[] };
  const parser = new CameraLineParser(cameraOptionsSchema.parse({ template: expected.template }));
  const results = parser.push(readFileSync(fixture("serial-gbk-capture.bin")), AT);
  assert.deepEqual(summarise(results), expected.results);
  const stats = parser.stats();
  assert.equal(stats.reads, 6);
  assert.equal(stats.rejected, 6);
  assert.deepEqual(stats.byReason, { tooLong: 1, binary: 1, encoding: 1, template: 1, plate: 0, color: 1, confidence: 1 });
  // The unterminated tail completes when its terminator arrives.
  assert.deepEqual(summarise(parser.push(Buffer.from("\r\n"), AT)), [{ plate: "贵A12345", color: "blue", colorCode: 1, confidence: 80 }]);
});

test("the same capture fed one byte at a time gives the same results", () => {
  const whole = new CameraLineParser(cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%" }));
  const bytewise = new CameraLineParser(cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%" }));
  const capture = readFileSync(fixture("serial-gbk-capture.bin"));
  const a = whole.push(capture, AT);
  const b: CameraLineResult[] = [];
  for (const byte of capture) b.push(...bytewise.push(Buffer.from([byte]), AT));
  assert.deepEqual(b, a);
  assert.equal(a.length, 12);
});

test("UTF-8 camera, plate-only template, LF endings", () => {
  const parser = new CameraLineParser(cameraOptionsSchema.parse({ template: "%PLATE%", encoding: "utf8" }));
  const results = parser.push(Buffer.from("京A12345\n京B1\nnot a plate\nÿ\n", "utf8"), AT);
  assert.deepEqual(summarise(results), [{ plate: "京A12345" }, { plate: "京B1" }, { rejected: "plate" }, { rejected: "plate" }]);
  // Invalid UTF-8 bytes are an encoding error, not a misread.
  const bad = parser.push(Buffer.from([0xe4, 0xba, 0x0a]), AT);
  assert.deepEqual(summarise(bad), [{ rejected: "encoding" }]);
});

test("templates with literal text and ignored fields", () => {
  const parser = new CameraLineParser(cameraOptionsSchema.parse({ template: "PLATE=%PLATE%;T=%TIME%;C=%CONFIDENCE%" }));
  const results = parser.push(iconv.encode("PLATE=鲁B99999;T=2024-01-15 10:00:00;C=93.5\r\nPLATE=鲁B99999 C=93\r\n", "gbk"), AT);
  assert.deepEqual(summarise(results), [{ plate: "鲁B99999", confidence: 93.5 }, { rejected: "template" }]);
  assert.throws(() => compileTemplate("%COLOR%"), /%PLATE%/);
  assert.equal(cameraOptionsSchema.safeParse({ template: "%PLATE%%PLATE%" }).success, false);
});

test("formatCameraLine prints what the parser reads back (round trip)", () => {
  for (const encoding of ["gbk", "utf8"] as const) {
    for (const lineEnding of ["crlf", "lf", "cr"] as const) {
      const options = cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%", encoding, lineEnding });
      const parser = new CameraLineParser(options);
      const bytes = Buffer.concat([formatCameraLine(options, { plate: "黑A12345", colorCode: 6, confidence: 77 }), formatCameraLine(options, { plate: "_无_" })]);
      assert.deepEqual(
        summarise(parser.push(bytes, AT)),
        [
          { plate: "黑A12345", color: "yellow-green", colorCode: 6, confidence: 77 },
          { plate: "", noPlate: true },
        ],
        `${encoding} ${lineEnding}`,
      );
    }
  }
});

test("line splitter: CR, LF and CR LF end lines; empty lines skipped; over-long dropped up to the terminator", () => {
  const splitter = new LineSplitter(8);
  const lines: string[] = [];
  const overflows: number[] = [];
  const sink = { line: (b: Buffer) => lines.push(b.toString()), overflow: (n: number) => overflows.push(n) };
  splitter.push(Buffer.from("ab\r\ncd\n\n\ref\r0123456789abc"), sink);
  splitter.push(Buffer.from("def\nok\n"), sink);
  assert.deepEqual(lines, ["ab", "cd", "ef", "ok"]);
  assert.deepEqual(overflows, [16]);
  assert.equal(splitter.pending(), 0);
});

test("plate normalisation and colour names", () => {
  assert.deepEqual(readPlate("京A·12345"), { ok: true, plate: "京A12345", noPlate: false });
  assert.deepEqual(readPlate(" 粤z1a23港 "), { ok: true, plate: "粤Z1A23港", noPlate: false });
  assert.deepEqual(readPlate("_无_"), { ok: true, plate: "", noPlate: true });
  assert.equal(readPlate("京京京京A1").ok, false);
  assert.equal(readPlate("京").ok, false);
  assert.equal(readPlate("A1<script>").ok, false);
  assert.deepEqual(parseColor("蓝"), { color: "blue", colorCode: 1 });
  assert.deepEqual(parseColor("Yellow-Green"), { color: "yellow-green", colorCode: 6 });
  assert.deepEqual(parseColor("5"), { color: "green", colorCode: 5 });
  assert.deepEqual(parseColor(2), { color: "yellow", colorCode: 2 });
  assert.equal(parseColor(7), undefined);
  assert.equal(parseColor("紫"), undefined);
});
