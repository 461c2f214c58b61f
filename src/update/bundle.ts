import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import type { ReadEntry } from "tar";
import { UpdateError, UpdateErrorCode, describeError, type UpdateErrorCode as Code } from "./errors.js";
import {
  MANIFEST_FILE,
  SIGNATURE_FILE,
  architectures as allArchitectures,
  checkManifestEntries,
  escapingLinkReason,
  manifestSchema,
  reservedPaths,
  signatureSchema,
  unsafePathReason,
  type Architecture,
  type Manifest,
  type ManifestEntry,
  type NativeFile,
  type SignatureDoc,
} from "./manifest.js";
import { ELF_HEADER_BYTES } from "./elf.js";
import { checkNativeFiles, machinesOf, nativeFilesOf, nativeListProblem, readFileHead, type FileHead } from "./native.js";
import { keyIdSchema, signManifestBytes, verifyManifestSignature, type TrustedKey } from "./keys.js";
import { compareVersions, isVersion } from "./version.js";
import { fsyncDir } from "./durable.js";

/** Release bundles: build, sign, verify offline, unpack. */

const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
const MAX_SIGNATURE_BYTES = 4096;
const fileTypes = new Set(["File", "OldFile", "ContiguousFile"]);

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

// Key files are written by keys.ts; re-exported for the build tools and tests.
export { generateKeyFiles } from "./keys.js";

// ---------------------------------------------------------------------------------------------
// Build

export interface BuildBundleOptions {
  /** Directory the bundled paths are relative to (the project root, or a tiny test tree). */
  sourceDir: string;
  outFile: string;
  privateKeyPem: string;
  keyId: string;
  /** Files or directories under sourceDir; default: dist/, package.json, production node_modules. */
  files?: string[];
  /** Default: the version in sourceDir/package.json. */
  version?: string;
  name?: string;
  /** The oldest running version allowed to install this bundle. Default 0.0.0. */
  minCompatibleVersion?: string;
  /**
   * Default: the one architecture of the native files, or all when there are none. Native files
   * for any other architecture than listed make the build fail.
   */
  architectures?: Architecture[];
  /** Recorded when there are native files; default this Node's `process.versions.modules`. */
  nodeModuleVersion?: string;
  createdAt?: Date;
  /** gzip the tarball (default true; the reader detects it either way). */
  gzip?: boolean;
}

export interface BuiltBundle {
  outFile: string;
  manifest: Manifest;
  sha256: string;
  size: number;
}

class ForgetfulMap<K, V> extends Map<K, V> {
  override get(): V | undefined {
    return undefined;
  }
}

interface SourceEntry {
  path: string;
  entry: ManifestEntry;
  head?: Buffer;
}

/** tar's portable mode writes permissions as (mode | 0600) & ~022; the manifest records the same. */
function portableMode(mode: number): number {
  return ((mode & 0o777) | 0o600) & ~0o022;
}

function toPosix(path: string): string {
  return sep === "/" ? path : path.split(sep).join("/");
}

async function collect(sourceDir: string, rel: string, out: SourceEntry[], skipDir: (rel: string, name: string) => boolean): Promise<void> {
  const abs = join(sourceDir, rel);
  const st = await lstat(abs);
  const path = toPosix(rel);
  if (st.isDirectory()) {
    for (const name of (await readdir(abs)).sort()) {
      if (skipDir(path, name)) continue;
      await collect(sourceDir, join(rel, name), out, skipDir);
    }
    return;
  }
  if (st.isSymbolicLink()) {
    const target = await readlink(abs);
    const escaping = escapingLinkReason(path, target);
    if (escaping) throw new UpdateError(UpdateErrorCode.UnsafePath, `${path}: ${escaping}; not bundling it`);
    out.push({ path, entry: { path, sha256: sha256Hex(target), size: Buffer.byteLength(target), mode: 0o755, linkTarget: target } });
    return;
  }
  if (!st.isFile()) throw new UpdateError(UpdateErrorCode.UnsafePath, `${path}: not a regular file, directory or link`);
  out.push({ path, entry: { path, sha256: await sha256File(abs), size: st.size, mode: portableMode(st.mode) }, head: await readFileHead(abs) });
}

