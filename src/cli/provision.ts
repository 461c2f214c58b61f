import { parseArgs } from "node:util";
import { pino } from "pino";
import { createLogger } from "../kernel/log.js";
import { provisionFromStick } from "../provision/provision.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

const provisionOptions = {
  "config-path": { type: "string", value: "<file>", describe: "the box config to replace", defaultText: "$LANEKEEPER_CONFIG or /etc/lanekeeper/lanekeeper.json" },
  "keys-dir": { type: "string", value: "<dir>", describe: "where release-signing keys from the stick go", defaultText: "update-keys/ beside the config" },
  group: { type: "string", value: "<name|gid>", describe: "the service's group, owner of what is written", defaultText: "lanekeeper" },
  "state-dir": { type: "string", value: "<dir>", describe: "store.dir for a box that has no config yet", defaultText: "/var/lib/lanekeeper" },
  "no-restart": { type: "boolean", describe: "do not restart the service after applying" },
} as const satisfies OptionSpecs;

export const provisionCommand: CliCommand = {
  name: "provision",
  usage: "lanekeeper provision <mountpoint> [--config-path <file>] [--keys-dir <dir>] [--group <name|gid>] [--state-dir <dir>] [--no-restart]",
  summary: "apply lanekeeper.json (and keys) from a USB stick; writes lanekeeper-report.txt back to it",
  options: provisionOptions,
  notes: ["<mountpoint>: where the stick is mounted. The udev rule in systemd/ runs this on its own when a stick is plugged in."],
  examples: ["lanekeeper provision /media/usb --no-restart"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: provisionOptions });
    const mountpoint = positionals[0];
    if (!mountpoint || positionals.length > 1) throw new UsageError("provision takes exactly one mountpoint");
    const group = values.group === undefined ? undefined : /^\d+$/.test(values.group) ? Number(values.group) : values.group;
    // Log lines go to stderr, so stdout holds the report alone (the journal keeps both).
    const log = createLogger({ base: { app: "lanekeeper", sub: "provision" }, destination: pino.destination({ dest: 2, sync: true }) });
    const result = await provisionFromStick({
      mountpoint,
      configPath: values["config-path"] ?? process.env.LANEKEEPER_CONFIG ?? "/etc/lanekeeper/lanekeeper.json",
      ...(values["keys-dir"] ? { keysDir: values["keys-dir"] } : {}),
      ...(group === undefined ? {} : { group }),
      ...(values["state-dir"] ? { stateDir: values["state-dir"] } : {}),
      ...(values["no-restart"] ? { restart: null } : {}),
      log,
    });
    // The report holds no secrets; journald keeps a copy of what the stick got.
    process.stdout.write(result.report);
    if (!result.reportWritten) {
      const kept = result.boxReportWritten ? `; the report is kept in ${result.boxReportFile} and shown at /api/status` : "";
      console.error(`could not write ${result.reportFile}: ${result.reportError ?? "unknown error"}${kept}`);
    }
    return result.status === "rejected" ? 1 : 0;
  },
};
