import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { z } from "zod";
import {
  commandRequestSchema,
  commandResultSchema,
  configDesiredSchema,
  configReportedSchema,
  eventPayloadSchema,
  eventTypeSchema,
  healthPayloadSchema,
  infoPayloadSchema,
  jobRequestSchema,
  jobStatusPayloadSchema,
  knownEventTypes,
  laneStatePayloadSchema,
  platformWrappedRequestSchema,
  platformWrappedResponseSchema,
  schemaMessage,
  statusPayloadSchema,
} from "../../../src/fleet/payloads.js";
import { decideCommand, MAX_PAYLOAD_BYTES, type CommandDefinition } from "../../../src/fleet/commands.js";
import { maxJsonDepth } from "../../../src/platform/json-scan.js";
import { lastEventsDefault, lastEventsMax, logLevels } from "../../../src/fleet/builtin-commands.js";
import { defaultBackoff } from "../../../src/fleet/backoff.js";
import { mqttConfigSchema } from "../../../src/fleet/config.js";
import { fleetTopics, parseInboundTopic, upTopics, type FleetTopics, type InboundTopic } from "../../../src/fleet/topics.js";
import type { FleetLink } from "../../../src/fleet/fleet-link.js";
import { FleetError, FleetErrorCodes } from "../../../src/fleet/errors.js";
import { createFleet } from "../../../src/app/fleet-wiring.js";
import type { App } from "../../../src/app/app.js";
import { EventBus } from "../../../src/kernel/event-bus.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { validateConfig } from "../../../src/config/load.js";
import { defaultReturnCodes } from "../../../src/platform/config.js";
import { parseEnvelope, verifyEnvelope } from "../../../src/platform/envelope.js";
import { jobSteps, updateJobSchema } from "../../../src/update/job.js";
import { UpdateErrorCode } from "../../../src/update/errors.js";

/**
 * docs/mqtt.md is the fleet contract a backend is built on. This reads the page itself: every
 * ```json block must sit under an "Example: `<topic>`" heading and parse with that topic's
 * schema (and, for requests, be accepted by the box's own decision code); the topic table, the
 * command table, the event catalogue, the job steps and codes, the `mqtt` config defaults and
 * the numbers table are compared with the code. A change on either side fails here.
 */

const docUrl = new URL("../../../docs/mqtt.md", import.meta.url);
const doc = readFileSync(docUrl, "utf8");
const lines = doc.split("\n");

/** "Now" for the command examples: 2024-05-01 08:30:00 +08:00, before every example's expiresAt. */
const exampleNowMs = Date.parse("2024-05-01T08:30:00+08:00");

// ---------------------------------------------------------------------------------------------
// Reading the page

interface Block {
  /** The nearest heading above the block (without the #s). */
  heading: string;
  headingLine: number;
  line: number;
  text: string;
}

function jsonBlocks(): Block[] {
  const blocks: Block[] = [];
  let heading = "";
  let headingLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const h = /^#{1,6} (.*)$/.exec(line);
    if (h) {
      heading = h[1]!;
      headingLine = i + 1;
      continue;
    }
    const fence = /^```(\w*)\s*$/.exec(line);
    if (!fence) continue;
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `unterminated code block at line ${i + 1}`);
    if (fence[1] === "json")
      blocks.push({
        heading,
        headingLine,
        line: i + 1,
        text: lines
          .slice(i + 1, end)
          .join("\n")
          .trim(),
      });
    i = end;
  }
  return blocks;
}

/** The lines of the section that starts at the heading matching `title`, up to the next heading of the same or a higher level. */
function section(title: RegExp): string[] {
  const start = lines.findIndex((line) => /^#{2,6} /.test(line) && title.test(line));
  assert.ok(start >= 0, `docs/mqtt.md has no heading matching ${title}`);
  const level = /^(#+)/.exec(lines[start]!)![1]!.length;
  const out: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const h = /^(#+) /.exec(lines[i]!);
    if (h && h[1]!.length <= level) break;
    out.push(lines[i]!);
  }
  return out;
}

/** Table rows (cells trimmed) of a section, header and separator rows left out. */
function tableRows(sectionLines: string[]): string[][] {
  const rows = sectionLines
    .filter((line) => line.startsWith("|"))
    .map((line) =>
      line
        // `\|` inside a cell is a literal bar, not a separator.
        .replace(/\\\|/g, "\u0000")
        .split("|")
        .slice(1, -1)
        .map((cell) => cell.replace(/\u0000/g, "|").trim()),
    );
  return rows.filter((cells, i) => !cells.every((cell) => /^-+$/.test(cell)) && !(rows[i + 1]?.every((cell) => /^-+$/.test(cell)) ?? false));
}

/** Inline code spans, read line by line (a span never crosses a line on this page). */
function codeSpans(text: string): string[] {
  return text.split("\n").flatMap((line) => [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
}

/** The prose of the page: every line outside a fenced block. */
const prose = ((): string => {
  let inFence = false;
  return lines
    .filter((line) => {
      if (line.startsWith("```")) {
        inFence = !inFence;
        return false;
      }
      return !inFence;
    })
    .join("\n");
})();

