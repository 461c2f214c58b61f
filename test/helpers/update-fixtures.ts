import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Header, list, type ReadEntry } from "tar";
import { buildBundle, generateKeyFiles, unpackBundle, verifyBundle, type BuiltBundle } from "../../src/update/bundle.js";
import { loadTrustedKeyFile, signManifestBytes, type TrustedKey } from "../../src/update/keys.js";
import type { Architecture, Manifest } from "../../src/update/manifest.js";
import { releaseTarget, switchCurrent } from "../../src/update/releases.js";

/** Fixtures for update tests: keys, tiny app trees, real signed bundles, raw tar surgery. */

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `lk-${prefix}-`));
}

export interface TestKey {
  id: string;
  privateKeyPem: string;
  publicKeyFile: string;
  trusted: TrustedKey;
}

export async function makeKey(dir: string, id: string): Promise<TestKey> {
  const files = await generateKeyFiles({ outDir: join(dir, "keys"), id });
  return { id, privateKeyPem: await readFile(files.privateKeyFile, "utf8"), publicKeyFile: files.publicKeyFile, trusted: await loadTrustedKeyFile(files.publicKeyFile) };
}

/**
 * A tiny app tree: package.json, an executable dist/cli.js, a module, a node_modules package
 * with a relative link, and optionally a blob of random bytes (to make the download span
 * several chunks).
 */
export async function makeSourceTree(dir: string, version: string, options: { blobBytes?: number; native?: Record<string, Uint8Array> } = {}): Promise<string> {
  const src = join(dir, `src-${version}`);
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, "dist", "lib"), { recursive: true });
  await mkdir(join(src, "node_modules", "tiny", "bin"), { recursive: true });
  await writeFile(join(src, "package.json"), `${JSON.stringify({ name: "lanekeeper", version, type: "module" })}\n`);
  await writeFile(join(src, "dist", "cli.js"), `#!/usr/bin/env node\nconsole.log("lanekeeper ${version}");\n`, { mode: 0o755 });
  await writeFile(join(src, "dist", "lib", "app.js"), `export const version = "${version}";\n`);
  await writeFile(join(src, "node_modules", "tiny", "index.js"), "module.exports = 42;\n");
  await writeFile(join(src, "node_modules", "tiny", "bin", "tiny.js"), "#!/usr/bin/env node\n", { mode: 0o755 });
  await symlink("../tiny/bin/tiny.js", join(src, "node_modules", "tiny", "run.js"));
  if (options.blobBytes) await writeFile(join(src, "dist", "lib", "blob.bin"), randomBytes(options.blobBytes));
  for (const [path, bytes] of Object.entries(options.native ?? {})) {
    await mkdir(join(src, path, ".."), { recursive: true });
    await writeFile(join(src, path), bytes, { mode: 0o755 });
  }
  return src;
}

export async function makeBundle(
  dir: string,
  version: string,
  key: TestKey,
  options: { blobBytes?: number; minCompatibleVersion?: string; architectures?: Architecture[]; name?: string; native?: Record<string, Uint8Array> } = {},
): Promise<BuiltBundle> {
  const src = await makeSourceTree(dir, version, { ...(options.blobBytes ? { blobBytes: options.blobBytes } : {}), ...(options.native ? { native: options.native } : {}) });
  return buildBundle({
    sourceDir: src,
    files: ["package.json", "dist", "node_modules"],
    outFile: join(dir, "bundles", `lanekeeper-${version}-${key.id}-${Object.keys(options.native ?? {}).length > 0 ? "native" : "js"}.tar`),
    privateKeyPem: key.privateKeyPem,
    keyId: key.id,
    ...(options.minCompatibleVersion ? { minCompatibleVersion: options.minCompatibleVersion } : {}),
    ...(options.architectures ? { architectures: options.architectures } : {}),
    ...(options.name ? { name: options.name } : {}),
  });
}

/** Installs a bundle the way scripts/install.sh would: releases/<version>, current -> it. */
export async function installRelease(root: string, bundleFile: string, trusted: readonly TrustedKey[]): Promise<string> {
  const verified = await verifyBundle(bundleFile, trusted);
  await mkdir(join(root, "releases"), { recursive: true });
  await unpackBundle(bundleFile, verified, join(root, "releases", verified.manifest.version), { fsync: false });
  await switchCurrent(root, releaseTarget(verified.manifest.version));
  return verified.manifest.version;
}

