import type { z } from "zod";
import type { AnswerQueue } from "../answers.js";
import { CommandErrorCodes, decideCommand, type CommandContext, type CommandDefinition, type CommandHandler, type CommandOptions, type RefusalCounter } from "../commands.js";
import { FleetError, FleetErrorCodes } from "../errors.js";
import { errorText, type FleetContext, type FleetExtension, type InboundMessage } from "../extension.js";
import { commandResultSchema, type CommandResult } from "../payloads.js";
import type { SeenIds } from "../seen-ids.js";
import { isTopicLevel } from "../topics.js";

/**
 * `cmd/<name>` → `res/<name>`: the registry of commands, and running one. What to answer is
 * decided by decideCommand (commands.ts); this module records the id, runs the handler within
 * its time and answers.
 */
export class CommandRunner implements FleetExtension {
  readonly name = "commands";
  readonly inbound = "command";
  readonly registry = new Map<string, CommandDefinition>();

  constructor(
    private readonly ctx: FleetContext,
    private readonly answers: AnswerQueue,
    private readonly seen: SeenIds,
  ) {}

  register<S extends z.ZodType>(name: string, argsSchema: S, handler: CommandHandler<z.output<S>>, options: CommandOptions = {}): void {
    if (!isTopicLevel(name)) throw new FleetError(FleetErrorCodes.BadName, `command name ${JSON.stringify(name)} cannot be a topic level`);
    if (this.registry.has(name)) throw new FleetError(FleetErrorCodes.BadName, `command "${name}" is registered twice`);
    this.registry.set(name, {
      name,
      argsSchema,
      handler: handler as CommandHandler<unknown>,
      requiresExpiresAt: options.requiresExpiresAt ?? false,
      timeoutMs: options.timeoutMs ?? 30_000,
    });
  }

  async handle({ route, payload, packet }: InboundMessage): Promise<void> {
    if (route.kind !== "command") return;
    const { name } = route;
    const { clock, counters, log, topics } = this.ctx;
    const nowMs = clock.now();
    if (payload.length === 0) {
      // How a backend clears a retained message: nothing was asked, nothing to answer.
      counters.count("cmdEmpty");
      log.debug({ cmd: name }, "empty command payload ignored");
      return;
    }
    const answerTo = this.answers.route(packet, isTopicLevel(name) ? topics.commandResult(name) : undefined);
    const decision = decideCommand({ name, payload, retained: packet.retain, nowMs, registry: this.registry, seen: (id) => this.seen.get(id) });
    if (decision.kind === "answer") {
      counters.count(decision.counter satisfies RefusalCounter);
      log.warn({ cmd: name, id: decision.id, status: decision.status, code: decision.code, error: decision.error, bytes: payload.length }, "command refused");
      const result: CommandResult = { v: 1, id: decision.id, status: decision.status, code: decision.code, error: decision.error, ts: nowMs };
      if (decision.data !== undefined) result.data = decision.data;
      await this.answers.answer(answerTo, commandResultSchema, result);
      return;
    }
    const { id, definition, args, expiresAtMs } = decision;
    try {
      // Durable BEFORE the handler runs: a crash mid-command must not re-run it on redelivery.
      await this.seen.remember(id, name, nowMs, expiresAtMs);
    } catch (error) {
      counters.count("cmdNotRecorded");
      log.error({ err: error, cmd: name, id }, "cannot record the command id; not running it");
      await this.answers.answer(answerTo, commandResultSchema, {
        v: 1,
        id,
        status: "error",
        code: CommandErrorCodes.NotRecorded,
        error: "cannot record the command id durably",
        ts: clock.now(),
      });
      return;
    }
    const after: Array<() => void | Promise<void>> = [];
    const ctx: CommandContext = { id, name, expiresAtMs, receivedAtMs: nowMs, afterResponse: (fn) => after.push(fn) };
    let result: CommandResult;
    try {
      const data = await this.withClockTimeout(definition.handler(args, ctx), definition.timeoutMs, `command "${name}"`);
      result = { v: 1, id, status: "ok", ts: clock.now() };
      if (data !== undefined) result.data = data;
      counters.count("cmdOk");
      log.info({ cmd: name, id }, "command done");
    } catch (error) {
      result = { v: 1, id, status: "error", code: CommandErrorCodes.Failed, error: errorText(error), ts: clock.now() };
      counters.count("cmdFailed");
      log.warn({ cmd: name, id, err: error }, "command failed");
    }
    this.seen.settle(id, result.status).catch((error: unknown) => log.warn({ err: error }, "command id status not saved"));
    // After-actions (a restart) wait for the broker's acknowledgement of the answer.
    await this.answers.answer(answerTo, commandResultSchema, result);
    for (const fn of after) {
      try {
        await fn();
      } catch (error) {
        log.error({ err: error, cmd: name, id }, "after-response action failed");
      }
    }
  }

  private withClockTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    const { clock } = this.ctx;
    return new Promise<T>((resolve, reject) => {
      const timer = clock.setTimeout(() => reject(new FleetError(FleetErrorCodes.CommandTimeout, `${what} did not finish within ${ms} ms`)), ms);
      promise.then(
        (value) => {
          clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clock.clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
