import { test } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../../../src/config/load.js";
import { serialDeviceSchema } from "../../../../src/io/serial/config.js";
import { demoRaw } from "../../../helpers/demo-config.js";

test("the demo config's serial section is valid and typed per kind", () => {
  const result = validateConfig(demoRaw());
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const camera = result.config.serial["cam-out1"];
  assert.equal(camera?.kind, "camera");
  if (camera?.kind === "camera") assert.deepEqual(camera.options, { template: "%PLATE%,%COLOR%,%CONFIDENCE%", lineEnding: "crlf", encoding: "gbk", maxLineBytes: 256 });
  const display = result.config.serial["led-in1"];
  if (display?.kind === "display") assert.equal(display.options.lineBytes, 32);
  else assert.fail("led-in1 should be a display");
});

test("options are checked against the device kind: every mistake reported with its path", () => {
  const raw = demoRaw() as Record<string, any>;
  raw.serial["cam-out1"].options = { template: "no plate field", encodng: "gbk" };
  raw.serial["scan-out1"].options = { template: "%PLATE%" };
  raw.serial["led-out1"].options = { texts: { welcome: { voice: 5 } }, address: 300 };
  raw.serial["spaces"] = { kind: "sign", path: "/dev/serial/by-id/usb-sign", options: { lowSpaces: -1 } };
  const result = validateConfig(raw);
  assert.equal(result.ok, false);
  const paths = (!result.ok ? result.problems : []).map((p) => p.path).sort();
  assert.deepEqual(
    paths,
    [
      'serial["cam-out1"].options.encodng',
      'serial["cam-out1"].options.template',
      'serial["led-out1"].options.address',
      'serial["led-out1"].options.texts.welcome.voice',
      'serial["scan-out1"].options.template',
      "serial.spaces.options.lowSpaces",
    ].sort(),
  );
});

test("an unknown kind is reported", () => {
  const result = serialDeviceSchema.safeParse({ kind: "printer" });
  assert.equal(result.success, false);
});
