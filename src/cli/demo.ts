import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { runService } from "../app/run.js";
import { UsageError, type CliCommand } from "./command.js";

export const demoCommand: CliCommand = {
  name: "demo",
  usage: "lanekeeper demo [--config <file>]",
  summary: "run the demo lot: simulated hardware and the built-in platform emulator",
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: "string", short: "c" } } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const configPath = values.config ?? fileURLToPath(new URL("../../config/demo.json", import.meta.url));
    return runService({ configPath });
  },
};
