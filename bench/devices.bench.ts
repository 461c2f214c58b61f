// Lane device parsing and encoding costs: how much of a Pi-class CPU the serial camera
// parser, the camera push parser and the display encoder take.
import { readFileSync } from "node:fs";
import { percentile, report, round } from "./lib.js";
import { CameraLineParser, formatCameraLine } from "../src/io/camera/line-parser.js";
import { cameraOptionsSchema } from "../src/io/camera/config.js";
import { decodePushBody, parseAlarmInfoPlate } from "../src/io/camera/http-push.js";
import { encodeCommand } from "../src/io/display/frame.js";
import { renderMessage } from "../src/io/display/messages.js";

function timed(iterations: number, fn: (i: number) => void): number[] {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    fn(i);
    samples.push(performance.now() - t0);
  }
  return samples;
}

// 1. Serial camera parser throughput on 4 MB of noise with a valid line every ~1 KB.
{
  const options = cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%" });
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const parts: Buffer[] = [];
  let lines = 0;
  for (let size = 0; size < 4 * 1024 * 1024;) {
    const noise = Buffer.alloc(Math.floor(random() * 2048));
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(random() * 256);
    parts.push(noise, Buffer.from("\r\n"), formatCameraLine(options, { plate: "京A12345", colorCode: 1, confidence: 95 }));
    size += noise.length + 20;
    lines++;
  }
  const stream = Buffer.concat(parts);
  const parser = new CameraLineParser(options);
  const t0 = performance.now();
  let reads = 0;
  for (let at = 0; at < stream.length; at += 1024) for (const r of parser.push(stream.subarray(at, at + 1024), 0)) if (r.ok) reads++;
  const ms = performance.now() - t0;
  report("camera-serial-parser-throughput", {
    mbPerS: round(stream.length / 1024 / 1024 / (ms / 1000), 1),
    bytes: stream.length,
    validLines: lines,
    reads,
    ms: round(ms, 1),
    note: "9600 baud is ~0.001 MB/s",
  });
}

// 2. Camera push: decode + parse of a body with an embedded image (~50 KB).
{
  const body = readFileSync(new URL("../test/fixtures/camera/alarm-with-image.json", import.meta.url));
  const samples = timed(2000, () => {
    const result = parseAlarmInfoPlate(decodePushBody(body), 0);
    if (!result.ok) throw new Error("fixture did not parse");
  });
  report("camera-push-parse", { bodyBytes: body.length, p50Ms: round(percentile(samples, 50)), p99Ms: round(percentile(samples, 99)) });
}

// 3. Display: render a lane message and encode its frames.
{
  const samples = timed(20_000, (i) => {
    const rendered = renderMessage({ kind: "feeDue", plate: "京A12345", feeFen: 1000 + i });
    encodeCommand(0, { cmd: "lines", lines: rendered.lines.map((text) => ({ text, color: rendered.color })) });
    encodeCommand(0, { cmd: "voice", text: rendered.voice ?? "" });
  });
  report("display-message-encode", { p50Ms: round(percentile(samples, 50), 4), p99Ms: round(percentile(samples, 99), 4) });
}
