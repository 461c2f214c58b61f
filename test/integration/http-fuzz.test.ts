import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { LotHarness } from "../helpers/lot-harness.js";
import { rawRequest, type RawAnswer } from "../helpers/raw-http.js";

/**
 * Hostile HTTP input against the real servers on loopback: the lot's local API (with the
 * camera push and the section-4 route mounted on it) and the platform emulator. Requests are
 * written as raw bytes, so request lines, targets, methods, headers and bodies can be anything
 * a client on the LAN could send. Every answer must be a JSON 4xx with a stable code, or a
 * documented 2xx (a read; a section-4 or cloud refusal envelope, which the protocol answers
 * with HTTP 200), and afterwards the process still serves, /healthz is fast, and nothing in
 * the store, the outbox or the lanes changed.
 *
 * Bodies sent with the real token are always invalid for their route (wrong types, the last of
 * duplicate keys wrong, numbers that are not 0 or 1...): a valid command would legitimately
 * change state, which is not what this test is about.
 *
 * LK_FUZZ_RUNS=N sends N requests per property instead of the default.
 */
const runs = Number(process.env.LK_FUZZ_RUNS ?? 150);

let lot: LotHarness;

before(async () => {
  lot = await LotHarness.create();
  // Something in the store to keep: two cars inside and a queued report.
  await lot.park("粤B12345", 3_600_000);
  await lot.park("京A54321", 600_000);
});
after(() => lot.stop());

async function stateSnapshot(): Promise<string> {
  const { store, outbox } = lot.app;
  const all = { page: 1, pageSize: 0 };
  return JSON.stringify({
    inPark: store.listInPark(undefined, all).items,
    vehicles: store.listVehicles({}, all).items,
    groups: store.listCarGroups(all).items,
    blacklist: store.listBlacklist({}, all).items,
    finished: await store.recentFinished(100),
    outbox: outbox.list({ limit: 1000 }).map((e) => e.key),
    outputs: lot.gpio.outputs(),
    inputs: lot.gpio.inputs(),
    barriers: lot.config.lanes.map((l) => lot.barrier(l.id)),
  });
}

// ---- generators ---------------------------------------------------------------------------

const hex = fc.constantFrom(..."0123456789ABCDEFabcdefGZ%");
const escape = fc.tuple(hex, hex).map(([a, b]) => `%${a}${b}`);
/** A path segment: text, percent-escapes good and bad, and characters that break the line. */
const segment = fc
  .array(
    fc.oneof(
      fc.constantFrom("in1", "out1", "loopA", "index.html", "panel.js"),
      fc.string({ maxLength: 6 }),
      escape,
      fc.constantFrom("%", "%E0", "%C0%AF", "%E0%A4%A", "..", " ", "\r\n", "\t", "#", "?", "[", "\u0000", "京"),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((parts) => parts.join(""));

/** Values that are never valid for any field a mutating route reads. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer().filter((n) => n !== 0 && n !== 1),
  fc.double({ noDefaultInfinity: true, noNaN: true }).filter((n) => n !== 0 && n !== 1),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
);
const fieldNames = [
  "level",
  "command",
  "operator",
  "reason",
  "key",
  "code",
  "plate",
  "color",
  "confidence",
  "pid",
  "serviceName",
  "timestamp",
  "bizContent",
  "sign",
  "AlarmInfoPlate",
  "license",
  "rules",
  "to",
  "service",
  "biz",
  "behaviour",
];
/** A number a parser might choke on (none of them is 0 or 1 once parsed). */
const hugeNumber = fc.constantFrom("1e999999", "-1e999999", "123456789012345678901234567890", "9007199254740993", "3.14159e300", "-2.5e-3");

const body: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 1024 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.integer({ min: 33, max: 50_000 }), fc.constantFrom("[", '{"a":', '{"AlarmInfoPlate":['), fc.boolean()).map(([n, open, closed]) => {
    const close = open === "[" ? "]" : "}";
    return Buffer.from(open.repeat(n) + (open === "[" ? "1" : "1") + (closed ? close.repeat(n) : ""));
  }),
  fc.tuple(fc.constantFrom(...fieldNames), hugeNumber).map(([k, n]) => Buffer.from(`{"${k}":${n},"n":${n}}`)),
  fc
    .tuple(fc.constantFrom(...fieldNames), fc.string({ maxLength: 8 }), wrongValue)
    .map(([k, first, last]) => Buffer.from(`{"${k}":${JSON.stringify(first)},"${k}":${JSON.stringify(last)}}`)),
  fc.dictionary(fc.constantFrom(...fieldNames), wrongValue, { minKeys: 1, maxKeys: 5 }).map((o) => Buffer.from(JSON.stringify(o))),
  fc
    .record({
      pid: fc.constantFrom("P100001", "x"),
      serviceName: fc.constantFrom("addCar", "payNotify", "remoteDev", "enterNotify", "nope"),
      timestamp: fc.constant(String(Math.floor(Date.now() / 1000))),
      bizContent: fc.dictionary(fc.constantFrom(...fieldNames), wrongValue),
      sign: fc.string({ maxLength: 40 }),
    })
    .map((o) => Buffer.from(JSON.stringify(o))),
  fc
    .record({ AlarmInfoPlate: fc.record({ result: fc.record({ PlateResult: fc.dictionary(fc.constantFrom("license", "plateid", "colorType", "isoffline"), wrongValue) }) }) })
    .map((o) => Buffer.from(JSON.stringify(o))),
);

