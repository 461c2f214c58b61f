import type { CliCommand } from "./command.js";
import { runCommand } from "./run.js";
import { demoCommand } from "./demo.js";
import { configCheckCommand } from "./config-check.js";
import { feeCommand } from "./fee.js";

/** Every subcommand; add one line per new command file in src/cli/. */
export const commands: CliCommand[] = [runCommand, demoCommand, configCheckCommand, feeCommand];
import { emulatorCommand } from "./emulator.js"; commands.push(emulatorCommand);
import { signCommand } from "./sign.js"; commands.push(signCommand);
import { selftestCommand } from "./selftest.js"; commands.push(selftestCommand);
import { releaseVerifyCommand } from "./release.js"; commands.push(releaseVerifyCommand);
import { provisionCommand } from "./provision.js"; commands.push(provisionCommand);
