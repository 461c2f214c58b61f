import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { hostname as osHostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { systemClock, type Clock } from "../app/clock.js";
import { silentLogger, type Logger } from "../app/log.js";
import { validateConfig, type ConfigProblem } from "../config/load.js";
import { copyFileDurable, writeFileDurable } from "../update/durable.js";
import { keyIdSchema, parsePublicKeyPem } from "../update/keys.js";
import { diffConfigs, type ConfigChange } from "./diff.js";
import { formatReport, scrubSecrets } from "./report.js";

/**
 * USB provisioning (architecture.md §8, issue 10): a stick carries `lanekeeper.json` at its root
 * and optionally `platform.key`, `mqtt/ca.pem`, `mqtt/client.pem`, `mqtt/client.key`, the same
 * three under `platform/` (a cloud with a private CA or client certificates) and
 * `update-keys/*.pem`. Everything is read and checked first; only when all of it is valid is
 * anything written on the box, and the config file itself is replaced last (the commit point).
 * A report goes back to the stick either way.
 */
export const stickFiles = {
  config: "lanekeeper.json",
  platformKey: "platform.key",
  mqttCa: "mqtt/ca.pem",
  mqttCert: "mqtt/client.pem",
  mqttKey: "mqtt/client.key",
  platformCa: "platform/ca.pem",
  platformCert: "platform/client.pem",
  platformClientKey: "platform/client.key",
  updateKeys: "update-keys",
  report: "lanekeeper-report.txt",
} as const;

/** Each TLS link's files on the stick and the config section they go to. */
const linkCertificates = [
  { section: "mqtt", label: "MQTT", ca: stickFiles.mqttCa, cert: stickFiles.mqttCert, key: stickFiles.mqttKey },
  { section: "platform", label: "platform", ca: stickFiles.platformCa, cert: stickFiles.platformCert, key: stickFiles.platformClientKey },
] as const;

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_FILE_BYTES = 256 * 1024;

export interface ProvisionOptions {
  mountpoint: string;
  /** Default /etc/lanekeeper/lanekeeper.json. */
  configPath: string;
  /** Where update keys go; default `<config dir>/update-keys` (update.trustedKeysDir). */
  keysDir?: string;
  /** Restarts the service after a change; null disables it; default runs `restartCommand`. */
  restart?: (() => Promise<void>) | null;
  restartCommand?: readonly string[];
  clock?: Clock;
  log?: Logger;
  hostname?: string;
}

export interface InstalledFile {
  what: string;
  from: string;
  to: string;
  changed: boolean;
}

export interface ProvisionResult {
  status: "applied" | "unchanged" | "rejected";
  deviceId: string | undefined;
  problems: ConfigProblem[];
  changes: ConfigChange[];
  files: InstalledFile[];
  report: string;
  reportFile: string;
  reportWritten: boolean;
  reportError?: string;
  restarted: boolean;
  restartError?: string;
}

interface PendingFile {
  what: string;
  from: string;
  to: string;
  content: string;
  mode: number;
}

async function readStickFile(path: string, limit: number): Promise<string | undefined> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new Error(code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (error as Error).message);
  }
  if (text.length > limit) throw new Error(`larger than ${limit} bytes`);
  return text.toString("utf8");
}

