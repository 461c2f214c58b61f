import { open } from "node:fs/promises";
import { ELF_HEADER_BYTES, isElf, readElfHeader } from "./elf.js";
import { UpdateError, UpdateErrorCode } from "./errors.js";
import type { Architecture, Manifest, NativeFile } from "./manifest.js";

/**
 * The native files of a bundle: found by their ELF magic (not by name, so a `.so` beside a
 * `.node` counts too), recorded in the manifest with the machine from their header, and checked
 * against the box before anything is unpacked.
 */

export interface FileHead {
  path: string;
  sha256: string;
  /** The first bytes of the file (up to ELF_HEADER_BYTES). */
  head: Uint8Array;
}

/** The first bytes of a file on disk. */
export async function readFileHead(file: string): Promise<Buffer> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.alloc(ELF_HEADER_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, ELF_HEADER_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Every ELF file among the heads, with its machine; sorted by path. */
export function nativeFilesOf(files: readonly FileHead[]): NativeFile[] {
  const out: NativeFile[] = [];
  for (const file of files) {
    if (!isElf(file.head)) continue;
    const info = readElfHeader(file.head);
    out.push({ path: file.path, sha256: file.sha256, machine: info?.name ?? "unreadable ELF header" });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Why a signed native list disagrees with the files' own headers, or undefined when it agrees.
 * The hashes already tie the bytes to the manifest, so a difference means the build tool
 * recorded the wrong thing; such a bundle is not trusted to say what it runs on.
 */
export function nativeListProblem(recorded: readonly NativeFile[], actual: readonly NativeFile[]): string | undefined {
  const byPath = new Map(recorded.map((n) => [n.path, n]));
  for (const file of actual) {
    const listed = byPath.get(file.path);
    if (!listed) return `${file.path} is a native file (${file.machine}) missing from the manifest's native list`;
    if (listed.machine !== file.machine || listed.sha256 !== file.sha256) return `${file.path}: the manifest says ${listed.machine}, its ELF header says ${file.machine}`;
    byPath.delete(file.path);
  }
  const extra = byPath.values().next();
  if (!extra.done) return `${extra.value.path} is listed as native (${extra.value.machine}) but is not an ELF file in the bundle`;
  return undefined;
}

/** The distinct machines of a set of native files, sorted. */
export function machinesOf(native: readonly NativeFile[]): string[] {
  return [...new Set(native.map((n) => n.machine))].sort();
}

/**
 * Refuses native files that do not run on `architecture` (E_WRONG_ARCH), naming the first few,
 * and addons compiled against another Node ABI than the box's (E_INCOMPATIBLE).
 */
export function checkNativeFiles(
  manifest: Pick<Manifest, "nodeModuleVersion">,
  native: readonly NativeFile[],
  box: { architecture?: Architecture | undefined; nodeModuleVersion?: string | undefined },
): void {
  if (box.architecture !== undefined) {
    const wrong = native.filter((n) => n.machine !== box.architecture);
    if (wrong.length > 0) {
      const shown = wrong
        .slice(0, 3)
        .map((n) => `${n.path} is ${n.machine}`)
        .join("; ");
      const more = wrong.length > 3 ? ` and ${wrong.length - 3} more` : "";
      throw new UpdateError(UpdateErrorCode.WrongArchitecture, `native files built for another machine than this ${box.architecture} box: ${shown}${more}`);
    }
  }
  if (native.length > 0 && manifest.nodeModuleVersion !== undefined && box.nodeModuleVersion !== undefined && manifest.nodeModuleVersion !== box.nodeModuleVersion) {
    throw new UpdateError(UpdateErrorCode.Incompatible, `native addons were compiled for Node ABI ${manifest.nodeModuleVersion}, this box runs Node ABI ${box.nodeModuleVersion}`);
  }
}
