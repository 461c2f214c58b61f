import { parseArgs } from "node:util";
import { runService } from "../app/run.js";
import { UsageError, type CliCommand } from "./command.js";

export const runCommand: CliCommand = {
  name: "run",
  usage: "lanekeeper run [--config <file>]",
  summary: "run the lane controller (default command; config defaults to /etc/lanekeeper/lanekeeper.json)",
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: "string", short: "c" } } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return runService({ configPath: values.config ?? process.env.LANEKEEPER_CONFIG ?? "/etc/lanekeeper/lanekeeper.json" });
  },
};
