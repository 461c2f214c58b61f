import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { FakeClock, flushMicrotasks } from "../../../helpers/fake-clock.js";
import { silentLogger } from "../../../../src/kernel/log.js";
import { backoffDelayMs } from "../../../../src/kernel/backoff.js";
import { defaultBackoff, SerialLinkError, type SerialLinkStatus } from "../../../../src/io/serial/serial-link.js";
import { SimSerialLink } from "../../../../src/io/serial/sim-serial-link.js";
import { SerialPortLink, type PortLike, type PortOpenOptions } from "../../../../src/io/serial/serialport-link.js";
import { createSerialLink } from "../../../../src/io/serial/create-serial-link.js";
import { serialDeviceSchema } from "../../../../src/io/serial/config.js";

const log = silentLogger();

test("backoff grows exponentially, is capped, and spreads by the jitter", () => {
  const mid = () => 0.5; // no spread
  // Retry n (1-based) after n failed opens.
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 11].map((n) => backoffDelayMs(n, defaultBackoff, mid)),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
  );
  assert.equal(
    backoffDelayMs(1, defaultBackoff, () => 0),
    800,
  );
  assert.equal(
    backoffDelayMs(1, defaultBackoff, () => 0.999999),
    1199,
  );
  // Capped even at the top of the jitter.
  assert.equal(
    backoffDelayMs(21, defaultBackoff, () => 0.999999),
    30000,
  );
});

// ---- the simulated twin ----

test("sim link: emit reaches listeners, writes are recorded, counters move", async () => {
  const clock = new FakeClock();
  const link = new SimSerialLink("cam", clock, log);
  const got: Array<[string, number]> = [];
  link.onData((chunk, atMs) => got.push([chunk.toString(), atMs]));
  assert.equal(link.emit("early"), false, "nothing is read before open");
  await link.open();
  assert.equal(link.status().state, "up");
  assert.equal(link.emit("abc"), true);
  await link.write(Buffer.from([1, 2, 3]));
  assert.deepEqual(got, [["abc", clock.now()]]);
  assert.deepEqual(link.written(), [Buffer.from([1, 2, 3])]);
  const s = link.status();
  assert.equal(s.rxBytes, 3);
  assert.equal(s.txBytes, 3);
  assert.equal(s.lastRxAtMs, clock.now());
  assert.equal(s.kind, "sim");
});

test("sim link: disconnect → retrying, writes refused and nothing read; reconnect → up", async () => {
  const clock = new FakeClock();
  const link = new SimSerialLink("led", clock, log);
  const states: SerialLinkStatus["state"][] = [];
  link.onStateChange((s) => states.push(s.state));
  await link.open();
  link.disconnect();
  assert.equal(link.status().state, "retrying");
  await assert.rejects(link.write(Buffer.from("x")), (e: unknown) => e instanceof SerialLinkError && e.code === "E_SERIAL_DOWN");
  assert.equal(link.emit("lost"), false);
  link.reconnect();
  assert.equal(link.status().state, "up");
  assert.equal(link.status().reconnects, 1);
  assert.equal(link.status().errors, 1);
  await link.write(Buffer.from("y"));
  assert.deepEqual(states, ["up", "retrying", "up"]);
  await link.close();
  assert.equal(link.status().state, "down");
});

test("silence: flagged after silenceTimeoutS without data, cleared by the next byte", async () => {
  const clock = new FakeClock();
  const link = new SimSerialLink("cam", clock, log, { silenceTimeoutS: 60 });
  const flags: boolean[] = [];
  link.onStateChange((s) => flags.push(s.silent));
  await link.open();
  await clock.advance(59_000);
  assert.equal(link.status().silent, false);
  link.emit("x"); // activity at 59 s pushes the deadline to 119 s
  await clock.advance(59_000);
  assert.equal(link.status().silent, false);
  await clock.advance(1_500);
  assert.equal(link.status().silent, true);
  link.emit("y");
  assert.equal(link.status().silent, false);
  await clock.advance(61_000);
  assert.equal(link.status().silent, true);
  assert.deepEqual(flags, [false, true, false, true]);
});

test("silence watchdog is off for listen-only devices (display)", async () => {
  const clock = new FakeClock();
  const device = serialDeviceSchema.parse({ kind: "display", silenceTimeoutS: 5 });
  const link = createSerialLink("led", device, clock, log);
  await link.open();
  await clock.advance(3_600_000);
  assert.equal(link.status().silent, false);
  assert.equal(clock.pendingTimers(), 0);
});

test("a throwing data listener is logged and does not stop the others", async () => {
  const link = new SimSerialLink("cam", new FakeClock(), log);
  let seen = 0;
  link.onData(() => {
    throw new Error("boom");
  });
  link.onData(() => seen++);
  await link.open();
  link.emit("a");
  link.emit("b");
  assert.equal(seen, 2);
});

test("createSerialLink: real with a path, simulated without", () => {
  const clock = new FakeClock();
  const sim = createSerialLink("a", serialDeviceSchema.parse({ kind: "camera" }), clock, log);
  const real = createSerialLink("b", serialDeviceSchema.parse({ kind: "camera", path: "/dev/serial/by-id/usb-cam-if00" }), clock, log);
  assert.equal(sim.kind, "sim");
  assert.ok(sim instanceof SimSerialLink);
  assert.equal(real.kind, "serialport");
  assert.equal(real.status().path, "/dev/serial/by-id/usb-cam-if00");
  assert.equal(real.status().state, "down");
});