function firstSpan(cell: string | undefined): string | undefined {
  return cell === undefined ? undefined : /^`([^`]+)`/.exec(cell)?.[1];
}

// ---------------------------------------------------------------------------------------------
// The box's command registry, exactly as src/app/fleet-wiring.ts builds it

/**
 * Event types the wiring tried to publish. The link is never started here, so every publish
 * attempt surfaces as a NotStarted error in the bus's listener-error hook: that is how the test
 * asks the real wiring which bus events go to MQTT, without a broker.
 */
const publishAttempts = new Set<string>();
const bus = new EventBus((error, event) => {
  if (error instanceof FleetError && error.code === FleetErrorCodes.NotStarted) publishAttempts.add(event.type);
  else throw error;
});

function wiredCommands(): Map<string, CommandDefinition> {
  const config = validateConfig({
    ...JSON.parse(readFileSync(new URL("../../../config/demo.json", import.meta.url), "utf8")),
    mqtt: { url: "mqtt://127.0.0.1:1883" },
  });
  if (!config.ok) throw new Error(JSON.stringify(config.problems));
  const clock = new FakeClock(exampleNowMs);
  // Only what createFleet touches while wiring; nothing is started (no broker, no disk).
  const app = {
    config: config.config,
    log: silentLogger(),
    clock,
    bus,
    addStatus: () => undefined,
    shifts: { onEnded: () => () => undefined, markPublished: () => undefined },
  } as unknown as App;
  const fleet = createFleet(app, { restart: () => undefined, setLogLevel: () => undefined });
  assert.ok(fleet, "createFleet made no link for a config with an mqtt section");
  // The registry is private to the link; reading it here is what makes the page's command
  // table a statement about the wiring rather than about a copy of it.
  const link: FleetLink = fleet;
  return (link as unknown as { commands: Map<string, CommandDefinition> }).commands;
}

const registry = wiredCommands();
const topics: FleetTopics = fleetTopics("lanekeeper/v1", "lot7-box-01");

// ---------------------------------------------------------------------------------------------
// Topic → validation

type TopicKind =
  | { kind: "status" | "info" | "health" | "configDesired" | "configReported" | "platformRequest" | "platformResponse" }
  | { kind: "laneState" | "event" | "command" | "commandResult" | "job" | "jobStatus"; param: string };

function classify(topic: string): TopicKind | undefined {
  const fixed: Record<string, TopicKind> = {
    status: { kind: "status" },
    info: { kind: "info" },
    health: { kind: "health" },
    "cfg/desired": { kind: "configDesired" },
    "cfg/reported": { kind: "configReported" },
    "platform/req": { kind: "platformRequest" },
    "platform/res": { kind: "platformResponse" },
  };
  if (fixed[topic]) return fixed[topic];
  const patterns: Array<[RegExp, "laneState" | "event" | "command" | "commandResult" | "job" | "jobStatus"]> = [
    [/^state\/([^/]+)$/, "laneState"],
    [/^evt\/([^/]+)$/, "event"],
    [/^cmd\/([^/]+)$/, "command"],
    [/^res\/([^/]+)$/, "commandResult"],
    [/^jobs\/([^/]+)\/status$/, "jobStatus"],
    [/^jobs\/([^/]+)$/, "job"],
  ];
  for (const [pattern, kind] of patterns) {
    const m = pattern.exec(topic);
    if (m) return { kind, param: m[1]! };
  }
  return undefined;
}

/** The topic the link itself builds for an upstream kind, or routes for a downstream one. */
function assertTopicIsTheLinks(topic: string, kind: TopicKind): void {
  const full = `${topics.base}/${topic}`;
  const inbound: Partial<Record<TopicKind["kind"], InboundTopic["kind"]>> = {
    command: "command",
    configDesired: "configDesired",
    job: "job",
    platformRequest: "platformRequest",
  };
  const expectedInbound = inbound[kind.kind];
  if (expectedInbound) {
    assert.equal(parseInboundTopic(topics, full)?.kind, expectedInbound, `${topic} is not routed by the link`);
    return;
  }
  const built: Record<string, () => string> = {
    status: () => topics.status(),
    info: () => topics.info(),
    health: () => topics.health(),
    configReported: () => topics.configReported(),
    platformResponse: () => topics.platformResponse(),
    laneState: () => topics.laneState((kind as { param: string }).param),
    event: () => topics.event((kind as { param: string }).param),
    commandResult: () => topics.commandResult((kind as { param: string }).param),
    jobStatus: () => topics.jobStatus((kind as { param: string }).param),
  };
  assert.equal(built[kind.kind]!(), full, `${topic} is not what the link publishes on`);
}

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  assert.ok(result.success, `${what}: ${result.success ? "" : schemaMessage(result.error)}`);
  return result.data;
}

const platformAnswerSchema = z.strictObject({ code: z.int(), msg: z.string().min(1), data: z.unknown().optional() });
const knownReturnCodes = new Set<number>(Object.values(defaultReturnCodes));

function examplePlatformKey(): { pid: string; key: string } {
  const m = /signed with pid `([^`]+)` and key `([0-9A-F]{32})`/.exec(doc.replace(/\s+/g, " "));
  assert.ok(m, "docs/mqtt.md names the pid and key its platform examples are signed with");
  return { pid: m[1]!, key: m[2]! };
}

function assertSignedEnvelope(text: string, what: string): void {
  const { pid, key } = examplePlatformKey();
  const envelope = parseEnvelope(text);
  assert.equal(envelope.pid, pid, `${what}: pid`);
  // The sign must verify over the example's own bizContent text (the timestamp window is the
  // box's business at run time, not the page's).
  assert.doesNotThrow(() => verifyEnvelope(envelope, { key, nowMs: 0, windowS: 300, checkTimestamp: false }), `${what}: sign`);
}

// The lot-sharing section's examples (`lot/...` topics) are checked by test/unit/lot/lot-docs.test.ts.
const blocks = jsonBlocks().filter((block) => !block.heading.startsWith("Example: `lot/"));
/** Problems of the last invalid cfg/desired example, for the cfg/reported example after it. */
let invalidConfig: { version: number; problems: unknown } | undefined;

test("docs/mqtt.md has examples for every topic, each under an Example heading", () => {
  assert.ok(blocks.length >= 40, `only ${blocks.length} json blocks`);
  const kinds = new Set<string>();
  for (const block of blocks) {
    const m = /^Example: `([^`]+)`/.exec(block.heading);
    assert.ok(m, `the json block at line ${block.line} is under "${block.heading}", not under an "Example: \`<topic>\`" heading`);
    const kind = classify(m[1]!);
    assert.ok(kind, `line ${block.headingLine}: \`${m[1]}\` is not a topic of the fleet contract`);
    kinds.add(kind.kind);
  }
  assert.deepEqual([...kinds].sort(), [
    "command",
    "commandResult",
    "configDesired",
    "configReported",
    "event",
    "health",
    "info",
    "job",
    "jobStatus",
    "laneState",
    "platformRequest",
    "platformResponse",
    "status",
  ]);
});