/** A JSON error without the snippet of input V8 puts in its message (it may hold a secret). */
function jsonErrorWithoutInput(text: string, error: Error): string {
  const match = /position (\d+)/.exec(error.message);
  if (!match) return "not valid JSON";
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - before.lastIndexOf("\n");
  return `not valid JSON (line ${line}, column ${column})`;
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function secretsOf(doc: unknown, out: Set<string>): void {
  if (Array.isArray(doc)) doc.forEach((item) => secretsOf(item, out));
  else if (isPlainObject(doc)) {
    for (const [key, value] of Object.entries(doc)) {
      if (["key", "password", "token", "cameraKey"].includes(key) && typeof value === "string" && value.length >= 4) out.add(value);
      else secretsOf(value, out);
    }
  }
}

export async function provisionFromStick(options: ProvisionOptions): Promise<ProvisionResult> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? silentLogger();
  const stick = options.mountpoint;
  const configDir = dirname(options.configPath);
  const problems: ConfigProblem[] = [];
  const pending: PendingFile[] = [];
  const secrets = new Set<string>();
  const problem = (path: string, message: string): void => {
    problems.push({ path, message });
  };
  const read = async (name: string, limit = MAX_FILE_BYTES): Promise<string | undefined> => {
    try {
      return await readStickFile(join(stick, name), limit);
    } catch (error) {
      problem(name, `cannot read: ${(error as Error).message}`);
      return undefined;
    }
  };

  // ---- read and check everything; nothing is written in this phase
  let raw: unknown;
  const configText = await read(stickFiles.config, MAX_CONFIG_BYTES);
  if (configText === undefined) {
    if (!problems.some((p) => p.path === stickFiles.config)) problem(stickFiles.config, "not found at the root of the stick");
  } else {
    try {
      raw = JSON.parse(configText);
      if (!isPlainObject(raw)) {
        problem(stickFiles.config, "must hold a JSON object");
        raw = undefined;
      }
    } catch (error) {
      problem(stickFiles.config, jsonErrorWithoutInput(configText, error as Error));
    }
  }
  const doc = isPlainObject(raw) ? raw : undefined;
  if (doc) secretsOf(doc, secrets);
  // The stick's own update section may say where keys live and how to restart (src/update/config.ts).
  const update = doc && isPlainObject(doc.update) ? doc.update : {};
  const keysDir = options.keysDir ?? (typeof update.trustedKeysDir === "string" ? update.trustedKeysDir : join(configDir, "update-keys"));
  const restartCommand =
    options.restartCommand ??
    (Array.isArray(update.restartCommand) && update.restartCommand.every((w) => typeof w === "string") ? (update.restartCommand as string[]) : undefined);

  const platformKey = await read(stickFiles.platformKey);
  if (platformKey !== undefined) {
    const key = platformKey.trim();
    if (key === "") problem(stickFiles.platformKey, "the file is empty");
    else {
      secrets.add(key);
      if (doc && isPlainObject(doc.platform)) doc.platform.key = key;
    }
  }

  // A link's CA and client certificate (MQTT broker, cloud platform): checked, copied under
  // content-addressed names, and the config pointed at them.
  for (const link of linkCertificates) {
    const ca = await read(link.ca);
    const cert = await read(link.cert);
    const clientKey = await read(link.key);
    if (ca !== undefined) {
      try {
        new X509Certificate(ca);
      } catch {
        problem(link.ca, "is not a PEM certificate");
      }
    }
    if ((cert === undefined) !== (clientKey === undefined)) {
      problem(cert === undefined ? link.cert : link.key, `${link.cert} and ${link.key} come as a pair; one is missing`);
    } else if (cert !== undefined && clientKey !== undefined) {
      let x509: X509Certificate | undefined;
      try {
        x509 = new X509Certificate(cert);
      } catch {
        problem(link.cert, "is not a PEM certificate");
      }
      try {
        const key = createPrivateKey(clientKey);
        if (x509 && !x509.checkPrivateKey(key)) problem(link.key, `does not belong to the certificate in ${link.cert}`);
      } catch {
        problem(link.key, "is not a PEM private key (an encrypted key cannot be used unattended)");
      }
    }
    const files: Array<[string | undefined, string, "caFile" | "certFile" | "keyFile", string, number]> = [
      [ca, link.ca, "caFile", "ca", 0o644],
      [cert, link.cert, "certFile", "client", 0o644],
      [clientKey, link.key, "keyFile", "client", 0o600],
    ];
    if (files.some(([content]) => content !== undefined)) {
      const section = doc?.[link.section];
      if (doc && !isPlainObject(section)) problem(link.section, `${link.label} certificates are on the stick but lanekeeper.json has no ${link.section} section`);
      for (const [content, from, field, stem, mode] of files) {
        if (content === undefined) continue;
        // Content-addressed names: the old config keeps pointing at the old files until the new
        // config is renamed into place, so there is no moment where config and certs disagree.
        const to = join(configDir, link.section, `${stem}-${shortHash(content)}${from.endsWith(".key") ? ".key" : ".pem"}`);
        pending.push({ what: `${link.label} ${field}`, from, to, content, mode });
        if (isPlainObject(section)) section[field] = to;
      }
    }
  }

  let keyNames: string[] = [];
  try {
    keyNames = (await readdir(join(stick, stickFiles.updateKeys))).filter((n) => n.toLowerCase().endsWith(".pem")).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") problem(stickFiles.updateKeys, `cannot list: ${(error as Error).message}`);
  }
  for (const name of keyNames) {
    const from = `${stickFiles.updateKeys}/${name}`;
    const pem = await read(from);
    if (pem === undefined) continue;
    const id = basename(name).replace(/\.pem$/i, "").replace(/\.(pub|public)$/i, "");
    if (!keyIdSchema.safeParse(id).success) {
      problem(from, "the file name (the key id) must be 1-64 letters, digits, '.', '-' or '_'");
      continue;
    }
    try {
      parsePublicKeyPem(pem, from);
      pending.push({ what: `update key "${id}"`, from, to: join(keysDir, `${id}.pem`), content: pem, mode: 0o644 });
    } catch (error) {
      problem(from, (error as Error).message.replace(`${from} `, ""));
    }
  }

  let deviceId: string | undefined;
  if (doc) {
    const validated = validateConfig(doc);
    if (validated.ok) deviceId = validated.config.deviceId;
    else problems.push(...validated.problems);
  }

  // ---- what is on the box now
  let oldText: string | undefined;
  let oldDoc: unknown;
  try {
    oldText = await readFile(options.configPath, "utf8");
    oldDoc = JSON.parse(oldText);
  } catch {
    oldDoc = oldText === undefined ? undefined : {};
  }
  secretsOf(oldDoc, secrets);
  const boxDeviceId = isPlainObject(oldDoc) && typeof oldDoc.deviceId === "string" ? oldDoc.deviceId : undefined;

  const base = {
    reportFile: join(stick, stickFiles.report),
    problems,
    restarted: false,
  };
  const now = new Date(clock.now());
  const host = options.hostname ?? osHostname();

  if (problems.length > 0 || !doc) {
    log.warn({ problems: problems.length }, "provisioning stick rejected; nothing changed");
    const report = scrubSecrets(
      formatReport({ status: "rejected", deviceId: boxDeviceId ?? (typeof doc?.deviceId === "string" ? doc.deviceId : undefined), host, at: now, stick, configPath: options.configPath, problems, changes: [], files: [] }),
      secrets,
    );
    return finishReport({ ...base, status: "rejected", deviceId: boxDeviceId, changes: [], files: [], report }, log);
  }

  // ---- apply: files first, the config last
  const newText = `${JSON.stringify(doc, null, 2)}\n`;
  const changes = diffConfigs(oldDoc, doc);
  const files: InstalledFile[] = [];
  for (const file of pending) {
    const existing = await readFile(file.to, "utf8").catch(() => undefined);
    files.push({ what: file.what, from: file.from, to: file.to, changed: existing !== file.content });
  }
  const changed = newText !== oldText || files.some((f) => f.changed);
  if (!changed) {
    const report = scrubSecrets(formatReport({ status: "unchanged", deviceId, host, at: now, stick, configPath: options.configPath, problems, changes, files }), secrets);
    return finishReport({ ...base, status: "unchanged", deviceId, changes, files, report }, log);
  }

  try {
    for (const file of pending) {
      const entry = files.find((f) => f.to === file.to);
      if (!entry?.changed) continue;
      await mkdir(dirname(file.to), { recursive: true, mode: 0o755 });
      await writeFileDurable(file.to, file.content, { mode: file.mode });
    }
    await mkdir(configDir, { recursive: true });
    if (oldText !== undefined) await copyFileDurable(options.configPath, `${options.configPath}.prev`);
    await writeFileDurable(options.configPath, newText, { mode: 0o600 });
  } catch (error) {
    // The config was not replaced (it is written last), so the box still runs on the old one.
    problems.push({ path: options.configPath, message: `cannot write on the box: ${(error as Error).message}` });
    const report = scrubSecrets(formatReport({ status: "rejected", deviceId: boxDeviceId, host, at: now, stick, configPath: options.configPath, problems, changes: [], files: [] }), secrets);
    return finishReport({ ...base, status: "rejected", deviceId: boxDeviceId, changes: [], files: [], report }, log);
  }
  const previous = await readJson(`${options.configPath}.prev`);
  for (const link of linkCertificates) {
    await pruneLinkFiles(join(configDir, link.section), link.section, [doc, previous]).catch((error: unknown) => log.warn({ err: error, section: link.section }, "old certificate files not pruned"));
  }
  log.info({ deviceId, changes: changes.length, files: files.filter((f) => f.changed).length }, "provisioning applied");

  let restarted = false;
  let restartError: string | undefined;
  if (options.restart !== null) {
    try {
      // --no-block: this runs from a oneshot unit; waiting on the restart job could deadlock.
      await (options.restart ?? (() => runCommand(restartCommand ?? ["systemctl", "--no-block", "restart", "lanekeeper"])))();
      restarted = true;
    } catch (error) {
      restartError = (error as Error).message;
      log.error({ err: error }, "restart after provisioning failed");
    }
  }
  const report = scrubSecrets(
    formatReport({
      status: "applied",
      deviceId,
      previousDeviceId: boxDeviceId,
      host,
      at: now,
      stick,
      configPath: options.configPath,
      problems,
      changes,
      files,
      restart: options.restart === null ? "disabled" : restarted ? "requested" : `failed: ${restartError ?? "unknown"}`,
    }),
    secrets,
  );
  const result: Omit<ProvisionResult, "reportWritten"> = { ...base, status: "applied", deviceId, changes, files, report, restarted };
  if (restartError !== undefined) result.restartError = restartError;
  return finishReport(result, log);
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** Removes our content-addressed files of one link that neither the config nor its `.prev` uses. */
async function pruneLinkFiles(dir: string, section: string, docs: unknown[]): Promise<void> {
  const used = new Set<string>();
  for (const doc of docs) {
    const link = isPlainObject(doc) ? doc[section] : undefined;
    if (isPlainObject(link)) {
      for (const field of ["caFile", "certFile", "keyFile"]) {
        const value = link[field];
        if (typeof value === "string") used.add(basename(value));
      }
    }
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (/^(ca|client)-[0-9a-f]{12}\.(pem|key)$/.test(name) && !used.has(name)) await rm(join(dir, name), { force: true });
  }
}

async function finishReport(result: Omit<ProvisionResult, "reportWritten">, log: Logger): Promise<ProvisionResult> {
  try {
    await writeFileDurable(result.reportFile, result.report);
    return { ...result, reportWritten: true };
  } catch (error) {
    log.error({ err: error, file: result.reportFile }, "cannot write the report to the stick");
    return { ...result, reportWritten: false, reportError: (error as Error).message };
  }
}

function runCommand(argv: readonly string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command) return Promise.reject(new Error("no restart command"));
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${argv.join(" ")}: ${stderr.trim() || error.message}`));
      else resolve();
    });
  });
}