// ---- the real adapter's reconnect logic, over a scripted port ----

class FakePort extends EventEmitter implements PortLike {
  isOpen = false;
  writes: Buffer[] = [];
  constructor(
    readonly options: PortOpenOptions,
    private readonly world: FakeWorld,
  ) {
    super();
  }
  open(callback: (error: Error | null) => void): void {
    setImmediate(() => {
      if (!this.world.present) {
        const error = Object.assign(new Error(`No such file or directory, cannot open ${this.options.path}`), { code: "ENOENT" });
        callback(error);
        return;
      }
      this.isOpen = true;
      this.world.current = this;
      callback(null);
    });
  }
  close(callback?: (error: Error | null) => void): void {
    this.isOpen = false;
    setImmediate(() => {
      this.emit("close", null);
      callback?.(null);
    });
  }
  write(data: Buffer, callback: (error: Error | null | undefined) => void): boolean {
    this.writes.push(Buffer.from(data));
    setImmediate(() => callback(null));
    return true;
  }
  /** The device vanishes: serialport closes the stream with a disconnect error. */
  yank(): void {
    this.isOpen = false;
    this.emit("close", Object.assign(new Error("bad file descriptor"), { disconnected: true }));
  }
}

class FakeWorld {
  present = true;
  opens = 0;
  current: FakePort | undefined;
  factory = async () => (options: PortOpenOptions) => {
    this.opens++;
    return new FakePort(options, this);
  };
}

function realLink(world: FakeWorld, clock: FakeClock): SerialPortLink {
  const settings = serialDeviceSchema.parse({ kind: "camera", path: "/dev/ttyFAKE0", baudRate: 19200, parity: "even", silenceTimeoutS: 600 });
  return new SerialPortLink("cam", { ...settings, path: "/dev/ttyFAKE0" }, clock, log, { portFactory: world.factory, random: () => 0.5 });
}

test("real link: an absent device does not fail open; retries back off and it comes up", async () => {
  const clock = new FakeClock();
  const world = new FakeWorld();
  world.present = false;
  const link = realLink(world, clock);
  await link.open();
  let s = link.status();
  assert.equal(s.state, "retrying");
  assert.equal(s.retryInS, 1);
  assert.match(s.lastError ?? "", /ENOENT/);
  await clock.advance(1000); // attempt 2 fails → waits 2 s
  assert.equal(world.opens, 2);
  assert.equal(link.status().retryInS, 2);
  await clock.advance(2000); // attempt 3 fails → waits 4 s
  assert.equal(world.opens, 3);
  assert.equal(link.status().retryInS, 4);
  world.present = true;
  await clock.advance(3999);
  assert.equal(world.opens, 3, "no attempt before the backoff expires");
  await clock.advance(1);
  assert.equal(world.opens, 4);
  s = link.status();
  assert.equal(s.state, "up");
  assert.equal(s.errors, 3);
  assert.equal(s.reconnects, 0, "the first open is not a reconnect");
  assert.deepEqual(world.current?.options, { path: "/dev/ttyFAKE0", baudRate: 19200, dataBits: 8, parity: "even", stopBits: 1 });
  await link.close();
});

test("real link: device vanishes → down, retrying, back up; data and writes flow again", async () => {
  const clock = new FakeClock();
  const world = new FakeWorld();
  const link = realLink(world, clock);
  const data: string[] = [];
  const states: string[] = [];
  link.onData((chunk) => data.push(chunk.toString()));
  link.onStateChange((s) => states.push(s.state));
  await link.open();
  assert.equal(link.status().state, "up");
  world.current!.emit("data", Buffer.from("京A12345\r\n"));
  await link.write(Buffer.from([0xaa]));
  assert.equal(link.status().txBytes, 1);

  world.present = false;
  world.current!.yank();
  assert.equal(link.status().state, "retrying");
  await assert.rejects(link.write(Buffer.from([1])), (e: unknown) => e instanceof SerialLinkError && e.code === "E_SERIAL_DOWN");
  await clock.advance(1000); // ENOENT
  await clock.advance(2000); // ENOENT
  world.present = true;
  await clock.advance(4000);
  assert.equal(link.status().state, "up");
  assert.equal(link.status().reconnects, 1);
  world.current!.emit("data", Buffer.from("again"));
  assert.deepEqual(data, ["京A12345\r\n", "again"]);
  assert.deepEqual(
    states.filter((s, i) => s !== states[i - 1]),
    ["up", "down", "retrying", "up"],
  );
  await link.close();
  assert.equal(link.status().state, "down");
});

test("real link: close stops the retries", async () => {
  const clock = new FakeClock();
  const world = new FakeWorld();
  world.present = false;
  const link = realLink(world, clock);
  await link.open();
  await link.close();
  await clock.advance(120_000);
  assert.equal(world.opens, 1);
  assert.equal(link.status().state, "down");
  assert.equal(clock.pendingTimers(), 0);
});

test("real link: a write that never completes fails after the write timeout", async () => {
  const clock = new FakeClock();
  const world = new FakeWorld();
  const link = realLink(world, clock);
  await link.open();
  world.current!.write = () => true; // the callback never comes (flow control stuck)
  const pending = link.write(Buffer.from("x"));
  const outcome = pending.then(
    () => "resolved",
    (e: unknown) => (e as SerialLinkError).code,
  );
  await clock.advance(2000);
  await flushMicrotasks();
  assert.equal(await outcome, "E_SERIAL_WRITE_TIMEOUT");
  assert.equal(link.status().errors, 1);
  await link.close();
});
