import { access, constants, open, statfs, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Config } from "../config/schema.js";
import type { Clock } from "../kernel/clock.js";
import { sleep } from "../kernel/sleep.js";
import type { Logger } from "../kernel/log.js";
import type { Gpio, GpioEdge, Level } from "../io/gpio/gpio.js";
import { SimGpio } from "../io/gpio/sim-gpio.js";
import { OnoffGpio } from "../io/gpio/onoff-gpio.js";
import { gpioLinesFromConfig } from "../io/gpio/lines.js";
import { resolveSysfsLines } from "../io/gpio/sysfs-resolver.js";
import { createSerialLink } from "../io/serial/create-serial-link.js";
import type { SerialLink } from "../io/serial/serial-link.js";
import { checkClockSync, defaultClockSyncSources, type ClockSyncSource } from "./clock-sync.js";
import { readTlsFiles, untrustedCertificateCode, type TlsFiles } from "../kernel/tls.js";
import { endpointFromUrl, tcpProbe, tlsProbe } from "./reachability.js";

/**
 * The hardware self-test an installer runs on site (`lanekeeper selftest`): the resolved GPIO
 * table with live input levels, an optional output pulse, what each serial device sends, and
 * whether the store, the platform and the broker are usable. Every finding is a check with a
 * status; any `fail` makes the command exit non-zero.
 */

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface SelftestCheck {
  name: string;
  status: CheckStatus;
  detail: string;
}

export interface GpioRow {
  key: string;
  direction: "in" | "out";
  bcm: number;
  /** The sysfs number the real adapter uses (chip base + BCM), when it could be resolved. */
  sysfs: number | undefined;
  activeLow: boolean;
  /** Logical level (1 = active) read once; undefined when the line could not be read. */
  level: Level | undefined;
}

export interface SerialResult {
  name: string;
  kind: string;
  path: string | undefined;
  status: CheckStatus;
  detail: string;
  rxBytes: number;
  /** What arrived, printable: ASCII as is, anything else as \xNN. */
  preview: string;
}

export interface PulseResult {
  key: string;
  ms: number;
  status: CheckStatus;
  detail: string;
}

export interface SelftestReport {
  deviceId: string;
  gpio: { kind: "sim" | "onoff"; sysfs: string; rows: GpioRow[] };
  edges: GpioEdge[];
  pulses: PulseResult[];
  serial: SerialResult[];
  checks: SelftestCheck[];
  ok: boolean;
}

export interface SelftestOptions {
  config: Config;
  clock: Clock;
  /** Adapters log here (the CLI passes a silent or warn-level logger). */
  log: Logger;
  /** Outputs to pulse (`<laneId>.<output>`), each for `pulseMs` (default: its lane's relayPulseMs). */
  pulse?: readonly string[];
  pulseMs?: number;
  /** Watch input edges for this long (0: read the levels once). */
  watchMs?: number;
  /** Listen on the serial devices this long. Default 3000 ms. */
  serialListenMs?: number;
  /** TCP connect timeout for the platform and the broker. Default 3000 ms. */
  connectTimeoutMs?: number;
  /** Called for each input edge while watching (live output). */
  onEdge?: (edge: GpioEdge) => void;
  /** Replaces the GPIO adapter the config asks for (tests). */
  gpio?: Gpio;
  clockSyncSources?: readonly ClockSyncSource[];
  /** Free space below this fails the store check; below 10× it warns. Default 20 MB. */
  minFreeBytes?: number;
  /** Resolves store.dir when relative. Default process.cwd(). */
  cwd?: string;
}

/** Valid `--pulse` targets: every configured output. */
export function pulseTargets(config: Pick<Config, "lanes">): string[] {
  return gpioLinesFromConfig(config)
    .filter((l) => l.direction === "out")
    .map((l) => l.key);
}

