import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { keyIdSchema, parsePublicKeyPem } from "../update/keys.js";
import { ProvisionErrorCode, problemFromError, type ProvisionProblem } from "./errors.js";
import { listStickDir, type Stick } from "./stick-files.js";

/**
 * What a stick carries besides lanekeeper.json, read and checked before anything is written:
 * the TLS material of each link and the update keys. Each file becomes a pending write into a
 * box directory under a name provisioning chooses (never one from the stick).
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
export const linkCertificates = [
  { section: "mqtt", label: "MQTT", ca: stickFiles.mqttCa, cert: stickFiles.mqttCert, key: stickFiles.mqttKey },
  { section: "platform", label: "platform", ca: stickFiles.platformCa, cert: stickFiles.platformCert, key: stickFiles.platformClientKey },
] as const;

export const MAX_CONFIG_BYTES = 1024 * 1024;
export const MAX_FILE_BYTES = 256 * 1024;
/** update-keys/ holds a handful of public keys; a directory of thousands is not a key set. */
export const MAX_UPDATE_KEYS = 32;

export interface PendingFile {
  what: string;
  from: string;
  /** The directory it goes to (the config directory's mqtt/, platform/, or the keys directory). */
  dir: string;
  name: string;
  content: string;
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export type Read = (name: string, limit?: number) => Promise<string | undefined>;

/**
 * A link's CA and client certificate (MQTT broker, cloud platform): checked, copied under
 * content-addressed names, and the config pointed at them. The old config keeps pointing at the
 * old files until the new config is renamed into place, so config and certificates never disagree.
 */
export async function collectLinkFiles(
  link: (typeof linkCertificates)[number],
  doc: Record<string, unknown> | undefined,
  read: Read,
  problems: ProvisionProblem[],
  pending: PendingFile[],
  configDir: string,
): Promise<void> {
  const ca = await read(link.ca);
  const cert = await read(link.cert);
  const clientKey = await read(link.key);
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch {
      problems.push({ path: link.ca, message: "is not a PEM certificate" });
    }
  }
  if ((cert === undefined) !== (clientKey === undefined)) {
    const path = cert === undefined ? link.cert : link.key;
    problems.push({ path, message: `${link.cert} and ${link.key} come as a pair; one is missing` });
  } else if (cert !== undefined && clientKey !== undefined) {
    let x509: X509Certificate | undefined;
    try {
      x509 = new X509Certificate(cert);
    } catch {
      problems.push({ path: link.cert, message: "is not a PEM certificate" });
    }
    try {
      const key = createPrivateKey(clientKey);
      if (x509 && !x509.checkPrivateKey(key)) problems.push({ path: link.key, message: `does not belong to the certificate in ${link.cert}` });
    } catch {
      problems.push({ path: link.key, message: "is not a PEM private key (an encrypted key cannot be used unattended)" });
    }
  }
  const files: Array<[string | undefined, string, "caFile" | "certFile" | "keyFile", string]> = [
    [ca, link.ca, "caFile", "ca"],
    [cert, link.cert, "certFile", "client"],
    [clientKey, link.key, "keyFile", "client"],
  ];
  if (!files.some(([content]) => content !== undefined)) return;
  const section = doc?.[link.section];
  if (doc && !isPlainObject(section))
    problems.push({ path: link.section, message: `${link.label} certificates are on the stick but lanekeeper.json has no ${link.section} section` });
  for (const [content, from, field, stem] of files) {
    if (content === undefined) continue;
    const name = `${stem}-${shortHash(content)}${from.endsWith(".key") ? ".key" : ".pem"}`;
    const dir = join(configDir, link.section);
    pending.push({ what: `${link.label} ${field}`, from, dir, name, content });
    if (isPlainObject(section)) section[field] = join(dir, name);
  }
}

export async function collectUpdateKeys(stick: Stick, read: Read, problems: ProvisionProblem[], pending: PendingFile[], keysDir: string): Promise<void> {
  let names: string[] = [];
  try {
    names = (await listStickDir(stick, stickFiles.updateKeys, MAX_UPDATE_KEYS)).map((e) => e.name).filter((n) => n.toLowerCase().endsWith(".pem"));
  } catch (error) {
    problems.push(problemFromError(stickFiles.updateKeys, error, ProvisionErrorCode.StickUnreadable));
  }
  for (const name of names) {
    const from = `${stickFiles.updateKeys}/${name}`;
    const id = name.replace(/\.pem$/i, "").replace(/\.(pub|public)$/i, "");
    if (!keyIdSchema.safeParse(id).success) {
      problems.push({ path: from, message: "the file name (the key id) must be 1-64 letters, digits, '.', '-' or '_'" });
      continue;
    }
    const pem = await read(from);
    if (pem === undefined) continue;
    try {
      parsePublicKeyPem(pem, from);
      pending.push({ what: `update key "${id}"`, from, dir: keysDir, name: `${id}.pem`, content: pem });
    } catch (error) {
      problems.push({ path: from, message: (error as Error).message.replace(`${from} `, "") });
    }
  }
}
