import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { App } from "../../src/app/app.js";
import { silentLogger } from "../../src/app/log.js";
import { testConfig } from "../helpers/demo-config.js";

let app: App;
let base: string;
let token: string;

before(async () => {
  const config = testConfig();
  token = config.api.token;
  app = new App({ config, log: silentLogger(), apiPort: 0 });
  await app.start();
  base = `http://127.0.0.1:${app.http.address().port}`;
});
after(async () => {
  await app.stop();
});

const auth = () => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });

test("GET /healthz answers 200 once started", async () => {
  const res = await fetch(`${base}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
});

test("GET /api/status names the device, version and hardware kind", async () => {
  const res = await fetch(`${base}/api/status`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body.deviceId, "demo-box-01");
  assert.equal(body.gpio, "sim");
  assert.match(String(body.version), /^\d+\.\d+\.\d+/);
});

test("sim inputs need the token and change the simulated level", async () => {
  const denied = await fetch(`${base}/api/sim/inputs/in1/loopA`, { method: "POST", body: JSON.stringify({ level: 1 }) });
  assert.equal(denied.status, 401);
  assert.equal(app.simGpio!.read("in1.loopA"), 0);
  const ok = await fetch(`${base}/api/sim/inputs/in1/loopA`, { method: "POST", headers: auth(), body: JSON.stringify({ level: 1 }) });
  assert.equal(ok.status, 200);
  assert.equal(app.simGpio!.read("in1.loopA"), 1);
  await fetch(`${base}/api/sim/inputs/in1/loopA`, { method: "POST", headers: auth(), body: JSON.stringify({ level: 0 }) });
  assert.equal(app.simGpio!.read("in1.loopA"), 0);
});

test("GET /api/sim/outputs lists every relay output and input level", async () => {
  const res = await fetch(`${base}/api/sim/outputs`);
  const body = (await res.json()) as { outputs: Record<string, number>; inputs: Record<string, number> };
  assert.deepEqual(Object.keys(body.outputs).sort(), ["in1.relayClose", "in1.relayOpen", "in1.relayStop", "out1.relayClose", "out1.relayOpen", "out1.relayStop"]);
  assert.ok("out1.cashConfirm" in body.inputs);
});

test("bad requests get clear errors and are counted; the server keeps serving", async () => {
  const cases: Array<[string, RequestInit, number, string]> = [
    ["/api/sim/inputs/in1/loopA", { method: "POST", headers: auth(), body: "{not json" }, 400, "E_JSON"],
    ["/api/sim/inputs/in1/loopA", { method: "POST", headers: auth(), body: JSON.stringify({ level: 7 }) }, 400, "E_LEVEL"],
    ["/api/sim/inputs/in1/nosuch", { method: "POST", headers: auth(), body: JSON.stringify({ level: 1 }) }, 404, "E_GPIO_UNKNOWN_LINE"],
    ["/api/sim/inputs/in1/relayOpen", { method: "POST", headers: auth(), body: JSON.stringify({ level: 1 }) }, 404, "E_GPIO_DIRECTION"],
    ["/api/sim/inputs/in1/loopA", { method: "POST", headers: auth(), body: JSON.stringify({ level: 1, pad: "x".repeat(70_000) }) }, 413, "E_TOO_LARGE"],
    ["/api/sim/inputs/in1/loopA", { method: "POST", headers: { ...auth(), "content-type": "application/xml" }, body: "<level/>" }, 415, "E_CONTENT_TYPE"],
    ["/no/such/route", {}, 404, "E_NOT_FOUND"],
    ["/healthz", { method: "DELETE" }, 405, "E_METHOD"],
  ];
  for (const [path, init, status, code] of cases) {
    const res = await fetch(`${base}${path}`, init);
    assert.equal(res.status, status, `${path} ${JSON.stringify(init.body ?? "").slice(0, 40)}`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, code);
    assert.ok(body.error.message.length > 0);
  }
  const status = (await (await fetch(`${base}/api/status`)).json()) as { httpRejections: Record<string, number> };
  assert.ok((status.httpRejections["POST /api/sim/inputs/:laneId/:input"] ?? 0) >= 6, JSON.stringify(status.httpRejections));
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal(app.simGpio!.read("in1.loopA"), 0, "no rejected request changed the input");
});