export interface RawEntry {
  path: string;
  type: "File" | "SymbolicLink" | "Link" | "Directory" | "CharacterDevice";
  mode: number;
  body: Buffer;
  linkpath?: string;
}

/** Every entry of a tarball with its bytes. */
export async function readTarEntries(file: string): Promise<RawEntry[]> {
  const entries: RawEntry[] = [];
  await list({
    file,
    onReadEntry: (entry: ReadEntry) => {
      const chunks: Buffer[] = [];
      const record: RawEntry = { path: entry.path, type: entry.type as RawEntry["type"], mode: entry.mode ?? 0o644, body: Buffer.alloc(0) };
      if (entry.linkpath !== undefined) record.linkpath = entry.linkpath;
      entries.push(record);
      entry.on("data", (c: Buffer) => chunks.push(c));
      entry.on("end", () => {
        record.body = Buffer.concat(chunks);
      });
    },
  });
  return entries;
}

/**
 * Writes entries as a tarball with no sanitising at all: paths like `../x` or `/etc/x` go in
 * exactly as given (what an attacker's bundle would hold).
 */
export async function writeRawTar(file: string, entries: readonly RawEntry[], gzip = true): Promise<void> {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const size = entry.type === "File" ? entry.body.length : 0;
    const header = new Header({
      path: entry.path,
      mode: entry.mode,
      size,
      type: entry.type,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (size > 0) {
      blocks.push(entry.body);
      const pad = (512 - (size % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  const tarBytes = Buffer.concat(blocks);
  await writeFile(file, gzip ? gzipSync(tarBytes) : tarBytes);
}

/** Reads a bundle, lets the test change its entries, writes the result elsewhere. */
export async function tamperBundle(bundleFile: string, outFile: string, mutate: (entries: RawEntry[]) => RawEntry[] | void): Promise<string> {
  const entries = await readTarEntries(bundleFile);
  const changed = mutate(entries) ?? entries;
  await writeRawTar(outFile, changed);
  return outFile;
}

/** What a bundle without native files claims. */
export const allArchitecturesForTests: Architecture[] = ["arm64", "armhf", "x64"];

const ELF_MACHINE = { arm64: 0xb7, armhf: 0x28, x64: 0x3e } as const;

/**
 * A minimal valid ELF header (what `readelf -h` accepts) of a shared object: the bytes a native
 * addon starts with, so tests need no cross compiler. The rest of a real file does not matter to
 * the machine check. `padTo` appends zero bytes (a file of a plausible size).
 */
export function elfHeader(target: Architecture | { bits: 32 | 64; machine: number; littleEndian?: boolean; flags?: number }, padTo = 0): Buffer {
  const spec =
    typeof target === "string" ? { bits: target === "armhf" ? 32 : 64, machine: ELF_MACHINE[target], littleEndian: true, flags: target === "armhf" ? 0x05000400 : 0 } : target;
  const le = spec.littleEndian ?? true;
  const size = spec.bits === 64 ? 64 : 52;
  const b = Buffer.alloc(Math.max(size, padTo));
  b.set([0x7f, 0x45, 0x4c, 0x46, spec.bits === 64 ? 2 : 1, le ? 1 : 2, 1], 0);
  const u16 = (at: number, v: number): number => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (at: number, v: number): number => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  u16(16, 3); // ET_DYN
  u16(18, spec.machine);
  u32(20, 1); // EV_CURRENT
  u32(spec.bits === 64 ? 48 : 36, spec.flags ?? 0);
  u16(spec.bits === 64 ? 52 : 40, size); // e_ehsize
  return b;
}

/**
 * Rewrites a bundle's manifest and signs it again with the release key: what a different (or
 * older) build tool would have produced, with every file hash still right.
 */
export async function resignBundle(bundleFile: string, outFile: string, key: TestKey, edit: (manifest: Manifest) => Manifest): Promise<string> {
  return tamperBundle(bundleFile, outFile, (entries) => {
    const manifestEntry = entries.find((e) => e.path === "manifest.json")!;
    const manifest = edit(JSON.parse(manifestEntry.body.toString("utf8")) as Manifest);
    manifestEntry.body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const signatureEntry = entries.find((e) => e.path === "manifest.sig")!;
    signatureEntry.body = Buffer.from(`${JSON.stringify(signManifestBytes(manifestEntry.body, key.privateKeyPem, key.id))}\n`);
  });
}
