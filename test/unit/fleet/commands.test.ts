import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { CommandErrorCodes, decideCommand, MAX_PAYLOAD_BYTES, sniffId, type CommandDefinition, type CommandDecision } from "../../../src/fleet/commands.js";
import { maxJsonDepth } from "../../../src/platform/json-scan.js";
import { laneCommandArgsSchema } from "../../../src/fleet/payloads.js";
import type { SeenEntry } from "../../../src/fleet/seen-ids.js";

const nowMs = Date.UTC(2024, 0, 15, 2, 0, 0);
const handler = async (): Promise<unknown> => "ran";
const registry = new Map<string, CommandDefinition>([
  ["open", { name: "open", argsSchema: laneCommandArgsSchema, handler, requiresExpiresAt: true, timeoutMs: 1000 }],
  ["set-log-level", { name: "set-log-level", argsSchema: z.strictObject({ level: z.enum(["info", "debug"]) }), handler, requiresExpiresAt: false, timeoutMs: 1000 }],
  ["health-now", { name: "health-now", argsSchema: z.strictObject({}), handler, requiresExpiresAt: false, timeoutMs: 1000 }],
]);
const seenIds = new Map<string, SeenEntry>([["cmd-seen", { name: "open", atMs: nowMs - 60_000, keepUntilMs: nowMs + 86_400_000, status: "ok" }]]);

function decide(name: string, payload: unknown, options: { retained?: boolean } = {}): CommandDecision {
  const buffer = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
  return decideCommand({ name, payload: buffer, retained: options.retained ?? false, nowMs, registry, seen: (id) => seenIds.get(id) });
}

const future = nowMs + 30_000;

