import type { z } from "zod";
import { commandRequestSchema, schemaMessage, type CommandStatus } from "./payloads.js";
import type { SeenEntry } from "./seen-ids.js";

/**
 * The command framework's decision, kept pure so every row of the bad-input table is a unit
 * test: given the raw payload, the registry, the remembered ids and the time, say whether to
 * run a handler or what to answer on `res/<name>` without running anything.
 */

/** Larger payloads are refused before parsing (issue 9, bad input). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

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
   * The request must carry `expiresAt` (architecture §7: a barrier command "must carry
   * expiresAt", so a command queued behind a long outage cannot lift an arm hours later).
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
export type RefusalCounter =
  | "cmdOversized"
  | "cmdNonJson"
  | "cmdWrongVersion"
  | "cmdUnknown"
  | "cmdInvalid"
  | "cmdRetained"
  | "cmdDuplicate"
  | "cmdExpired";

export type CommandDecision =
  | { kind: "answer"; id: string | null; status: CommandStatus; error: string; data?: unknown; counter: RefusalCounter }
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
  const answer = (id: string | null, status: CommandStatus, error: string, counter: RefusalCounter): CommandDecision => ({
    kind: "answer",
    id,
    status,
    error,
    counter,
  });

  if (payload.length > MAX_PAYLOAD_BYTES) {
    return answer(sniffId(payload), "error", `payload too large: ${payload.length} bytes (limit ${MAX_PAYLOAD_BYTES})`, "cmdOversized");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString("utf8"));
  } catch {
    return answer(sniffId(payload), "error", "payload is not JSON", "cmdNonJson");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return answer(null, "error", "payload must be a JSON object {v, id, expiresAt, args}", "cmdInvalid");
  }
  const record = raw as Record<string, unknown>;
  const id = typeof record.id === "string" && record.id.length > 0 && record.id.length <= 128 ? record.id : null;
  if (record.v !== 1) {
    return answer(id, "error", `unsupported payload version ${JSON.stringify(record.v ?? null)}; this box speaks v 1`, "cmdWrongVersion");
  }
  const definition = input.registry.get(name);
  if (!definition) return answer(id, "error", `unknown command "${name}"`, "cmdUnknown");

  const envelope = commandRequestSchema.safeParse(raw);
  if (!envelope.success) return answer(id, "error", schemaMessage(envelope.error), "cmdInvalid");
  const request = envelope.data;

  // A stored retained command would replay at every reconnect of every box (architecture §7:
  // commands are never retained); refusing it is the only safe reading.
  if (input.retained) return answer(request.id, "rejected", "retained", "cmdRetained");

  const expiresAtMs = request.expiresAt === undefined ? undefined : toEpochMs(request.expiresAt);
  if (definition.requiresExpiresAt && expiresAtMs === undefined) {
    return answer(request.id, "error", `expiresAt is required for "${name}"`, "cmdInvalid");
  }

  // Duplicate before expiry: a backend retrying after the deadline should learn that the
  // first delivery ran, not that the command expired.
  const seen = input.seen(request.id);
  if (seen) {
    return {
      kind: "answer",
      id: request.id,
      status: "duplicate",
      error: `command id seen at ${new Date(seen.atMs).toISOString()}`,
      data: { firstStatus: seen.status, firstAtMs: seen.atMs },
      counter: "cmdDuplicate",
    };
  }
  if (expiresAtMs !== undefined && expiresAtMs <= input.nowMs) return answer(request.id, "rejected", "expired", "cmdExpired");

  const args = definition.argsSchema.safeParse(request.args ?? {});
  if (!args.success) return answer(request.id, "error", `args: ${schemaMessage(args.error)}`, "cmdInvalid");
  return { kind: "run", id: request.id, definition, args: args.data, expiresAtMs };
}

export function toEpochMs(value: number | string): number {
  return typeof value === "number" ? value : Date.parse(value);
}

/**
 * The id of a payload we could not parse, read from its first 4 KiB, so even an oversized or
 * broken request can be answered on `res/<name>` (issue 9: "where an id can be read").
 */
export function sniffId(payload: Buffer): string | null {
  const head = payload.subarray(0, 4096).toString("utf8");
  const match = /"id"\s*:\s*"([\x21\x23-\x5b\x5d-\x7e]{1,128})"/.exec(head);
  return match?.[1] ?? null;
}
