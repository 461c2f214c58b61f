import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { z } from "zod";
import { UpdateError, UpdateErrorCode } from "./errors.js";
import type { SignatureDoc } from "./manifest.js";

/** A public key the box trusts for release manifests. */
export interface TrustedKey {
  id: string;
  publicKey: KeyObject;
  /** Where it came from, for messages (config, a file path). */
  source: string;
}

export const keyIdSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, '.', '-' or '_'");

/** Short fingerprint of a public key: the default key id when none is chosen. */
export function keyFingerprint(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex").slice(0, 16);
}

export interface SigningKeyPair {
  id: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

export function generateSigningKeyPair(id?: string): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const keyId = id ?? `k-${keyFingerprint(publicKey)}`;
  const parsed = keyIdSchema.safeParse(keyId);
  if (!parsed.success) throw new TypeError(`key id ${JSON.stringify(keyId)} ${parsed.error.issues[0]?.message ?? "is invalid"}`);
  return {
    id: keyId,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/**
 * Parses a PEM public key and insists on Ed25519. A private key is refused on purpose: the
 * box and the USB stick must only ever carry the public half.
 */
export function parsePublicKeyPem(pem: string, source: string): KeyObject {
  if (/PRIVATE KEY-----/.test(pem)) throw new UpdateError(UpdateErrorCode.UnknownKey, `${source} holds a private key; only the public key belongs here`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new UpdateError(UpdateErrorCode.UnknownKey, `${source} is not a PEM public key (${(error as Error).message})`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new UpdateError(UpdateErrorCode.UnknownKey, `${source} is a ${key.asymmetricKeyType ?? "unknown"} key, not Ed25519`);
  return key;
}

export function trustedKeyFromPem(id: string, pem: string, source: string): TrustedKey {
  return { id, publicKey: parsePublicKeyPem(pem, source), source };
}

/**
 * The key id of a key file is its name: `release-2024.pem`, `release-2024.pub.pem` and
 * `release-2024.public.pem` all name the key `release-2024` (what keygen writes).
 */
export function keyIdFromFileName(file: string): string {
  return basename(file)
    .replace(/\.pem$/i, "")
    .replace(/\.(pub|public)$/i, "");
}

export async function loadTrustedKeyFile(file: string): Promise<TrustedKey> {
  const id = keyIdFromFileName(file);
  const parsed = keyIdSchema.safeParse(id);
  if (!parsed.success)
    throw new UpdateError(UpdateErrorCode.UnknownKey, `${file}: key id ${JSON.stringify(id)} from the file name ${parsed.error.issues[0]?.message ?? "is invalid"}`);
  return trustedKeyFromPem(id, await readFile(file, "utf8"), file);
}

/** Every `*.pem` in a directory (missing directory: none). Bad files are reported, not fatal. */
export async function loadTrustedKeysDir(dir: string): Promise<{ keys: TrustedKey[]; problems: string[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { keys: [], problems: [] };
    return { keys: [], problems: [`${dir}: ${(error as Error).message}`] };
  }
  const keys: TrustedKey[] = [];
  const problems: string[] = [];
  for (const name of names.filter((n) => n.toLowerCase().endsWith(".pem")).sort()) {
    try {
      keys.push(await loadTrustedKeyFile(join(dir, name)));
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  return { keys, problems };
}

export function signManifestBytes(manifestBytes: Uint8Array, privateKeyPem: string, keyId: string): SignatureDoc {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== "ed25519") throw new UpdateError(UpdateErrorCode.Signature, `the signing key is ${key.asymmetricKeyType ?? "unknown"}, not Ed25519`);
  const signature = sign(null, manifestBytes, key).toString("base64");
  return { v: 1, alg: "ed25519", keyId, signature };
}

/**
 * Checks the signature with the trusted keys of that id. Throws E_UNKNOWN_KEY when no trusted
 * key has the id, E_SIGNATURE when none of them verifies the bytes.
 */
export function verifyManifestSignature(manifestBytes: Uint8Array, signature: SignatureDoc, trusted: readonly TrustedKey[]): TrustedKey {
  const candidates = trusted.filter((k) => k.id === signature.keyId);
  if (candidates.length === 0) {
    const known = [...new Set(trusted.map((k) => k.id))].join(", ") || "none";
    throw new UpdateError(UpdateErrorCode.UnknownKey, `signed with key "${signature.keyId}", which this box does not trust (trusted: ${known})`);
  }
  const sig = Buffer.from(signature.signature, "base64");
  for (const key of candidates) {
    if (sig.length === 64 && verify(null, manifestBytes, key.publicKey, sig)) return key;
  }
  throw new UpdateError(UpdateErrorCode.Signature, `manifest signature does not verify with trusted key "${signature.keyId}"`);
}

export interface KeyFiles {
  id: string;
  privateKeyFile: string;
  publicKeyFile: string;
  publicKeyPem: string;
}

/**
 * Writes a new Ed25519 key pair as `<id>.private.pem` (0600) and `<id>.pub.pem`. Existing files
 * are never overwritten: losing a release key locks the fleet out of updates.
 */
export async function generateKeyFiles(options: { outDir: string; id?: string }): Promise<KeyFiles> {
  const pair = generateSigningKeyPair(options.id);
  await mkdir(options.outDir, { recursive: true });
  const privateKeyFile = join(options.outDir, `${pair.id}.private.pem`);
  const publicKeyFile = join(options.outDir, `${pair.id}.pub.pem`);
  await writeFile(privateKeyFile, pair.privateKeyPem, { mode: 0o600, flag: "wx" });
  await writeFile(publicKeyFile, pair.publicKeyPem, { mode: 0o644, flag: "wx" });
  return { id: pair.id, privateKeyFile, publicKeyFile, publicKeyPem: pair.publicKeyPem };
}
