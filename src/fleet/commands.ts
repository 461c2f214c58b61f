import type { z } from "zod";
import { commandRequestSchema, schemaMessage, type CommandStatus } from "./payloads.js";
import { exceedsJsonDepth, maxJsonDepth } from "../platform/json-scan.js";
import type { SeenEntry } from "./seen-ids.js";

/**
 * The command framework's decision, kept pure so every row of the bad-input table is a unit
 * test: given the raw payload, the registry, the remembered ids and the time, say whether to
 * run a handler or what to answer on `res/<name>` without running anything.
 */

/** Larger payloads are refused before parsing (bad input). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/**
 * The refusal of a request nested deeper than the project's JSON depth limit, one wording on
 * every downstream topic. Checked before JSON.parse: parsing `[[[[…` costs time and stack that
 * grow with the depth, and whatever walks the value afterwards (zod, JSON.stringify of a job or
 * config written to disk) recurses. No request of the fleet contract nests beyond a dozen.
 */
export const TOO_DEEP_MESSAGE = `payload nests deeper than ${maxJsonDepth} levels`;

/** Whether the text of a request nests too deep (see TOO_DEEP_MESSAGE). */
export function tooDeep(text: string): boolean {
  return exceedsJsonDepth(text, maxJsonDepth);
}

export interface CommandContext {
  readonly id: string;
  readonly name: string;
  /** epoch ms, when the request carried one. */
  readonly expiresAtMs: number | undefined;
  readonly receivedAtMs: number;
  /** Runs `fn` once the response has been handed to the broker (e.g. a restart). */
  afterResponse(fn: () => void | Promise<void>): void;
}

export type CommandHandler<A> = (args: A, ctx: CommandContext) => Promise<unknown>;

export interface CommandOptions {
  /**
   * The request must carry `expiresAt` (a barrier command must carry it, so a command queued
   * behind a long outage cannot lift an arm hours later).
   */
  requiresExpiresAt?: boolean;
  /** How long the handler may take before the answer is `error` (default 30 s). */
  timeoutMs?: number;
}

export interface CommandDefinition {
  readonly name: string;
  readonly argsSchema: z.ZodType;
  readonly handler: CommandHandler<unknown>;
  readonly requiresExpiresAt: boolean;
  readonly timeoutMs: number;
}

/** Counter names of the refusals; they show up in health under `fleet`. */
export type RefusalCounter = "cmdOversized" | "cmdNonJson" | "cmdTooDeep" | "cmdWrongVersion" | "cmdUnknown" | "cmdInvalid" | "cmdRetained" | "cmdDuplicate" | "cmdExpired";

/**
 * The stable `code` of every answer that is not `ok`, so a backend can switch on it instead of
 * on the wording of `error`. One code per refusal of the table in docs/mqtt.md §5.3.
 */
export const CommandErrorCodes = {
  TooLarge: "E_CMD_TOO_LARGE",
  NotJson: "E_CMD_NOT_JSON",
  TooDeep: "E_CMD_TOO_DEEP",
  Version: "E_CMD_VERSION",
  Unknown: "E_CMD_UNKNOWN",
  Invalid: "E_CMD_INVALID",
  Retained: "E_CMD_RETAINED",
  Duplicate: "E_CMD_DUPLICATE",
  Expired: "E_CMD_EXPIRED",
  NotRecorded: "E_CMD_NOT_RECORDED",
  /** The handler threw or timed out; `error` carries its own message (and code, if any). */
  Failed: "E_CMD_FAILED",
} as const;
export type CommandErrorCode = (typeof CommandErrorCodes)[keyof typeof CommandErrorCodes];

export type CommandDecision =
  | { kind: "answer"; id: string | null; status: CommandStatus; code: CommandErrorCode; error: string; data?: unknown; counter: RefusalCounter }
  | { kind: "run"; id: string; definition: CommandDefinition; args: unknown; expiresAtMs: number | undefined };

export interface CommandInput {
  name: string;
  payload: Buffer;
  /** The broker delivered a stored retained message. */
  retained: boolean;
  nowMs: number;
  registry: ReadonlyMap<string, CommandDefinition>;
  seen: (id: string) => SeenEntry | undefined;
}

