import { parseArgs } from "node:util";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { runService } from "../app/run.js";
import { projectUrl } from "../kernel/project-dir.js";
import type { Emulator } from "../platform/emulator/emulator.js";
import { onEmulatorPort, startDemoEmulator } from "../demo/demo-emulator.js";
import { DemoTraffic } from "../demo/traffic.js";
import { runLotDemo } from "../demo/lot-demo.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

const demoOptions = {
  config: { type: "string", short: "c", value: "<file>", describe: "a demo config", defaultText: "config/demo.json of the installation" },
  "no-traffic": { type: "boolean", default: false, describe: "start the lot without simulated cars" },
  boxes: {
    type: "string",
    value: "<1|2>",
    default: "1",
    describe: "boxes in the lot: 2 runs a north gate and a south gate sharing the lot through an embedded MQTT broker",
  },
} as const satisfies OptionSpecs;

export const demoCommand: CliCommand = {
  name: "demo",
  usage: "lanekeeper demo [--config <file>] [--no-traffic] [--boxes 1|2]",
  summary: "run the demo lot: simulated hardware, the built-in platform emulator and cars that come and go",
  options: demoOptions,
  notes: [
    "The demo keeps its store in ./var/demo (store.dir of config/demo.json, relative to the working directory); delete it to start from an empty lot.",
    "--boxes 2: box A (north gate, API on the config's port) and box B (south gate, the port after it) in one process, stores in ./var/demo-lot/<box>; cars enter at the north gate and leave at the south gate.",
    "Logs: human lines on a terminal, JSON when piped; LK_LOG_FORMAT=json|human forces either. Ctrl-C stops it.",
  ],
  examples: [
    "npm start   # builds, then runs lanekeeper demo",
    "lanekeeper demo --no-traffic   # the lot idle: drive it from the panel at http://127.0.0.1:8080/",
    "lanekeeper demo --boxes 2   # two gates of one lot: panels at http://127.0.0.1:8080/ and :8081/",
  ],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: demoOptions });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.boxes !== "1" && values.boxes !== "2") throw new UsageError(`--boxes takes 1 or 2, not ${JSON.stringify(values.boxes)}`);
    const configPath = values.config ?? fileURLToPath(projectUrl("config/demo.json"));
    if (values.boxes === "2") return runLotDemo({ configPath, traffic: !values["no-traffic"] });
    let emulator: Emulator | undefined;
    let traffic: DemoTraffic | undefined;
    return runService({
      configPath,
      beforeStart: async (config) => {
        // The demo keeps its data under ./var; a real box's store directory must already exist
        // (a missing one means the data partition is not mounted).
        await mkdir(config.store.dir, { recursive: true });
        // The cloud side of the demo: a real HTTP server on the platform URL of the config.
        emulator = await startDemoEmulator(config);
        return onEmulatorPort(config, emulator);
      },
      onStarted: async (app) => {
        traffic = new DemoTraffic(app, emulator!, { say: (line) => app.log.info({ sub: "demo" }, line) });
        await traffic.seed();
        if (!values["no-traffic"]) {
          traffic.start();
          console.log("demo traffic: cars arrive on their own; watch the log, /api/status or the panel at /");
        }
      },
      beforeStop: async () => {
        await traffic?.stop();
      },
      afterStop: async () => {
        await emulator?.stop();
      },
    });
  },
};
