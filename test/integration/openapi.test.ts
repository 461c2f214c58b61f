import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { LotHarness } from "../helpers/lot-harness.js";
import { errorSchema, routeDocs, type RouteDoc } from "../../src/api/openapi-routes.js";
import { encodeEnvelope, timestampText } from "../../src/platform/envelope.js";

/*
 * `/api/openapi.json` against the box that serves it: every route the server registered is
 * described (and nothing else), and real answers — successes and refusals, from a composed
 * box with the platform emulator — match the schemas the document is generated from.
 */

let lot: LotHarness;
let doc: {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
  components: Record<string, Record<string, unknown>>;
};
let docs: RouteDoc[];
/** Per route (`METHOD pattern`): the statuses whose answers were checked. */
const checked = new Map<string, Set<number>>();

before(async () => {
  lot = await LotHarness.create();
  const response = await fetch(`${lot.apiUrl}/api/openapi.json`);
  assert.equal(response.status, 200);
  doc = (await response.json()) as typeof doc;
  docs = routeDocs(lot.config.platform.server.path);
});
after(async () => {
  await lot?.stop();
});

/** The `data` of the first `event: status` frame of a server-sent event stream. */
async function firstStatusFrame(body: ReadableStream<Uint8Array>): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before a status frame: ${text.slice(0, 200)}`);
    text += decoder.decode(value, { stream: true });
    const frame = /event: status\ndata: (.*)\n\n/.exec(text);
    if (frame) {
      reader.releaseLock();
      return frame[1]!;
    }
  }
}

const openApiPath = (pattern: string): string => pattern.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

function routeFor(method: string, path: string): RouteDoc {
  const pathname = new URL(path, "http://box").pathname;
  const matches = docs.filter((r) => r.method === method && new RegExp(`^${r.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z0-9_]+/g, "[^/]+")}$`).test(pathname));
  // A literal segment beats a parameter (`/api/records/:recordNo` vs none here, but be exact).
  const route = matches.sort((a, b) => (a.path.match(/:/g)?.length ?? 0) - (b.path.match(/:/g)?.length ?? 0))[0];
  assert.ok(route, `${method} ${pathname} is described`);
  return route;
}

/** One request; its answer must match the description of its route and status. */
async function check(
  method: "GET" | "POST",
  path: string,
  options: { body?: unknown; raw?: string; token?: boolean; status?: number; headers?: Record<string, string> } = {},
): Promise<unknown> {
  const route = routeFor(method, path);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== false) headers.authorization = `Bearer ${lot.token}`;
  if (options.body !== undefined || options.raw !== undefined) headers["content-type"] ??= "application/json";
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`${lot.apiUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  if (options.status !== undefined) assert.equal(response.status, options.status, `${method} ${path}`);
  const described = route.responses[response.status];
  const type = response.headers.get("content-type") ?? "";
  let parsed: unknown;
  if (described && !described.json) {
    const media = (described.contentType ?? "").split(";")[0]!;
    assert.ok(media.endsWith("/*") ? type.startsWith(media.slice(0, -1)) : type.startsWith(media), `${method} ${path}: ${type} is ${described.contentType}`);
    await response.body?.cancel();
  } else {
    assert.match(type, /^application\/json/, `${method} ${path} answers JSON`);
    parsed = await response.json();
    const schema = described?.json ?? errorSchema;
    assert.ok(described || response.status >= 400, `${method} ${path}: status ${response.status} is described`);
    const result = schema.safeParse(parsed);
    assert.ok(
      result.success,
      `${method} ${path} → ${response.status} does not match its description: ${result.success ? "" : JSON.stringify(result.error.issues.slice(0, 3))}\n${JSON.stringify(parsed).slice(0, 400)}`,
    );
  }
  const key = `${route.method} ${route.path}`;
  if (!checked.has(key)) checked.set(key, new Set());
  checked.get(key)!.add(response.status);
  return parsed;
}