const headerName = fc.oneof(
  fc.constantFrom("content-type", "x-camera-key", "accept", "cookie", "user-agent", "x-forwarded-for", "host", "expect", "x-a"),
  fc.stringMatching(/^[!-~]{1,12}$/).filter((n) => !/^(content-length|transfer-encoding|connection|upgrade)$/i.test(n) && !n.includes(":")),
);
const headerValue = fc.oneof(
  fc.constantFrom("application/json", "application/json; charset=GBK", "text/plain", "application/xml", "", "100-continue"),
  fc.string({ maxLength: 30 }),
);

interface FuzzRequest {
  bytes: Buffer;
  method: string;
  target: string;
  describe: string;
}

function requestArb(routes: ReadonlyArray<{ method: string; pattern: string }>, token: string, host: string): fc.Arbitrary<FuzzRequest> {
  const route = fc.constantFrom(...routes);
  const target = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          route,
          fc.array(segment, { minLength: 4, maxLength: 4 }),
          fc.option(fc.array(fc.tuple(fc.constantFrom("key", "access_token", "limit", "plate", "parked"), segment), { maxLength: 3 })),
        )
        .map(([r, segments, query]) => {
          let i = 0;
          const path = r.pattern
            .split("/")
            .map((part) => (part.startsWith(":") ? segments[i++]! : part))
            .join("/");
          return query ? `${path}?${query.map(([k, v]) => `${k}=${v}`).join("&")}` : path;
        }),
    },
    { weight: 1, arbitrary: route.map((r) => `http://${host}${r.pattern.replace(/:[a-zA-Z]+/g, "x")}`) },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom("http://[::1", "*", "//x//y", "/%", "http://", "/../../etc/passwd", "ftp://x/"), segment) },
  );
  const method = fc.oneof(
    route.map((r) => r.method),
    fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
    fc.stringMatching(/^[A-Za-z]{1,9}$/),
  );
  const auth = fc.option(
    fc
      .tuple(fc.constantFrom("Bearer", "bearer", "BEARER", "Basic", "", "Token"), fc.oneof(fc.constant(token), fc.string({ maxLength: 20 })))
      .map(([scheme, value]) => `${scheme} ${value}`),
  );
  const version = fc.oneof({ weight: 8, arbitrary: fc.constant("HTTP/1.1") }, { weight: 1, arbitrary: fc.constantFrom("HTTP/1.0", "HTTP/9.9", "http/1.1", "HTTP/1.1 x", "") });
  return fc
    .record({ target, method, auth, version, headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 }), body, chunked: fc.boolean() })
    .map(({ target, method, auth, version, headers, body, chunked }) => {
      const lines = [`${method} ${target} ${version}`.trimEnd(), `host: ${host}`, "connection: close"];
      if (auth !== null) lines.push(`authorization: ${auth}`);
      for (const [name, value] of headers) lines.push(`${name}: ${value}`);
      let payload = body ?? Buffer.alloc(0);
      if (body !== undefined) {
        if (chunked) {
          lines.push("transfer-encoding: chunked");
          payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from(body.length > 0 ? "\r\n0\r\n\r\n" : "\r\n")]);
        } else {
          lines.push(`content-length: ${body.length}`);
        }
      }
      const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "utf8");
      return {
        bytes: Buffer.concat([head, payload]),
        method,
        target,
        describe: `${method} ${JSON.stringify(target)} ${version} auth=${auth ?? "-"} body=${body ? body.subarray(0, 80).toString("latin1") : "-"}`,
      };
    });
}

