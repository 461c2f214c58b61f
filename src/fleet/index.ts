/** The fleet link's public surface (docs/mqtt.md). */
export {
  FleetLink,
  type FleetLinkOptions,
  type FleetLinkState,
  type FleetStats,
  type ConnectFn,
  type ConfigDesiredHandler,
  type JobHandler,
  type PlatformRequestHandler,
} from "./fleet-link.js";
export { registerBuiltinCommands, logLevels, type BuiltinCommandHooks, type LogLevelName } from "./builtin-commands.js";
export { CommandErrorCodes, MAX_PAYLOAD_BYTES, TOO_DEEP_MESSAGE, type CommandContext, type CommandErrorCode, type CommandHandler, type CommandOptions } from "./commands.js";
export { mqttConfigSchema, type MqttConfig } from "./config.js";
export { FleetError, FleetErrorCodes, type FleetErrorCode } from "./errors.js";
export { defaultBackoff } from "./backoff.js";
export { fleetTopics, type FleetTopics } from "./topics.js";
export * from "./payloads.js";