for (const block of blocks) {
  const topic = /^Example: `([^`]+)`/.exec(block.heading)?.[1];
  const kind = topic === undefined ? undefined : classify(topic);
  if (topic === undefined || kind === undefined) continue; // reported by the test above
  test(`docs/mqtt.md line ${block.line}: ${block.heading}`, () => {
    const what = `line ${block.line} (${block.heading})`;
    let value: unknown;
    try {
      value = JSON.parse(block.text);
    } catch (error) {
      assert.fail(`${what}: not JSON: ${(error as Error).message}`);
    }
    assertTopicIsTheLinks(topic, kind);
    switch (kind.kind) {
      case "status":
        parsed(statusPayloadSchema, value, what);
        break;
      case "info": {
        const info = parsed(infoPayloadSchema, value, what);
        const commands = info.capabilities.filter((c) => c.startsWith("cmd:")).map((c) => c.slice(4));
        assert.deepEqual(commands.sort(), [...registry.keys()].sort(), `${what}: the cmd: capabilities are the registered commands`);
        break;
      }
      case "health":
        parsed(healthPayloadSchema, value, what);
        break;
      case "laneState":
        assert.equal(parsed(laneStatePayloadSchema, value, what).laneId, kind.param, `${what}: laneId differs from the topic`);
        break;
      case "event":
        assert.equal(parsed(eventPayloadSchema, value, what).type, kind.param, `${what}: type differs from the topic`);
        break;
      case "command": {
        parsed(commandRequestSchema, value, what);
        const decision = decideCommand({
          name: kind.param,
          payload: Buffer.from(block.text),
          retained: false,
          nowMs: exampleNowMs,
          registry,
          seen: () => undefined,
        });
        assert.equal(decision.kind, "run", `${what}: the box would not run it: ${decision.kind === "answer" ? `${decision.status} ${decision.error}` : ""}`);
        break;
      }
      case "commandResult": {
        const result = parsed(commandResultSchema, value, what);
        assert.ok(registry.has(kind.param), `${what}: "${kind.param}" is not a command this box registers`);
        assert.notEqual(result.status, "expired", `${what}: the box answers an expired command "rejected" / "expired"`);
        if (result.status === "ok" && kind.param === "health-now") parsed(healthPayloadSchema, result.data, `${what} data`);
        if (result.status === "ok" && kind.param === "last-events") parsed(z.strictObject({ events: z.array(eventPayloadSchema) }), result.data, `${what} data`);
        if (result.status === "duplicate") parsed(z.strictObject({ firstStatus: z.string(), firstAtMs: z.int() }), result.data, `${what} data`);
        if (result.status !== "ok") assert.ok(result.error, `${what}: a refusal says why`);
        break;
      }
      case "configDesired": {
        const desired = parsed(configDesiredSchema, value, what);
        const checked = validateConfig(desired.config);
        if (/invalid/.test(block.heading)) {
          assert.ok(!checked.ok, `${what}: said to be invalid, but validateConfig accepts it`);
          invalidConfig = { version: desired.version, problems: checked.problems };
        } else {
          assert.ok(checked.ok, `${what}: ${JSON.stringify(!checked.ok && checked.problems)}`);
          assert.equal(checked.config.deviceId, "lot7-box-01", `${what}: the page's box`);
        }
        break;
      }
      case "configReported": {
        const report = parsed(configReportedSchema, value, what);
        if (/problems of the document above/.test(block.heading)) {
          assert.ok(invalidConfig, `${what}: no invalid cfg/desired example before it`);
          assert.equal(report.status, "rejected");
          assert.equal(report.version, invalidConfig.version, `${what}: version`);
          assert.deepEqual(report.detail, invalidConfig.problems, `${what}: the detail is not what validateConfig says`);
        }
        break;
      }
      case "job":
        parsed(jobRequestSchema, value, what);
        parsed(updateJobSchema, value, `${what} (update agent)`);
        break;
      case "jobStatus": {
        const status = parsed(jobStatusPayloadSchema, value, what);
        assert.equal(status.jobId, kind.param, `${what}: jobId differs from the topic`);
        assert.notEqual(status.status, "queued", `${what}: the box never sends "queued"`);
        if (status.step !== undefined) assert.ok((jobSteps as readonly string[]).includes(status.step), `${what}: step ${status.step} is not one of the update agent's`);
        break;
      }
      case "platformRequest": {
        if (typeof value === "object" && value !== null && "envelope" in value) {
          const wrapped = parsed(platformWrappedRequestSchema, value, what);
          assertSignedEnvelope(typeof wrapped.envelope === "string" ? wrapped.envelope : JSON.stringify(wrapped.envelope), what);
        } else {
          assertSignedEnvelope(block.text, what);
        }
        break;
      }
      case "platformResponse": {
        let answer: unknown = value;
        if (typeof value === "object" && value !== null && "v" in value) {
          const wrapped = parsed(platformWrappedResponseSchema, value, what);
          assert.ok((wrapped.response === undefined) !== (wrapped.error === undefined), `${what}: either response or error`);
          answer = wrapped.response;
        }
        if (answer !== undefined) {
          const body = parsed(platformAnswerSchema, answer, what);
          assert.ok(knownReturnCodes.has(body.code), `${what}: code ${body.code} is not one of the platform's return codes`);
        }
        break;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Tables against the code

test("the topic map lists every topic of topics.ts with its direction and retain flag", () => {
  const placeholders: Record<string, string> = { state: "<laneId>", evt: "<type>", cmd: "<name>", res: "<name>", jobs: "<jobId>" };
  const raw = fleetTopics("R", "D");
  const expected = new Map<string, { direction: string; retained?: boolean }>();
  for (const [key, fn] of Object.entries(raw)) {
    if (typeof fn !== "function" || key === "subscriptions") continue;
    const relative = (fn as (x: string) => string)("X").slice("R/D/".length);
    const topic = relative.replace(/^(\w+)\/X\b/, (_m, first: string) => `${first}/${placeholders[first] ?? "X"}`);
    const up = (upTopics as Record<string, { retained: boolean }>)[key];
    expected.set(topic, up ? { direction: "up", retained: up.retained } : { direction: "down" });
  }
  const rows = tableRows(section(/^## 2\. Topic map/));
  const documented = new Map(rows.map((cells) => [firstSpan(cells[0]) ?? cells[0]!, cells]));
  assert.deepEqual([...documented.keys()].sort(), [...expected.keys()].sort());
  for (const [topic, want] of expected) {
    const cells = documented.get(topic)!;
    assert.equal(cells[1], want.direction, `${topic}: direction`);
    if (want.retained !== undefined) assert.equal(cells[2], want.retained ? "yes" : "no", `${topic}: retained`);
  }
  // The subscriptions the box makes after every connect are named.
  for (const filter of raw.subscriptions()) assert.ok(codeSpans(prose).includes(filter.slice("R/D/".length)), `subscription ${filter} not documented`);
});

test("the command table is the wiring's registry, with its expiresAt rule", () => {
  const rows = tableRows(section(/Commands this box registers/));
  const documented = new Map(rows.map((cells) => [firstSpan(cells[0])!, cells]));
  assert.deepEqual([...documented.keys()].sort(), [...registry.keys()].sort());
  for (const [name, definition] of registry) {
    assert.equal(documented.get(name)![2], definition.requiresExpiresAt ? "required" : "optional", `${name}: expiresAt`);
    const headings = lines.filter((line) => /^#{2,6} Example: /.test(line));
    assert.ok(
      headings.some((h) => h.includes(`\`cmd/${name}\``)),
      `no request example for ${name}`,
    );
    assert.ok(
      headings.some((h) => h.includes(`\`res/${name}\``)),
      `no result example for ${name}`,
    );
  }
  for (const level of logLevels) assert.ok(codeSpans(prose).includes(level), `log level ${level} not documented`);
});

test("the event catalogue covers every event the runtime publishes, and nothing else", () => {
  const rows = tableRows(section(/^### 4\.6 Event catalogue/));
  const documented = rows.map((cells) => firstSpan(cells[0])).filter((type): type is string => type !== undefined);
  assert.equal(new Set(documented).size, documented.length, "an event type is listed twice");

  const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const machine = readFileSync(new URL("../../../src/core/lane/lane-machine.ts", import.meta.url), "utf8");
  const union = /export type LaneEventType =([\s\S]*?);/.exec(machine)?.[1];
  assert.ok(union, "LaneEventType not found in lane-machine.ts");
  const machineTypes = [...union.matchAll(/"(\w+)"/g)].map((m) => kebab(m[1]!));
  assert.ok(machineTypes.length >= 20 && machineTypes.includes("presence"), `read ${machineTypes.length} lane event types`);
  const lanesDir = new URL("../../../src/lanes/", import.meta.url);
  const service = readdirSync(lanesDir)
    .filter((file) => file.endsWith(".ts"))
    .map((file) => readFileSync(new URL(file, lanesDir), "utf8"))
    .join("\n");
  // `type: "x"` inside an `emit(lanes, { ... })` call, wherever the key stands in the literal.
  const serviceTypes = [...service.matchAll(/\bemit\(lanes, \{[^;]*?\btype: "([a-z][a-z0-9-]*)"/g)].map((m) => m[1]!);
  assert.ok(serviceTypes.length >= 20, `read ${serviceTypes.length} lane-service event types`);
  // The settlement machine's emit effects, which the lanes' executor publishes as they are.
  const settlement = readFileSync(new URL("../../../src/core/settlement/settlement-machine.ts", import.meta.url), "utf8");
  const settlementTypes = [...settlement.matchAll(/\bemitOf\([\w.]+, "([a-z][a-z0-9-]*)"|kind: "emit", event: \{ type: "([a-z][a-z0-9-]*)"/g)].map((m) => (m[1] ?? m[2])!);
  assert.ok(settlementTypes.includes("fee-due") && settlementTypes.length >= 15, `read ${settlementTypes.length} settlement event types`);

  // Ask the wiring (src/app/fleet-wiring.ts) which of them it publishes.
  publishAttempts.clear();
  for (const type of new Set([...machineTypes, ...serviceTypes, ...settlementTypes])) bus.emit({ type, atMs: exampleNowMs, laneId: "in1" });
  assert.ok(!publishAttempts.has("presence"), "the wiring publishes presence; the page says it does not");
  const published = new Set([...publishAttempts, "events-dropped"]);
  assert.ok(published.size >= 40, `the wiring published only ${published.size} event types`);
  for (const type of published) assert.ok(documented.includes(type), `evt/${type} is published but not in the catalogue`);
  for (const type of documented) {
    assert.ok(eventTypeSchema.safeParse(type).success, `${type} is not a valid event type`);
    assert.ok(published.has(type) || (knownEventTypes as readonly string[]).includes(type), `${type} is in the catalogue but nothing publishes it`);
  }
  assert.ok(!documented.includes("presence"), "presence is never published");
});

test("the job steps and error codes are the update agent's", () => {
  const steps = tableRows(section(/^### 7\.3 Steps/)).map((cells) => firstSpan(cells[0]));
  assert.deepEqual(steps.sort(), [...jobSteps].sort());
  const codes = tableRows(section(/^### 7\.4 Error codes/)).map((cells) => firstSpan(cells[0]));
  assert.deepEqual(codes.sort(), Object.values(UpdateErrorCode).sort());
});

test("the mqtt config table has every key with its default", () => {
  const rows = tableRows(section(/^### 3\.1 The `mqtt` config section/));
  const documented = new Map(rows.map((cells) => [firstSpan(cells[0])!, cells[1]!]));
  const shape = mqttConfigSchema.shape as Record<string, unknown>;
  assert.deepEqual([...documented.keys()].sort(), Object.keys(shape).sort());
  const defaults = mqttConfigSchema.parse({ url: "mqtt://broker" }) as Record<string, unknown>;
  for (const key of Object.keys(shape)) {
    const cell = documented.get(key)!;
    if (key === "url") assert.equal(cell, "required");
    else if (defaults[key] === undefined) assert.equal(cell, "none", `${key}: has no default`);
    else assert.equal(cell, `\`${JSON.stringify(defaults[key])}\``, `${key}: default`);
  }
});

test("the numbers table states the link's exported constants", () => {
  const constants: Record<string, number> = {
    MAX_PAYLOAD_BYTES,
    maxJsonDepth,
    "defaultBackoff.baseMs": defaultBackoff.baseMs,
    "defaultBackoff.capMs": defaultBackoff.capMs,
    lastEventsMax,
    lastEventsDefault,
  };
  const found = new Set<string>();
  for (const cells of tableRows(section(/^### 3\.2 Numbers/))) {
    const names = codeSpans(cells[2] ?? "").filter((name) => name in constants);
    const values = codeSpans(cells[1] ?? "");
    names.forEach((name, i) => {
      assert.equal(values[i], String(constants[name]), `${name}: the page says ${values[i]}`);
      found.add(name);
    });
  }
  assert.deepEqual([...found].sort(), Object.keys(constants).sort());
});
