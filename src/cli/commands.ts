import type { CliCommand } from "./command.js";
import { runCommand } from "./run.js";
import { demoCommand } from "./demo.js";
import { configCheckCommand } from "./config-check.js";

/** Every subcommand; add one line per new command file in src/cli/. */
export const commands: CliCommand[] = [runCommand, demoCommand, configCheckCommand];
