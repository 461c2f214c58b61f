import { parseArgs } from "node:util";
import { provisionFromStick } from "../provision/provision.js";
import { UsageError, type CliCommand } from "./command.js";

export const provisionCommand: CliCommand = {
  name: "provision",
  usage: "lanekeeper provision <mountpoint> [--config-path <file>] [--keys-dir <dir>] [--no-restart]",
  summary: "apply lanekeeper.json (and keys) from a USB stick; writes lanekeeper-report.txt back to it",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "config-path": { type: "string" },
        "keys-dir": { type: "string" },
        "no-restart": { type: "boolean" },
      },
    });
    const mountpoint = positionals[0];
    if (!mountpoint || positionals.length > 1) throw new UsageError("provision takes exactly one mountpoint");
    const result = await provisionFromStick({
      mountpoint,
      configPath: values["config-path"] ?? process.env.LANEKEEPER_CONFIG ?? "/etc/lanekeeper/lanekeeper.json",
      ...(values["keys-dir"] ? { keysDir: values["keys-dir"] } : {}),
      ...(values["no-restart"] ? { restart: null } : {}),
    });
    // The report holds no secrets; journald keeps a copy of what the stick got.
    process.stdout.write(result.report);
    if (!result.reportWritten) console.error(`could not write ${result.reportFile}: ${result.reportError ?? "unknown error"}`);
    return result.status === "rejected" ? 1 : 0;
  },
};