export function decideCommand(input: CommandInput): CommandDecision {
  const { payload, name } = input;
  const answer = (id: string | null, status: CommandStatus, code: CommandErrorCode, error: string, counter: RefusalCounter): CommandDecision => ({
    kind: "answer",
    id,
    status,
    code,
    error,
    counter,
  });
  const invalid = (id: string | null, error: string): CommandDecision => answer(id, "error", CommandErrorCodes.Invalid, shortened(error), "cmdInvalid");

  if (payload.length > MAX_PAYLOAD_BYTES) {
    return answer(sniffId(payload), "error", CommandErrorCodes.TooLarge, `payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "cmdOversized");
  }
  const text = payload.toString("utf8");
  if (tooDeep(text)) return answer(sniffId(payload), "error", CommandErrorCodes.TooDeep, TOO_DEEP_MESSAGE, "cmdTooDeep");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return answer(sniffId(payload), "error", CommandErrorCodes.NotJson, "payload is not JSON", "cmdNonJson");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return invalid(null, "payload must be a JSON object {v, id, expiresAt, args}");
  const record = raw as Record<string, unknown>;
  const id = typeof record.id === "string" && record.id.length > 0 && record.id.length <= 128 ? record.id : null;
  if (record.v !== 1) {
    return answer(id, "error", CommandErrorCodes.Version, `unsupported payload version ${versionText(record.v)}; this box speaks v 1`, "cmdWrongVersion");
  }
  const definition = input.registry.get(name);
  if (!definition) return answer(id, "error", CommandErrorCodes.Unknown, `unknown command "${name}"`, "cmdUnknown");

  const envelope = commandRequestSchema.safeParse(raw);
  if (!envelope.success) return invalid(id, schemaMessage(envelope.error));
  const request = envelope.data;

  // A stored retained command would replay at every reconnect of every box (commands are never
  // retained); refusing it is the only safe reading. The flag survives live delivery only on
  // MQTT 5, where the link subscribes with retain-as-published.
  if (input.retained) return answer(request.id, "rejected", CommandErrorCodes.Retained, "retained", "cmdRetained");

  const expiresAtMs = request.expiresAt === undefined ? undefined : toEpochMs(request.expiresAt);
  if (definition.requiresExpiresAt && expiresAtMs === undefined) return invalid(request.id, `expiresAt is required for "${name}"`);

  // Duplicate before expiry: a backend retrying after the deadline should learn that the
  // first delivery ran, not that the command expired.
  const seen = input.seen(request.id);
  if (seen) {
    return {
      kind: "answer",
      id: request.id,
      status: "duplicate",
      code: CommandErrorCodes.Duplicate,
      error: `command id seen at ${new Date(seen.atMs).toISOString()}`,
      data: { firstStatus: seen.status, firstAtMs: seen.atMs },
      counter: "cmdDuplicate",
    };
  }
  if (expiresAtMs !== undefined && expiresAtMs <= input.nowMs) return answer(request.id, "rejected", CommandErrorCodes.Expired, "expired", "cmdExpired");

  const args = definition.argsSchema.safeParse(request.args ?? {});
  if (!args.success) return invalid(request.id, `args: ${schemaMessage(args.error)}`);
  return { kind: "run", id: request.id, definition, args: args.data, expiresAtMs };
}

/** The refused `v` for the answer, short: a hostile payload may put a 200 KiB string there. */
function versionText(value: unknown): string {
  return shortened(JSON.stringify(value ?? null) ?? "null", 40);
}

/** A schema message names the keys it refuses, and a hostile key may be 200 KiB long. */
function shortened(text: string, maxChars = 500): string {
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

export function toEpochMs(value: number | string): number {
  return typeof value === "number" ? value : Date.parse(value);
}

/**
 * The id of a payload we could not parse, read from its first 4 KiB, so even an oversized or
 * broken request can be answered on `res/<name>` wherever an id can be read.
 */
export function sniffId(payload: Buffer): string | null {
  const head = payload.subarray(0, 4096).toString("utf8");
  const match = /"id"\s*:\s*"([\x21\x23-\x5b\x5d-\x7e]{1,128})"/.exec(head);
  return match?.[1] ?? null;
}
