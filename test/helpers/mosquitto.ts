import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo } from "node:net";
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
  /** More lines for the config file (`password_file`, `acl_file`, `allow_anonymous false`). */
  extraConfig?: string[];
}

/**
 * Starts `mosquitto -c <tmp conf>` as a plain child process on a free loopback port: no
 * persistence (a restart loses retained messages and sessions, like the aedes helper).
 */
export async function startMosquitto(binary: string, options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), "mosquitto-"));
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  const lines = [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "log_dest stderr", "log_type error", "log_type warning", "log_type notice"];
  if (options.tls) {
    const { caFile, certFile, keyFile } = options.tls;
    lines.push(`cafile ${caFile}`, `certfile ${certFile}`, `keyfile ${keyFile}`, "require_certificate true", "use_identity_as_username true");
  }
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
    output: () => out,
    async start() {
      if (child) return;
      const proc = spawn(binary, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      proc.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`mosquitto exited with ${code} before listening:\n${out}`))));
      await Promise.race([waitForPort(port, 5000), exited]);
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
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 2000);
    await gone;
    clearTimeout(timer);
  }
  await handle.start();
  return handle;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
