import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { App } from "../../src/app/app.js";
import { silentLogger } from "../../src/kernel/log.js";
import { testConfig } from "../helpers/demo-config.js";
import { rawRequest, requestBytes } from "../helpers/raw-http.js";

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

// ---- hostile input: each reported case, on the real composition ----

test("a malformed percent-escape in any route parameter is a 400 E_BAD_PARAM, and the server lives", async () => {
  const port = app.http.address().port;
  const cases: Array<[string, string, Record<string, string>, string | undefined]> = [
    ["POST", "/camera/%E0", { "content-type": "application/json" }, "{}"],
    ["POST", "/api/lanes/%ZZ/commands", { authorization: `Bearer ${token}`, "content-type": "application/json" }, '{"command":"open","operator":"x"}'],
    ["POST", "/api/sim/inputs/in1/%C0", { authorization: `Bearer ${token}`, "content-type": "application/json" }, '{"level":1}'],
    ["GET", "/panel/%E0%A4%A", {}, undefined],
  ];
  for (const [method, target, headers, body] of cases) {
    const answer = await rawRequest(port, requestBytes(method, target, headers, body));
    assert.equal(answer.status, 400, `${method} ${target}: ${answer.bodyText}`);
    assert.equal((answer.json as { error: { code: string } }).error.code, "E_BAD_PARAM", target);
  }
  assert.equal(app.simGpio!.read("in1.loopA"), 0);
  assert.equal(app.lanes.runners.get("in1")!.snapshot().barrier, "closed", "no command reached the lane");
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});

test("an absolute-form request line with a bad URI is a 400 E_BAD_URL; a good one is served", async () => {
  const port = app.http.address().port;
  const bad = await rawRequest(port, "GET http://[::1 HTTP/1.1\r\nhost: box\r\nconnection: close\r\n\r\n");
  assert.equal(bad.status, 400, bad.bodyText);
  assert.equal((bad.json as { error: { code: string } }).error.code, "E_BAD_URL");
  const good = await rawRequest(port, "GET http://box/healthz HTTP/1.1\r\nhost: box\r\nconnection: close\r\n\r\n");
  assert.equal(good.status, 200);
  const status = (await (await fetch(`${base}/api/status`)).json()) as { httpRejections: Record<string, number> };
  assert.ok((status.httpRejections["(unrouted) E_BAD_URL"] ?? 0) >= 1, JSON.stringify(status.httpRejections));
});

test("bytes that are not HTTP, oversized headers and odd expectations get JSON refusals, counted", async () => {
  const answer = await rawRequest(app.http.address().port, "GET /healthz HTTP/1.1 extra\r\n\r\n");
  assert.equal(answer.status, 400);
  assert.equal((answer.json as { error: { code: string } }).error.code, "E_BAD_REQUEST");
  const huge = await rawRequest(app.http.address().port, `GET /healthz HTTP/1.1\r\nhost: box\r\nx-pad: ${"a".repeat(20_000)}\r\n\r\n`);
  assert.equal(huge.status, 431);
  assert.equal((huge.json as { error: { code: string } }).error.code, "E_HEADERS_TOO_LARGE");
  const expectation = await rawRequest(app.http.address().port, "GET /healthz HTTP/1.1\r\nhost: box\r\nexpect: teapot\r\nconnection: close\r\n\r\n");
  assert.equal(expectation.status, 417);
  assert.equal((expectation.json as { error: { code: string } }).error.code, "E_EXPECTATION");
  const status = (await (await fetch(`${base}/api/status`)).json()) as { httpRejections: Record<string, number> };
  assert.ok((status.httpRejections["(unrouted) E_BAD_REQUEST"] ?? 0) >= 1, JSON.stringify(status.httpRejections));
  assert.ok((status.httpRejections["(unrouted) E_HEADERS_TOO_LARGE"] ?? 0) >= 1, JSON.stringify(status.httpRejections));
});

test("the bearer scheme is case-insensitive", async () => {
  for (const scheme of ["bearer", "BEARER", "Bearer", "bEaReR"]) {
    const res = await fetch(`${base}/api/panel/session`, { headers: { authorization: `${scheme} ${token}` } });
    assert.equal(res.status, 200, scheme);
  }
  const wrong = await fetch(`${base}/api/panel/session`, { headers: { authorization: `bearer ${token}x` } });
  assert.equal(wrong.status, 401);
  const basic = await fetch(`${base}/api/panel/session`, { headers: { authorization: `Basic ${token}` } });
  assert.equal(basic.status, 401);
});

test("1 MB bodies of nested brackets are refused before parsing; /healthz stays fast meanwhile", async (t) => {
  // A box may allow section-4 bodies up to 16 MiB; the nesting check must hold on its own.
  const deepApp = new App({ config: testConfig((raw) => (raw.platform.server = { bodyLimitBytes: 2 * 1024 * 1024 })), log: silentLogger(), apiPort: 0 });
  await deepApp.start();
  t.after(() => deepApp.stop());
  const port = deepApp.http.address().port;
  const depth = 512 * 1024;
  const brackets = "[".repeat(depth) + "]".repeat(depth);
  const objects = '{"a":'.repeat(200_000);
  const bodies: Array<[string, Buffer]> = [];
  for (let i = 0; i < 12; i++) {
    for (const path of ["/platform", "/camera/in1"]) bodies.push([path, requestBytes("POST", path, { "content-type": "application/json" }, i % 3 === 2 ? objects : brackets)]);
  }
  const send = async ([path, bytes]: [string, Buffer]) => ({ path, answer: await rawRequest(port, bytes, { timeoutMs: 30_000 }) });
  const checkRefused = ({ path, answer }: Awaited<ReturnType<typeof send>>): void => {
    assert.equal(answer.status, 400, `${path}: ${answer.bodyText.slice(0, 200)}`);
    if (path === "/platform") assert.equal((answer.json as { code: number }).code, 4001);
    else assert.equal((answer.json as { error: { code: string } }).error.code, "E_JSON_DEPTH");
  };

  // All at once: the CPU the process spends on them (client side included) does not depend on
  // how busy the machine is. Parsing such a body took ~100-400 ms of CPU before the check.
  const cpuBefore = process.cpuUsage();
  (await Promise.all(bodies.map(send))).forEach(checkRefused);
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMsPerBody = (cpu.user + cpu.system) / 1000 / bodies.length;

  // Then one at a time, with a health check sent the moment the deep body is out: the check
  // meets the server while it handles the body.
  const healthMs: number[] = [];
  for (const body of bodies.slice(0, 8)) {
    let written!: () => void;
    const out = new Promise<void>((resolve) => (written = resolve));
    const deep = rawRequest(port, body[1], { timeoutMs: 30_000, onWritten: () => written() }).then((answer) => ({ path: body[0], answer }));
    await Promise.race([out, deep]);
    const health = await rawRequest(port, requestBytes("GET", "/healthz"));
    assert.equal(health.status, 200);
    healthMs.push(health.tookMs);
    checkRefused(await deep);
  }
  const sorted = [...healthMs].sort((a, b) => a - b);
  const medianMs = sorted[Math.floor(sorted.length / 2)]!;
  const described = `health checks ${sorted.map((ms) => Math.round(ms)).join(", ")} ms; ${cpuMsPerBody.toFixed(1)} ms of CPU per body`;
  t.diagnostic(described);
  // The median: a loaded test machine may deschedule the process for a moment. Before the
  // check, half of these waited 150-400 ms.
  assert.ok(medianMs < 100, described);
  assert.ok(cpuMsPerBody < 40, described);
});
