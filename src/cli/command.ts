/** A `lanekeeper` subcommand. `run` returns the exit code. */
export interface CliCommand {
  name: string;
  usage: string;
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** Wrong words on the command line: usage text and exit 2. */
export class UsageError extends Error {}

/**
 * The command could not do its work for a reason outside the command line (a broker that
 * refuses or cannot be reached): one line with a stable code, exit 1, no stack trace.
 */
export class CommandFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
