import { inputNames, outputNames, type Config } from "../../config/schema.js";
import type { GpioLineSpec } from "./gpio.js";

export const lineKey = (laneId: string, logical: string): string => `${laneId}.${logical}`;

/** Every GPIO line of every lane, as the adapters need them. */
export function gpioLinesFromConfig(config: Pick<Config, "lanes">): GpioLineSpec[] {
  const lines: GpioLineSpec[] = [];
  for (const lane of config.lanes) {
    for (const name of inputNames) {
      const spec = lane.inputs[name];
      if (spec) lines.push({ key: lineKey(lane.id, name), line: spec.line, direction: "in", activeLow: spec.activeLow });
    }
    for (const name of outputNames) {
      const spec = lane.outputs[name];
      if (spec) lines.push({ key: lineKey(lane.id, name), line: spec.line, direction: "out", activeLow: spec.activeLow });
    }
  }
  return lines;
}
