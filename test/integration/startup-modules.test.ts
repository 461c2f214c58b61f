import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { demoRaw, tempDir, writeConfigFile } from "../helpers/demo-config.js";
import { startCli } from "../helpers/child.js";

/**
 * What `lanekeeper run` loads before it is ready: every module costs start-up CPU and idle
 * memory on the box, so the service path leaves out what a running lane does not need yet.
 * A preload (test/fixtures/startup) lists the modules loaded up to the ready line.
 */
const preload = fileURLToPath(new URL("../fixtures/startup/loaded-at-ready.mjs", import.meta.url));

/** The modules loaded before the ready line, and the public node built-ins loaded by the exit (the start-up bench's node floor loads those). */
async function loadedAtReady(mutate?: (raw: Record<string, any>) => void): Promise<{ modules: string[]; builtinsAtExit: string[] }> {
  const raw = demoRaw() as Record<string, any>;
  raw.api.port = 0;
  raw.store.dir = tempDir("lk-store-");
  // Nothing listens there: the platform client must not need to send to reach ready.
  raw.platform.baseUrl = "http://127.0.0.1:9/";
  mutate?.(raw);
  const logFile = join(tempDir("lk-loaded-"), "loaded.txt");
  const running = startCli(["run", "--config", writeConfigFile(raw)], {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${preload}`,
    LK_LOADED_LOG: logFile,
  });
  try {
    await running.waitFor(/local API on/, 30_000);
  } finally {
    running.child.kill("SIGTERM");
    await running.exited;
  }
  const lines = readFileSync(logFile, "utf8").split("\n");
  const ready = lines.indexOf("ready");
  assert.ok(ready > 0, "the ready line was seen by the preload");
  const builtinsAtExit = lines.filter((line) => line.startsWith("builtin ")).map((line) => line.slice("builtin ".length));
  return { modules: lines.slice(0, ready), builtinsAtExit };
}

const loaded = (modules: string[], pattern: RegExp): string[] => modules.filter((line) => pattern.test(line));

test("without MQTT the service reaches ready without the fleet, update, emulator, console, mqtt or undici", async () => {
  const { modules, builtinsAtExit } = await loadedAtReady();
  // The built-ins listed at the exit: the local API's http and net among them, no internal module.
  for (const name of ["http", "net", "fs"]) assert.ok(builtinsAtExit.includes(name), `${name} among ${builtinsAtExit.join(", ")}`);
  assert.deepEqual(
    builtinsAtExit.filter((name) => !builtinModules.includes(name)),
    [],
    "only public built-ins",
  );
  // The list is real: the composition and the logger are in it.
  assert.ok(loaded(modules, /^esm .*\/src\/app\/run\.ts$/).length === 1, "src/app/run.ts is listed");
  assert.ok(loaded(modules, /^cjs .*\/node_modules\/pino\/pino\.js$/).length === 1, "pino is listed");
  const forbidden: Array<[string, RegExp]> = [
    ["fleet link", /\/src\/fleet\/(?!config\.ts$)/],
    ["fleet wiring", /\/src\/app\/fleet-wiring\.ts$/],
    ["update agent", /\/src\/update\/(agent|download|bundle|setup|health|job|releases|recovery)\.ts$/],
    ["platform emulator", /\/src\/platform\/emulator\//],
    ["fleet console", /\/src\/console\//],
    // main.ts is the dispatcher every command goes through; the help renderer loads on --help only.
    ["other commands", /\/src\/cli\/(?!run\.ts$|command\.ts$|commands\.ts$|main\.ts$)/],
    ["mqtt", /\/node_modules\/mqtt\//],
    ["undici (before the first send)", /\/node_modules\/undici\//],
    ["prom-client (loads at the first scrape of /metrics)", /\/node_modules\/prom-client\//],
    ["the OpenAPI document (built at the first request)", /\/src\/api\/openapi-(document|routes)\.ts$/],
    ["serialport (simulated serial devices)", /\/node_modules\/(@serialport|serialport)\//],
    ["pino's worker-thread transport target", /\/node_modules\/(pino-pretty|pino\/file\.js)/],
  ];
  for (const [what, pattern] of forbidden) assert.deepEqual(loaded(modules, pattern), [], `${what} is not loaded before ready`);
});

test("with MQTT configured the fleet link and the update agent load at start (and the box still gets ready with the broker down)", async () => {
  const { modules } = await loadedAtReady((raw) => {
    raw.mqtt = { url: "mqtt://127.0.0.1:9", protocolVersion: 4 };
  });
  assert.equal(loaded(modules, /\/src\/fleet\/fleet-link\.ts$/).length, 1, "the fleet link is loaded");
  assert.equal(loaded(modules, /\/src\/update\/agent\.ts$/).length, 1, "the update agent is loaded");
  assert.deepEqual(loaded(modules, /\/src\/platform\/emulator\//), []);
});
