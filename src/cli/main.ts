import { parseArgs } from "node:util";
import { CommandFailure, UsageError, type CliCommand } from "./command.js";
import { commands, type CommandEntry } from "./commands.js";
import { VERSION } from "../version.js";

/**
 * What `lanekeeper <argv>` does, decided before any command runs: print a help page, print a
 * one-line mistake (exit 2), or run a command with the rest of the words. Every command-line
 * mistake ends here or in the command's own UsageError, never in a stack trace.
 */
export type Plan = { kind: "print"; to: "stdout" | "stderr"; text: string; code: 0 | 2 } | { kind: "run"; command: CliCommand; rest: string[] };

/** `--help` or `-h` anywhere before a `--` (after it, every word is an argument). */
function helpRequested(argv: readonly string[]): boolean {
  for (const word of argv) {
    if (word === "--") return false;
    if (word === "--help" || word === "-h") return true;
  }
  return false;
}

/** One line, whatever the text holds (a user's word may carry a newline). */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/**
 * The one-line message for a command-line mistake: node's parseArgs errors shortened to what
 * matters (its multi-line hints name flags the user did not type), ours as they are. Undefined
 * when the error is not a command-line mistake.
 */
function mistakeText(error: unknown): string | undefined {
  if (error instanceof UsageError) return oneLine(error.message);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS")) return undefined;
  const message = (error as Error).message;
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) return `unknown option ${oneLine(unknown[1]!)}`;
  return oneLine(message.split("\n")[0]!.replace(/\.$/, ""));
}

/** A command's help page; the renderer loads only when asked for (not on the service's start path). */
async function helpPage(command: CliCommand): Promise<string> {
  const { renderHelp } = await import("./help.js");
  return renderHelp(command);
}

/** The full usage text: loads every command for its usage line (help and mistakes only). */
async function usage(): Promise<string> {
  const loaded = await Promise.all(commands.map((c) => c.load()));
  return [
    `lanekeeper ${VERSION} — parking-lane controller`,
    "",
    "Usage:",
    ...loaded.flatMap((c) => [`  ${c.usage.split("\n")[0]}`, `      ${c.summary}`]),
    "  lanekeeper --version",
    "      print the version",
    "",
    "lanekeeper <command> --help shows a command's options, defaults and an example.",
  ].join("\n");
}

/** The first words shared by several commands (`fleet`, `release`, `config`), with their commands. */
function groupOf(word: string | undefined): CommandEntry[] {
  if (word === undefined) return [];
  return commands.filter((c) => c.name.startsWith(`${word} `));
}

async function groupHelp(word: string, members: CommandEntry[]): Promise<string> {
  const loaded = await Promise.all(members.map((c) => c.load()));
  return [
    `Usage: lanekeeper ${word} <${members.map((m) => m.name.slice(word.length + 1)).join("|")}> …`,
    "",
    ...loaded.flatMap((c) => [`  ${c.usage.split("\n")[0]}`, `      ${c.summary}`]),
    "",
    `lanekeeper ${word} <command> --help shows its options.`,
  ].join("\n");
}

function pick(argv: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  // Longest name first so "emulator call" wins over "emulator".
  const sorted = [...commands].sort((a, b) => b.name.split(" ").length - a.name.split(" ").length);
  for (const entry of sorted) {
    const words = entry.name.split(" ");
    if (words.every((word, i) => argv[i] === word)) return { entry, rest: argv.slice(words.length) };
  }
  return undefined;
}

const mistake = (text: string): Plan => ({ kind: "print", to: "stderr", text, code: 2 });

export async function plan(argv: readonly string[]): Promise<Plan> {
  if (argv[0] === "--help" || argv[0] === "-h") return { kind: "print", to: "stdout", text: await usage(), code: 0 };
  if (argv[0] === "help") {
    // `lanekeeper help fee` is `lanekeeper fee --help`.
    if (argv.length === 1) return { kind: "print", to: "stdout", text: await usage(), code: 0 };
    return plan([...argv.slice(1), "--help"]);
  }
  if (argv[0] === "--version") return { kind: "print", to: "stdout", text: VERSION, code: 0 };
  const args = argv.length === 0 || argv[0]?.startsWith("-") ? ["run", ...argv] : [...argv];
  const picked = pick(args);
  if (!picked) {
    const group = groupOf(args[0]);
    if (group.length > 0) {
      const word = args[0]!;
      if (helpRequested(args.slice(1))) return { kind: "print", to: "stdout", text: await groupHelp(word, group), code: 0 };
      const names = group.map((m) => m.name.slice(word.length + 1)).join(", ");
      const said = args[1] === undefined ? `name a ${word} command (${names})` : `unknown command "${oneLine(`${word} ${args[1]}`)}" (${word} has ${names})`;
      return mistake(`lanekeeper: ${said}; see lanekeeper ${word} --help`);
    }
    return mistake(`lanekeeper: unknown command "${oneLine(args[0] ?? "")}"; see lanekeeper --help`);
  }
  const command = await picked.entry.load();
  if (helpRequested(picked.rest)) return { kind: "print", to: "stdout", text: await helpPage(command), code: 0 };
  try {
    // The command parses again with the same table; this pass only turns a wrong option
    // into the same one line for every command before anything starts.
    parseArgs({ args: picked.rest, allowPositionals: true, options: command.options });
  } catch (error) {
    const text = mistakeText(error);
    if (text === undefined) throw error;
    return mistake(mistakeLine(command, text));
  }
  return { kind: "run", command, rest: picked.rest };
}

function mistakeLine(command: CliCommand, text: string): string {
  return `lanekeeper ${command.name}: ${text}; see lanekeeper ${command.name} --help`;
}

/**
 * Runs a command as the CLI does: a usage mistake is one line and exit 2, a CommandFailure one
 * line with its code and exit 1, anything else one line and exit 1 (the stack only with
 * LANEKEEPER_DEBUG=1: an operator at a terminal needs the reason, a developer the stack).
 */
export async function runCommand(command: CliCommand, rest: string[]): Promise<number> {
  if (helpRequested(rest)) {
    console.log(await helpPage(command));
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    const text = mistakeText(error);
    if (text !== undefined) {
      console.error(mistakeLine(command, text));
      return 2;
    }
    if (error instanceof CommandFailure) {
      console.error(`${error.code} ${oneLine(error.message)}`);
      return 1;
    }
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`lanekeeper ${command.name}: E_CLI_UNEXPECTED ${oneLine(message)}`);
    if (process.env.LANEKEEPER_DEBUG === "1" && error instanceof Error) console.error(error.stack);
    return 1;
  }
}

/** `lanekeeper <argv>`: the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const decided = await plan(argv);
  if (decided.kind === "run") return runCommand(decided.command, decided.rest);
  if (decided.to === "stdout") console.log(decided.text);
  else console.error(decided.text);
  return decided.code;
}
