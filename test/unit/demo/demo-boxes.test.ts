import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { demoCommand } from "../../../src/cli/demo.js";
import { UsageError } from "../../../src/cli/command.js";

/*
 * `lanekeeper demo --boxes`: 1 or 2, anything else is a usage mistake that names the option
 * and starts nothing (no broker, no emulator, no box: the call returns at once).
 */
test("property: --boxes other than 1 or 2 is a usage error naming the option, before anything starts", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.string({ maxLength: 12 }).filter((s) => s !== "1" && s !== "2"),
      async (value) => {
        await assert.rejects(demoCommand.run([`--boxes=${value}`]), (error: unknown) => error instanceof UsageError && /--boxes takes 1 or 2/.test(error.message));
      },
    ),
    { numRuns: 200 },
  );
});
