import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { FakeClock } from "../../../helpers/fake-clock.js";
import { createLogger, silentLogger } from "../../../../src/kernel/log.js";
import { GpioError, type GpioEdge, type GpioLineSpec } from "../../../../src/io/gpio/gpio.js";
import { OnoffGpio } from "../../../../src/io/gpio/onoff-gpio.js";
import { fakeOnoff, makeFakeSysfs, pi4Chips, pi5Chips, readSysfs, type FakeChip } from "./fake-sysfs.js";

const demoLines: GpioLineSpec[] = [
  { key: "in1.loopA", line: 17, direction: "in", activeLow: true },
  { key: "in1.loopB", line: 27, direction: "in", activeLow: true },
  { key: "in1.relayOpen", line: 5, direction: "out", activeLow: false },
  { key: "in1.relayStop", line: 13, direction: "out", activeLow: true },
];

function setup(t: { after(fn: () => void): void }, chips: FakeChip[] = pi4Chips, lines = demoLines) {
  const tree = makeFakeSysfs(chips);
  t.after(tree.cleanup);
  const fake = fakeOnoff(tree.root, chips);
  const logLines: string[] = [];
  const log = createLogger({ level: "info", destination: { write: (s: string) => void logLines.push(s) } });
  const clock = new FakeClock();
  const gpio = new OnoffGpio(lines, clock, log, { sysfsRoot: tree.root, loadOnoff: async () => fake.module });
  return { tree, fake, gpio, clock, logLines };
}

test("start exports every line at base + BCM, sets active_low and edge, and logs the table", async (t) => {
  const { tree, fake, gpio, logLines } = setup(t, pi5Chips);
  await gpio.start();
  assert.deepEqual([...fake.exported].sort(), [571 + 5, 571 + 13, 571 + 17, 571 + 27].sort());
  assert.equal(readSysfs(tree.root, "gpio588/active_low"), "1");
  assert.equal(readSysfs(tree.root, "gpio588/direction"), "in");
  assert.equal(readSysfs(tree.root, "gpio588/edge"), "both");
  assert.equal(readSysfs(tree.root, "gpio576/direction"), "out");
  const table = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === "gpio lines resolved");
  assert.ok(table, "resolved table logged");
  assert.equal(table.chip.label, "pinctrl-rp1");
  assert.deepEqual(table.lines[0], { key: "in1.loopA", bcm: 17, sysfs: 588, dir: "in", activeLow: true });
  assert.deepEqual(
    gpio.table().map((l) => l.sysfs),
    [588, 598, 576, 584],
  );
  await gpio.stop();
});

test("outputs are claimed at their inactive raw level (no glitch on an active-low relay)", async (t) => {
  const { fake, gpio } = setup(t);
  await gpio.start();
  assert.equal(fake.claimedRaw.get(512 + 5), 0, "active-high output claimed low");
  assert.equal(fake.claimedRaw.get(512 + 13), 1, "active-low output claimed high");
  assert.equal(gpio.read("in1.relayStop"), 0);
  gpio.write("in1.relayStop", 1);
  assert.equal(fake.raw.get(512 + 13), 0, "active-low output energised = raw low");
  await gpio.stop();
});

test("active-low inputs read logical levels and edges carry the clock's time", async (t) => {
  const { fake, gpio, clock } = setup(t);
  fake.setRaw(512 + 17, 1); // idle: pulled up, detector contact open
  await gpio.start();
  assert.equal(gpio.read("in1.loopA"), 0);
  const edges: GpioEdge[] = [];
  gpio.onEdge((e) => edges.push(e));
  fake.setRaw(512 + 17, 0); // car: contact closes, line pulled low
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(edges, [{ key: "in1.loopA", level: 1, atMs: clock.now() }]);
  assert.equal(gpio.read("in1.loopA"), 1);
  await gpio.stop();
});

test("a repeated level from epoll is not a second edge", async (t) => {
  const { fake, gpio } = setup(t);
  fake.setRaw(512 + 27, 1); // idle: pulled up
  await gpio.start();
  const edges: GpioEdge[] = [];
  gpio.onEdge((e) => edges.push(e));
  fake.setRaw(512 + 27, 0); // active-low: logical 1
  fake.setRaw(512 + 27, 1);
  fake.setRaw(512 + 27, 0); // bounce: two interrupts read after the fact, both see raw 0
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    edges.map((e) => e.level),
    [1],
  );
  await gpio.stop();
});

