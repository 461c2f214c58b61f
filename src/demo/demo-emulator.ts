import type { Config } from "../config/schema.js";
import type { PlatformConfig } from "../platform/config.js";
import { emulatorOptionsFromConfig, startEmulator, type Emulator } from "../platform/emulator/emulator.js";

/**
 * The demo's cloud: the platform emulator on the port of the config's platform URL, said on
 * stdout. Port 0 there means any free port: the emulator takes one, and `onEmulatorPort`
 * points a box's config at it.
 */
export async function startDemoEmulator(config: Config): Promise<Emulator> {
  const port = Number(new URL(config.platform.baseUrl).port || 80);
  const emulator = await startEmulator(emulatorOptionsFromConfig(config.platform, { timeZone: config.lot.timeZone, port }));
  console.log(`platform emulator on ${emulator.url} (GET ${emulator.url.replace(/\/$/, "")}/_emulator/received shows what the lot reported)`);
  return emulator;
}

/** `config` pointed at `emulator` when its platform URL names port 0; otherwise `config` as it is. */
export function onEmulatorPort<C extends { platform: PlatformConfig }>(config: C, emulator: Emulator): C {
  const url = new URL(config.platform.baseUrl);
  if (url.port !== "0") return config;
  url.port = new URL(emulator.url).port;
  return { ...config, platform: { ...config.platform, baseUrl: url.toString() } };
}
