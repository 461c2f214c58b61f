import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../../helpers/fake-clock.js";
import { silentLogger } from "../../../../src/kernel/log.js";
import { displayOptionsSchema, spacesSignOptionsSchema } from "../../../../src/io/display/config.js";
import { SpacesSign, decodeSpacesSignFrame } from "../../../../src/io/display/spaces-sign.js";
import { decodeFrame, encodeCommand, interpretFrame } from "../../../../src/io/display/frame.js";
import { LaneDisplay, createLaneDisplay } from "../../../../src/io/display/lane-display.js";
import { formatYuan, formatYuanVoice, renderMessage, type LaneMessage } from "../../../../src/io/display/messages.js";
import { SimSerialLink } from "../../../../src/io/serial/sim-serial-link.js";
import { serialDeviceSchema } from "../../../../src/io/serial/config.js";
import { fitGbk } from "../../../../src/io/display/gbk.js";

const log = silentLogger();

test("money: fen → 元 for the screen and for the voice", () => {
  assert.deepEqual([0, 5, 1000, 1250, 1205, 123456].map(formatYuan), ["0.00元", "0.05元", "10.00元", "12.50元", "12.05元", "1234.56元"]);
  assert.deepEqual([0, 5, 1000, 1250, 1205, 50].map(formatYuanVoice), ["0元", "0.05元", "10元", "12.5元", "12.05元", "0.5元"]);
});

test("catalogue: every lane state renders lines that fit the board, and a voice", () => {
  const messages: LaneMessage[] = [
    { kind: "idle" },
    { kind: "welcome", plate: "京A12345" },
    { kind: "feeDue", plate: "京A12345", feeFen: 1250 },
    { kind: "paid", plate: "京A12345" },
    { kind: "monthly", plate: "京A12345", daysLeft: 12 },
    { kind: "lotFull" },
    { kind: "denied", plate: "京A12345" },
    { kind: "payCash", plate: "京A12345", feeFen: 800 },
    { kind: "attendantCalled" },
  ];
  const rendered = messages.map((m) => renderMessage(m));
  assert.deepEqual(
    rendered.map((r) => [r.lines, r.voice]),
    [
      [["欢迎光临"], undefined],
      [["京A12345", "欢迎光临"], "欢迎光临"],
      [["京A12345", "请交费12.50元"], "请交费12.5元"],
      [["京A12345", "谢谢 一路顺风"], "谢谢，一路顺风"],
      [["京A12345", "月租车", "剩余12天"], "月租车，剩余12天"],
      [["车位已满"], "车位已满"],
      [["京A12345", "禁止通行"], "禁止通行"],
      [["京A12345", "请现金缴费8.00元"], "请现金缴费8元"],
      [["已呼叫管理员", "请稍候"], "已呼叫管理员，请稍候"],
    ],
  );
  for (const r of rendered) {
    assert.ok(r.lines.length <= 4);
    for (const line of r.lines) assert.equal(fitGbk(line, 32).truncated, false, line);
  }
  assert.equal(renderMessage({ kind: "lotFull" }).color, "red");
});

test("the fee voice for 10 元 is the verified frame", () => {
  const voice = renderMessage({ kind: "feeDue", feeFen: 1000 }).voice!;
  assert.equal(encodeCommand(0, { cmd: "voice", text: voice }).frame.toString("hex"), "0064ffff300b01c7ebbdbbb7d13130d4aa431e");
});

test("a car without a plate: the plate line is dropped", () => {
  assert.deepEqual(renderMessage({ kind: "welcome", plate: "" }).lines, ["欢迎光临"]);
  assert.deepEqual(renderMessage({ kind: "welcome" }).lines, ["欢迎光临"]);
});

test("configurable texts override lines, voice and colour; an empty voice is silent", () => {
  const options = displayOptionsSchema.parse({
    texts: {
      welcome: { lines: ["{plate}", "欢迎回家"], voice: "{plate}欢迎回家" },
      feeDue: { voice: "" },
      lotFull: { color: "yellow" },
    },
  });
  assert.deepEqual(renderMessage({ kind: "welcome", plate: "粤B1" }, options.texts), { kind: "welcome", lines: ["粤B1", "欢迎回家"], voice: "粤B1欢迎回家", color: "green" });
  assert.equal(renderMessage({ kind: "feeDue", feeFen: 100 }, options.texts).voice, undefined);
  assert.equal(renderMessage({ kind: "lotFull" }, options.texts).color, "yellow");
  assert.equal(displayOptionsSchema.safeParse({ texts: { wellcome: { voice: "x" } } }).success, false, "a typo in a message name is reported");
  assert.equal(displayOptionsSchema.safeParse({ texts: { welcome: { lines: ["1", "2", "3", "4", "5"] } } }).success, false);
});

async function display(options: Record<string, unknown> = {}) {
  const clock = new FakeClock(Date.UTC(2024, 0, 15, 2, 0, 0));
  const device = serialDeviceSchema.parse({ kind: "display", options });
  if (device.kind !== "display") throw new Error("unreachable");
  const link = new SimSerialLink("led-out1", clock, log, { silenceTimeoutS: 0 });
  const lane = createLaneDisplay("out1", link, device.options, clock, log, "Asia/Shanghai");
  return { clock, link, lane };
}

