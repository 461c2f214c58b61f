import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import {
  DisplayError,
  FrameDecoder,
  crc16Modbus,
  decodeFrame,
  encodeCommand,
  encodeFrame,
  interpretFrame,
  localTime,
  type DisplayCommand,
} from "../../../../src/io/display/frame.js";
import { fitGbk } from "../../../../src/io/display/gbk.js";
import { decodeSpacesSignFrame, encodeSpacesSignFrame, spacesSignColorFor } from "../../../../src/io/display/spaces-sign.js";

const verified = JSON.parse(readFileSync(new URL("../../../fixtures/display/verified-frames.json", import.meta.url), "utf8")) as {
  frames: Array<{ hex: string; address: number; command: DisplayCommand }>;
};
const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");

test("CRC-16/MODBUS check value", () => {
  assert.equal(crc16Modbus(Buffer.from("123456789")), 0x4b37);
});

for (const frame of verified.frames) {
  test(`verified frame byte for byte: ${frame.hex}`, () => {
    const { frame: encoded } = encodeCommand(frame.address, frame.command);
    assert.equal(encoded.toString("hex").toUpperCase().match(/../g)!.join(" "), frame.hex);
    const decoded = decodeFrame(hex(frame.hex));
    assert.ok(decoded.ok);
    assert.deepEqual(interpretFrame(decoded.frame), frame.command);
  });
}

test("a flipped bit anywhere fails the CRC (or the header)", () => {
  const good = hex(verified.frames[0]!.hex);
  for (let byte = 0; byte < good.length; byte++) {
    const bad = Buffer.from(good);
    bad[byte]! ^= 0x10;
    assert.equal(decodeFrame(bad).ok, false, `byte ${byte}`);
  }
});

/** Text the board can show: GBK-encodable characters (ASCII, common Chinese). */
const gbkText = (maxLength: number) =>
  fc.array(fc.constantFrom(..."0123456789ABCXYZ abc欢迎光临请交费元车位已满京粤沪一路顺风月租剩余天"), { maxLength }).map((chars) => chars.join(""));
const color = fc.option(fc.constantFrom("red" as const, "green" as const, "yellow" as const), { nil: undefined });

const command: fc.Arbitrary<DisplayCommand> = fc.oneof(
  gbkText(60).map((text) => ({ cmd: "voice" as const, option: 1, text })),
  fc
    .record({ line: fc.integer({ min: 0, max: 3 }), text: gbkText(16), color })
    .map(({ line, text, color }) => (color ? { cmd: "line" as const, line, text, color } : { cmd: "line" as const, line, text })),
  fc
    .array(fc.record({ text: gbkText(16), color }), { maxLength: 4 })
    .map((lines) => ({ cmd: "lines" as const, lines: lines.map((l) => (l.color ? { text: l.text, color: l.color } : { text: l.text })) })),
  fc
    .record({
      year: fc.integer({ min: 2000, max: 2099 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 31 }),
      weekday: fc.integer({ min: 1, max: 7 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.integer({ min: 0, max: 59 }),
      second: fc.integer({ min: 0, max: 59 }),
    })
    .map((time) => ({ cmd: "time" as const, time: { ...time } })),
  fc.stringMatching(/^[0-9A-Za-z]{0,16}$/).map((data) => ({ cmd: "connect" as const, data })),
);

test("round trip: encode → decode → interpret gives the command back (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), command, (address, cmd) => {
      const { frame, truncated } = encodeCommand(address, cmd);
      assert.equal(truncated, false);
      const decoded = decodeFrame(frame);
      assert.ok(decoded.ok);
      assert.equal(decoded.frame.address, address);
      assert.equal(decoded.length, frame.length);
      assert.deepEqual(interpretFrame(decoded.frame), cmd);
    }),
    { numRuns: 500 },
  );
});

test("stream decoder: frames found among noise and split anywhere; corrupt frames skipped", () => {
  fc.assert(
    fc.property(
      fc.array(command, { minLength: 1, maxLength: 8 }),
      fc.array(fc.uint8Array({ maxLength: 20 }), { minLength: 9, maxLength: 9 }),
      fc.integer({ min: 1, max: 50 }),
      (commands, noise, chunk) => {
        const frames = commands.map((c) => encodeCommand(0, c).frame);
        // Noise without the 0x64 0xFF 0xFF pattern's middle byte, so it cannot open a frame.
        const clean = noise.map((n) => Buffer.from(n.filter((b) => b !== 0x64)));
        const corrupt = Buffer.from(frames[0]!);
        corrupt[corrupt.length - 1]! ^= 0xff;
        const stream = Buffer.concat([clean[0]!, corrupt, ...frames.flatMap((f, i) => [f, clean[i + 1]!])]);
        const decoder = new FrameDecoder();
        const out: DisplayCommand[] = [];
        for (let at = 0; at < stream.length; at += chunk) out.push(...decoder.push(stream.subarray(at, at + chunk)).map(interpretFrame));
        assert.deepEqual(out, commands);
        assert.ok(decoder.counts.badFrames >= 1);
      },
    ),
    { numRuns: 200 },
  );
});

