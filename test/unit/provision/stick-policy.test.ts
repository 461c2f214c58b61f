import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { applyStickPolicy, freshBoxValues, jsonDepth } from "../../../src/provision/stick-policy.js";

const demo = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "..", "config", "demo.json"), "utf8")) as Record<string, any>;
const fresh = freshBoxValues("/var/lib/lanekeeper");

test("a whole real config passes the allow-list when it repeats the box (no false alarms)", () => {
  assert.deepEqual(applyStickPolicy(structuredClone(demo), demo, fresh), []);
  const withTls = structuredClone(demo);
  withTls.mqtt = { url: "mqtts://b:8883", caFile: "/etc/lanekeeper/mqtt/ca-0123456789ab.pem", topicRoot: "lk/v1" };
  withTls.platform.servicePaths = { enterNotify: "/api/enter", restartCommand: "/not/a/command" };
  withTls.platform.server = { path: "/platform" };
  withTls.serial["cam-out1"].path = "/dev/ttyAMA0";
  assert.deepEqual(applyStickPolicy(structuredClone(withTls), withTls, fresh), []);
});

const rows: Array<[string, (d: Record<string, any>) => void, string | undefined]> = [
  ["restart command", (d) => (d.update = { restartCommand: ["sh", "-c", "id"] }), "update.restartCommand"],
  ["keys dir", (d) => (d.update = { trustedKeysDir: "/etc/cron.d" }), "update.trustedKeysDir"],
  ["store dir", (d) => (d.store.dir = "/"), "store.dir"],
  ["clock command", (d) => (d.system = { clockSync: { source: "command", command: ["id"] } }), "system.clockSync.command"],
  ["TLS file by path", (d) => (d.platform.keyFile = "/etc/ssl/private/x.key"), "platform.keyFile"],
  ["serial path outside /dev", (d) => (d.serial["cam-out1"].path = "/dev/../etc/passwd"), 'serial["cam-out1"].path'],
  ["unknown path-like key", (d) => (d.lot.logFile = "/var/log/x"), "lot.logFile"],
  ["path-like key inside an array", (d) => (d.lanes[0].scriptPath = "x"), "lanes[0].scriptPath"],
  // Rows that must NOT be refused:
  ["default repeated on a fresh box", (d) => (d.update = { root: "/opt/lanekeeper" }), undefined],
  ["a serial device named like a field", (d) => (d.serial.cmdFile = { kind: "display" }), undefined],
  ["a device by id", (d) => (d.serial["cam-out1"].path = "/dev/serial/by-id/usb-1a86_USB2.0-Ser_-if00-port0"), undefined],
];
for (const [name, edit, path] of rows) {
  test(`allow-list: ${name}`, () => {
    const doc = structuredClone(demo);
    edit(doc);
    const box = structuredClone(demo);
    delete box.update;
    const problems = applyStickPolicy(doc, box, fresh);
    assert.deepEqual(
      problems.map((p) => p.path),
      path === undefined ? [] : [path],
    );
  });
}

test("box-owned fields the stick leaves out come from the box, or store.dir from the state dir on a fresh box", () => {
  const doc = structuredClone(demo);
  delete doc.store;
  const box = { update: { root: "/srv/lk" }, store: { dir: "/data" } };
  assert.deepEqual(applyStickPolicy(doc, box, fresh), []);
  assert.deepEqual([doc.update, doc.store], [{ root: "/srv/lk" }, { dir: "/data" }]);
  const onFresh = structuredClone(demo);
  delete onFresh.store;
  applyStickPolicy(onFresh, undefined, fresh);
  assert.deepEqual(onFresh.store, { dir: "/var/lib/lanekeeper" });
  assert.equal(onFresh.update, undefined, "schema defaults are left to the schema");
});

test("any JSON shape: the allow-list never throws, and never lets a restart command through", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.jsonValue(), (shape, command) => {
      const doc = { ...(typeof shape === "object" && shape !== null && !Array.isArray(shape) ? shape : { shape }), update: { restartCommand: command } };
      const problems = applyStickPolicy(doc, demo, fresh);
      const defaultCommand = JSON.stringify(fresh.update && (fresh.update as Record<string, unknown>).restartCommand);
      if (JSON.stringify(command) !== defaultCommand) assert.ok(problems.some((p) => p.path === "update.restartCommand"));
      assert.ok(jsonDepth(doc) >= 1);
    }),
    { numRuns: Number(process.env.LK_FUZZ_RUNS ?? 200) },
  );
});
