import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { ApiError, BodyBudget, createGuardedServer, decodeParam, isLoopbackHost, parseJsonText, parseRequestTarget, readBody, sendError } from "../../../src/api/http-pipeline.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { validateConfig } from "../../../src/config/load.js";
import { exceedsJsonDepth, JsonDepthGauge } from "../../../src/platform/json-scan.js";
import { ReplayCache } from "../../../src/platform/replay-cache.js";
import { demoRaw, writeConfigFile } from "../../helpers/demo-config.js";
import { runCli } from "../../helpers/child.js";
import { rawRequest, requestBytes } from "../../helpers/raw-http.js";

/** Property runs; LK_FUZZ_RUNS raises them. */
const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);

/** Nesting depth of a parsed value: 0 for a scalar, 1 for `[]` or `{}`. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== "object") return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

function apiErrorCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    assert.ok(error instanceof ApiError, `threw ${String(error)} instead of an ApiError`);
    assert.equal(error.status, 400);
    return error.code;
  }
}

// ---- JSON nesting: the text scan and the byte gauge agree with the real depth ----

test("exceedsJsonDepth and the byte gauge (any chunking) agree with the parsed depth", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 0, max: 14 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 8 }), (value, limit, cuts) => {
      const text = JSON.stringify(value);
      const deeper = depthOf(value) > limit;
      assert.equal(exceedsJsonDepth(text, limit), deeper, text);
      const bytes = Buffer.from(text, "utf8");
      const gauge = new JsonDepthGauge(limit);
      let within = true;
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        within = gauge.push(bytes.subarray(at, Math.min(bytes.length, at + cut))) && within;
        at = Math.min(bytes.length, at + cut);
      }
      within = gauge.push(bytes.subarray(at)) && within;
      assert.equal(!within, deeper, text);
    }),
    { numRuns: runs },
  );
});

test("parseJsonText: deep nesting is E_JSON_DEPTH before any parsing, bad JSON E_JSON, never another error", () => {
  assert.equal(
    apiErrorCode(() => parseJsonText("[".repeat(1_000_000))),
    "E_JSON_DEPTH",
  );
  assert.equal(
    apiErrorCode(() => parseJsonText(`{"a":"${"[".repeat(100)}"}`)),
    undefined,
    "brackets inside strings do not count",
  );
  assert.equal(
    apiErrorCode(() => parseJsonText(`{"a":"\\"${"[".repeat(100)}"}`)),
    undefined,
    "an escaped quote does not end the string",
  );
  assert.equal(
    apiErrorCode(() => parseJsonText("1e999999")),
    undefined,
    "a huge number parses (to Infinity); callers validate types",
  );
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
      const code = apiErrorCode(() => parseJsonText(text));
      assert.ok(code === undefined || code === "E_JSON" || code === "E_JSON_DEPTH", code);
    }),
    { numRuns: runs },
  );
});

// ---- the request target and path parameters ----

test("the reported targets and escapes are 400s with stable codes", () => {
  assert.equal(
    apiErrorCode(() => parseRequestTarget("http://[::1")),
    "E_BAD_URL",
  );
  assert.equal(
    apiErrorCode(() => parseRequestTarget("*")),
    "E_BAD_URL",
  );
  assert.equal(
    apiErrorCode(() => parseRequestTarget("ftp://x/")),
    "E_BAD_URL",
  );
  assert.equal(parseRequestTarget("http://box/healthz?x=1").pathname, "/healthz");
  assert.equal(parseRequestTarget("//evil.example/api/status").pathname, "//evil.example/api/status", "origin-form never names a host");
  for (const raw of ["%E0", "%ZZ", "%C0", "%E0%A4%A", "%", "a%2"])
    assert.equal(
      apiErrorCode(() => decodeParam("p", raw)),
      "E_BAD_PARAM",
      raw,
    );
  assert.equal(decodeParam("p", "%E4%BA%ACA12345"), "京A12345");
});

test("any request target either parses or is E_BAD_URL; any segment either decodes or is E_BAD_PARAM", () => {
  const hexPair = fc.tuple(fc.constantFrom(..."0123456789ABCDEFabcdefGZ%"), fc.constantFrom(..."0123456789ABCDEFabcdefGZ%")).map(([a, b]) => `%${a}${b}`);
  const segment = fc
    .array(fc.oneof(fc.string({ maxLength: 4 }), hexPair, fc.constantFrom("%", "%E0", "%C0%AF", "/", "?", "#", "[", "]")), { maxLength: 6 })
    .map((parts) => parts.join(""));
  fc.assert(
    fc.property(
      fc.oneof(
        segment.map((s) => `/${s}`),
        segment.map((s) => `http://${s}`),
        segment,
      ),
      (target) => {
        const code = apiErrorCode(() => parseRequestTarget(target));
        assert.ok(code === undefined || code === "E_BAD_URL");
      },
    ),
    { numRuns: runs },
  );
  fc.assert(
    fc.property(segment, (raw) => {
      const code = apiErrorCode(() => decodeParam("p", raw));
      assert.ok(code === undefined || code === "E_BAD_PARAM");
    }),
    { numRuns: runs },
  );
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 20 }), (text) => assert.equal(decodeParam("p", encodeURIComponent(text)), text)),
    { numRuns: runs },
  );
});

// ---- bounded memory ----

test("the body budget refuses beyond its limit and is whole again once given back", () => {
  const budget = new BodyBudget(100);
  assert.ok(budget.take(60));
  assert.ok(!budget.take(41));
  assert.ok(budget.take(40));
  budget.give(60);
  budget.give(40);
  assert.equal(budget.used, 0);
  budget.give(5);
  assert.equal(budget.used, 0, "never negative");
});

test("the replay cache: a repeat inside the window is refused; entries leave with the window; the size is capped", () => {
  const cache = new ReplayCache(300, 3);
  const t0 = 1_700_000_000;
  assert.equal(cache.remember("abc", t0, t0), true);
  assert.equal(cache.remember("ABC", t0, t0 + 10), false, "the sign compares case-insensitively, as it is verified");
  assert.equal(cache.remember("abc", t0, t0 + 300), false, "still inside the window at its very edge");
  assert.equal(cache.remember("abc", t0, t0 + 301), true, "past the window (the timestamp check refuses it anyway)");
  assert.equal(cache.remember("b", t0 + 301, t0 + 301), true);
  assert.equal(cache.remember("c", t0 + 301, t0 + 301), true);
  assert.deepEqual(cache.stats(), { entries: 3, evictions: 0 });
  assert.equal(cache.remember("d", t0 + 301, t0 + 302), true);
  assert.deepEqual(cache.stats(), { entries: 3, evictions: 1 }, "full of live entries: the oldest arrival made room");
  assert.equal(cache.remember("d", t0 + 301, t0 + 303), false);
  assert.equal(cache.remember("e", t0 + 1000, t0 + 1000), true);
  assert.deepEqual(cache.stats(), { entries: 1, evictions: 1 }, "everything older than the window was swept");
  // A request answered outside the window (rejectStaleTimestamps off) is kept a window from now.
  assert.equal(cache.remember("old", t0, t0 + 5000), true);
  assert.equal(cache.remember("old", t0, t0 + 5299), false);
});

test("the replay cache never holds more than its cap, whatever arrives", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 3 }), fc.integer({ min: -400, max: 400 }), fc.integer({ min: 0, max: 50 })), { maxLength: 200 }),
      (arrivals) => {
        const cache = new ReplayCache(300, 20);
        let nowS = 1_700_000_000;
        const seen = new Map<string, number>();
        for (const [sign, skewS, stepS] of arrivals) {
          nowS += stepS;
          const fresh = cache.remember(sign, nowS + skewS, nowS);
          const expiresAtS = seen.get(sign.toUpperCase());
          // Refused only when it is really a repeat inside the window.
          if (!fresh) assert.ok(expiresAtS !== undefined && expiresAtS >= nowS);
          if (fresh) seen.set(sign.toUpperCase(), Math.max(nowS + skewS, nowS) + 300);
          assert.ok(cache.stats().entries <= 20);
        }
      },
    ),
    { numRuns: runs },
  );
});

// ---- the API bind rule in the config ----

function withApi(api: Record<string, unknown>): Record<string, unknown> {
  const raw = demoRaw() as Record<string, any>;
  raw.api = { ...raw.api, ...api };
  return raw;
}

test("config: an API reachable from the network needs a camera key when a lane takes camera pushes", () => {
  for (const host of ["0.0.0.0", "::", "192.168.1.20", "lanebox.local"]) {
    const result = validateConfig(withApi({ host }));
    assert.equal(result.ok, false, host);
    if (!result.ok)
      assert.deepEqual(
        result.problems.map((p) => p.path),
        ["api.cameraKey"],
        host,
      );
    const short = validateConfig(withApi({ host, cameraKey: "short" }));
    assert.ok(!short.ok && /at least 16/.test(short.problems[0]!.message), host);
    assert.ok(validateConfig(withApi({ host, cameraKey: "a-long-camera-key-0001" })).ok, host);
  }
  for (const host of ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost"]) {
    assert.ok(isLoopbackHost(host), host);
    assert.ok(validateConfig(withApi({ host })).ok, host);
  }
  // Without a camera-push lane there is nothing to open; without a token nothing is valid.
  const serialOnly = withApi({ host: "0.0.0.0" }) as Record<string, any>;
  serialOnly.lanes[0].camera = "cam-out1";
  serialOnly.lanes[1].camera = "cam-out1";
  assert.ok(validateConfig(serialOnly).ok, JSON.stringify(validateConfig(serialOnly)));
  const noToken = withApi({ host: "0.0.0.0", cameraKey: "a-long-camera-key-0001" }) as Record<string, any>;
  delete noToken.api.token;
  const refused = validateConfig(noToken);
  assert.ok(!refused.ok && refused.problems.some((p) => p.path === "api.token"));
});

test("lanekeeper config check refuses an open camera push with the path of the mistake", async () => {
  const file = writeConfigFile(withApi({ host: "0.0.0.0" }));
  const result = await runCli(["config", "check", file]);
  assert.equal(result.code, 1, result.stdout);
  assert.match(result.stderr, /1 problem/);
  assert.match(result.stderr, /api\.cameraKey: api\.host 0\.0\.0\.0 is reachable from the network and lanes in1 take camera pushes/);
});

// ---- the guarded server itself, on loopback ----

test("guarded server: a spent body budget is a 503 E_BUSY and is whole again after; a failing handler is a 500, and the server lives", async (t) => {
  const budget = new BodyBudget(4096);
  const server = createGuardedServer({
    log: silentLogger(),
    async handle(req, res) {
      if (req.url === "/throw") throw new Error("handler bug");
      if (req.url === "/reject") return Promise.reject(new Error("async handler bug"));
      try {
        const body = await readBody(req, 64 * 1024, { budget, maxJsonDepth: 32 });
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ bytes: body.length }));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        sendError(res, error.status, error.code, error.message);
      }
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const post = (path: string, body: string) => rawRequest(port, requestBytes("POST", path, { "content-type": "application/json" }, body));
  const busy = await post("/", JSON.stringify({ pad: "x".repeat(8000) }));
  assert.equal(busy.status, 503);
  assert.equal((busy.json as { error: { code: string } }).error.code, "E_BUSY");
  assert.equal(budget.used, 0, "the refused read gave its bytes back");
  const fits = await post("/", JSON.stringify({ pad: "x".repeat(1000) }));
  assert.equal(fits.status, 200);
  assert.equal(budget.used, 0);
  for (const path of ["/throw", "/reject"]) {
    const failed = await post(path, "{}");
    assert.equal(failed.status, 500, path);
    assert.equal((failed.json as { error: { code: string } }).error.code, "E_INTERNAL");
  }
  assert.equal((await post("/", "{}")).status, 200, "still serving");
});
