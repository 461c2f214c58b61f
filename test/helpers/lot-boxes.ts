import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startCli, type RunningChild } from "./child.js";
import { demoRaw } from "./demo-config.js";
import { shortTimers, sleep } from "./lot-harness.js";
import { validateConfig } from "../../src/config/load.js";

/*
 * Boxes of one lot as real `lanekeeper run` processes, driven only from outside: the simulated
 * loops and cameras through each box's local API, the cloud's questions through section 4.
 */

/** The tariff of these lots: 5 yuan the first hour from the first minute, 1 yuan an hour after. */
export const FIRST_HOUR_FEN = 500;
export const ZONE = "Asia/Shanghai";

export interface LotCar {
  plate: string;
  recordNo: string;
  enterDeviceId: string;
  enterAtMs: number;
  replica: boolean;
}

export interface LotBoxSpec {
  deviceId: string;
  /** 1-based: lanes `in<n>` / `out<n>`, channels 2n−1 and 2n. */
  index: number;
  dir: string;
  brokerUrl: string;
  platformUrl: string;
  /** Where the local API listens (default loopback) and a free port there. */
  apiHost?: string;
  /** Runs the box through this command (`ip netns exec <ns>`). */
  exec?: string[];
  /**
   * Runs the box with its wall clock moved by libfaketime (`"+4m"`, `"-3m"`; the monotonic
   * clock left alone, as NTP would leave it). Needs `libfakeTimeLibrary()`.
   */
  clockOffset?: string;
  /** Edits the raw config after the lot's settings. */
  mutate?: (raw: Record<string, any>) => void;
}

/** One box of the lot: a child process that can be killed and started again on its store. */
export class LotBox {
  child: RunningChild | undefined;
  url = "";