/** The answer is a JSON refusal with a stable code, or a documented 2xx. */
function checkAnswer(request: FuzzRequest, answer: RawAnswer, documented2xx: (request: FuzzRequest, answer: RawAnswer) => boolean): void {
  const where = `${request.describe} → ${answer.status} ${answer.bodyText.slice(0, 200)}`;
  if (answer.status >= 200 && answer.status < 300) {
    assert.ok(documented2xx(request, answer), `undocumented 2xx: ${where}`);
    return;
  }
  const stream = answer.status === 503 && (answer.json as { error?: { code?: string } } | undefined)?.error?.code === "E_TOO_MANY_STREAMS";
  assert.ok((answer.status >= 400 && answer.status < 500) || stream, `not a 4xx: ${where}`);
  if (request.method === "HEAD" && answer.bodyText === "") return;
  const json = answer.json as { error?: unknown; code?: unknown; msg?: unknown } | undefined;
  assert.ok(json && typeof json === "object", `not JSON: ${where}`);
  const stable =
    (typeof json.error === "object" && json.error !== null && /^E_[A-Z0-9_]+$/.test(String((json.error as { code?: unknown }).code))) ||
    (typeof json.code === "number" && typeof json.msg === "string") ||
    (typeof json.code === "string" && /^E_[A-Z0-9_]+$/.test(json.code));
  assert.ok(stable, `no stable error code: ${where}`);
}

async function healthzMs(port: number): Promise<number> {
  const answer = await rawRequest(port, "GET /healthz HTTP/1.1\r\nhost: box\r\nconnection: close\r\n\r\n");
  assert.equal(answer.status, 200);
  return answer.tookMs;
}

test("every route of the local API (camera push and section 4 included) survives hostile requests and changes nothing", async () => {
  const port = lot.app.http.address().port;
  const routes = lot.app.http.routeList();
  assert.ok(routes.some((r) => r.pattern === "/camera/:laneId") && routes.some((r) => r.pattern === "/platform"), "the camera push and section-4 routes are mounted");
  const before = await stateSnapshot();
  const reads = new Set(["GET"]);
  const documented2xx = (request: FuzzRequest, answer: RawAnswer): boolean => {
    if (reads.has(request.method)) return true;
    // Section 4 answers its refusals with HTTP 200 and a non-success code (docs/protocol.md).
    const json = answer.json as { code?: unknown } | undefined;
    return typeof json?.code === "number" && json.code !== 200;
  };
  await fc.assert(
    fc.asyncProperty(requestArb(routes, lot.token, "box"), async (request) => {
      checkAnswer(request, await rawRequest(port, request.bytes), documented2xx);
    }),
    { numRuns: runs, includeErrorInReport: true },
  );
  assert.ok((await healthzMs(port)) < 200, "/healthz is fast after the run");
  assert.equal(await stateSnapshot(), before, "nothing in the store, the outbox or the lanes changed");
  assert.equal(lot.app.openInterface.stats().accepted, 0, "no section-4 request was accepted");
});

test("the platform emulator survives hostile requests on its push and control routes", async () => {
  const emulator = lot.emulator;
  const routes = [
    { method: "POST", pattern: "/" },
    { method: "POST", pattern: "/api/:service" },
    { method: "GET", pattern: "/_emulator/received" },
    { method: "GET", pattern: "/_emulator/stats" },
    { method: "POST", pattern: "/_emulator/faults" },
    { method: "POST", pattern: "/_emulator/plates" },
    { method: "POST", pattern: "/_emulator/call" },
    { method: "GET", pattern: "/_emulator/:anything" },
  ];
  const receivedBefore = emulator.received().length;
  const documented2xx = (request: FuzzRequest, answer: RawAnswer): boolean => {
    const json = answer.json as { code?: unknown } | undefined;
    // The control API is the test tool's own; what it accepts (reads, clearing faults, a reset) is documented.
    if (request.target.includes("/_emulator/") && json !== undefined) return true;
    // A cloud answers a push it refuses with HTTP 200 and its error code.
    return typeof json?.code === "number" && json.code !== 200;
  };
  await fc.assert(
    fc.asyncProperty(requestArb(routes, "no-token", "cloud"), async (request) => {
      checkAnswer(request, await rawRequest(emulator.port, request.bytes), documented2xx);
    }),
    { numRuns: Math.ceil(runs / 2), includeErrorInReport: true },
  );
  assert.deepEqual(emulator.faults(), {}, "no hostile control request set a fault");
  assert.ok(emulator.received().length <= receivedBefore, "no hostile push was accepted");
  assert.ok((await healthzMs(lot.app.http.address().port)) < 200);
  // Still the cloud: the box's own reports keep flowing.
  await lot.drained();
});
