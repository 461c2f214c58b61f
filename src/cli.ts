#!/usr/bin/env node
import { CommandFailure, UsageError } from "./cli/command.js";
import { commands, type CommandEntry } from "./cli/commands.js";
import { VERSION } from "./version.js";

/** The full usage text: loads every command for its usage line (help and mistakes only). */
async function usage(): Promise<string> {
  const loaded = await Promise.all(commands.map((c) => c.load()));
  return [
    `lanekeeper ${VERSION} — parking-lane controller`,
    "",
    "Usage:",
    ...loaded.flatMap((c) => [`  ${c.usage}`, `      ${c.summary}`]),
    "  lanekeeper --version",
    "      print the version",
  ].join("\n");
}

function pick(argv: string[]): { command: CommandEntry; rest: string[] } | undefined {
  // Longest name first so "config check" wins over a hypothetical "config".
  const sorted = [...commands].sort((a, b) => b.name.split(" ").length - a.name.split(" ").length);
  for (const command of sorted) {
    const words = command.name.split(" ");
    if (words.every((word, i) => argv[i] === word)) return { command, rest: argv.slice(words.length) };
  }
  return undefined;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    console.log(await usage());
    return 0;
  }
  if (argv[0] === "--version") {
    console.log(VERSION);
    return 0;
  }
  const args = argv.length === 0 || argv[0]?.startsWith("-") ? ["run", ...argv] : argv;
  const picked = pick(args);
  if (!picked) {
    console.error(`unknown command: ${args.join(" ")}\n\n${await usage()}`);
    return 2;
  }
  const command = await picked.command.load();
  try {
    return await command.run(picked.rest);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`${(error as Error).message}\n\nUsage: ${command.usage}`);
      return 2;
    }
    if (error instanceof CommandFailure) {
      console.error(`${error.code} ${error.message}`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