test("GBK fitting never splits a double-byte character", () => {
  // 15 Chinese characters (30 bytes) + "A" + another Chinese character: 33 bytes.
  const text = "一二三四五六七八九十一二三四五A六";
  const fitted = fitGbk(text, 32);
  assert.equal(fitted.bytes.length, 31);
  assert.equal(fitted.truncated, true);
  const again = fitGbk("A" + "一".repeat(16), 32);
  assert.equal(again.bytes.length, 31, "an odd budget leaves the last byte empty rather than half a character");
  assert.equal(fitGbk("车😀", 32).unencodable, 1);
});

test("multi-line text: ≤ 4 lines of ≤ 32 bytes; truncate by default, reject on request", () => {
  const five = { cmd: "lines" as const, lines: ["1", "2", "3", "4", "5"].map((text) => ({ text })) };
  const cut = encodeCommand(0, five);
  assert.equal(cut.truncated, true);
  const back = interpretFrame((decodeFrame(cut.frame) as { ok: true; frame: any }).frame);
  assert.deepEqual(back, { cmd: "lines", lines: ["1", "2", "3", "4"].map((text) => ({ text })) });
  assert.throws(
    () => encodeCommand(0, five, { overflow: "reject" }),
    (e: unknown) => e instanceof DisplayError && e.code === "E_DISPLAY_TOO_MANY_LINES",
  );
  const long = { cmd: "lines" as const, lines: [{ text: "请交费一二三四五六七八九十一二三四五" }] };
  const cutLine = encodeCommand(0, long);
  const line = (interpretFrame((decodeFrame(cutLine.frame) as { ok: true; frame: any }).frame) as { lines: Array<{ text: string }> }).lines[0]!.text;
  assert.equal(line, "请交费一二三四五六七八九十一二三", "16 Chinese characters = 32 bytes");
  assert.throws(
    () => encodeCommand(0, long, { overflow: "reject" }),
    (e: unknown) => e instanceof DisplayError && e.code === "E_DISPLAY_TOO_LONG",
  );
  assert.throws(
    () => encodeCommand(0, { cmd: "line", line: 4, text: "x" }),
    (e: unknown) => e instanceof DisplayError && e.code === "E_DISPLAY_BAD_FIELD",
  );
  assert.throws(() => encodeFrame({ address: 0, cmd: 0x30, data: Buffer.alloc(256) }), DisplayError);
});

test("one-line text layout: line, colour, GBK text", () => {
  const { frame } = encodeCommand(1, { cmd: "line", line: 2, text: "车位已满", color: "red" });
  assert.equal(
    frame.toString("hex"),
    Buffer.concat([Buffer.from([0x01, 0x64, 0xff, 0xff, 0x62, 10, 2, 1]), Buffer.from("b3b5cebbd2d1c2fa", "hex"), frame.subarray(-2)]).toString("hex"),
  );
});

test("time sync: lot-local time, year LE16, weekday 1 = Sunday", () => {
  // 2024-01-14 is a Sunday; 17:30:05 UTC is 01:30:05 on Monday the 15th in Shanghai.
  const at = Date.UTC(2024, 0, 14, 17, 30, 5);
  const shanghai = localTime(at, "Asia/Shanghai");
  assert.deepEqual(shanghai, { year: 2024, month: 1, day: 15, weekday: 2, hour: 1, minute: 30, second: 5 });
  assert.equal(localTime(at, "UTC").weekday, 1);
  const { frame } = encodeCommand(0, { cmd: "time", time: shanghai });
  assert.equal(frame.subarray(4, 14).toString("hex"), "0508e807010f0201" + "1e05");
});

test("remaining-spaces sign frame", () => {
  const frame = encodeSpacesSignFrame({ color: "yellow", count: 300, info: 0 });
  assert.equal(frame.toString("hex"), "3a012c01002e0a");
  assert.deepEqual(decodeSpacesSignFrame(frame), { ok: true, frame: { color: "yellow", count: 300, info: 0 } });
  const bad = Buffer.from(frame);
  bad[2] = 0x2d;
  assert.equal(decodeSpacesSignFrame(bad).ok, false);
  assert.equal(decodeSpacesSignFrame(frame.subarray(0, 6)).ok, false);
  fc.assert(
    fc.property(fc.constantFrom("green" as const, "yellow" as const, "red" as const), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 255 }), (c, count, info) => {
      assert.deepEqual(decodeSpacesSignFrame(encodeSpacesSignFrame({ color: c, count, info })), { ok: true, frame: { color: c, count, info } });
    }),
  );
  assert.deepEqual(
    [0, 3, 5, 6].map((n) => spacesSignColorFor(n, 5)),
    ["red", "yellow", "yellow", "green"],
  );
});