/**
 * The default file list of a built app: dist/, package.json and the production packages from
 * package-lock.json (dev-only packages and .bin links left out).
 */
export async function defaultAppFiles(projectDir: string): Promise<string[]> {
  const files = ["dist", "package.json"];
  try {
    await stat(join(projectDir, "dist", "cli.js"));
  } catch {
    throw new UpdateError(UpdateErrorCode.BundleFormat, `${join(projectDir, "dist", "cli.js")} is missing; run npm run build first`);
  }
  // The booth panel is served from the release's own tree (src/api/panel-routes.ts).
  try {
    await stat(join(projectDir, "panel", "index.html"));
    files.push("panel");
  } catch {
    // a tree without the panel (a bare build for tests): the box then answers 404 at /
  }
  let lock: { packages?: Record<string, { dev?: boolean; link?: boolean }> };
  try {
    lock = JSON.parse(await readFile(join(projectDir, "package-lock.json"), "utf8")) as typeof lock;
  } catch (error) {
    throw new UpdateError(UpdateErrorCode.BundleFormat, `package-lock.json is needed to tell production packages from dev ones: ${(error as Error).message}`);
  }
  for (const [key, pkg] of Object.entries(lock.packages ?? {})) {
    if (!key.startsWith("node_modules/") || pkg.dev || pkg.link) continue;
    try {
      await stat(join(projectDir, key));
    } catch {
      continue; // an optional package not installed on this platform
    }
    files.push(key);
  }
  return files;
}

/**
 * The architectures a bundle may claim: a bundle with native files runs only where every one of
 * them does, so it names exactly that one architecture (and a build asking for another fails).
 */
function architecturesFor(native: readonly NativeFile[], asked: readonly Architecture[] | undefined): Architecture[] {
  if (native.length === 0) return [...(asked ?? allArchitectures)];
  const machines = machinesOf(native);
  const only = machines.length === 1 ? (allArchitectures as readonly string[]).find((a) => a === machines[0]) : undefined;
  const wrongFor = (arch: string): NativeFile | undefined => native.find((n) => n.machine !== arch);
  if (asked) {
    for (const arch of asked) {
      const wrong = wrongFor(arch);
      if (wrong)
        throw new UpdateError(
          UpdateErrorCode.WrongArchitecture,
          `${wrong.path} is ${wrong.machine}; a bundle for ${arch} cannot carry it (cross-build the addons with release build --arch ${arch})`,
        );
    }
    return [...asked];
  }
  if (!only)
    throw new UpdateError(
      UpdateErrorCode.WrongArchitecture,
      `native files for ${machines.join(", ")}: a bundle runs on one architecture (${native
        .map((n) => `${n.path} is ${n.machine}`)
        .slice(0, 3)
        .join("; ")})`,
    );
  return [only as Architecture];
}

