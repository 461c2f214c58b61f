import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import iconv from "iconv-lite";
import { systemClock } from "../../src/kernel/clock.js";
import { silentLogger } from "../../src/kernel/log.js";
import type { BackoffPolicy } from "../../src/kernel/backoff.js";
import { SerialCamera } from "../../src/io/camera/serial-camera.js";
import { cameraOptionsSchema } from "../../src/io/camera/config.js";
import type { PlateRead } from "../../src/io/camera/plate-read.js";
import { displayOptionsSchema } from "../../src/io/display/config.js";
import { FrameDecoder, interpretFrame, type DisplayCommand } from "../../src/io/display/frame.js";
import { LaneDisplay } from "../../src/io/display/lane-display.js";
import { serialDeviceSchema } from "../../src/io/serial/config.js";
import { SerialPortLink } from "../../src/io/serial/serialport-link.js";

/**
 * The real serialport adapter over a socat pseudo-terminal pair: `a` is the box's end,
 * `b` plays the device. Killing socat makes the device vanish (the box's reads fail, the
 * link paths disappear); restarting it with the same links brings it back.
 */

const socatMissing = spawnSync("socat", ["-V"], { stdio: "ignore" }).error !== undefined;
const skip = socatMissing && !process.env.CI ? "socat not installed; .ci/run installs it" : false;

const log = silentLogger();
const fastBackoff: BackoffPolicy = { baseMs: 100, capMs: 400, factor: 2, minMs: 1, jitter: { spread: 0.2 } };

class PtyPair {
  readonly dir = mkdtempSync(join(tmpdir(), "lk-socat-"));
  readonly a = join(this.dir, "a");
  readonly b = join(this.dir, "b");
  private process: ChildProcess | undefined;

  async start(): Promise<void> {
    const child = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.resume();
    this.process = child;
    await waitFor(() => existsSync(this.a) && existsSync(this.b), 5000, "socat links");
  }

  /** The device vanishes: socat exits (SIGTERM: it removes its links, as udev does for /dev/serial/by-id). */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function link(name: string, path: string): SerialPortLink {
  const device = serialDeviceSchema.parse({ kind: "camera", path, silenceTimeoutS: 600 });
  return new SerialPortLink(name, { ...device, path }, systemClock, log, { backoff: fastBackoff });
}

function requireSocat(): void {
  if (socatMissing) assert.fail("socat is not installed but CI is set: the interop suite must run in CI (.ci/run installs socat)");
}

test("camera lines written on the device end are read through the real adapter", { skip }, async () => {
  requireSocat();
  const pair = new PtyPair();
  await pair.start();
  const box = link("cam", pair.a);
  const device = link("cam-peer", pair.b);
  const camera = new SerialCamera("out1", box, cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%" }), log);
  const reads: PlateRead[] = [];
  camera.onRead((r) => reads.push(r));
  try {
    await camera.start();
    await device.open();
    assert.equal(box.status().state, "up");
    assert.equal(box.kind, "serialport");
    await device.write(Buffer.concat([iconv.encode("京A12345,蓝,98\r\n", "gbk"), Buffer.from([0x00, 0xff, 0x0d, 0x0a]), iconv.encode("粤B12345D,绿,91\r\n", "gbk")]));
    await waitFor(() => reads.length >= 2, 3000, "two reads");
    assert.deepEqual(
      reads.map((r) => [r.plate, r.color, r.confidence, r.source]),
      [
        ["京A12345", "blue", 98, "serial"],
        ["粤B12345D", "green", 91, "serial"],
      ],
    );
    assert.equal(camera.status().rejectedByReason.binary, 1);
    assert.ok(box.status().lastRxAtMs !== null);
  } finally {
    await camera.stop();
    await device.close();
    await pair.dispose();
  }
});

test("display frames written by the box arrive intact on the device end", { skip }, async () => {
  requireSocat();
  const pair = new PtyPair();
  await pair.start();
  const box = link("led", pair.a);
  const device = link("led-peer", pair.b);
  const display = new LaneDisplay("out1", box, displayOptionsSchema.parse({ connectData: "159753", timeSyncIntervalS: 0 }), systemClock, log);
  const received: Buffer[] = [];
  const decoder = new FrameDecoder();
  const commands: DisplayCommand[] = [];
  device.onData((chunk) => {
    received.push(chunk);
    commands.push(...decoder.push(chunk).map(interpretFrame));
  });
  try {
    await device.open();
    await display.start();
    assert.equal(await display.show({ kind: "feeDue", plate: "京A12345", feeFen: 1000 }), true);
    await waitFor(() => commands.length >= 4, 3000, "four frames");
    assert.deepEqual(
      commands.map((c) => c.cmd),
      ["connect", "time", "lines", "voice"],
    );
    assert.deepEqual(commands[2], {
      cmd: "lines",
      lines: [
        { text: "京A12345", color: "yellow" },
        { text: "请交费10.00元", color: "yellow" },
      ],
    });
    // The voice frame is the one verified against the board (test/fixtures/display/verified-frames.json), byte for byte.
    assert.ok(Buffer.concat(received).toString("hex").endsWith("0064ffff300b01c7ebbdbbb7d13130d4aa431e"));
    assert.equal(decoder.counts.badFrames, 0);
    assert.equal(display.status().writeErrors, 0);
  } finally {
    await display.stop();
    await device.close();
    await pair.dispose();
  }
});

test("the device disappears and comes back: link goes down, retries, comes up, reads again", { skip }, async () => {
  requireSocat();
  const pair = new PtyPair();
  await pair.start();
  const box = link("cam", pair.a);
  const device = link("cam-peer", pair.b);
  const camera = new SerialCamera("out1", box, cameraOptionsSchema.parse({}), log);
  const plates: string[] = [];
  const states: string[] = [];
  camera.onRead((r) => plates.push(r.plate));
  box.onStateChange((s) => states.push(s.state));
  try {
    await camera.start();
    await device.open();
    await device.write(iconv.encode("京A11111\r\n", "gbk"));
    await waitFor(() => plates.length === 1, 3000, "the first read");

    await pair.stop();
    await waitFor(() => box.status().state === "retrying", 3000, "the box to notice the loss");
    const lost = box.status();
    assert.ok(lost.errors >= 1);
    assert.equal(typeof lost.retryInS, "number");
    assert.ok(states.includes("down"), `states seen: ${states.join(",")}`);
    // It keeps retrying while the device is gone (ENOENT on each reopen).
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(box.status().state, "retrying");
    assert.match(box.status().lastError ?? "", /ENOENT|No such file/);
    await assert.rejects(box.write(Buffer.from("x")), /E_SERIAL_DOWN|is retrying|is down/);

    await pair.start();
    await waitFor(() => box.status().state === "up" && device.status().state === "up", 5000, "both ends back up");
    assert.equal(box.status().reconnects, 1);
    await device.write(iconv.encode("京A22222\r\n", "gbk"));
    await waitFor(() => plates.length === 2, 3000, "the read after the comeback");
    assert.deepEqual(plates, ["京A11111", "京A22222"]);
    assert.deepEqual(states.filter((s, i) => s !== states[i - 1]).slice(0, 3), ["up", "down", "retrying"]);
    assert.equal(states.at(-1), "up");
  } finally {
    await camera.stop();
    await device.close();
    await pair.dispose();
  }
});
