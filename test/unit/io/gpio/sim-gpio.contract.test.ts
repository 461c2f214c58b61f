import { FakeClock } from "../../../helpers/fake-clock.js";
import { SimGpio } from "../../../../src/io/gpio/sim-gpio.js";
import { gpioContract } from "./contract.js";

gpioContract("SimGpio", async () => {
  const gpio = new SimGpio(
    [
      { key: "in1.loopA", line: 17, direction: "in", activeLow: true },
      { key: "in1.relayOpen", line: 5, direction: "out", activeLow: false },
    ],
    new FakeClock(),
  );
  return {
    gpio,
    input: "in1.loopA",
    output: "in1.relayOpen",
    drive: (level) => gpio.setInput("in1.loopA", level),
    edgeWaitMs: 0,
    peekOutput: () => gpio.outputs()["in1.relayOpen"] ?? 0,
  };
});
