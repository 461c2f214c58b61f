import { posix } from "node:path";
import { z } from "zod";
import { versionSchema } from "./version.js";

/**
 * The release manifest: every file of the app with its SHA-256, size and
 * mode, signed as exact bytes in `manifest.sig`. Both live at the root of the tarball and are
 * kept in `releases/<version>/` so a release on disk can be checked again at any time.
 */
export const MANIFEST_FILE = "manifest.json";
export const SIGNATURE_FILE = "manifest.sig";
export const reservedPaths = new Set([MANIFEST_FILE, SIGNATURE_FILE]);

export const architectures = ["arm64", "armhf", "x64"] as const;
export type Architecture = (typeof architectures)[number];

/** Node's `process.arch` in the names Debian and the bundle use. */
export function localArchitecture(arch: string = process.arch): Architecture | undefined {
  if (arch === "arm64") return "arm64";
  if (arch === "arm") return "armhf";
  if (arch === "x64") return "x64";
  return undefined;
}

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");

export const manifestEntrySchema = z.strictObject({
  path: z.string().min(1).max(4096),
  sha256: sha256Schema,
  size: z.int().min(0),
  /** Permission bits as packed (0o644, 0o755). */
  mode: z.int().min(0).max(0o777),
  /**
   * Present for a symbolic link (npm packages ship a few). For a link, `sha256` and `size`
   * describe the target text, and the target must stay inside the release.
   */
  linkTarget: z.string().min(1).max(4096).optional(),
});
export type ManifestEntry = z.infer<typeof manifestEntrySchema>;

/**
 * A native file (an ELF shared object such as `epoll.node`) and the machine its header names:
 * an architecture name ("arm64", "armhf", "x64") or a description of another machine. Kept at
 * the top level, not on the file entries, so a box with an older reader (whose entry schema is
 * strict) still accepts the manifest.
 */
export const nativeFileSchema = z.object({
  path: z.string().min(1).max(4096),
  sha256: sha256Schema,
  machine: z.string().min(1).max(100),
});
export type NativeFile = z.infer<typeof nativeFileSchema>;

// Unknown top-level keys are tolerated (the bytes are signed anyway) so an older box can still
// read a manifest from a newer build script.
export const manifestSchema = z.object({
  name: z.string().min(1).max(100),
  version: versionSchema,
  minCompatibleVersion: versionSchema,
  architectures: z.array(z.enum(architectures)).min(1),
  files: z.array(manifestEntrySchema),
  createdAt: z.iso.datetime({ offset: true }),
  /** Every ELF file of the bundle; absent in bundles from older build tools (then read from the files). */
  native: z.array(nativeFileSchema).optional(),
  /** `process.versions.modules` of the Node the addons were compiled against (ABI of non-N-API addons). */
  nodeModuleVersion: z
    .string()
    .regex(/^[0-9]{1,4}$/)
    .optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const signatureSchema = z.strictObject({
  v: z.literal(1),
  alg: z.literal("ed25519"),
  keyId: z.string().min(1).max(64),
  /** Base64 of the 64-byte Ed25519 signature over the exact bytes of manifest.json. */
  signature: z.string().regex(/^[A-Za-z0-9+/]+=*$/, "must be base64"),
});
export type SignatureDoc = z.infer<typeof signatureSchema>;

/**
 * Why a path from a manifest or a tar header is unsafe to unpack, or undefined when it is fine.
 * Only plain relative POSIX paths pass: no absolute paths, no `..`, no `.` segments, no
 * backslashes or NULs, nothing that normalises to something else.
 */
export function unsafePathReason(path: string): string | undefined {
  if (path.length === 0) return "empty path";
  if (path.includes("\0")) return "contains a NUL byte";
  if (path.includes("\\")) return "contains a backslash";
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return "is absolute";
  const segments = path.split("/");
  if (segments.some((s) => s === "..")) return "climbs out with '..'";
  if (segments.some((s) => s === "." || s === "")) return "has an empty or '.' segment";
  if (posix.normalize(path) !== path) return "is not a normalised path";
  return undefined;
}

/** Why a symbolic link would point outside the release, or undefined when it stays inside. */
export function escapingLinkReason(linkPath: string, target: string): string | undefined {
  if (target.includes("\0")) return "target contains a NUL byte";
  if (target.startsWith("/") || target.includes("\\")) return `target ${JSON.stringify(target)} is absolute`;
  const resolved = posix.normalize(posix.join(posix.dirname(linkPath), target));
  if (resolved === ".." || resolved.startsWith("../") || resolved === ".") return `target ${JSON.stringify(target)} escapes the release`;
  if (reservedPaths.has(resolved)) return `target ${JSON.stringify(target)} points at the manifest`;
  return undefined;
}

export interface ManifestProblem {
  path: string;
  message: string;
}

/**
 * Structural checks a signed manifest must still pass: safe paths, no duplicates, links that
 * stay inside, and no file sitting under a linked directory (a write through a link is how a
 * tarball escapes its target directory).
 */
export function checkManifestEntries(files: readonly ManifestEntry[]): ManifestProblem | undefined {
  const seen = new Set<string>();
  const links = new Set<string>();
  for (const entry of files) {
    const unsafe = unsafePathReason(entry.path);
    if (unsafe) return { path: entry.path, message: `unsafe path: ${unsafe}` };
    if (reservedPaths.has(entry.path)) return { path: entry.path, message: "uses a reserved name" };
    if (seen.has(entry.path)) return { path: entry.path, message: "listed twice" };
    seen.add(entry.path);
    if (entry.linkTarget !== undefined) {
      const escaping = escapingLinkReason(entry.path, entry.linkTarget);
      if (escaping) return { path: entry.path, message: `unsafe link: ${escaping}` };
      links.add(entry.path);
    }
  }
  for (const entry of files) {
    const segments = entry.path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join("/");
      if (links.has(parent)) return { path: entry.path, message: `lies under the link ${parent}` };
      if (seen.has(parent)) return { path: entry.path, message: `lies under the file ${parent}` };
    }
  }
  return undefined;
}