test("a listener that throws does not stop the others", async (t) => {
  const { fake, gpio } = setup(t);
  fake.setRaw(512 + 17, 1); // idle: pulled up
  await gpio.start();
  const seen: number[] = [];
  gpio.onEdge(() => {
    throw new Error("listener bug");
  });
  gpio.onEdge((e) => seen.push(e.level));
  fake.setRaw(512 + 17, 0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(seen, [1]);
  await gpio.stop();
});

test("stop drives outputs inactive, then unexports every line", async (t) => {
  const { tree, fake, gpio } = setup(t);
  await gpio.start();
  gpio.write("in1.relayOpen", 1);
  gpio.write("in1.relayStop", 1);
  await gpio.stop();
  assert.equal(fake.raw.get(512 + 5), 0);
  assert.equal(fake.raw.get(512 + 13), 1);
  assert.deepEqual([...fake.unexported].sort(), [517, 525, 529, 539]);
  assert.equal(existsSync(join(tree.root, "gpio529")), false);
  assert.match(readSysfs(tree.root, "unexport"), /529/);
});

test("a line that cannot be exported: E_GPIO_EXPORT naming the line and the sysfs number; lines already claimed are released", async (t) => {
  const { fake, gpio } = setup(t);
  fake.busy.add(512 + 5);
  await assert.rejects(gpio.start(), (error: unknown) => {
    assert.ok(error instanceof GpioError);
    assert.equal(error.code, "E_GPIO_EXPORT");
    assert.match(error.message, /in1\.relayOpen \(BCM 5, sysfs 517\)/);
    assert.match(error.message, /EBUSY/);
    return true;
  });
  assert.equal(fake.exported.size, 0, "nothing left exported");
  assert.deepEqual([...fake.unexported].sort(), [529, 539]);
  assert.throws(
    () => gpio.write("in1.relayOpen", 1),
    (e: unknown) => e instanceof GpioError && e.code === "E_GPIO_NOT_STARTED",
  );
});

test("the bare BCM number on a new kernel is what EINVAL looks like (the resolver avoids it)", async (t) => {
  const tree = makeFakeSysfs(pi4Chips);
  t.after(tree.cleanup);
  const fake = fakeOnoff(tree.root, pi4Chips);
  assert.throws(() => new fake.module.Gpio(17, "in", "both"), /EINVAL/);
  // The adapter, told the wrong chip (the 8-line expander), reports what it tried.
  const gpio = new OnoffGpio([{ key: "in1.loopA", line: 7, direction: "in", activeLow: true }], new FakeClock(), silentLogger(), {
    sysfsRoot: tree.root,
    chipLabel: "raspberrypi-exp-gpio",
    loadOnoff: async () => ({
      Gpio: class extends fake.module.Gpio {
        constructor() {
          super(1, "in"); // simulates a kernel that refuses the number
        }
      },
    }),
  });
  await assert.rejects(gpio.start(), /cannot export in1\.loopA \(BCM 7, sysfs 577\).*EINVAL.*wrong chip base/);
});

test("a kernel without the pin controller fails start with E_GPIO_CHIP before loading onoff", async (t) => {
  const tree = makeFakeSysfs([{ base: 0, ngpio: 8, label: "gpio-mockup-A" }]);
  t.after(tree.cleanup);
  let loaded = false;
  const gpio = new OnoffGpio(demoLines, new FakeClock(), silentLogger(), {
    sysfsRoot: tree.root,
    loadOnoff: async () => {
      loaded = true;
      throw new Error("should not load");
    },
  });
  await assert.rejects(gpio.start(), (e: unknown) => e instanceof GpioError && e.code === "E_GPIO_CHIP");
  assert.equal(loaded, false);
});

test("onoff is not loaded by constructing the adapter (lazy import)", () => {
  let loaded = false;
  new OnoffGpio(demoLines, new FakeClock(), silentLogger(), {
    loadOnoff: async () => {
      loaded = true;
      throw new Error("no");
    },
  });
  assert.equal(loaded, false);
});
