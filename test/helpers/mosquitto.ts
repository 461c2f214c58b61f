import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";

/** The mosquitto binary on PATH or where the Debian package puts it (/usr/sbin is often off PATH). */
export function findMosquitto(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, "mosquitto");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface Mosquitto {
  readonly port: number;
  readonly url: string;
  /** The ports of `extraListeners`, in order. */
  readonly extraPorts: readonly number[];
  /** What mosquitto printed (for a failing test's message). */
  output(): string;
  /** Stops the broker process; `start()` runs a new one on the same port and config. */
  stop(): Promise<void>;
  /** Kills it (SIGKILL): no shutdown save of its persistence, the way a power cut ends it. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its temp dir. */
  close(): Promise<void>;
}

export interface MosquittoOptions {
  /**
   * A TLS listener (mqtts://) with these PEM files; clients must present a certificate signed
   * by `caFile`, and its CN becomes their username (`use_identity_as_username`).
   */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** More plain listeners on every interface (for boxes in other network namespaces); their ports are `extraPorts`. */
  extraListeners?: number;
  /** More lines for the config file (`password_file`, `acl_file`, `allow_anonymous false`). */
  extraConfig?: string[];
}

/** Tries of a first start whose port another process took between the pick and mosquitto's bind. */
const PORT_TRIES = 5;

/**
 * Starts `mosquitto -c <tmp conf>` as a plain child process on a free loopback port: no
 * persistence (a restart loses retained messages and sessions, like the aedes helper).
 *
 * A free port can only be picked by opening and closing it, and a test running beside this one
 * may take it before mosquitto binds: a first start that fails with "Address already in use"
 * picks new ports and tries again. A restart keeps its ports (clients know them).
 */
export async function startMosquitto(binary: string, options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), "mosquitto-"));
  for (let attempt = 1; ; attempt++) {
    const [port, ...extraPorts] = await freePorts(1 + (options.extraListeners ?? 0));
    const handle = await brokerOn(binary, dir, port!, extraPorts, options);
    try {
      await handle.start();
      return handle;
    } catch (error) {
      await handle.stop();
      if (attempt < PORT_TRIES && handle.output().includes("Address already in use")) continue;
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }
}

async function brokerOn(binary: string, dir: string, port: number, extraPorts: number[], options: MosquittoOptions): Promise<Mosquitto> {
  const conf = join(dir, "mosquitto.conf");
  const lines = [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    "persistence false",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    // "… running" is printed once every listener is bound: the sign the broker is up.
    "log_type information",
  ];
  if (options.tls) {
    const { caFile, certFile, keyFile } = options.tls;
    lines.push(`cafile ${caFile}`, `certfile ${certFile}`, `keyfile ${keyFile}`, "require_certificate true", "use_identity_as_username true");
  }
  // After the TLS lines, which belong to the first listener.
  for (const extra of extraPorts) lines.push(`listener ${extra}`);
  if (options.extraConfig) {
    // Appended after ours: a test that needs `allow_anonymous false` passes it here.
    lines.push(...options.extraConfig);
  }
  // Started as root, mosquitto 2 drops to the `mosquitto` user unless told otherwise.
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  await writeFile(conf, `${lines.join("\n")}\n`);
  let child: ChildProcess | undefined;
  let out = "";

  const handle: Mosquitto = {
    port,
    url: `${options.tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    extraPorts,
    output: () => out,
    async start() {
      if (child) return;
      const proc = spawn(binary, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      const started = out.length;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`mosquitto did not say it was running after 5 s:\n${out}`)), 5000);
        const read = (chunk: Buffer): void => {
          out += chunk.toString();
          // Only this run's lines: a restart's log follows the last run's.
          if (/ running$/m.test(out.slice(started))) {
            clearTimeout(timer);
            resolve();
          }
        };
        proc.stdout.on("data", read);
        proc.stderr.on("data", read);
        proc.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`mosquitto exited with ${code} before listening:\n${out}`));
        });
      });
    },
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
    async close() {
      await handle.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  async function end(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 2000);
    await gone;
    clearTimeout(timer);
  }
  return handle;
}

/** `count` distinct ports free right now (all held open together, so none is picked twice). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
      return server;
    }),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}
