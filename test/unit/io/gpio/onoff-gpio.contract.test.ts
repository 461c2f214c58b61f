/**
 * The GPIO contract against the onoff adapter: always on a fake sysfs tree with a stand-in
 * onoff module and a loopback wire, and on real pins when LANEKEEPER_GPIO_LOOPBACK describes
 * a jumper from an output to an input, e.g.
 *
 *   LANEKEEPER_GPIO_LOOPBACK="out=5,in=6"                  (BCM numbers; Raspberry Pi header)
 *   LANEKEEPER_GPIO_LOOPBACK="out=5,in=6,chipLabel=pinctrl-rp1"
 *
 * The real run needs the process in the gpio group and both lines free.
 */
import { systemClock } from "../../../../src/kernel/clock.js";
import { FakeClock } from "../../../helpers/fake-clock.js";
import { silentLogger } from "../../../../src/kernel/log.js";
import { OnoffGpio } from "../../../../src/io/gpio/onoff-gpio.js";
import { gpioContract } from "./contract.js";
import { fakeOnoff, makeFakeSysfs, pi4Chips } from "./fake-sysfs.js";

gpioContract("OnoffGpio on a fake Pi 4 sysfs tree", async () => {
  const tree = makeFakeSysfs(pi4Chips);
  // BCM 5 (sysfs 517) is jumpered to BCM 17 (sysfs 529).
  const fake = fakeOnoff(tree.root, pi4Chips, new Map([[517, 529]]));
  const driver = new OnoffGpio([{ key: "bench.driver", line: 5, direction: "out", activeLow: false }], new FakeClock(), silentLogger(), {
    sysfsRoot: tree.root,
    loadOnoff: async () => fake.module,
  });
  const gpio = new OnoffGpio(
    [
      { key: "in1.loopA", line: 17, direction: "in", activeLow: true },
      { key: "in1.relayOpen", line: 6, direction: "out", activeLow: true },
    ],
    new FakeClock(),
    silentLogger(),
    { sysfsRoot: tree.root, loadOnoff: async () => fake.module },
  );
  await driver.start();
  driver.write("bench.driver", 1); // idle: the active-low input's line is high
  return {
    gpio,
    input: "in1.loopA",
    output: "in1.relayOpen",
    // loopA is active-low: a detector closing its contact pulls the line low.
    drive: (level) => driver.write("bench.driver", level === 1 ? 0 : 1),
    edgeWaitMs: 50,
    // relayOpen is active-low: inactive is raw 1.
    peekOutput: () => ((fake.raw.get(518) ?? 0) === 1 ? 0 : 1),
    cleanup: async () => {
      await driver.stop();
      tree.cleanup();
    },
  };
});

function parseLoopback(spec: string | undefined): { out: number; in: number; chipLabel?: string } | undefined {
  if (!spec) return undefined;
  const fields = new Map(spec.split(",").map((part) => part.split("=").map((s) => s.trim()) as [string, string]));
  const out = Number(fields.get("out"));
  const inp = Number(fields.get("in"));
  if (!Number.isInteger(out) || !Number.isInteger(inp)) throw new Error(`LANEKEEPER_GPIO_LOOPBACK="${spec}" must look like "out=5,in=6"`);
  const chipLabel = fields.get("chipLabel");
  return chipLabel ? { out, in: inp, chipLabel } : { out, in: inp };
}

const loopback = parseLoopback(process.env.LANEKEEPER_GPIO_LOOPBACK);

gpioContract(
  "OnoffGpio on real pins (loopback jumper)",
  async () => {
    const wiring = loopback!;
    const gpio = new OnoffGpio(
      [
        { key: "bench.in", line: wiring.in, direction: "in", activeLow: false },
        { key: "bench.out", line: wiring.out, direction: "out", activeLow: false },
      ],
      systemClock,
      silentLogger(),
      { chipLabel: wiring.chipLabel },
    );
    return { gpio, input: "bench.in", output: "bench.out", drive: (level) => gpio.write("bench.out", level), edgeWaitMs: 200 };
  },
  { skip: loopback ? undefined : 'no loopback wiring: set LANEKEEPER_GPIO_LOOPBACK="out=<BCM>,in=<BCM>" on a Pi with that jumper fitted' },
);
