/**
 * The GPIO contract (src/io/gpio/gpio.ts), as one suite every adapter must pass: the simulated
 * twin always, the onoff adapter on a fake sysfs tree always, and the onoff adapter on real
 * pins when LANEKEEPER_GPIO_LOOPBACK says an output is wired back to an input (see
 * onoff-gpio.contract.test.ts for the format).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GpioError, type Gpio, type GpioEdge, type Level } from "../../../../src/io/gpio/gpio.js";

export interface GpioContractSubject {
  gpio: Gpio;
  /** Key of an input line. */
  input: string;
  /** Key of an output line. */
  output: string;
  /** Makes `input` read `level` (sim: setInput; loopback: write the output wired to it). */
  drive(level: Level): void | Promise<void>;
  /** How long an edge may take to arrive (0 for synchronous twins). */
  edgeWaitMs: number;
  /** The output's level as the outside world sees it, readable after stop (twins and fakes only). */
  peekOutput?(): Level;
  cleanup?(): Promise<void>;
}

export interface GpioContractOptions {
  /** Why the whole suite is skipped (no hardware), or undefined to run it. */
  skip?: string | undefined;
}

function isGpioError(code: GpioError["code"]) {
  return (error: unknown): boolean => error instanceof GpioError && error.code === code;
}

async function waitFor(predicate: () => boolean, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (!predicate() && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
}

export function gpioContract(name: string, make: () => Promise<GpioContractSubject>, options: GpioContractOptions = {}): void {
  const skip = options.skip;
  describe(`GPIO contract: ${name}`, { skip: skip ?? false }, () => {
    async function withSubject(body: (s: GpioContractSubject) => Promise<void>, start = true): Promise<void> {
      const subject = await make();
      try {
        if (start) await subject.gpio.start();
        await body(subject);
      } finally {
        await subject.gpio.stop().catch(() => undefined);
        await subject.cleanup?.();
      }
    }

    test("writing before start is refused with E_GPIO_NOT_STARTED", async () => {
      await withSubject(async ({ gpio, output }) => {
        assert.throws(() => gpio.write(output, 1), isGpioError("E_GPIO_NOT_STARTED"));
      }, false);
    });

    test("unknown keys are refused with E_GPIO_UNKNOWN_LINE", async () => {
      await withSubject(async ({ gpio }) => {
        assert.throws(() => gpio.read("nowhere.loopZ"), isGpioError("E_GPIO_UNKNOWN_LINE"));
        assert.throws(() => gpio.write("nowhere.relayZ", 1), isGpioError("E_GPIO_UNKNOWN_LINE"));
      });
    });

    test("an input cannot be written (E_GPIO_DIRECTION)", async () => {
      await withSubject(async ({ gpio, input }) => {
        assert.throws(() => gpio.write(input, 1), isGpioError("E_GPIO_DIRECTION"));
      });
    });

    test("outputs start inactive and read back what was written", async () => {
      await withSubject(async ({ gpio, output }) => {
        assert.equal(gpio.read(output), 0);
        gpio.write(output, 1);
        assert.equal(gpio.read(output), 1);
        gpio.write(output, 0);
        assert.equal(gpio.read(output), 0);
      });
    });

    test("allOutputsSafe drives every output inactive at once", async () => {
      await withSubject(async ({ gpio, output }) => {
        gpio.write(output, 1);
        gpio.allOutputsSafe();
        assert.equal(gpio.read(output), 0);
      });
    });

    test("input edges reach listeners with key, logical level and time; unsubscribe stops them", async () => {
      await withSubject(async (s) => {
        const edges: GpioEdge[] = [];
        const off = s.gpio.onEdge((edge) => edges.push(edge));
        await s.drive(1);
        await waitFor(() => edges.length >= 1, s.edgeWaitMs + 1000);
        assert.equal(edges.length, 1, "one edge for one change");
        assert.equal(edges[0]!.key, s.input);
        assert.equal(edges[0]!.level, 1);
        assert.equal(typeof edges[0]!.atMs, "number");
        assert.equal(s.gpio.read(s.input), 1);
        await s.drive(0);
        await waitFor(() => edges.length >= 2, s.edgeWaitMs + 1000);
        assert.deepEqual(
          edges.map((e) => e.level),
          [1, 0],
        );
        assert.equal(s.gpio.read(s.input), 0);
        off();
        await s.drive(1);
        await new Promise((resolve) => setTimeout(resolve, s.edgeWaitMs + 20));
        assert.equal(edges.length, 2, "no edge after unsubscribing");
        await s.drive(0);
      });
    });

    test("stop leaves outputs inactive and refuses later writes", async () => {
      await withSubject(async ({ gpio, output, peekOutput }) => {
        gpio.write(output, 1);
        if (peekOutput) assert.equal(peekOutput(), 1);
        await gpio.stop();
        if (peekOutput) assert.equal(peekOutput(), 0, "output inactive after stop");
        assert.throws(() => gpio.write(output, 1), isGpioError("E_GPIO_NOT_STARTED"));
      });
    });
  });
}
