import { test } from "node:test";
import assert from "node:assert/strict";
import { commands } from "../../../src/cli/commands.js";

// The registry names each command without loading it (only the command run is imported):
// each name must be the one its module declares, and its usage line must start with it.
test("every registry entry loads the command of the same name", async () => {
  assert.ok(commands.length >= 9);
  for (const entry of commands) {
    const command = await entry.load();
    assert.equal(command.name, entry.name);
    assert.ok(command.usage.startsWith(`lanekeeper ${entry.name}`), `${entry.name}: usage "${command.usage}"`);
    assert.equal(typeof command.run, "function");
  }
  assert.equal(new Set(commands.map((c) => c.name)).size, commands.length, "a name is listed twice");
});
