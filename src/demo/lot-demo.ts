import { mkdir } from "node:fs/promises";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { App } from "../app/app.js";
import { readJsonFile, problemLines, validateConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { createLogger } from "../kernel/log.js";
import type { Emulator } from "../platform/emulator/emulator.js";
import { onEmulatorPort, startDemoEmulator } from "./demo-emulator.js";
import { DemoTraffic } from "./traffic.js";

/*
 * `lanekeeper demo --boxes 2`: one lot with two gates. Box A is the north gate, box B the south
 * gate; both run in this process as two complete boxes (each its own store directory, local
 * API port, simulated hardware and lot share) and share the lot through an MQTT broker
 * embedded here (aedes), so the demo needs no broker installed. One platform emulator is the
 * lot's cloud; the demo cars come in at the north gate and leave at the south gate.
 */

interface Gate {
  deviceId: string;
  /** What a person calls it ("north gate"). */
  title: string;
}

const demoGates: readonly [Gate, Gate] = [
  { deviceId: "north-gate", title: "north gate" },
  { deviceId: "south-gate", title: "south gate" },
];

/** The end of a name or id that counts (in1, channel 2); undefined when it has none. */
function trailingNumber(text: string): number | undefined {
  const match = /(\d+)$/.exec(text);
  return match ? Number(match[1]) : undefined;
}

/**
 * The config of gate `index` of the lot, from the one demo config: its own device id, store
 * directory (`<store.dir>-lot/<deviceId>`) and API port (the config's + index; 0 stays 0), and
 * for the second gate lanes and channels numbered after the first gate's (in1 → in2), because
 * record numbers start with the lane id and must be unique in the whole lot.
 */
function gateRaw(raw: Record<string, any>, index: number, brokerUrl: string): Record<string, any> {
  const gate = demoGates[index]!;
  const copy = structuredClone(raw);
  copy.deviceId = gate.deviceId;
  copy.lot = { ...copy.lot, share: { enabled: true, mqtt: { url: brokerUrl, protocolVersion: 4, keepaliveS: 5 }, quietMs: 200 } };
  copy.store = { ...copy.store, dir: `${String(raw.store?.dir ?? "var/demo")}-lot/${gate.deviceId}` };
  const port = Number(raw.api?.port ?? 8080);
  copy.api = { ...copy.api, port: port === 0 ? 0 : port + index };
  if (index > 0) {
    const lanes = copy.lanes as Array<Record<string, any>>;
    const shiftOf = (values: string[]) => Math.max(0, ...values.map((v) => trailingNumber(v) ?? 0)) * index;
    const laneShift = shiftOf(lanes.map((l) => String(l.id)));
    const channelShift = shiftOf(lanes.map((l) => String(l.channelId)));
    for (const lane of lanes) {
      lane.id = renumber(String(lane.id), laneShift, index);
      lane.channelId = renumber(String(lane.channelId), channelShift, index);
      const name = String(lane.name ?? lane.id);
      lane.name = /north/i.test(name) ? name.replace(/north/i, "South") : `South ${name}`;
    }
  }
  return copy;
}

function renumber(text: string, shift: number, index: number): string {
  const n = trailingNumber(text);
  return n === undefined ? `${text}${index + 1}` : text.replace(/\d+$/, String(n + shift));
}

/** An MQTT broker inside the demo process: loopback only, in memory. */
interface EmbeddedBroker {
  url: string;
  close(): Promise<void>;
}

async function startEmbeddedBroker(): Promise<EmbeddedBroker> {
  let Aedes: typeof import("aedes").Aedes;
  try {
    ({ Aedes } = await import("aedes"));
  } catch {
    throw new Error("the two-gate demo needs the aedes package (installed by `npm install` in the source tree)");
  }
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Loads the demo config and checks it once, as `lanekeeper run` would; the problems as lines otherwise. */
async function loadGateConfigs(configPath: string, brokerUrl: string): Promise<{ ok: true; configs: Config[] } | { ok: false; lines: string[] }> {
  const read = await readJsonFile(configPath);
  if (!read.ok) return { ok: false, lines: problemLines(read.problems) };
  const configs: Config[] = [];
  for (let index = 0; index < demoGates.length; index++) {
    const checked = validateConfig(gateRaw(read.raw as Record<string, any>, index, brokerUrl));
    if (!checked.ok) return { ok: false, lines: problemLines(checked.problems) };
    if (checked.config.hardware.gpio !== "sim") return { ok: false, lines: ['  hardware.gpio: the two-gate demo runs on simulated hardware only ("sim")'] };
    configs.push(checked.config);
  }
  return { ok: true, configs };
}

/**
 * Runs the two-gate lot until SIGINT/SIGTERM, then stops the cars, both boxes (each drives its
 * outputs safe), the broker and the emulator, within 2 s as a single box does.
 */
export async function runLotDemo(options: { configPath: string; traffic: boolean }): Promise<number> {
  const broker = await startEmbeddedBroker();
  const loaded = await loadGateConfigs(options.configPath, broker.url);
  if (!loaded.ok) {
    await broker.close();
    console.error(`${options.configPath}: nothing started`);
    for (const line of loaded.lines) console.error(line);
    return 1;
  }
  let [north, south] = loaded.configs as [Config, Config];
  const log = createLogger({ level: north.log.level, format: "auto", timeZone: north.lot.timeZone });
  let emulator: Emulator | undefined;
  const apps: App[] = [];
  let traffic: DemoTraffic | undefined;

  const allSafe = (): void => {
    for (const app of apps) app.gpio.allOutputsSafe();
  };
  const crash = (kind: string) => (error: unknown) => {
    try {
      allSafe();
    } finally {
      log.fatal({ err: error, kind }, "crashed; outputs driven safe");
      process.exit(70);
    }
  };
  process.on("uncaughtException", crash("uncaughtException"));
  process.on("unhandledRejection", crash("unhandledRejection"));
  let signalled: string | undefined;
  let onSignal: (signal: string) => void = (signal) => (signalled = signal);
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));

  const stopAll = async (): Promise<void> => {
    await traffic?.stop();
    // Both at once: each publishes its own "offline" to the lot before it lets go of the broker.
    await Promise.all(apps.map((app) => app.stop().catch((error: unknown) => log.error({ err: error, box: app.config.deviceId }, "box did not stop cleanly"))));
    allSafe();
    await broker.close().catch((error: unknown) => log.warn({ err: error }, "lot broker did not close cleanly"));
    await emulator?.stop();
  };

  try {
    emulator = await startDemoEmulator(north);
    north = onEmulatorPort(north, emulator);
    south = onEmulatorPort(south, emulator);
    console.log(`lot broker (embedded, MQTT 3.1.1) on ${broker.url}`);
    for (const [index, config] of [north, south].entries()) {
      await mkdir(config.store.dir, { recursive: true });
      const app = new App({ config, log: log.child({ box: config.deviceId }) });
      apps.push(app);
      await app.start();
      const { host, port: apiPort } = app.http.address();
      console.log(
        `box ${"AB"[index]} ${demoGates[index]!.title} (${config.deviceId}): local API and panel on http://${host}:${apiPort}/ (lanes ${config.lanes.map((l) => l.id).join(", ")})`,
      );
    }
  } catch (error) {
    log.fatal({ err: error }, "start failed");
    await stopAll();
    return 1;
  }
  const [northApp, southApp] = apps as [App, App];
  traffic = new DemoTraffic({ entry: northApp, exit: southApp }, emulator, { say: (line) => log.info({ sub: "demo" }, line) });
  await traffic.seed();
  if (options.traffic) {
    traffic.start();
    console.log("demo traffic: cars come in at the north gate and leave at the south gate; GET /api/lot on either box shows the whole lot");
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "stopping");
      // Whatever hangs, the process is gone within 2 s with every output of both boxes safe.
      const hard = setTimeout(() => {
        allSafe();
        log.error("stop took longer than 2 s; exiting");
        process.exit(1);
      }, 1900);
      hard.unref();
      void stopAll().then(() => {
        for (const app of apps) log.info({ box: app.config.deviceId, outputs: app.simGpio?.outputs() }, "stopped; outputs safe");
        clearTimeout(hard);
        setTimeout(() => process.exit(0), 50).unref();
        resolve(0);
      });
    };
    onSignal = stop;
    if (signalled) stop(signalled);
  });
}
