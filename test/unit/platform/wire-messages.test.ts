import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { FakeClock } from "../../helpers/fake-clock.js";
import { platformConfigSchema } from "../../../src/platform/config.js";
import { demoCredentials } from "../../../src/platform/emulator/emulator.js";
import { encodeEnvelope, timestampText } from "../../../src/platform/envelope.js";
import { createMemoryLotPorts } from "../../../src/platform/memory-ports.js";
import { createOpenInterfaceHandler } from "../../../src/platform/server.js";
import type { ServiceDef } from "../../../src/platform/services/common.js";
import { inParkServices } from "../../../src/platform/services/in-park.js";
import { laneServices } from "../../../src/platform/services/lane.js";
import { listServices } from "../../../src/platform/services/lists.js";
import { paymentServices } from "../../../src/platform/services/payments.js";
import { vehicleServices } from "../../../src/platform/services/vehicles.js";
import { readBiz, wInt, wIntOpt, wNum, wNumOpt, wStr, wStrOpt, wStrReq } from "../../../src/platform/wire.js";
import { capturingLogger } from "../../helpers/platform-fixtures.js";

/**
 * Section-4 field messages: an absent field "is required"; a field of the wrong type says the
 * type it must be ("payScene must be an integer"), for every wire type and every interface.
 */

const FUZZ_RUNS = Number(process.env.LK_FUZZ_RUNS ?? 500);

const helpers = { wInt, wIntOpt, wNum, wNumOpt, wStr, wStrOpt, wStrReq } as const;
type HelperName = keyof typeof helpers;

const ABSENT = Symbol("absent");
type Input = unknown | typeof ABSENT;

/** helper, input, expected: a parsed value `{ ok }` or the field's message. */
const table: Array<[HelperName, Input, { ok: unknown } | string]> = [
  // Integers: numeric strings are coerced; "" and null are absent.
  ["wInt", 3, { ok: 3 }],
  ["wInt", "3", { ok: 3 }],
  ["wInt", ABSENT, "is required"],
  ["wInt", null, "is required"],
  ["wInt", "", "is required"],
  ["wInt", "abc", "must be an integer"],
  ["wInt", 1.5, "must be an integer"],
  ["wInt", "1.5", "must be an integer"],
  ["wInt", true, "must be an integer"],
  ["wInt", {}, "must be an integer"],
  ["wInt", [1], "must be an integer"],
  ["wInt", 2 ** 60, "must be an integer within ±9007199254740991"],
  ["wIntOpt", ABSENT, { ok: undefined }],
  ["wIntOpt", "", { ok: undefined }],
  ["wIntOpt", null, { ok: undefined }],
  ["wIntOpt", "x", "must be an integer"],
  ["wIntOpt", false, "must be an integer"],
  // Numbers (money as a double).
  ["wNum", "12.5", { ok: 12.5 }],
  ["wNum", ABSENT, "is required"],
  ["wNum", "12,5", "must be a number"],
  ["wNum", {}, "must be a number"],
  ["wNumOpt", "", { ok: undefined }],
  ["wNumOpt", [], "must be a number"],
  // Strings: a number is taken as its text.
  ["wStr", 2, { ok: "2" }],
  ["wStr", "", { ok: "" }],
  ["wStr", ABSENT, "is required"],
  ["wStr", {}, "must be a string"],
  ["wStr", true, "must be a string"],
  ["wStrReq", " x ", { ok: "x" }],
  ["wStrReq", ABSENT, "is required"],
  ["wStrReq", null, "is required"],
  ["wStrReq", "", "must not be empty"],
  ["wStrReq", "  ", "must not be empty"],
  ["wStrReq", ["a"], "must be a string"],
  ["wStrOpt", ABSENT, { ok: undefined }],
  ["wStrOpt", null, { ok: undefined }],
  ["wStrOpt", 7, { ok: "7" }],
  ["wStrOpt", { a: 1 }, "must be a string"],
];

for (const [helper, input, expected] of table) {
  const shown = input === ABSENT ? "absent" : JSON.stringify(input);
  test(`${helper} with ${shown}: ${typeof expected === "string" ? expected : "accepted"}`, () => {
    const schema = z.looseObject({ field: helpers[helper]() });
    const result = readBiz(schema, input === ABSENT ? {} : { field: input });
    if (typeof expected === "string") {
      assert.equal(result.ok, false);
      assert.deepEqual(!result.ok && result.problems, [{ path: "field", message: expected }]);
    } else {
      assert.ok(result.ok, JSON.stringify(result));
      assert.deepEqual(result.ok && result.value.field, expected.ok);
    }
  });
}

