import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { defaultReturnCodes, platformConfigSchema, section4ServiceIds } from "../../../src/platform/config.js";
import type { Config } from "../../../src/config/schema.js";
import type { OpenInterfaceConfig } from "../../../src/platform/server.js";

// The app's Config must fit the handler's config slice as is (checked by the compiler).
export type ConfigFitsHandler = Config extends OpenInterfaceConfig ? true : never;
const fits: ConfigFitsHandler = true;

const demo = JSON.parse(readFileSync(new URL("../../../config/demo.json", import.meta.url), "utf8")) as { platform: unknown };

test("the demo config's platform section is valid and gets every default", () => {
  assert.equal(fits, true);
  const config = platformConfigSchema.parse(demo.platform);
  assert.equal(config.server.path, "/platform");
  assert.equal(config.server.timestampWindowS, 300);
  assert.equal(config.server.bodyLimitBytes, 64 * 1024);
  assert.equal(config.server.allowClearAllVehicles, false);
  assert.deepEqual(config.server.returnCodes, { ...defaultReturnCodes });
  for (const id of section4ServiceIds) assert.equal(config.server.serviceNames[id], id);
  assert.equal(config.bizContentForm, "object");
  assert.equal(config.emulator.port, 8090);
});

test("service names and return codes can be overridden", () => {
  const config = platformConfigSchema.parse({
    ...(demo.platform as object),
    server: { serviceNames: { payNotify: "payResultNotify" }, returnCodes: { badSign: 1001 } },
  });
  assert.equal(config.server.serviceNames.payNotify, "payResultNotify");
  assert.equal(config.server.returnCodes.badSign, 1001);
  assert.equal(config.server.returnCodes.staleTimestamp, defaultReturnCodes.staleTimestamp);
});

test("two interfaces sharing one serviceName, or an error code equal to success, are refused", () => {
  const shared = platformConfigSchema.safeParse({ ...(demo.platform as object), server: { serviceNames: { payNotify: "addCar" } } });
  assert.equal(shared.success, false);
  const clash = platformConfigSchema.safeParse({ ...(demo.platform as object), server: { returnCodes: { badSign: 200 } } });
  assert.equal(clash.success, false);
  const typo = platformConfigSchema.safeParse({ ...(demo.platform as object), server: { returnCodes: { badSing: 1 } } });
  assert.equal(typo.success, false);
});
