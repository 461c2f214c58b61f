import { parseArgs } from "node:util";
import { loadConfigFile, problemLines } from "../config/load.js";
import { UsageError, type CliCommand } from "./command.js";

export const configCheckCommand: CliCommand = {
  name: "config check",
  usage: "lanekeeper config check <file>",
  summary: "validate a config file and list every mistake with its path",
  options: {},
  notes: ["<file>: the config to check; a JSON syntax error is reported as file:line:column. Exit 0 when valid, 1 when not."],
  examples: ["lanekeeper config check /media/usb/lanekeeper.json"],
  async run(argv) {
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new UsageError("config check takes exactly one file");
    const result = await loadConfigFile(file);
    if (!result.ok) {
      console.error(`${file}: ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}`);
      for (const line of problemLines(result.problems)) console.error(line);
      return 1;
    }
    const { config } = result;
    const lanes = config.lanes.map((lane) => `${lane.id}(${lane.direction})`).join(", ");
    console.log(`${file}: ok — device ${config.deviceId}, lot ${config.lot.parkCode}, ${config.lanes.length} lane(s): ${lanes}, gpio ${config.hardware.gpio}`);
    return 0;
  },
};