export async function runSelftest(options: SelftestOptions): Promise<SelftestReport> {
  const { config } = options;
  const checks: SelftestCheck[] = [];
  const lines = gpioLinesFromConfig(config);

  // ---- GPIO: table, levels, edges, pulses ----
  const gpio: Gpio =
    options.gpio ??
    (config.hardware.gpio === "sim"
      ? new SimGpio(lines, options.clock)
      : new OnoffGpio(lines, options.clock, options.log, { sysfsRoot: config.hardware.sysfsRoot, chipLabel: config.hardware.chipLabel }));
  const sysfsByKey = new Map<string, number>();
  let sysfsNote: string;
  let gpioStarted = false;
  const edges: GpioEdge[] = [];
  const pulses: PulseResult[] = [];
  try {
    await gpio.start();
    gpioStarted = true;
  } catch (error) {
    const message = (error as Error).message;
    const hint = /EACCES|EPERM|gpio group/.test(message) ? " (is the user in the gpio group?)" : "";
    checks.push({ name: "gpio", status: "fail", detail: `${gpio.kind} adapter did not start: ${message}${hint}` });
  }
  if (gpio instanceof OnoffGpio && gpioStarted) {
    for (const line of gpio.table()) sysfsByKey.set(line.key, line.sysfs);
    sysfsNote = "resolved by the onoff adapter";
  } else {
    // Sim mode (or a failed start): show what the real adapter would use, when this machine has
    // the sysfs GPIO interface at all.
    try {
      const resolution = await resolveSysfsLines(lines, { sysfsRoot: config.hardware.sysfsRoot, chipLabel: config.hardware.chipLabel });
      for (const line of resolution.lines) sysfsByKey.set(line.key, line.sysfs);
      sysfsNote = `${resolution.chip.name} "${resolution.chip.label}" base ${resolution.chip.base}`;
    } catch (error) {
      sysfsNote = `not resolved: ${(error as Error).message}`;
    }
  }
  const rows: GpioRow[] = lines.map((spec) => {
    let level: Level | undefined;
    if (gpioStarted) {
      try {
        level = gpio.read(spec.key);
      } catch {
        level = undefined;
      }
    }
    return { key: spec.key, direction: spec.direction, bcm: spec.line, sysfs: sysfsByKey.get(spec.key), activeLow: spec.activeLow, level };
  });
  if (gpioStarted) {
    const unreadable = rows.filter((r) => r.level === undefined).map((r) => r.key);
    checks.push(
      unreadable.length === 0
        ? { name: "gpio", status: "ok", detail: `${rows.length} lines (${gpio.kind})` }
        : { name: "gpio", status: "fail", detail: `cannot read ${unreadable.join(", ")}` },
    );
  }

  const serialListenMs = options.serialListenMs ?? 3000;
  const serialTask = checkSerialDevices(options, serialListenMs);
  const networkTask = Promise.all([checkStore(options), checkPlatform(options), checkBroker(options), checkClock(options)]);

  if (gpioStarted) {
    const stopWatching = gpio.onEdge((edge) => {
      if (!lines.some((l) => l.key === edge.key && l.direction === "in")) return;
      edges.push(edge);
      options.onEdge?.(edge);
    });
    try {
      for (const key of options.pulse ?? []) pulses.push(await pulseOutput(gpio, config, key, options));
      if ((options.watchMs ?? 0) > 0) await sleep(options.clock, options.watchMs!);
    } finally {
      stopWatching();
    }
  }

  const serial = await serialTask;
  for (const result of serial) checks.push({ name: `serial ${result.name}`, status: result.status, detail: result.detail });
  for (const pulse of pulses) checks.push({ name: `pulse ${pulse.key}`, status: pulse.status, detail: pulse.detail });
  checks.push(...(await networkTask));
  // The checks are done; a stop error would not change their results.
  if (gpioStarted) await gpio.stop().catch(() => undefined);

  return {
    deviceId: config.deviceId,
    gpio: { kind: gpio.kind, sysfs: sysfsNote, rows },
    edges,
    pulses,
    serial,
    checks,
    ok: checks.every((c) => c.status !== "fail"),
  };
}

async function pulseOutput(gpio: Gpio, config: Config, key: string, options: SelftestOptions): Promise<PulseResult> {
  const laneId = key.slice(0, key.lastIndexOf("."));
  const ms = options.pulseMs ?? config.lanes.find((l) => l.id === laneId)?.relayPulseMs ?? 500;
  try {
    gpio.write(key, 1);
    await sleep(options.clock, ms);
    gpio.write(key, 0);
    return { key, ms, status: "ok", detail: `driven active for ${ms} ms, then inactive (watch the relay LED / barrier)` };
  } catch (error) {
    try {
      gpio.write(key, 0);
    } catch {
      // already reported below; stop() drives every output safe anyway
    }
    return { key, ms, status: "fail", detail: (error as Error).message };
  }
}

