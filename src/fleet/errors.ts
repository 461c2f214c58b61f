/** Stable codes of the fleet link's errors: callers switch on the code, never on the message. */
export const FleetErrorCodes = {
  /** A payload handed to a publish method does not match its schema (a wiring bug). */
  BadPayload: "E_FLEET_BAD_PAYLOAD",
  /** A name that cannot be a topic level, or a command registered twice. */
  BadName: "E_FLEET_BAD_NAME",
  /** publishEvent before start(): the boot counter is not known yet. */
  NotStarted: "E_FLEET_NOT_STARTED",
  /** A command handler did not answer within its time. */
  CommandTimeout: "E_FLEET_COMMAND_TIMEOUT",
} as const;
export type FleetErrorCode = (typeof FleetErrorCodes)[keyof typeof FleetErrorCodes];

export class FleetError extends Error {
  constructor(
    readonly code: FleetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "FleetError";
  }
}
