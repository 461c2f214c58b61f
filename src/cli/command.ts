/** A `lanekeeper` subcommand. `run` returns the exit code. */
export interface CliCommand {
  name: string;
  usage: string;
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** Wrong words on the command line: usage text and exit 2. */
export class UsageError extends Error {}

export function fail(message: string): never {
  throw new UsageError(message);
}