test("lane display: what the driver sees and hears, decoded by the simulated board", async () => {
  const { link, lane, clock } = await display({ connectData: "159753" });
  await lane.start();
  const board = lane.board!;
  assert.equal(board.lastConnect(), "159753", "connect frame on link up");
  assert.deepEqual(board.boardTime(), { year: 2024, month: 1, day: 15, weekday: 2, hour: 10, minute: 0, second: 0 }, "board clock set to lot time");
  assert.equal(await lane.show({ kind: "feeDue", plate: "京A12345", feeFen: 1250 }), true);
  await clock.advance(1000);
  assert.equal(await lane.show({ kind: "paid", plate: "京A12345" }), true);
  assert.deepEqual(lane.shown(), [
    { atMs: clock.now() - 1000, lines: ["京A12345", "请交费12.50元"], color: "yellow", voice: "请交费12.5元" },
    { atMs: clock.now(), lines: ["京A12345", "谢谢 一路顺风"], color: "green", voice: "谢谢，一路顺风" },
  ]);
  // The bytes on the wire are valid frames: lines (0x6E) then voice (0x30).
  const frames = link.written().map((b) => decodeFrame(b));
  assert.ok(frames.every((f) => f.ok));
  assert.deepEqual(
    frames.map((f) => (f.ok ? f.frame.cmd : -1)),
    [0x00, 0x05, 0x6e, 0x30, 0x6e, 0x30],
  );
  const status = lane.status();
  assert.equal(status.shows, 2);
  assert.equal(status.framesWritten, 6);
  assert.equal(status.writeErrors, 0);
  assert.deepEqual(status.lastShown, { kind: "paid", lines: ["京A12345", "谢谢 一路顺风"], voice: "谢谢，一路顺风", atMs: clock.now() });
  await lane.showLine(3, "请稍候", "yellow");
  assert.deepEqual(board.currentLines(), ["京A12345", "谢谢 一路顺风", "", "请稍候"]);
  await lane.stop();
});

test("lane display: no voice frames for a board without a speaker; lines capped by maxLines", async () => {
  const { link, lane } = await display({ voice: false, maxLines: 2 });
  await lane.start();
  await lane.show({ kind: "monthly", plate: "京A12345", daysLeft: 3 });
  const cmds = link.written().map((b) => (decodeFrame(b) as { ok: true; frame: { cmd: number } }).frame.cmd);
  assert.ok(!cmds.includes(0x30));
  assert.deepEqual(lane.shown().at(-1)?.lines, ["京A12345", "月租车"]);
  assert.equal(lane.status().truncated, 1);
  await lane.stop();
});

test("lane display: an unplugged board fails shows without throwing; greeted again when back", async () => {
  const { link, lane } = await display();
  await lane.start();
  link.disconnect();
  assert.equal(await lane.show({ kind: "lotFull" }), false);
  assert.equal(lane.status().writeErrors, 2, "both frames (lines, voice) refused");
  assert.equal(lane.status().link.state, "retrying");
  link.clearWritten();
  link.reconnect();
  await new Promise((r) => setImmediate(r));
  const cmds = link.written().map((b) => (decodeFrame(b) as { ok: true; frame: { cmd: number } }).frame.cmd);
  assert.deepEqual(cmds, [0x05], "time sync again after the board came back");
  assert.equal(await lane.show({ kind: "lotFull" }), true);
  assert.deepEqual(lane.shown().at(-1), { atMs: lane.shown().at(-1)!.atMs, lines: ["车位已满"], color: "red", voice: "车位已满" });
  await lane.stop();
});

test("lane display: periodic time sync on the clock", async () => {
  const { link, lane, clock } = await display({ timeSyncIntervalS: 60 });
  await lane.start();
  link.clearWritten();
  await clock.advance(180_000);
  const syncs = link
    .written()
    .map((b) => interpretFrame((decodeFrame(b) as { ok: true; frame: any }).frame))
    .filter((c) => c.cmd === "time");
  assert.equal(syncs.length, 3);
  await lane.stop();
  await clock.advance(600_000);
  assert.equal(clock.pendingTimers(), 0);
});

test("lane display: a board's garbage replies are counted, not fatal", async () => {
  const { link, lane } = await display();
  await lane.start();
  const reply = encodeCommand(0, { cmd: "connect", data: "OK" }).frame;
  link.emit(Buffer.concat([Buffer.from([1, 2, 3]), reply, Buffer.from([0x00, 0x64, 0xff, 0xff, 0x30, 0x01, 0x01, 0x00, 0x00])]));
  const replies = lane.status().replies;
  assert.equal(replies.frames, 1);
  assert.ok(replies.badFrames >= 1);
  assert.ok(replies.droppedBytes >= 3);
  await lane.stop();
});

test("LaneDisplay without a simulated board (as on a real link): shown() is empty", async () => {
  const clock = new FakeClock();
  const link = new SimSerialLink("x", clock, log);
  const lane = new LaneDisplay("in1", link, displayOptionsSchema.parse({}), clock, log);
  await lane.start();
  await lane.show({ kind: "welcome", plate: "京A1" });
  assert.deepEqual(lane.shown(), []);
  assert.equal(lane.status().framesWritten, 3);
  await lane.stop();
});

test("spaces sign: absolute count, colour by threshold, write failures counted", async () => {
  const clock = new FakeClock();
  const link = new SimSerialLink("spaces", clock, log, { silenceTimeoutS: 0 });
  const sign = new SpacesSign(link, spacesSignOptionsSchema.parse({ lowSpaces: 3 }), clock, log);
  await sign.start();
  for (const free of [42, 3, 0, -2]) assert.equal(await sign.show(free), true);
  assert.deepEqual(
    link.written().map((b) => {
      const d = decodeSpacesSignFrame(b);
      return d.ok ? [d.frame.color, d.frame.count] : d.message;
    }),
    [
      ["green", 42],
      ["yellow", 3],
      ["red", 0],
      ["red", 0],
    ],
  );
  link.disconnect();
  assert.equal(await sign.show(5), false);
  const status = sign.status();
  assert.equal(status.writes, 4);
  assert.equal(status.writeErrors, 1);
  assert.deepEqual(status.last, { freeSpaces: 0, color: "red", atMs: clock.now() });
  await sign.stop();
});