async function checkSerialDevices(options: SelftestOptions, listenMs: number): Promise<SerialResult[]> {
  const entries = Object.entries(options.config.serial);
  const opened: Array<{ name: string; kind: string; path: string; link: SerialLink; chunks: Buffer[]; openError?: string }> = [];
  const results: SerialResult[] = [];
  for (const [name, device] of entries) {
    if (device.path === undefined) {
      results.push({ name, kind: device.kind, path: undefined, status: "skip", detail: "simulated (no path configured)", rxBytes: 0, preview: "" });
      continue;
    }
    const link = createSerialLink(name, device, options.clock, options.log);
    const entry: (typeof opened)[number] = { name, kind: device.kind, path: device.path, link, chunks: [] };
    link.onData((chunk) => entry.chunks.push(chunk));
    try {
      await link.open();
    } catch (error) {
      entry.openError = (error as Error).message;
    }
    opened.push(entry);
  }
  if (opened.length > 0) await sleep(options.clock, listenMs);
  for (const entry of opened) {
    const status = entry.link.status();
    // What the port said is already in entry.chunks; a close error does not change it.
    await entry.link.close().catch(() => undefined);
    const data = Buffer.concat(entry.chunks);
    const base = { name: entry.name, kind: entry.kind, path: entry.path, rxBytes: data.length, preview: printable(data.subarray(0, 160)) };
    if (entry.openError !== undefined || status.state !== "up") {
      const why = (entry.openError ?? status.lastError ?? `link ${status.state}`).replace(/^(Error: )+/, "");
      const hint = /EACCES|permission/i.test(why)
        ? " (is the user in the dialout group?)"
        : /ENOENT|no such file/i.test(why)
          ? " (unplugged, or the wrong path? prefer /dev/lanekeeper/... or /dev/serial/by-id/...)"
          : "";
      results.push({ ...base, status: "fail", detail: `cannot open ${entry.path}: ${why}${hint}` });
    } else if (data.length === 0) {
      // A scanner or a display says nothing until used; silence is worth a look, not a failure.
      results.push({ ...base, status: "warn", detail: `open; nothing arrived in ${Math.round(listenMs / 1000)} s` });
    } else {
      results.push({ ...base, status: "ok", detail: `open; ${data.length} bytes in ${Math.round(listenMs / 1000)} s` });
    }
  }
  const order = new Map(entries.map(([name], i) => [name, i]));
  return results.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
}

