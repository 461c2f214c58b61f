import { execFile } from "node:child_process";
import { hostname as osHostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { systemClock, type Clock } from "../kernel/clock.js";
import { silentLogger, type Logger } from "../kernel/log.js";
import { validateConfig } from "../config/load.js";
import { parseJsonText } from "../config/json-errors.js";
import { writeFileDurable } from "../update/durable.js";
import { BOX_CONFIG_DIR_MODE, BoxDir, resolveOwner, type BoxOwner } from "./box-dir.js";
import { diffConfigs, type ConfigChange } from "./diff.js";
import { ProvisionError, ProvisionErrorCode, problemFromError, type ProvisionProblem } from "./errors.js";
import { PROVISION_REPORT_FILE, type LastProvision } from "./last-report.js";
import { formatReport, scrubSecrets } from "./report.js";
import { collectLinkFiles, collectUpdateKeys, linkCertificates, MAX_CONFIG_BYTES, MAX_FILE_BYTES, stickFiles, type PendingFile } from "./stick-contents.js";
import { applyStickPolicy, freshBoxValues, jsonDepth, MAX_STICK_JSON_DEPTH } from "./stick-policy.js";
import { openStick, readStickFile, type Stick } from "./stick-files.js";

/**
 * USB provisioning: a stick carries `lanekeeper.json` at its root and optionally
 * `platform.key`, `mqtt/ca.pem`, `mqtt/client.pem`, `mqtt/client.key`, the same three under
 * `platform/` (a cloud with a private CA or client certificates) and `update-keys/*.pem`.
 *
 * It runs as root from udev's unit, on input nobody vetted, so it is a narrow door:
 * - only regular files are read from the stick, size-checked before reading (stick-files.ts);
 * - the stick may not set a command or a path of the box (stick-policy.ts);
 * - it writes only into the config directory, through a pinned directory descriptor, files
 *   root:<service group> 0640, each atomically (box-dir.ts); the config is replaced last;
 * - the same configuration in another layout is UNCHANGED (parsed and normalised, not bytes);
 * - a report always lands somewhere: on the stick, in the box's copy (last-report.ts) and on
 *   stdout for the journal. Nothing thrown escapes: an unexpected error is a REJECTED report.
 */

const DEFAULT_RESTART = ["systemctl", "--no-block", "restart", "lanekeeper"] as const;

export interface ProvisionOptions {
  mountpoint: string;
  /** Default /etc/lanekeeper/lanekeeper.json. */
  configPath: string;
  /** Where update keys go; default `<config dir>/update-keys`. Never taken from any config. */
  keysDir?: string;
  /** Restarts the service after a change; null disables it; default runs `restartCommand`. */
  restart?: (() => Promise<void>) | null;
  /** Default `systemctl --no-block restart lanekeeper`; never taken from the stick or the box's config. */
  restartCommand?: readonly string[];
  /** The service's group, owner of what is written (name or gid); default "lanekeeper". */
  group?: string | number;
  /** store.dir of a box that has no config yet; default /var/lib/lanekeeper. */
  stateDir?: string;
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
  problems: ProvisionProblem[];
  changes: ConfigChange[];
  files: InstalledFile[];
  report: string;
  reportFile: string;
  reportWritten: boolean;
  reportError?: string;
  /** The box's copy of the outcome (`<config dir>/provision-report.json`). */
  boxReportFile: string;
  boxReportWritten: boolean;
  restarted: boolean;
  restartError?: string;
}

/** A JSON error without the snippet of input V8 puts in its message (it may hold a secret). */
function jsonErrorWithoutInput(text: string): string {
  const parsed = parseJsonText(text);
  if (parsed.ok) return "not valid JSON";
  const { line, column, reason } = parsed.problem;
  return `not valid JSON (line ${line}, column ${column}): ${reason}`;
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

/** Key-order-free JSON of a validated config: two files that mean the same give the same text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (isPlainObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
}

interface Context {
  options: ProvisionOptions;
  log: Logger;
  configDir: string;
  secrets: Set<string>;
  owner: BoxOwner | undefined;
  at: Date;
  host: string;
}

export async function provisionFromStick(options: ProvisionOptions): Promise<ProvisionResult> {
  const log = options.log ?? silentLogger();
  const ctx: Context = {
    options,
    log,
    configDir: dirname(options.configPath),
    secrets: new Set(),
    owner: undefined,
    at: new Date((options.clock ?? systemClock).now()),
    host: options.hostname ?? osHostname(),
  };
  let outcome: Outcome;
  try {
    outcome = await provision(ctx);
  } catch (error) {
    // Whatever went wrong, the installer gets a report: the config is written last, so a
    // failure before that left the box on its old configuration.
    log.error({ err: error }, "provisioning failed unexpectedly");
    outcome = {
      status: "rejected",
      deviceId: undefined,
      problems: [problemFromError("(provisioning)", error, ProvisionErrorCode.Internal)],
      changes: [],
      files: [],
      restarted: false,
    };
  }
  return finish(ctx, outcome);
}

interface Outcome {
  status: ProvisionResult["status"];
  deviceId: string | undefined;
  previousDeviceId?: string | undefined;
  problems: ProvisionProblem[];
  changes: ConfigChange[];
  files: InstalledFile[];
  repaired?: string[];
  restart?: string;
  restarted: boolean;
  restartError?: string;
}

async function provision(ctx: Context): Promise<Outcome> {
  const { options, log, configDir, secrets } = ctx;
  const problems: ProvisionProblem[] = [];
  const rejected = (deviceId?: string): Outcome => {
    log.warn({ problems: problems.length, codes: [...new Set(problems.map((p) => p.code).filter(Boolean))] }, "provisioning stick rejected; nothing changed");
    return { status: "rejected", deviceId, problems, changes: [], files: [], restarted: false };
  };

  try {
    const resolved = await resolveOwner(options.group ?? "lanekeeper", configDir);
    ctx.owner = resolved.owner;
    if (resolved.note) log.warn({ configDir }, resolved.note);
  } catch (error) {
    problems.push(problemFromError("(box)", error, ProvisionErrorCode.BoxGroup));
    return rejected();
  }
  let stick: Stick;
  try {
    stick = await openStick(options.mountpoint);
  } catch (error) {
    problems.push(problemFromError("(stick)", error, ProvisionErrorCode.StickUnreadable));
    return rejected();
  }
  const read = async (name: string, limit = MAX_FILE_BYTES): Promise<string | undefined> => {
    try {
      return (await readStickFile(stick, name, limit))?.toString("utf8");
    } catch (error) {
      problems.push(problemFromError(name, error, ProvisionErrorCode.StickUnreadable));
      return undefined;
    }
  };

  // ---- the box as it is: its config is the reference for what the stick may not change
  const box = await BoxDir.open(configDir, ctx.owner).catch((error: unknown) => {
    problems.push(problemFromError(configDir, error, ProvisionErrorCode.BoxUnsafe));
    return undefined;
  });
  let oldBytes: Buffer | undefined;
  let oldDoc: unknown;
  try {
    oldBytes = await box?.read(basename(options.configPath), MAX_CONFIG_BYTES);
    if (oldBytes !== undefined) oldDoc = JSON.parse(oldBytes.toString("utf8"));
    // The service user can write this directory: a hostile file must not blow our stack.
    if (jsonDepth(oldDoc) > MAX_STICK_JSON_DEPTH) oldDoc = {};
  } catch (error) {
    if (error instanceof SyntaxError)
      oldDoc = {}; // a broken box config is what a stick is for
    else problems.push(problemFromError(options.configPath, error, ProvisionErrorCode.BoxUnsafe));
  }
  secretsOf(oldDoc, secrets);
  const boxDeviceId = isPlainObject(oldDoc) && typeof oldDoc.deviceId === "string" ? oldDoc.deviceId : undefined;

  try {
    // ---- read and check everything from the stick; nothing is written in this phase
    let doc: Record<string, unknown> | undefined;
    const configText = await read(stickFiles.config, MAX_CONFIG_BYTES);
    if (configText === undefined) {
      if (!problems.some((p) => p.path === stickFiles.config)) problems.push({ path: stickFiles.config, message: "not found at the root of the stick" });
    } else {
      let raw: unknown;
      try {
        raw = JSON.parse(configText);
      } catch {
        problems.push({ path: stickFiles.config, message: jsonErrorWithoutInput(configText) });
      }
      if (raw !== undefined && jsonDepth(raw) > MAX_STICK_JSON_DEPTH) {
        problems.push({ path: stickFiles.config, code: ProvisionErrorCode.StickTooDeep, message: `nests deeper than ${MAX_STICK_JSON_DEPTH} levels` });
      } else if (isPlainObject(raw)) doc = raw;
      else if (raw !== undefined) problems.push({ path: stickFiles.config, message: "must hold a JSON object" });
    }
    if (doc) {
      secretsOf(doc, secrets);
      problems.push(...applyStickPolicy(doc, oldDoc, freshBoxValues(options.stateDir ?? "/var/lib/lanekeeper")));
    }

    const platformKey = await read(stickFiles.platformKey);
    if (platformKey !== undefined) {
      const key = platformKey.trim();
      if (key === "") problems.push({ path: stickFiles.platformKey, message: "the file is empty" });
      else {
        secrets.add(key);
        if (doc && isPlainObject(doc.platform)) doc.platform.key = key;
      }
    }

    const pending: PendingFile[] = [];
    const keysDir = options.keysDir ?? join(configDir, "update-keys");
    for (const link of linkCertificates) await collectLinkFiles(link, doc, read, problems, pending, configDir);
    await collectUpdateKeys(stick, read, problems, pending, keysDir);

    let deviceId: string | undefined;
    let validated: ReturnType<typeof validateConfig> | undefined;
    if (doc) {
      validated = validateConfig(doc);
      if (validated.ok) deviceId = validated.config.deviceId;
      else problems.push(...validated.problems);
    }
    if (problems.length > 0 || !doc || !validated?.ok) return rejected(boxDeviceId ?? (typeof doc?.deviceId === "string" ? doc.deviceId : undefined));

    // ---- compare with the box: meaning, not bytes
    const files: InstalledFile[] = [];
    for (const file of pending) {
      const existing = await readExisting(ctx, box, file);
      files.push({ what: file.what, from: file.from, to: join(file.dir, file.name), changed: existing !== file.content });
    }
    const oldValidated = oldDoc === undefined ? undefined : validateConfig(oldDoc);
    const sameConfig = oldValidated?.ok === true && canonical(oldValidated.config) === canonical(validated.config);
    if (sameConfig && !files.some((f) => f.changed)) {
      // Same meaning in another layout (key order, spacing, defaults spelled out): the box's
      // file stays as it is and the service is not restarted. Owner and mode are set right,
      // which heals a box whose config a root tool left unreadable for the service.
      const repaired = await repairOwnership(ctx, box, pending);
      log.info({ deviceId, repaired: repaired.length }, "provisioning stick matches the box; nothing to apply");
      return { status: "unchanged", deviceId, problems, changes: [], files, repaired, restarted: false };
    }
    const changes = diffConfigs(oldDoc, doc);

    // ---- apply: files first (content-addressed names), the config last (the commit point)
    try {
      for (const file of pending) {
        if (files.find((f) => f.to === join(file.dir, file.name))?.changed !== true) continue;
        await withTargetDir(ctx, box, file.dir, true, (dir) => dir.write(file.name, file.content));
      }
      const target = box ?? (await BoxDir.open(configDir, ctx.owner, { mode: BOX_CONFIG_DIR_MODE }));
      if (!target) throw new ProvisionError(ProvisionErrorCode.BoxWrite, `cannot create ${configDir}`);
      try {
        if (oldBytes !== undefined) await target.write(`${basename(options.configPath)}.prev`, oldBytes);
        await target.write(basename(options.configPath), `${JSON.stringify(doc, null, 2)}\n`);
      } finally {
        if (target !== box) await target.close();
      }
    } catch (error) {
      // The config was not replaced (it is written last), so the box still runs on the old one.
      problems.push(problemFromError(options.configPath, error, ProvisionErrorCode.BoxWrite));
      return rejected(boxDeviceId);
    }
    if (box) await pruneLinkFiles(box, [doc, oldDoc]).catch((error: unknown) => log.warn({ err: error }, "old certificate files not pruned"));
    log.info({ deviceId, changes: changes.length, files: files.filter((f) => f.changed).length }, "provisioning applied");

    let restarted = false;
    let restartError: string | undefined;
    if (options.restart !== null) {
      try {
        // --no-block: this runs from a oneshot unit; waiting on the restart job could deadlock.
        await (options.restart ?? (() => runCommand(options.restartCommand ?? DEFAULT_RESTART)))();
        restarted = true;
      } catch (error) {
        restartError = (error as Error).message;
        log.error({ err: error }, "restart after provisioning failed");
      }
    }
    const outcome: Outcome = {
      status: "applied",
      deviceId,
      previousDeviceId: boxDeviceId,
      problems,
      changes,
      files,
      restart: options.restart === null ? "disabled" : restarted ? "requested" : `failed: ${restartError ?? "unknown"}`,
      restarted,
    };
    if (restartError !== undefined) outcome.restartError = restartError;
    return outcome;
  } finally {
    await box?.close();
  }
}

/**
 * Runs `fn` on a target directory: a subdirectory of the config directory goes through the
 * pinned descriptor of the config directory; another one (an explicit --keys-dir) is opened
 * as given. `create`: make it when missing (otherwise `fn` is skipped).
 */
async function withTargetDir<T>(ctx: Context, box: BoxDir | undefined, dir: string, create: boolean, fn: (dir: BoxDir) => Promise<T>): Promise<T | undefined> {
  let parent = box;
  let owned = false;
  if (!parent && create && dirname(dir) === ctx.configDir) {
    parent = await BoxDir.open(ctx.configDir, ctx.owner, { mode: BOX_CONFIG_DIR_MODE });
    owned = true;
  }
  let target: BoxDir | undefined;
  try {
    if (parent && dirname(dir) === ctx.configDir) target = create ? await parent.sub(basename(dir)) : await parent.existingSub(basename(dir));
    else target = await BoxDir.open(dir, ctx.owner, create ? { mode: 0o750 } : undefined);
    return target ? await fn(target) : undefined;
  } finally {
    await target?.close();
    if (owned) await parent?.close();
  }
}

async function readExisting(ctx: Context, box: BoxDir | undefined, file: PendingFile): Promise<string | undefined> {
  try {
    return await withTargetDir(ctx, box, file.dir, false, async (dir) => (await dir.read(file.name, MAX_FILE_BYTES))?.toString("utf8"));
  } catch {
    return undefined; // unreadable or unsafe: treated as different, and the write decides
  }
}

async function repairOwnership(ctx: Context, box: BoxDir | undefined, pending: PendingFile[]): Promise<string[]> {
  const repaired: string[] = [];
  try {
    if (box && (await box.repair(basename(ctx.options.configPath)))) repaired.push(ctx.options.configPath);
    for (const file of pending) {
      if (await withTargetDir(ctx, box, file.dir, false, (dir) => dir.repair(file.name))) repaired.push(join(file.dir, file.name));
    }
  } catch (error) {
    ctx.log.warn({ err: error }, "could not set owner and mode of the provisioned files");
  }
  return repaired;
}

/** Removes our content-addressed files of each link that neither the config nor its `.prev` uses. */
async function pruneLinkFiles(box: BoxDir, docs: unknown[]): Promise<void> {
  for (const link of linkCertificates) {
    const used = new Set<string>();
    for (const doc of docs) {
      const section = isPlainObject(doc) ? doc[link.section] : undefined;
      if (!isPlainObject(section)) continue;
      for (const field of ["caFile", "certFile", "keyFile"]) {
        const value = section[field];
        if (typeof value === "string") used.add(basename(value));
      }
    }
    const dir = await box.existingSub(link.section);
    if (!dir) continue;
    try {
      for (const name of await dir.list()) {
        if (/^(ca|client)-[0-9a-f]{12}\.(pem|key)$/.test(name) && !used.has(name)) await dir.remove(name);
      }
    } finally {
      await dir.close();
    }
  }
}

/** Writes the report to the stick and the box's copy; never throws. */
async function finish(ctx: Context, outcome: Outcome): Promise<ProvisionResult> {
  const { options, log } = ctx;
  const report = scrubSecrets(
    formatReport({
      status: outcome.status,
      deviceId: outcome.deviceId,
      ...(outcome.previousDeviceId === undefined ? {} : { previousDeviceId: outcome.previousDeviceId }),
      host: ctx.host,
      at: ctx.at,
      stick: options.mountpoint,
      configPath: options.configPath,
      problems: outcome.problems,
      changes: outcome.changes,
      files: outcome.files,
      ...(outcome.restart === undefined ? {} : { restart: outcome.restart }),
      ...(outcome.repaired === undefined ? {} : { repaired: outcome.repaired }),
    }),
    ctx.secrets,
  );
  const problems = outcome.problems.map((p) => ({ ...p, message: scrubSecrets(p.message, ctx.secrets) }));
  const reportFile = join(options.mountpoint, stickFiles.report);
  let reportWritten = false;
  let reportError: string | undefined;
  try {
    // The stick's root is the mountpoint systemd made; a symlink named like the report is
    // replaced by the rename, not followed.
    await writeFileDurable(reportFile, report);
    reportWritten = true;
  } catch (error) {
    reportError = problemFromError(stickFiles.report, error, ProvisionErrorCode.BoxWrite).message;
    log.error({ err: error, file: reportFile }, "cannot write the report to the stick; it is kept on the box");
  }

  const boxReportFile = join(ctx.configDir, PROVISION_REPORT_FILE);
  const record: LastProvision = {
    v: 1,
    status: outcome.status,
    at: ctx.at.toISOString(),
    host: ctx.host,
    ...(outcome.deviceId === undefined ? {} : { deviceId: outcome.deviceId }),
    stick: options.mountpoint,
    reportOnStick: reportWritten,
    ...(reportError === undefined ? {} : { reportError }),
    problems,
    changes: outcome.changes.length,
    ...(outcome.restart === undefined ? {} : { restart: outcome.restart }),
    report,
  };
  let boxReportWritten = false;
  try {
    const box = await BoxDir.open(ctx.configDir, ctx.owner, { mode: BOX_CONFIG_DIR_MODE });
    try {
      await box?.write(PROVISION_REPORT_FILE, `${JSON.stringify(record, null, 2)}\n`);
      boxReportWritten = box !== undefined;
    } finally {
      await box?.close();
    }
  } catch (error) {
    log.error({ err: error, file: boxReportFile }, "cannot keep the provisioning report on the box");
  }
  const result: ProvisionResult = {
    status: outcome.status,
    deviceId: outcome.deviceId,
    problems,
    changes: outcome.changes,
    files: outcome.files,
    report,
    reportFile,
    reportWritten,
    boxReportFile,
    boxReportWritten,
    restarted: outcome.restarted,
  };
  if (reportError !== undefined) result.reportError = reportError;
  if (outcome.restartError !== undefined) result.restartError = outcome.restartError;
  return result;
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