export async function buildBundle(options: BuildBundleOptions): Promise<BuiltBundle> {
  const sourceDir = options.sourceDir;
  const keyId = keyIdSchema.parse(options.keyId);
  let pkg: { name?: string; version?: string } = {};
  try {
    pkg = JSON.parse(await readFile(join(sourceDir, "package.json"), "utf8")) as typeof pkg;
  } catch {
    // a custom tree without package.json must name its version
  }
  const version = options.version ?? pkg.version;
  if (!version || !isVersion(version)) throw new UpdateError(UpdateErrorCode.ManifestInvalid, `version ${JSON.stringify(version)} is not a version like 1.2.3`);
  const minCompatibleVersion = options.minCompatibleVersion ?? "0.0.0";
  if (!isVersion(minCompatibleVersion)) throw new UpdateError(UpdateErrorCode.ManifestInvalid, `minCompatibleVersion ${JSON.stringify(minCompatibleVersion)} is not a version`);
  if (compareVersions(minCompatibleVersion, version) > 0)
    throw new UpdateError(UpdateErrorCode.ManifestInvalid, `minCompatibleVersion ${minCompatibleVersion} is newer than the version ${version}`);

  const roots = options.files ?? (await defaultAppFiles(sourceDir));
  const nested = options.files === undefined;
  const collected: SourceEntry[] = [];
  for (const root of roots) {
    const reason = unsafePathReason(toPosix(root));
    if (reason) throw new UpdateError(UpdateErrorCode.UnsafePath, `${root}: ${reason}`);
    await collect(sourceDir, root, collected, (parent, name) => {
      if (name === ".bin") return true;
      // Nested node_modules are separate lockfile entries (kept or dropped on their own).
      return nested && name === "node_modules" && parent.startsWith("node_modules/");
    });
  }
  const byPath = new Map<string, SourceEntry>();
  for (const item of collected) byPath.set(item.path, item);
  const files = [...byPath.values()].map((item) => item.entry).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const problem = checkManifestEntries(files);
  if (problem) throw new UpdateError(UpdateErrorCode.UnsafePath, `${problem.path}: ${problem.message}`);
  const native = nativeFilesOf([...byPath.values()].flatMap((item) => (item.head ? [{ path: item.path, sha256: item.entry.sha256, head: item.head }] : [])));
  const bundleArchitectures = architecturesFor(native, options.architectures);

  const createdAt = options.createdAt ?? new Date();
  const manifest: Manifest = {
    name: options.name ?? pkg.name ?? "lanekeeper",
    version,
    minCompatibleVersion,
    architectures: bundleArchitectures,
    files,
    createdAt: createdAt.toISOString(),
    native,
    ...(native.length > 0 ? { nodeModuleVersion: options.nodeModuleVersion ?? process.versions.modules } : {}),
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = signManifestBytes(manifestBytes, options.privateKeyPem, keyId);

  const { create } = await import("tar");
  const work = await mkdtemp(join(tmpdir(), "lanekeeper-bundle-"));
  const outTemp = `${options.outFile}.tmp-${process.pid}`;
  try {
    await writeFile(join(work, MANIFEST_FILE), manifestBytes);
    await writeFile(join(work, SIGNATURE_FILE), `${JSON.stringify(signature)}\n`);
    const metaTar = join(work, "meta.tar");
    await create({ file: metaTar, cwd: work, portable: true, mtime: createdAt }, [MANIFEST_FILE, SIGNATURE_FILE]);
    await mkdir(dirname(options.outFile), { recursive: true });
    // The manifest goes first ("@" appends another archive's entries), then the app files.
    await create(
      // A link cache that never remembers: hard-linked files (node-gyp leaves them in build/)
      // are packed as plain files, since a bundle holds no hard links (verifyBundle refuses them).
      { file: outTemp, cwd: sourceDir, gzip: options.gzip ?? true, portable: true, mtime: createdAt, noDirRecurse: true, linkCache: new ForgetfulMap() },
      [`@${metaTar}`, ...files.map((f) => f.path)],
    );
    // Check what was written, with the public half of the signing key: a file that changed
    // while packing is caught here rather than on a thousand boxes.
    const publicKey = createPublicKey(createPrivateKey(options.privateKeyPem));
    await verifyBundle(outTemp, [{ id: keyId, publicKey, source: "signing key" }]);
    await rename(outTemp, options.outFile);
  } catch (error) {
    await rm(outTemp, { force: true });
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const st = await stat(options.outFile);
  return { outFile: options.outFile, manifest, sha256: await sha256File(options.outFile), size: st.size };
}

// ---------------------------------------------------------------------------------------------
// Scan and verify

export interface ScannedEntry {
  path: string;
  type: string;
  mode: number;
  size: number;
  sha256?: string;
  linkpath?: string;
  /** The first bytes (for the ELF header of native files). */
  head?: Buffer;
}

interface ScannedBundle {
  entries: ScannedEntry[];
  manifestBytes?: Buffer;
  signatureBytes?: Buffer;
}

/** Reads every entry of a (possibly gzipped) tarball, hashing contents; nothing is written. */
async function scanBundle(file: string): Promise<ScannedBundle> {
  // tar loads on first use so a box that is not updating never pays for it at start.
  const { Parser } = await import("tar");
  const entries: ScannedEntry[] = [];
  const out: ScannedBundle = { entries };
  const warnings: string[] = [];
  const parsed = new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      onwarn: (code: string, message: string | Error) => {
        warnings.push(`${code}: ${message instanceof Error ? message.message : message}`);
      },
      onReadEntry: (entry: ReadEntry) => {
        const record: ScannedEntry = { path: entry.path, type: entry.type, mode: entry.mode ?? 0, size: entry.size };
        if (entry.linkpath !== undefined) record.linkpath = entry.linkpath;
        entries.push(record);
        const meta = record.path === MANIFEST_FILE || record.path === SIGNATURE_FILE;
        const limit = record.path === MANIFEST_FILE ? MAX_MANIFEST_BYTES : MAX_SIGNATURE_BYTES;
        if (fileTypes.has(entry.type)) {
          const hash = createHash("sha256");
          const chunks: Buffer[] | undefined = meta && entry.size <= limit ? [] : undefined;
          const head: Buffer[] = [];
          let headBytes = 0;
          entry.on("data", (chunk: Buffer) => {
            hash.update(chunk);
            chunks?.push(chunk);
            if (headBytes < ELF_HEADER_BYTES) {
              head.push(chunk.subarray(0, ELF_HEADER_BYTES - headBytes));
              headBytes += Math.min(chunk.length, ELF_HEADER_BYTES - headBytes);
            }
          });
          entry.on("end", () => {
            record.sha256 = hash.digest("hex");
            record.head = Buffer.concat(head);
            if (chunks && record.path === MANIFEST_FILE && out.manifestBytes === undefined) out.manifestBytes = Buffer.concat(chunks);
            if (chunks && record.path === SIGNATURE_FILE && out.signatureBytes === undefined) out.signatureBytes = Buffer.concat(chunks);
          });
        } else {
          entry.resume();
        }
      },
    });
    parser.on("error", reject);
    parser.on("end", () => resolve());
    const input = createReadStream(file);
    input.on("error", reject);
    input.pipe(parser);
  });
  try {
    await parsed;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : (error as Error).message;
    throw new UpdateError(UpdateErrorCode.BundleFormat, `not a readable tarball: ${why}`);
  }
  if (warnings.length > 0) throw new UpdateError(UpdateErrorCode.BundleFormat, `not a readable tarball: ${warnings[0]}`);
  if (entries.length === 0) throw new UpdateError(UpdateErrorCode.BundleFormat, "the tarball is empty");
  return out;
}

