import { parseArgs } from "node:util";
import { runService } from "../app/run.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

const runOptions = {
  config: { type: "string", short: "c", value: "<file>", describe: "the box's config file", defaultText: "$LANEKEEPER_CONFIG or /etc/lanekeeper/lanekeeper.json" },
} as const satisfies OptionSpecs;

export const runCommand: CliCommand = {
  name: "run",
  usage: "lanekeeper run [--config <file>]",
  summary: "run the lane controller (the default command: `lanekeeper` alone runs it)",
  options: runOptions,
  notes: ["Logs: JSON lines for journald; human lines when stdout is a terminal. LK_LOG_FORMAT=json|human forces either."],
  examples: ["lanekeeper run --config /etc/lanekeeper/lanekeeper.json", "systemctl start lanekeeper   # how a box runs it"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: runOptions });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return runService({ configPath: values.config ?? process.env.LANEKEEPER_CONFIG ?? "/etc/lanekeeper/lanekeeper.json" });
  },
};