// Each row: what arrives, and the answer (or "run") the box must give. Rows that must NOT run
// are most of the table on purpose.
const rows: Array<{ why: string; name: string; payload: unknown; retained?: boolean; expect: Partial<Extract<CommandDecision, { kind: "answer" }>> | "run" }> = [
  { why: "a valid open runs", name: "open", payload: { v: 1, id: "c1", expiresAt: future, args: { laneId: "out1" } }, expect: "run" },
  { why: "ISO expiresAt is accepted", name: "open", payload: { v: 1, id: "c2", expiresAt: new Date(future).toISOString(), args: { laneId: "out1" } }, expect: "run" },
  { why: "a command without args parses {}", name: "health-now", payload: { v: 1, id: "c3" }, expect: "run" },
  {
    why: "expired",
    name: "open",
    payload: { v: 1, id: "c4", expiresAt: nowMs - 1, args: { laneId: "out1" } },
    expect: { id: "c4", status: "rejected", error: "expired", counter: "cmdExpired" },
  },
  {
    why: "expiresAt exactly now is expired",
    name: "open",
    payload: { v: 1, id: "c5", expiresAt: nowMs, args: { laneId: "out1" } },
    expect: { status: "rejected", error: "expired" },
  },
  {
    why: "duplicate id, not re-run",
    name: "open",
    payload: { v: 1, id: "cmd-seen", expiresAt: future, args: { laneId: "out1" } },
    expect: { id: "cmd-seen", status: "duplicate", counter: "cmdDuplicate" },
  },
  { why: "duplicate wins over expired", name: "open", payload: { v: 1, id: "cmd-seen", expiresAt: nowMs - 5, args: { laneId: "out1" } }, expect: { status: "duplicate" } },
  { why: "barrier command without expiresAt", name: "open", payload: { v: 1, id: "c6", args: { laneId: "out1" } }, expect: { id: "c6", status: "error", counter: "cmdInvalid" } },
  {
    why: "retained command",
    name: "open",
    payload: { v: 1, id: "c7", expiresAt: future, args: { laneId: "out1" } },
    retained: true,
    expect: { id: "c7", status: "rejected", error: "retained", counter: "cmdRetained" },
  },
  {
    why: "args of the wrong type",
    name: "open",
    payload: { v: 1, id: "c8", expiresAt: future, args: { laneId: 7 } },
    expect: { id: "c8", status: "error", counter: "cmdInvalid" },
  },
  { why: "unknown args key", name: "set-log-level", payload: { v: 1, id: "c9", args: { level: "info", extra: 1 } }, expect: { id: "c9", status: "error", counter: "cmdInvalid" } },
  { why: "wrong v", name: "open", payload: { v: 2, id: "c10", expiresAt: future, args: { laneId: "out1" } }, expect: { id: "c10", status: "error", counter: "cmdWrongVersion" } },
  { why: "missing v", name: "open", payload: { id: "c11" }, expect: { id: "c11", status: "error", counter: "cmdWrongVersion" } },
  {
    why: "unknown command",
    name: "self-destruct",
    payload: { v: 1, id: "c12" },
    expect: { id: "c12", status: "error", error: 'unknown command "self-destruct"', counter: "cmdUnknown" },
  },
  {
    why: "non-JSON with a readable id",
    name: "open",
    payload: '{"v":1,"id":"c13", oops',
    expect: { id: "c13", status: "error", error: "payload is not JSON", counter: "cmdNonJson" },
  },
  { why: "non-JSON without an id", name: "open", payload: "lift it", expect: { id: null, status: "error", counter: "cmdNonJson" } },
  { why: "a JSON array", name: "open", payload: [1, 2], expect: { id: null, status: "error", counter: "cmdInvalid" } },
  {
    why: "an id that is not a string",
    name: "open",
    payload: { v: 1, id: 5, expiresAt: future, args: { laneId: "out1" } },
    expect: { id: null, status: "error", counter: "cmdInvalid" },
  },
  { why: "unknown envelope key", name: "health-now", payload: { v: 1, id: "c14", expiresAT: future }, expect: { id: "c14", status: "error", counter: "cmdInvalid" } },
  {
    why: "a date without a zone",
    name: "health-now",
    payload: { v: 1, id: "c15", expiresAt: "2024-01-15 10:00:00" },
    expect: { id: "c15", status: "error", counter: "cmdInvalid" },
  },
  // Deep JSON is refused before zod or a handler walks it (JSON.stringify of it overflows the stack).
  {
    why: "args nested deeper than the limit",
    name: "health-now",
    payload: `{"v":1,"id":"d1","args":${nested(maxJsonDepth)}}`,
    expect: { id: "d1", status: "error", code: "E_CMD_TOO_DEEP", error: `payload nests deeper than ${maxJsonDepth} levels`, counter: "cmdTooDeep" },
  },
  { why: "a whole payload of brackets", name: "open", payload: nested(100_000), expect: { id: null, status: "error", code: "E_CMD_TOO_DEEP", counter: "cmdTooDeep" } },
  {
    why: "exactly the limit is not too deep (refused only for its args)",
    name: "health-now",
    payload: `{"v":1,"id":"d2","args":${nested(maxJsonDepth - 1)}}`,
    expect: { id: "d2", code: "E_CMD_INVALID", counter: "cmdInvalid" },
  },
  {
    why: "brackets inside a string do not nest",
    name: "set-log-level",
    payload: { v: 1, id: "d3", args: { level: `\\"${"[".repeat(500)}` } },
    expect: { id: "d3", code: "E_CMD_INVALID", counter: "cmdInvalid" },
  },
  {
    why: "a huge v is not echoed whole",
    name: "open",
    payload: { v: "9".repeat(5000), id: "c16" },
    expect: { id: "c16", code: "E_CMD_VERSION", error: `unsupported payload version "${"9".repeat(39)}…; this box speaks v 1` },
  },
];

/** `depth` arrays inside each other: `[[[]]]` is 3. */
function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

