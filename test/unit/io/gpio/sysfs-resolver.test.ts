import { test } from "node:test";
import assert from "node:assert/strict";
import { GpioError, type GpioLineSpec } from "../../../../src/io/gpio/gpio.js";
import { listGpioChips, resolveSysfsLines } from "../../../../src/io/gpio/sysfs-resolver.js";
import { makeFakeSysfs, oldKernelChips, pi4Chips, pi5Chips } from "./fake-sysfs.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const lines: GpioLineSpec[] = [
  { key: "in1.loopA", line: 17, direction: "in", activeLow: true },
  { key: "in1.loopB", line: 27, direction: "in", activeLow: true },
  { key: "in1.relayOpen", line: 5, direction: "out", activeLow: false },
];

const cases = [
  { board: "Pi 4, kernel >= 6.6", chips: pi4Chips, label: "pinctrl-bcm2711", base: 512 },
  { board: "Pi 5, kernel >= 6.6", chips: pi5Chips, label: "pinctrl-rp1", base: 571 },
  { board: "Pi 3, old kernel", chips: oldKernelChips, label: "pinctrl-bcm2835", base: 0 },
];

for (const c of cases) {
  test(`${c.board}: BCM lines resolve on ${c.label} at base ${c.base}`, async (t) => {
    const tree = makeFakeSysfs(c.chips);
    t.after(tree.cleanup);
    const resolution = await resolveSysfsLines(lines, { sysfsRoot: tree.root });
    assert.equal(resolution.chip.label, c.label);
    assert.equal(resolution.chip.base, c.base);
    assert.deepEqual(
      resolution.lines.map((l) => [l.key, l.bcm, l.sysfs]),
      [
        ["in1.loopA", 17, c.base + 17],
        ["in1.loopB", 27, c.base + 27],
        ["in1.relayOpen", 5, c.base + 5],
      ],
    );
  });
}

test("chips are listed in numeric order with label, base and ngpio", async (t) => {
  const tree = makeFakeSysfs(pi5Chips);
  t.after(tree.cleanup);
  const chips = await listGpioChips(tree.root);
  assert.deepEqual(
    chips.map((c) => c.base),
    [512, 544, 548, 565, 571],
  );
  assert.equal(chips.at(-1)!.label, "pinctrl-rp1");
  assert.equal(chips.at(-1)!.ngpio, 54);
});

test("a configured chipLabel wins over the known labels", async (t) => {
  const tree = makeFakeSysfs(pi4Chips);
  t.after(tree.cleanup);
  const resolution = await resolveSysfsLines([{ key: "x.relayOpen", line: 2, direction: "out", activeLow: false }], {
    sysfsRoot: tree.root,
    chipLabel: "raspberrypi-exp-gpio",
  });
  assert.equal(resolution.chip.base, 570);
  assert.equal(resolution.lines[0]!.sysfs, 572);
});

test("no known pin controller: E_GPIO_CHIP listing what was found", async (t) => {
  const tree = makeFakeSysfs([{ base: 0, ngpio: 16, label: "some-i2c-expander" }]);
  t.after(tree.cleanup);
  await assert.rejects(resolveSysfsLines(lines, { sysfsRoot: tree.root }), (error: unknown) => {
    assert.ok(error instanceof GpioError);
    assert.equal(error.code, "E_GPIO_CHIP");
    assert.match(error.message, /some-i2c-expander/);
    assert.match(error.message, /hardware\.chipLabel/);
    return true;
  });
});

test("an unknown chipLabel is E_GPIO_CHIP naming the label", async (t) => {
  const tree = makeFakeSysfs(pi4Chips);
  t.after(tree.cleanup);
  await assert.rejects(resolveSysfsLines(lines, { sysfsRoot: tree.root, chipLabel: "pinctrl-nope" }), /no gpiochip labelled "pinctrl-nope"/);
});

test("a missing sysfs root is E_GPIO_CHIP, not a crash", async () => {
  await assert.rejects(resolveSysfsLines(lines, { sysfsRoot: "/nonexistent/lk-gpio" }), (error: unknown) => error instanceof GpioError && error.code === "E_GPIO_CHIP");
});

test("a BCM line beyond the chip is refused with the key and the range", async (t) => {
  const tree = makeFakeSysfs(pi5Chips);
  t.after(tree.cleanup);
  await assert.rejects(
    resolveSysfsLines([{ key: "in1.loopA", line: 55, direction: "in", activeLow: true }], { sysfsRoot: tree.root }),
    /in1\.loopA: BCM line 55 is not on gpiochip571 "pinctrl-rp1" \(lines 0\.\.53\)/,
  );
});

test("one BCM line used twice is refused naming both keys", async (t) => {
  const tree = makeFakeSysfs(pi4Chips);
  t.after(tree.cleanup);
  await assert.rejects(
    resolveSysfsLines(
      [
        { key: "in1.loopA", line: 17, direction: "in", activeLow: true },
        { key: "out1.loopA", line: 17, direction: "in", activeLow: true },
      ],
      { sysfsRoot: tree.root },
    ),
    /out1\.loopA: BCM line 17 is already used by in1\.loopA/,
  );
});

test("a chip directory with unreadable attributes is skipped", async (t) => {
  const tree = makeFakeSysfs(pi4Chips);
  t.after(tree.cleanup);
  mkdirSync(join(tree.root, "gpiochip0"));
  writeFileSync(join(tree.root, "gpiochip0", "label"), "pinctrl-bcm2835\n"); // no base, no ngpio
  const resolution = await resolveSysfsLines(lines, { sysfsRoot: tree.root });
  assert.equal(resolution.chip.base, 512);
});