test("every registered route is in the document with its method, and the document describes no route the box lacks", () => {
  assert.equal(doc.openapi, "3.1.0");
  const registered = lot.app.http.routeList();
  for (const { method, pattern } of registered) {
    const operation = doc.paths[openApiPath(pattern)]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${pattern} is described in /api/openapi.json`);
    assert.ok(operation.responses.default, `${method} ${pattern} names the error answer`);
  }
  const documented = Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(documented.sort(), registered.map((r) => `${r.method} ${openApiPath(r.pattern)}`).sort());
  for (const route of docs.filter((r) => r.body)) {
    if (registered.some((r) => r.method === route.method && r.pattern === route.path))
      assert.ok(doc.paths[openApiPath(route.path)]![route.method.toLowerCase()]!.requestBody, `${route.path} has its body`);
  }
});

test("every $ref in the document points at a component that exists", () => {
  const refs: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) {
        if (key === "$ref" && typeof inner === "string") refs.push(inner);
        else walk(inner);
      }
    }
  };
  walk(doc);
  assert.ok(refs.length > 20);
  for (const ref of refs) {
    const [, section, name] = /^#\/components\/(schemas|responses)\/([A-Za-z0-9_]+)$/.exec(ref) ?? [];
    assert.ok(section && name && doc.components[section]?.[name], `${ref} resolves`);
  }
  assert.ok(!JSON.stringify(doc).includes("__shared"), "no reused schema left outside the components");
});

test("real answers of every route match their description, successes and refusals alike", async () => {
  await check("GET", "/healthz", { token: false, status: 200 });
  await check("GET", "/api/status", { token: false, status: 200 });
  await check("GET", "/metrics", { status: 200 });
  await check("GET", "/api/openapi.json", { status: 200 });
  await check("GET", "/api/panel/session", { status: 200 });
  await check("GET", "/api/panel/session", { token: false, status: 401 });
  await check("GET", "/", { token: false, status: 200 });
  await check("GET", "/panel/panel.js", { token: false, status: 200 });
  await check("GET", "/panel/nosuch.js", { token: false, status: 404 });

  // A car comes in: sim inputs, the simulated camera, then the lane and record routes.
  await check("POST", "/api/sim/inputs/in1/loopA", { body: { level: 1 }, status: 200 });
  await check("POST", "/api/sim/inputs/in1/loopA", { body: { level: 7 }, status: 400 });
  await lot.until(() => lot.snapshot("in1").loopA, 2000, "loopA occupied");
  await check("POST", "/api/sim/camera/in1", { body: { plate: "粤B66666", color: "blue", confidence: 97 }, status: 200 });
  await check("POST", "/api/sim/camera/in1", { body: { plate: 5 }, status: 400 });
  await lot.pass("in1");
  const recordNo = lot.stayOf("粤B66666")!.recordNo;
  await check("GET", "/api/sim/outputs", { status: 200 });
  await check("GET", "/api/sim/displays?limit=5", { status: 200 });
  await check("POST", "/api/sim/scanner/out1", { body: { code: "134567890123456789" } });
  await check("POST", "/api/sim/scanner/out1", { body: { code: 1 }, status: 400 });
  await check("GET", "/api/records", { status: 200 });
  await check("GET", "/api/records?plate=%E7%B2%A4B66666", { status: 200 });
  await check("GET", `/api/records/${encodeURIComponent(recordNo)}`, { status: 200 });
  await check("GET", "/api/records/no-such-stay", { status: 404 });
  await check("GET", "/api/lot", { status: 200 });
  await check("GET", "/api/lot/in-park", { status: 200 });
  await check("POST", "/api/lanes/in1/commands", { body: { command: "close", operator: "王芳", reason: "test" }, status: 200 });
  await check("POST", "/api/lanes/in1/commands", { body: { command: "fly", operator: "王芳" }, status: 400 });
  await check("POST", "/api/lanes/in1/commands", { body: { command: "open", operator: "王芳" }, token: false, status: 401 });
  await check("POST", "/api/lanes/nosuch/commands", { body: { command: "close", operator: "王芳", reason: "test" }, status: 404 });

  // The camera's own push, and the cloud's section-4 route (signed, and not an envelope).
  const push = readFileSync(new URL("../fixtures/camera/alarm-basic.json", import.meta.url), "utf8");
  await check("POST", "/camera/in1", { raw: push, token: false, status: 200 });
  await check("POST", "/camera/out1", { raw: push, token: false, status: 404 });
  await check("POST", "/camera/in1", { raw: "{nope", token: false, status: 400 });
  // A push with its picture: the lane's photo ring keeps it and serves it.
  const withImage = readFileSync(new URL("../fixtures/camera/alarm-with-image.json", import.meta.url), "utf8");
  await check("POST", "/camera/in1", { raw: withImage, token: false, status: 200 });
  await lot.until(() => lot.app.photos.latest("in1") !== undefined, 2000, "the photo kept");
  await check("GET", "/api/lanes/in1/photos/latest", { status: 200 });
  await check("GET", `/api/lanes/in1/photos/${lot.app.photos.latest("in1")!.id}`, { token: false, status: 200 });
  await check("GET", "/api/lanes/in1/photos/nope", { status: 400 });
  await check("GET", "/api/lanes/out1/photos/latest", { status: 404 });

  // A plate correction: refused (no reason, no car, no lane), then a misread at the exit put right.
  await check("POST", "/api/lanes/out1/correct-plate", { body: { plate: "粤B66666", operator: "王芳" }, status: 400 });
  await check("POST", "/api/lanes/in1/correct-plate", { body: { plate: "粤B66666", operator: "王芳", reason: "misread" }, status: 409 });
  await check("POST", "/api/lanes/nosuch/correct-plate", { body: { plate: "粤B66666", operator: "王芳", reason: "misread" }, status: 404 });
  await lot.arrive("out1", "粤E99999");
  await lot.awaitingPayment("out1");
  await check("POST", "/api/lanes/out1/correct-plate", { body: { plate: "粤B66666", operator: "王芳", reason: "misread" }, status: 200 });
  await check("POST", "/api/lanes/out1/commands", { body: { command: "open", operator: "王芳", reason: "corrected" }, status: 200 });
  await lot.pass("out1");
  const platform = lot.config.platform;
  const signed = encodeEnvelope({
    pid: platform.pid,
    key: platform.key,
    serviceName: "queryFreeSpace",
    timestamp: timestampText(Date.now()),
    biz: { parkCode: lot.config.lot.parkCode },
    bizContentForm: platform.bizContentForm,
  });
  await check("POST", platform.server.path, { raw: signed.bodyText, token: false, status: 200 });
  await check("POST", platform.server.path, { raw: "[]", token: false });

  // Refunds, shifts and the outbox.
  await check("GET", "/api/refunds", { status: 200 });
  await check("GET", "/api/refunds?state=owed&fromMs=0", { status: 200 });
  await check("GET", "/api/refunds?state=lost", { status: 400 });
  await check("POST", "/api/refunds/no-such-refund/refunded", { body: { operator: "王芳" }, status: 404 });
  await lot.app.lanes.refunds.add({
    id: "in1_20260101000000001:EX1out1",
    kind: "double-payment",
    laneId: "out1",
    plate: "粤B60001",
    recordNo: "in1_20260101000000001",
    first: { payType: 4, amountFen: 700, orderNo: "TC1", payTimeMs: Date.UTC(2026, 0, 1), path: "cash", operator: "王五" },
    second: { payType: 1, amountFen: 700, orderNo: "TC1P", payTimeMs: Date.UTC(2026, 0, 1), path: "platform", operator: "" },
    amountFen: 700,
    refundVia: "cash",
  });
  await check("POST", `/api/refunds/${encodeURIComponent("in1_20260101000000001:EX1out1")}/refunded`, { body: { operator: "王芳" }, status: 200 });
  await check("POST", `/api/refunds/${encodeURIComponent("in1_20260101000000001:EX1out1")}/refunded`, { body: { operator: "王芳" }, status: 409 });
  await check("GET", "/api/shift", { status: 200 });
  const started = (await check("POST", "/api/shift/start", { body: { operator: "王芳" }, status: 200 })) as { shift: { id: string } };
  await check("POST", "/api/shift/start", { body: { operator: "李雷" }, status: 409 });
  await check("GET", "/api/shift", { status: 200 });
  await check("GET", `/api/shifts/${started.shift.id}`, { status: 200 });
  await check("GET", `/api/shifts/${started.shift.id}/print?lang=en`, { status: 200 });
  await check("POST", "/api/shift/end", { status: 200 });
  await check("POST", "/api/shift/end", { status: 409 });
  await check("GET", "/api/shifts?from=0", { status: 200 });
  await check("GET", "/api/shifts?from=yesterday", { status: 400 });
  await check("GET", "/api/shifts/no-such-shift", { status: 404 });
  await check("GET", "/api/outbox?limit=5", { status: 200 });
  await check("POST", "/api/outbox/retry", { body: { key: "all" }, status: 200 });
  await check("POST", "/api/outbox/retry", { body: {}, status: 400 });
  await check("POST", "/api/outbox/discard", { body: { key: "no-such-entry" }, status: 200 });

  // The panel's stream: its first status frame matches the described event data, then the client goes.
  const stream = new AbortController();
  const events = await fetch(`${lot.apiUrl}/api/stream`, { signal: stream.signal });
  assert.equal(events.status, 200);
  assert.match(events.headers.get("content-type") ?? "", /^text\/event-stream/);
  const frame = await firstStatusFrame(events.body!);
  stream.abort();
  const eventData = routeFor("GET", "/api/stream").responses[200]!.eventData!;
  const parsedFrame = eventData.safeParse(JSON.parse(frame));
  assert.ok(parsedFrame.success, `a status frame of /api/stream matches its description: ${parsedFrame.success ? "" : JSON.stringify(parsedFrame.error.issues.slice(0, 3))}`);
  assert.ok((JSON.parse(frame) as { lanes: Array<{ vehicle?: unknown }> }).lanes.length > 0);
  checked.set("GET /api/stream", new Set([200]));

  const unchecked = lot.app.http
    .routeList()
    .map((r) => `${r.method} ${r.pattern}`)
    .filter((key) => !checked.has(key));
  assert.deepEqual(unchecked, [], "every registered route had at least one answer checked");
});
