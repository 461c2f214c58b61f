import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import iconv from "iconv-lite";
import { FakeClock } from "../../../helpers/fake-clock.js";
import { createLogger, silentLogger } from "../../../../src/kernel/log.js";
import { SerialCamera } from "../../../../src/io/camera/serial-camera.js";
import { cameraOptionsSchema } from "../../../../src/io/camera/config.js";
import type { PlateRead } from "../../../../src/io/camera/plate-read.js";
import { SimSerialLink } from "../../../../src/io/serial/sim-serial-link.js";

test("serial camera: noise is counted, the next good line is read, the lane id is set", async () => {
  const clock = new FakeClock();
  const link = new SimSerialLink("cam-out1", clock, silentLogger());
  const camera = new SerialCamera("out1", link, cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%" }), silentLogger());
  const reads: PlateRead[] = [];
  camera.onRead((r) => reads.push(r));
  await camera.start();
  link.emit(Buffer.from([0xff, 0x00, 0x7f, 0x0d, 0x0a]));
  link.emit(Buffer.alloc(1000, 0x41));
  link.emit(Buffer.concat([Buffer.from("\r\n"), iconv.encode("京A12345,蓝,98\r\n", "gbk")]));
  assert.deepEqual(reads, [{ plate: "京A12345", color: "blue", colorCode: 1, confidence: 98, atMs: clock.now(), source: "serial", laneId: "out1" }]);
  const status = camera.status();
  assert.equal(status.reads, 1);
  assert.equal(status.rejected, 2);
  assert.deepEqual({ binary: status.rejectedByReason.binary, tooLong: status.rejectedByReason.tooLong }, { binary: 1, tooLong: 1 });
  assert.equal(status.lastReadAtMs, clock.now());
  assert.equal(status.lastRejection?.reason, "tooLong");
  assert.equal(status.link.rxBytes, 5 + 1000 + 2 + 16);
  await camera.stop();
  assert.equal(link.emit("x"), false);
});

test("serial camera: a throwing listener does not stop the next one or the next read", async () => {
  const link = new SimSerialLink("cam", new FakeClock(), silentLogger());
  const camera = new SerialCamera("in1", link, cameraOptionsSchema.parse({ encoding: "utf8" }), silentLogger());
  const plates: string[] = [];
  camera.onRead(() => {
    throw new Error("lane failed");
  });
  camera.onRead((r) => plates.push(r.plate));
  await camera.start();
  link.emit("京A11111\n京A22222\n");
  assert.deepEqual(plates, ["京A11111", "京A22222"]);
});

test("serial camera: rejections are logged at most once per 10 s, with the count in between", async () => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  const clock = new FakeClock();
  const link = new SimSerialLink("cam", clock, silentLogger());
  const camera = new SerialCamera("in1", link, cameraOptionsSchema.parse({}), createLogger({ level: "warn", destination: sink }));
  await camera.start();
  for (let i = 0; i < 100; i++) link.emit("garbage!\r\n");
  await clock.advance(10_000);
  link.emit("garbage!\r\n");
  const warnings = lines.filter((l) => l.msg === "camera line rejected");
  assert.equal(warnings.length, 2);
  assert.equal(warnings[1]!.rejectedSinceLastLog, 100);
  assert.equal(camera.status().rejected, 101);
});