/** ASCII as is (with \r \n \t escaped), every other byte as \xNN. */
export function printable(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    if (byte === 0x0a) out += "\\n";
    else if (byte === 0x0d) out += "\\r";
    else if (byte === 0x09) out += "\\t";
    else if (byte === 0x5c) out += "\\\\";
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

async function checkStore(options: SelftestOptions): Promise<SelftestCheck> {
  const dir = resolve(options.cwd ?? process.cwd(), options.config.store.dir);
  const minFree = options.minFreeBytes ?? 20 * 1024 * 1024;
  let where = dir;
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return { name: "store", status: "fail", detail: `${dir} exists but is not a directory` };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") return { name: "store", status: "fail", detail: `${dir}: ${(error as Error).message}` };
    // Not there yet: fine if it can be created (the store makes it on first start).
    let parent = dirname(dir);
    for (;;) {
      try {
        await stat(parent);
        break;
      } catch {
        if (dirname(parent) === parent) break;
        parent = dirname(parent);
      }
    }
    try {
      await access(parent, constants.W_OK);
    } catch {
      return { name: "store", status: "fail", detail: `${dir} does not exist and ${parent} is not writable` };
    }
    where = parent;
  }
  if (where === dir) {
    const probe = join(dir, `.selftest-${process.pid}`);
    try {
      const handle = await open(probe, "w");
      try {
        await handle.writeFile("selftest\n");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await unlink(probe);
    } catch (error) {
      const uid = process.getuid?.();
      return {
        name: "store",
        status: "fail",
        detail: `${dir} is not writable${uid === undefined ? "" : ` by uid ${uid}`}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      };
    }
  }
  const fs = await statfs(where);
  const freeBytes = Number(fs.bavail) * Number(fs.bsize);
  const free = formatBytes(freeBytes);
  const created = where === dir ? "writable" : "does not exist yet (created on first start)";
  if (freeBytes < minFree) return { name: "store", status: "fail", detail: `${dir} ${created}, but only ${free} free` };
  if (freeBytes < minFree * 10) return { name: "store", status: "warn", detail: `${dir} ${created}; ${free} free (low)` };
  return { name: "store", status: where === dir ? "ok" : "warn", detail: `${dir} ${created}; ${free} free` };
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(0)} MB`;
  return `${Math.round(bytes / 1024)} kB`;
}

async function checkReach(name: string, url: string, timeoutMs: number): Promise<SelftestCheck> {
  const endpoint = endpointFromUrl(url);
  if ("error" in endpoint) return { name, status: "fail", detail: endpoint.error };
  const result = await tcpProbe(endpoint, timeoutMs);
  const where = `${endpoint.host}:${endpoint.port}`;
  return result.ok
    ? { name, status: "ok", detail: `${where} reachable (TCP connect in ${result.ms} ms)` }
    : { name, status: "fail", detail: `${where} unreachable: ${result.error} [${result.code}] after ${result.ms} ms` };
}

async function checkPlatform(options: SelftestOptions): Promise<SelftestCheck> {
  const platform = options.config.platform;
  if (!platform.enabled) return { name: "platform", status: "skip", detail: "platform.enabled is false" };
  return checkLink("platform", platform.baseUrl, platform, true, options.connectTimeoutMs ?? 3000);
}

async function checkBroker(options: SelftestOptions): Promise<SelftestCheck> {
  const mqtt = options.config.mqtt;
  if (!mqtt) return { name: "mqtt", status: "skip", detail: "no mqtt section (fleet management off)" };
  if (!mqtt.enabled) return { name: "mqtt", status: "skip", detail: "mqtt.enabled is false" };
  return checkLink("mqtt", mqtt.url, mqtt, mqtt.rejectUnauthorized, options.connectTimeoutMs ?? 3000);
}

/**
 * Reachable is not usable: over TLS, the handshake the link will make, with its configured CA
 * and client certificate, tells a missing private CA from a wrong address.
 */
async function checkLink(name: "platform" | "mqtt", url: string, files: TlsFiles, verify: boolean, timeoutMs: number): Promise<SelftestCheck> {
  const reach = await checkReach(name, url, timeoutMs);
  if (reach.status !== "ok" || !/^(https|mqtts|ssl|wss):/.test(url)) return reach;
  const tls = readTlsFiles(name, files);
  if (tls.problems.length > 0) return { name, status: "fail", detail: `${reach.detail}; ${tls.problems.join("; ")}` };
  const endpoint = endpointFromUrl(url);
  if ("error" in endpoint) return reach;
  const probe = await tlsProbe(endpoint, endpoint.host, { ...tls.connect, rejectUnauthorized: verify }, timeoutMs);
  if (probe.ok) {
    const what = verify ? "TLS verified" : `TLS handshake (NOT verified: ${name}.rejectUnauthorized is false)`;
    return { name, status: verify ? "ok" : "warn", detail: `${reach.detail}; ${what} (${probe.subject}, issued by ${probe.issuer}, valid to ${probe.validTo})` };
  }
  const untrusted = untrustedCertificateCode(probe);
  const hint = untrusted ? `; a private CA goes in ${name}.caFile` : probe.code === "CERT_HAS_EXPIRED" || probe.code === "CERT_NOT_YET_VALID" ? "; check the box's clock" : "";
  return { name, status: "fail", detail: `${reach.detail}; TLS failed: ${probe.error} [${probe.code}]${hint}` };
}

async function checkClock(options: SelftestOptions): Promise<SelftestCheck> {
  const status = await checkClockSync(options.clockSyncSources ?? defaultClockSyncSources(), options.clock);
  const now = new Date(options.clock.now()).toISOString();
  if (status.synced === true) return { name: "clock", status: "ok", detail: `synchronised (${status.source}); now ${now}` };
  if (status.synced === false)
    return { name: "clock", status: "warn", detail: `NOT synchronised (${status.source}: ${status.detail ?? ""}); now ${now}; TLS to the platform may fail until NTP succeeds` };
  return { name: "clock", status: "warn", detail: `unknown (${status.detail ?? ""}); now ${now}` };
}
