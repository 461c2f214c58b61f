import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { validateConfig, redactConfig, formatPath } from "../../../src/config/load.js";
import { createLogger } from "../../../src/kernel/log.js";
import { demoRaw } from "../../helpers/demo-config.js";

test("the bundled demo config is valid and gets its defaults", () => {
  const result = validateConfig(demoRaw());
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const entry = result.config.lanes[0]!;
  assert.equal(entry.detector.minOnMs, 100);
  assert.equal(entry.detector.minOffMs, 300);
  assert.equal(entry.relayPulseMs, 500);
  assert.equal(entry.timers.recloseMs, 30_000);
  assert.equal(result.config.lot.timeZone, "Asia/Shanghai");
  assert.equal(result.config.platform.server.timestampWindowS, 300);
});

test("a file with many distinct mistakes reports every one with its path", () => {
  const raw = demoRaw() as Record<string, any>;
  raw.deviceId = "has spaces";
  raw.lot.timeZone = "Mars/Olympus";
  raw.lot.totalSpaces = -3;
  raw.lanes[0].direction = "sideways";
  raw.lanes[0].timers = { recloseMs: 10 };
  raw.lanes[0].relayPulseMs = "500";
  raw.lanes[1].inputs.loopB.line = raw.lanes[1].inputs.loopA.line;
  raw.lanes[1].camera = "led-out1";
  raw.lanes[1].colour = "red";
  raw.fees.tariff = "missing";
  raw.api.token = "short";
  raw.platform.baseUrl = "ftp://example";
  delete raw.store.dir;
  const result = validateConfig(raw);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const byPath = new Map(result.problems.map((p) => [p.path, p.message]));
  const expected = [
    "deviceId",
    "lot.timeZone",
    "lot.totalSpaces",
    "lanes[0].direction",
    "lanes[0].timers.recloseMs",
    "lanes[0].relayPulseMs",
    "lanes[1].inputs.loopB.line",
    "lanes[1].camera",
    "lanes[1].colour",
    "fees.tariff",
    "api.token",
    "platform.baseUrl",
    "store.dir",
  ];
  for (const path of expected) assert.ok(byPath.has(path), `missing a problem at ${path}; got ${[...byPath.keys()].join(", ")}`);
  assert.equal(result.problems.length, expected.length, JSON.stringify(result.problems, null, 1));
  assert.match(byPath.get("lanes[1].colour")!, /unknown key/);
  assert.match(byPath.get("lanes[1].camera")!, /is a display, not a camera/);
  assert.match(byPath.get("lanes[1].inputs.loopB.line")!, /already used by lanes\[1\]\.inputs\.loopA/);
  assert.match(byPath.get("store.dir")!, /required/);
});

test("GPIO conflicts across lanes, missing required lines and input misuse are config errors", () => {
  const raw = demoRaw() as Record<string, any>;
  raw.lanes[1].outputs.relayOpen.line = raw.lanes[0].inputs.loopA.line;
  delete raw.lanes[0].inputs.loopB;
  raw.lanes[0].inputs.cashConfirm = { line: 40 };
  raw.lanes[0].inputs.relayOpen = { line: 41 };
  const result = validateConfig(raw);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const paths = result.problems.map((p) => p.path);
  assert.ok(paths.includes("lanes[1].outputs.relayOpen.line"), paths.join());
  assert.ok(paths.includes("lanes[0].inputs.loopB"), paths.join());
  assert.ok(paths.includes("lanes[0].inputs.cashConfirm"), paths.join());
  assert.ok(
    paths.some((p) => p.startsWith("lanes[0].inputs.relayOpen")),
    paths.join(),
  );
});

test("a client certificate without its key (or a key without its certificate) is a problem with its path", () => {
  const raw = demoRaw() as Record<string, any>;
  raw.platform.certFile = "/etc/lanekeeper/platform/client.pem";
  raw.mqtt = { url: "mqtts://broker.example:8883", keyFile: "/etc/lanekeeper/mqtt/client.key" };
  const result = validateConfig(raw);
  assert.equal(result.ok, false);
  const paths = result.ok ? [] : result.problems.map((p) => p.path);
  assert.ok(paths.includes("platform.keyFile"), paths.join());
  assert.ok(paths.includes("mqtt.certFile"), paths.join());
  raw.platform.keyFile = "/etc/lanekeeper/platform/client.key";
  raw.mqtt.certFile = "/etc/lanekeeper/mqtt/client.pem";
  const fixed = validateConfig(raw);
  assert.ok(fixed.ok, JSON.stringify(!fixed.ok && fixed.problems));
});

test("a config from the future is refused, not guessed at", () => {
  const raw = demoRaw();
  raw.version = 99;
  const result = validateConfig(raw);
  assert.equal(result.ok, false);
  if (!result.ok) assert.match(result.problems[0]!.message, /newer than this build/);
});

test("secrets are redacted in dumps and in log lines", () => {
  const raw = demoRaw() as Record<string, any>;
  raw.mqtt = { url: "mqtt://127.0.0.1:1883", username: "box", password: "mqtt-secret-pw" };
  const result = validateConfig(raw);
  assert.ok(result.ok);
  const dump = JSON.stringify(redactConfig(result.config));
  for (const secret of [result.config.platform.key, "mqtt-secret-pw", result.config.api.token]) {
    assert.ok(!dump.includes(secret), `dump leaks ${secret}`);
  }
  assert.match(dump, /HIDDEN/);

  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = createLogger({ level: "info", destination: sink });
  log.info({ config: result.config, key: "raw-key-value", nested: { token: "tok-value" } }, "loaded");
  const text = lines.join("");
  assert.ok(!text.includes(result.config.platform.key), text);
  assert.ok(!text.includes("mqtt-secret-pw"));
  assert.ok(!text.includes("raw-key-value"));
  assert.ok(!text.includes("tok-value"));
});

test("paths are printed the way a person reads JSON", () => {
  assert.equal(formatPath(["lanes", 0, "timers", "recloseMs"]), "lanes[0].timers.recloseMs");
  assert.equal(formatPath(["serial", "cam-out1", "path"]), 'serial["cam-out1"].path');
  assert.equal(formatPath([]), "(root)");
});