export interface VerifiedBundle {
  manifest: Manifest;
  manifestBytes: Buffer;
  signature: SignatureDoc;
  key: TrustedKey;
  fileCount: number;
  totalBytes: number;
  /** Every ELF file, read from the bundle's bytes (equal to the manifest's list when it has one). */
  native: NativeFile[];
}

function fail(code: Code, message: string): never {
  throw new UpdateError(code, message);
}

/**
 * Checks a bundle without unpacking it: tar entries are plain files (or links that stay inside)
 * at safe relative paths, the manifest is signed by a trusted key, and every entry matches the
 * manifest exactly (content hash, size, mode) with nothing missing and nothing extra.
 * Throws an UpdateError naming the first problem.
 */
export async function verifyBundle(file: string, trusted: readonly TrustedKey[]): Promise<VerifiedBundle> {
  const scanned = await scanBundle(file);

  const byPath = new Map<string, ScannedEntry>();
  for (const entry of scanned.entries) {
    const path = entry.type === "Directory" ? entry.path.replace(/\/+$/, "") : entry.path;
    const unsafe = unsafePathReason(path);
    if (unsafe) fail(UpdateErrorCode.UnsafePath, `tar entry ${JSON.stringify(entry.path)}: ${unsafe}`);
    if (entry.type === "Directory") continue;
    if (entry.type === "SymbolicLink") {
      const escaping = escapingLinkReason(path, entry.linkpath ?? "");
      if (escaping) fail(UpdateErrorCode.UnsafePath, `tar entry ${path}: link ${escaping}`);
    } else if (!fileTypes.has(entry.type)) {
      fail(UpdateErrorCode.UnsafePath, `tar entry ${path}: type ${entry.type} is not allowed in a bundle`);
    }
    if (byPath.has(path)) fail(UpdateErrorCode.BundleFormat, `tar entry ${path} appears twice`);
    byPath.set(path, entry);
  }

  const manifestEntry = byPath.get(MANIFEST_FILE);
  const signatureEntry = byPath.get(SIGNATURE_FILE);
  if (!manifestEntry || !fileTypes.has(manifestEntry.type)) fail(UpdateErrorCode.BundleFormat, `${MANIFEST_FILE} is missing from the bundle`);
  if (!signatureEntry || !fileTypes.has(signatureEntry.type)) fail(UpdateErrorCode.BundleFormat, `${SIGNATURE_FILE} is missing from the bundle`);
  if (!scanned.manifestBytes) fail(UpdateErrorCode.BundleFormat, `${MANIFEST_FILE} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  if (!scanned.signatureBytes) fail(UpdateErrorCode.BundleFormat, `${SIGNATURE_FILE} is larger than ${MAX_SIGNATURE_BYTES} bytes`);

  const signature = parseSignature(scanned.signatureBytes);
  const key = verifyManifestSignature(scanned.manifestBytes, signature, trusted);
  const manifest = parseManifest(scanned.manifestBytes);

  let totalBytes = 0;
  const heads: FileHead[] = [];
  for (const want of manifest.files) {
    const got = byPath.get(want.path);
    if (!got) fail(UpdateErrorCode.FileMissing, `${want.path}: listed in the manifest but missing from the bundle`);
    if (want.linkTarget !== undefined) {
      if (got.type !== "SymbolicLink" || got.linkpath !== want.linkTarget) fail(UpdateErrorCode.FileHash, `${want.path}: the link in the bundle differs from the manifest`);
      continue;
    }
    if (!fileTypes.has(got.type)) fail(UpdateErrorCode.FileHash, `${want.path}: is a ${got.type} in the bundle but a file in the manifest`);
    if (got.size !== want.size) fail(UpdateErrorCode.FileHash, `${want.path}: size ${got.size} differs from the manifest's ${want.size}`);
    if (got.sha256 !== want.sha256) fail(UpdateErrorCode.FileHash, `${want.path}: sha256 differs from the manifest (file swapped or corrupted)`);
    if ((got.mode & 0o777) !== want.mode)
      fail(UpdateErrorCode.FileHash, `${want.path}: mode ${(got.mode & 0o777).toString(8)} differs from the manifest's ${want.mode.toString(8)}`);
    totalBytes += want.size;
    if (got.head) heads.push({ path: want.path, sha256: want.sha256, head: got.head });
  }
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const path of byPath.keys()) {
    if (!listed.has(path) && !reservedPaths.has(path)) fail(UpdateErrorCode.FileExtra, `${path}: in the bundle but not in the manifest`);
  }
  const native = nativeFilesOf(heads);
  if (manifest.native) {
    const problem = nativeListProblem(manifest.native, native);
    if (problem) fail(UpdateErrorCode.ManifestInvalid, problem);
  }
  return { manifest, manifestBytes: scanned.manifestBytes, signature, key, fileCount: manifest.files.length, totalBytes, native };
}