  private constructor(
    readonly deviceId: string,
    readonly laneIn: string,
    readonly laneOut: string,
    readonly configFile: string,
    readonly token: string,
    readonly section4Path: string,
    private readonly exec: string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Writes the box's config (validated) into `spec.dir`; `start()` runs it. */
  static async create(spec: LotBoxSpec): Promise<LotBox> {
    const raw = demoRaw() as Record<string, any>;
    shortTimers(raw);
    const { index, deviceId } = spec;
    raw.deviceId = deviceId;
    raw.lanes[0].id = `in${index}`;
    raw.lanes[0].channelId = String(index * 2 - 1);
    raw.lanes[1].id = `out${index}`;
    raw.lanes[1].channelId = String(index * 2);
    raw.lot.share = { enabled: true, mqtt: { url: spec.brokerUrl, protocolVersion: 5, keepaliveS: 5 }, quietMs: 100 };
    raw.platform.baseUrl = spec.platformUrl;
    // Port 0: the box takes a free port itself (in its own namespace, if it has one) and names
    // it in its ready line, which `start()` reads at every start.
    raw.api.port = 0;
    if (spec.apiHost) {
      raw.api.host = spec.apiHost;
      // The entry lane takes camera pushes: off loopback the push needs a key.
      raw.api.cameraKey = "lot-test-camera-key-0001";
    }
    raw.store.dir = join(spec.dir, deviceId);
    mkdirSync(raw.store.dir, { recursive: true });
    raw.log = { level: "warn" };
    raw.fees.tariffs.standard = {
      name: "5 yuan the first hour from the first minute",
      free: { minutes: 0 },
      segments: [{ name: "all day", from: "00:00", to: "24:00", firstPeriod: { minutes: 60, priceFen: FIRST_HOUR_FEN }, unitMinutes: 60, unitPriceFen: 100, rounding: "up" }],
    };
    spec.mutate?.(raw);
    const checked = validateConfig(raw);
    assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.problems));
    const file = join(spec.dir, `${deviceId}.json`);
    writeFileSync(file, JSON.stringify(raw));
    // Preloaded into node itself rather than through the faketime command, which forks and
    // would not pass the test's signals on to the box.
    const library = spec.clockOffset ? libfaketime() : undefined;
    if (spec.clockOffset && !library) throw new Error("libfaketime is not installed");
    const env = library ? { LD_PRELOAD: library, FAKETIME: spec.clockOffset!, FAKETIME_DONT_FAKE_MONOTONIC: "1" } : {};
    return new LotBox(deviceId, raw.lanes[0].id, raw.lanes[1].id, file, raw.api.token, checked.config.platform.server.path, spec.exec ?? [], env);
  }

  async start(): Promise<void> {
    this.child = startCli(["run", "--config", this.configFile], this.env, this.exec);
    this.url = (await this.child.waitFor(/local API on (http:\/\/[\d.]+:\d+)/, 30_000))[1]!;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.child.exitCode !== null) return;
    child.child.kill(signal);
    const { code } = await child.exited;
    if (signal === "SIGTERM") assert.equal(code, 0, `${this.deviceId} stops cleanly; stderr:\n${child.stderr()}`);
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${this.token}` } });
    assert.equal(res.status, 200, `${this.deviceId} GET ${path}`);
    return (await res.json()) as T;
  }

  async post(path: string, body: unknown): Promise<void> {
    const res = await fetch(`${this.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, `${this.deviceId} POST ${path}: ${await res.text()}`);
  }

  lot(): Promise<{ view: string; boxes: Array<{ deviceId: string; online: boolean }>; cars: number; freeSpaces?: number }> {
    return this.get("/api/lot");
  }

  async cars(): Promise<LotCar[]> {
    return (await this.get<{ cars: LotCar[] }>("/api/lot/in-park")).cars;
  }

  async barrier(laneId: string): Promise<string> {
    const status = await this.get<{ lanes: Array<{ id: string; barrier: string }> }>("/api/status");
    return status.lanes.find((l) => l.id === laneId)?.barrier ?? "";
  }

  async loop(laneId: string, input: "loopA" | "loopB", level: 0 | 1): Promise<void> {
    await this.post(`/api/sim/inputs/${laneId}/${input}`, { level });
    // Past the detector's debounce (minOnMs 20 / minOffMs 40 in shortTimers).
    await sleep(70);
  }

  /** A car drives up to `laneId`, is read, waits for the arm and drives through. */
  async drive(laneId: string, plate: string): Promise<void> {
    await this.arrive(laneId, plate);
    await until(async () => (await this.barrier(laneId)) === "open", 8000, `${this.deviceId} ${laneId} open for ${plate}`);
    await this.passThrough(laneId, plate);
  }

  /** A car drives up to `laneId`, is read and refused (the arm stays down); it backs away. */
  async refused(laneId: string, plate: string): Promise<void> {
    await this.arrive(laneId, plate);
    const denied = async () =>
      (await this.get<{ events: Array<{ type: string; plate?: string }> }>("/api/status")).events.some((e) => e.type === "entry-denied" && e.plate === plate);
    await until(denied, 5000, `${this.deviceId} ${laneId} refuses ${plate}`);
    assert.equal(await this.barrier(laneId), "closed");
    await this.loop(laneId, "loopA", 0);
  }

  /** A car on the lane's first loop, its plate read. */
  async arrive(laneId: string, plate: string): Promise<void> {
    await this.loop(laneId, "loopA", 1);
    await this.post(`/api/sim/camera/${laneId}`, { plate });
  }

  /** The car under an open arm drives through; the arm closes behind it. */
  async passThrough(laneId: string, plate: string): Promise<void> {
    await this.loop(laneId, "loopB", 1);
    await this.loop(laneId, "loopA", 0);
    await this.loop(laneId, "loopB", 0);
    await until(async () => (await this.barrier(laneId)) === "closed", 8000, `${this.deviceId} ${laneId} closed after ${plate}`);
  }
}

/** libfaketime's shared library (Debian's faketime package), or undefined. */
export function libfaketime(): string | undefined {
  for (const dir of ["/usr/lib", "/usr/local/lib"]) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue; // no such directory on this system
    }
    for (const name of ["", ...names]) {
      const candidate = join(dir, name, "faketime", "libfaketime.so.1");
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(40);
  }
}

export const platesOf = (cars: LotCar[]): string[] => cars.map((c) => c.plate).sort();
