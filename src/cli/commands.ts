import type { CliCommand } from "./command.js";
import { runCommand } from "./run.js";
import { demoCommand } from "./demo.js";
import { configCheckCommand } from "./config-check.js";
import { feeCommand } from "./fee.js";
import { emulatorCommand } from "./emulator.js";
import { signCommand } from "./sign.js";
import { selftestCommand } from "./selftest.js";
import { releaseVerifyCommand } from "./release.js";
import { provisionCommand } from "./provision.js";

/** Every subcommand; add one line per new command file in src/cli/. */
export const commands: CliCommand[] = [
  runCommand,
  demoCommand,
  configCheckCommand,
  feeCommand,
  emulatorCommand,
  signCommand,
  selftestCommand,
  releaseVerifyCommand,
  provisionCommand,
];