test("zod types outside the wire helpers name their type and their values too", () => {
  const schema = z.looseObject({ flag: z.boolean(), mode: z.enum(["a", "b"]), one: z.literal(1), list: z.array(z.string()) });
  const wrong = readBiz(schema, { flag: "yes", mode: "c", one: 2, list: 3 });
  assert.deepEqual(!wrong.ok && wrong.problems, [
    { path: "flag", message: "must be true or false" },
    { path: "mode", message: 'must be one of "a", "b"' },
    { path: "one", message: "must be 1" },
    { path: "list", message: "must be an array" },
  ]);
  const missing = readBiz(schema, {});
  assert.deepEqual(!missing.ok && missing.problems.map((p) => p.message), ["is required", "is required", "is required", "is required"]);
});

const services = [...inParkServices, ...laneServices, ...listServices, ...paymentServices, ...vehicleServices] as unknown as ServiceDef[];

test("every section-4 interface: a wrong-typed field says its type, never that it is required", () => {
  let fields = 0;
  for (const def of services) {
    for (const field of Object.keys(def.schema.shape)) {
      // An object is the wrong type for every wire field (they are all scalars).
      const result = readBiz(def.schema, { [field]: { nested: true } });
      assert.equal(result.ok, false, `${def.id}.${field}`);
      const problem = !result.ok ? result.problems.find((p) => p.path === field) : undefined;
      assert.ok(problem, `${def.id}.${field}: no problem reported`);
      assert.match(problem.message, /^must be (an integer|a number|a string)$/, `${def.id}.${field}: ${problem.message}`);
      fields++;
    }
  }
  assert.ok(fields > 100, `only ${fields} fields checked`);
});

test("any JSON value in any wire field: a value or a stable message, never a throw", () => {
  const messages = new Set(["is required", "must be an integer", "must be an integer within ±9007199254740991", "must be a number", "must be a string", "must not be empty"]);
  fc.assert(
    fc.property(fc.constantFrom(...(Object.keys(helpers) as HelperName[])), fc.option(fc.jsonValue(), { nil: undefined }), (helper, value) => {
      const result = readBiz(z.looseObject({ field: helpers[helper]() }), value === undefined ? {} : { field: value });
      if (!result.ok) {
        assert.equal(result.problems.length, 1);
        assert.ok(messages.has(result.problems[0]!.message), result.problems[0]!.message);
      }
    }),
    { numRuns: FUZZ_RUNS },
  );
});

test("on the box: payScene of the wrong type is refused with 'payScene must be an integer'", async () => {
  const nowMs = Date.UTC(2024, 0, 15, 2);
  const { log, lines } = capturingLogger();
  const handler = createOpenInterfaceHandler({
    config: {
      platform: platformConfigSchema.parse({ baseUrl: "http://127.0.0.1:9/", pid: demoCredentials.pid, key: demoCredentials.key }),
      lot: { parkCode: "TEST/1P1", timeZone: "Asia/Shanghai", totalSpaces: 50 },
      lanes: [{ id: "out1", channelId: "2", direction: "out" }],
    },
    ports: createMemoryLotPorts({ totalSpaces: 50 }),
    clock: new FakeClock(nowMs),
    log,
  });
  const send = (biz: Record<string, unknown>, secondsAgo: number) =>
    handler.handle(
      encodeEnvelope({ pid: demoCredentials.pid, key: demoCredentials.key, serviceName: "queryParkFee", timestamp: timestampText(nowMs - secondsAgo * 1000), biz }).bodyText,
    );
  const wrong = await send({ parkCode: "TEST/1P1", payScene: "scan", outChannelid: "2" }, 1);
  assert.match(wrong.body.msg, /payScene must be an integer/);
  assert.doesNotMatch(wrong.body.msg, /required/);
  const missing = await send({ parkCode: "TEST/1P1", outChannelid: "2" }, 2);
  assert.match(missing.body.msg, /payScene is required/);
  // The refusal is logged with its reason, and the handler keeps answering.
  assert.ok(lines.some((l) => l.includes("platform request rejected") && l.includes("payScene must be an integer")));
  assert.equal(handler.stats().rejected.badBizContent, 2);
});