function parseSignature(bytes: Buffer): SignatureDoc {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    fail(UpdateErrorCode.Signature, `${SIGNATURE_FILE} is not JSON: ${(error as Error).message}`);
  }
  const parsed = signatureSchema.safeParse(raw);
  if (!parsed.success)
    fail(UpdateErrorCode.Signature, `${SIGNATURE_FILE} is malformed: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** Parses signed manifest bytes; only called after the signature verified. */
export function parseManifest(bytes: Buffer): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    fail(UpdateErrorCode.ManifestInvalid, `${MANIFEST_FILE} is not JSON: ${(error as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    fail(UpdateErrorCode.ManifestInvalid, `${MANIFEST_FILE}: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}`);
  }
  const problem = checkManifestEntries(parsed.data.files);
  if (problem) fail(UpdateErrorCode.UnsafePath, `${MANIFEST_FILE}: ${problem.path}: ${problem.message}`);
  return parsed.data;
}

export interface CompatibilityExpectations {
  name?: string;
  version?: string;
  runningVersion?: string;
  architecture?: Architecture | undefined;
  /** `process.versions.modules` of the box (addons compiled for another ABI do not load). */
  nodeModuleVersion?: string | undefined;
}

/**
 * The signed manifest must be the release the job asked for and installable on this box; its
 * native files (as read from the bundle) must run on the box's architecture.
 */
export function checkCompatibility(manifest: Manifest, expect: CompatibilityExpectations, native: readonly NativeFile[] = manifest.native ?? []): void {
  if (expect.name !== undefined && manifest.name !== expect.name) fail(UpdateErrorCode.Incompatible, `bundle is for "${manifest.name}", not "${expect.name}"`);
  if (expect.version !== undefined && manifest.version !== expect.version)
    fail(UpdateErrorCode.Incompatible, `bundle holds version ${manifest.version}, the job asked for ${expect.version}`);
  // Before the claimed architectures: the files' own headers are the more specific reason.
  checkNativeFiles(manifest, native, expect);
  if (expect.architecture !== undefined && !manifest.architectures.includes(expect.architecture)) {
    fail(UpdateErrorCode.Incompatible, `bundle is built for ${manifest.architectures.join(", ")}, this box is ${expect.architecture}`);
  }
  if (expect.runningVersion !== undefined && isVersion(expect.runningVersion) && compareVersions(expect.runningVersion, manifest.minCompatibleVersion) < 0) {
    fail(UpdateErrorCode.Incompatible, `bundle needs at least version ${manifest.minCompatibleVersion} running, this box runs ${expect.runningVersion}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Unpack and check a release directory

export interface UnpackOptions {
  /** fsync every unpacked file and directory before returning (default true). */
  fsync?: boolean;
}

/**
 * Unpacks a verified bundle into `destDir` (which must not exist yet), then re-reads every file
 * and compares it with the manifest, so what is on disk is what was signed. Only the entries the
 * signed manifest lists are extracted.
 */
export async function unpackBundle(file: string, verified: VerifiedBundle, destDir: string, options: UnpackOptions = {}): Promise<void> {
  const { extract } = await import("tar");
  await mkdir(destDir);
  const allowed = new Set<string>([MANIFEST_FILE, SIGNATURE_FILE, ...verified.manifest.files.map((f) => f.path)]);
  try {
    await extract({ file, cwd: destDir, strict: true, preservePaths: false, filter: (path: string) => allowed.has(path) });
  } catch (error) {
    throw new UpdateError(UpdateErrorCode.Unpack, `unpacking failed: ${(error as Error).message}`);
  }
  const unpackedManifest = await readFile(join(destDir, MANIFEST_FILE));
  if (!unpackedManifest.equals(verified.manifestBytes)) throw new UpdateError(UpdateErrorCode.Unpack, "the unpacked manifest differs from the verified one");
  await verifyTree(destDir, verified.manifest, { fsync: options.fsync ?? true });
}

/** Compares a directory with a manifest: every file's type, size and hash (and link target). */
export async function verifyTree(dir: string, manifest: Manifest, options: { fsync?: boolean } = {}): Promise<void> {
  const dirs = new Set<string>([dir]);
  const entries: ManifestEntry[] = [...manifest.files, { path: MANIFEST_FILE } as ManifestEntry, { path: SIGNATURE_FILE } as ManifestEntry];
  const failures: Array<{ index: number; error: unknown }> = [];
  let next = 0;
  const check = async (entry: ManifestEntry): Promise<void> => {
    const abs = join(dir, ...entry.path.split("/"));
    for (let parent = dirname(abs); parent.length > dir.length; parent = dirname(parent)) dirs.add(parent);
    if (reservedPaths.has(entry.path)) {
      if (options.fsync) await fsyncPath(abs);
      return;
    }
    let st;
    try {
      st = await lstat(abs);
    } catch {
      throw new UpdateError(UpdateErrorCode.FileMissing, `${entry.path}: missing from ${dir}`);
    }
    if (entry.linkTarget !== undefined) {
      if (!st.isSymbolicLink() || (await readlink(abs)) !== entry.linkTarget) throw new UpdateError(UpdateErrorCode.FileHash, `${entry.path}: link differs from the manifest`);
      return;
    }
    if (!st.isFile()) throw new UpdateError(UpdateErrorCode.FileHash, `${entry.path}: not a regular file on disk`);
    if (st.size !== entry.size) throw new UpdateError(UpdateErrorCode.FileHash, `${entry.path}: size ${st.size} on disk differs from the manifest's ${entry.size}`);
    const handle = await open(abs, "r");
    try {
      const hash = createHash("sha256");
      for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
      if (hash.digest("hex") !== entry.sha256) throw new UpdateError(UpdateErrorCode.FileHash, `${entry.path}: sha256 on disk differs from the manifest`);
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  };
  // A few files in flight at once (SD cards like queue depth); the first problem in manifest
  // order is reported, so the message does not depend on timing.
  const worker = async (): Promise<void> => {
    while (failures.length === 0 && next < entries.length) {
      const index = next++;
      try {
        await check(entries[index]!);
      } catch (error) {
        failures.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, () => worker()));
  if (failures.length > 0) throw failures.sort((a, b) => a.index - b.index)[0]!.error;
  if (options.fsync) for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fsyncDir(d);
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export type ReleaseCheck = { ok: true; manifest: Manifest } | { ok: false; code: Code; reason: string };

/**
 * Checks an unpacked release: the manifest kept beside it verifies with a trusted key and every
 * file still matches. Used at boot and by tests to tell a working release from a broken one.
 */
export async function verifyReleaseDir(dir: string, trusted: readonly TrustedKey[]): Promise<ReleaseCheck> {
  try {
    let manifestBytes: Buffer;
    let signatureBytes: Buffer;
    try {
      manifestBytes = await readFile(join(dir, MANIFEST_FILE));
      signatureBytes = await readFile(join(dir, SIGNATURE_FILE));
    } catch (error) {
      fail(UpdateErrorCode.FileMissing, `${dir}: no signed manifest (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    verifyManifestSignature(manifestBytes, parseSignature(signatureBytes), trusted);
    const manifest = parseManifest(manifestBytes);
    await verifyTree(dir, manifest);
    return { ok: true, manifest };
  } catch (error) {
    const { code, reason } = describeError(error, UpdateErrorCode.FileHash);
    return { ok: false, code, reason };
  }
}
