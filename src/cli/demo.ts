import { parseArgs } from "node:util";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { runService } from "../app/run.js";
import { startEmulator, emulatorOptionsFromConfig, type Emulator } from "../platform/emulator/emulator.js";
import { DemoTraffic } from "../demo/traffic.js";
import { UsageError, type CliCommand } from "./command.js";

export const demoCommand: CliCommand = {
  name: "demo",
  usage: "lanekeeper demo [--config <file>] [--no-traffic]",
  summary: "run the demo lot: simulated hardware, the built-in platform emulator and cars that come and go",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: "string", short: "c" }, "no-traffic": { type: "boolean", default: false } },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const configPath = values.config ?? fileURLToPath(new URL("../../config/demo.json", import.meta.url));
    let emulator: Emulator | undefined;
    let traffic: DemoTraffic | undefined;
    return runService({
      configPath,
      beforeStart: async (config) => {
        // The demo keeps its data under ./var; a real box's store directory must already exist
        // (a missing one means the data partition is not mounted).
        await mkdir(config.store.dir, { recursive: true });
        // The cloud side of the demo: a real HTTP server on the platform URL of the config.
        const port = Number(new URL(config.platform.baseUrl).port || 80);
        emulator = await startEmulator(emulatorOptionsFromConfig(config.platform, { timeZone: config.lot.timeZone, port }));
        console.log(`platform emulator on ${emulator.url} (GET ${emulator.url.replace(/\/$/, "")}/_emulator/received shows what the lot reported)`);
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
