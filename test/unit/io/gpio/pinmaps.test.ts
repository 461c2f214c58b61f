import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { demoRaw } from "../../../helpers/demo-config.js";
import { knownPinControllerLabels } from "../../../../src/io/gpio/sysfs-resolver.js";

interface PinLine {
  bcm: number;
  headerPin: number;
  activeLow: boolean;
}
interface PinMap {
  board: string;
  chipLabel: string;
  lanes: Record<string, { direction: string; inputs: Record<string, PinLine>; outputs: Record<string, PinLine>; optionalInputs: Record<string, PinLine> }>;
}

const boards = ["pi3", "pi4", "pi5"] as const;
const maps = Object.fromEntries(boards.map((b) => [b, JSON.parse(readFileSync(new URL(`../../../../hw/pinmaps/${b}.json`, import.meta.url), "utf8")) as PinMap]));

for (const board of boards) {
  test(`hw/pinmaps/${board}.json matches config/demo.json line for line`, () => {
    const map = maps[board]!;
    const demo = demoRaw() as {
      lanes: { id: string; direction: string; inputs: Record<string, { line: number; activeLow?: boolean }>; outputs: Record<string, { line: number; activeLow?: boolean }> }[];
    };
    for (const lane of demo.lanes) {
      const mapped = map.lanes[lane.id];
      assert.ok(mapped, `lane ${lane.id} in the pin map`);
      assert.equal(mapped.direction, lane.direction);
      for (const group of ["inputs", "outputs"] as const) {
        assert.deepEqual(Object.keys(mapped[group]).sort(), Object.keys(lane[group]).sort(), `${lane.id}.${group}`);
        for (const [name, spec] of Object.entries(lane[group])) {
          assert.equal(mapped[group][name]!.bcm, spec.line, `${lane.id}.${name}`);
          assert.equal(mapped[group][name]!.activeLow, spec.activeLow ?? false, `${lane.id}.${name} activeLow`);
        }
      }
    }
  });

  test(`hw/pinmaps/${board}.json uses each BCM line and header pin once, and names a known pin controller`, () => {
    const map = maps[board]!;
    const bcm = new Set<number>();
    const pins = new Set<number>();
    for (const lane of Object.values(map.lanes)) {
      for (const line of [...Object.values(lane.inputs), ...Object.values(lane.outputs), ...Object.values(lane.optionalInputs)]) {
        assert.ok(!bcm.has(line.bcm), `BCM ${line.bcm} twice`);
        assert.ok(!pins.has(line.headerPin), `header pin ${line.headerPin} twice`);
        assert.ok(![2, 3, 7, 8, 9, 10, 11, 14, 15].includes(line.bcm), `BCM ${line.bcm} is reserved`);
        bcm.add(line.bcm);
        pins.add(line.headerPin);
      }
    }
    assert.ok((knownPinControllerLabels as readonly string[]).includes(map.chipLabel));
  });
}

test("the 40-pin header is the same on Pi 3, 4 and 5: same BCM → header pin everywhere", () => {
  assert.deepEqual(maps.pi3!.lanes, maps.pi4!.lanes);
  assert.deepEqual(maps.pi4!.lanes, maps.pi5!.lanes);
});