const codeByCounter: Record<string, string> = {
  cmdOversized: CommandErrorCodes.TooLarge,
  cmdNonJson: CommandErrorCodes.NotJson,
  cmdTooDeep: CommandErrorCodes.TooDeep,
  cmdWrongVersion: CommandErrorCodes.Version,
  cmdUnknown: CommandErrorCodes.Unknown,
  cmdInvalid: CommandErrorCodes.Invalid,
  cmdRetained: CommandErrorCodes.Retained,
  cmdDuplicate: CommandErrorCodes.Duplicate,
  cmdExpired: CommandErrorCodes.Expired,
};

for (const row of rows) {
  test(`command decision: ${row.why}`, () => {
    const decision = decide(row.name, row.payload, row.retained === undefined ? {} : { retained: row.retained });
    if (row.expect === "run") {
      assert.equal(decision.kind, "run", JSON.stringify(decision));
      return;
    }
    assert.equal(decision.kind, "answer", "must not run");
    for (const [key, value] of Object.entries(row.expect)) {
      assert.deepEqual((decision as Record<string, unknown>)[key], value, `${key} of ${JSON.stringify(decision)}`);
    }
    if (decision.kind === "answer") {
      assert.ok(decision.error.length > 0, "every refusal says why");
      assert.equal(decision.code, codeByCounter[decision.counter], "every refusal has the stable code of its counter");
    }
  });
}

test("a run decision carries the parsed args and the expiry in epoch ms", () => {
  const decision = decide("open", { v: 1, id: "r1", expiresAt: new Date(future).toISOString(), args: { laneId: "out1", operator: "kim" } });
  assert.equal(decision.kind, "run");
  if (decision.kind !== "run") return;
  assert.deepEqual(decision.args, { laneId: "out1", operator: "kim" });
  assert.equal(decision.expiresAtMs, future);
  assert.equal(decision.definition.name, "open");
});

test("the schema message names the offending field", () => {
  const decision = decide("open", { v: 1, id: "m1", expiresAt: future, args: { laneId: 7 } });
  assert.equal(decision.kind, "answer");
  if (decision.kind === "answer") assert.match(decision.error, /args: laneId: /);
});

test("an oversized payload is refused before parsing, with the id sniffed from its head", () => {
  const big = Buffer.from(JSON.stringify({ v: 1, id: "big-1", args: { blob: "x".repeat(MAX_PAYLOAD_BYTES) } }));
  const decision = decide("health-now", big);
  assert.equal(decision.kind, "answer");
  if (decision.kind !== "answer") return;
  assert.equal(decision.counter, "cmdOversized");
  assert.equal(decision.id, "big-1");
  assert.equal(decision.status, "error");
  assert.match(decision.error, /too large/);
  // Exactly at the limit is still parsed (and here refused only for its args).
  const body = JSON.stringify({ v: 1, id: "edge", args: {} });
  const atLimit = Buffer.concat([Buffer.from(body), Buffer.alloc(MAX_PAYLOAD_BYTES - body.length, " ")]);
  assert.equal(atLimit.length, MAX_PAYLOAD_BYTES);
  assert.equal(decide("health-now", atLimit).kind, "run");
});

test("a refusal never echoes a hostile payload at length (a 100 KiB key, a 100 KiB v)", () => {
  const longKey = decide("health-now", `{"v":1,"id":"long-1","${"k".repeat(100_000)}":1}`);
  assert.equal(longKey.kind, "answer");
  if (longKey.kind === "answer") {
    assert.equal(longKey.code, "E_CMD_INVALID");
    assert.ok(longKey.error.length <= 501, `${longKey.error.length} characters`);
  }
  const longV = decide("health-now", { v: "9".repeat(100_000), id: "long-2" });
  assert.ok(longV.kind === "answer" && longV.error.length < 100);
});

test("sniffId reads only a plain string id", () => {
  assert.equal(sniffId(Buffer.from('{"v":1, "id" : "abc-1", "x": ')), "abc-1");
  assert.equal(sniffId(Buffer.from('{"v":1,"id":12}')), null);
  assert.equal(sniffId(Buffer.from("garbage")), null);
  assert.equal(sniffId(Buffer.from('{"id":"has space"}')), null);
});
