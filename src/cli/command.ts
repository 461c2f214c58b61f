/**
 * One option of a command: node:util parseArgs' own shape (so the same object is handed to
 * parseArgs) plus what `--help` prints about it.
 */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** What the option does, in a few words. */
  readonly describe: string;
  /** The value's placeholder in the help text, e.g. `<file>`. */
  readonly value?: string;
  /** The default as the help text shows it, when parseArgs does not fill it (env fallback, computed). */
  readonly defaultText?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** A `lanekeeper` subcommand. `run` returns the exit code. */
export interface CliCommand {
  name: string;
  /** The synopsis, starting with `lanekeeper <name>`. */
  usage: string;
  summary: string;
  /** Every option `run` accepts: parsed with exactly this, and listed by `--help`. */
  options: OptionSpecs;
  /** Lines `--help` prints after the options: arguments, environment, caveats. */
  notes?: readonly string[];
  /** At least one command line that works as written (or with the named files). */
  examples: readonly string[];
  run(argv: string[]): Promise<number>;
}

/** Wrong words on the command line: one line and exit 2. */
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
