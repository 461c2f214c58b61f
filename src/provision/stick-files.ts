import { constants, type Dirent, type Stats } from "node:fs";
import { lstat, open, readdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { ProvisionError, ProvisionErrorCode } from "./errors.js";

/**
 * Reading a USB stick without trusting it. A stick is whatever its maker put on it: a symlink
 * named platform.key pointing at /etc/shadow, lanekeeper.json pointing at /dev/zero, a FIFO that
 * blocks the reader forever, a 100 MB file. Every path component is lstat'ed (no symlink, no
 * other file system), only regular files are opened, the size is known before a byte is read,
 * and the read itself stops at the limit whatever the size claimed.
 *
 * O_NOFOLLOW: the last component is re-checked by the kernel at open time (a swap between
 * lstat and open is refused, ELOOP). O_NONBLOCK: opening a FIFO returns at once instead of
 * waiting for a writer. O_NOCTTY: a tty node never becomes our controlling terminal.
 */
export const SAFE_READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

export interface Stick {
  root: string;
  /** The stick's file system: every file read must live on it. */
  dev: number;
}

export function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "a regular file";
}

/** The mountpoint itself: trusted (systemd-mount made it), but it must be a directory. */
export async function openStick(root: string): Promise<Stick> {
  let st: Stats;
  try {
    st = await lstat(root);
  } catch (error) {
    throw new ProvisionError(ProvisionErrorCode.StickUnreadable, `the stick is not mounted at ${root} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (!st.isDirectory()) throw new ProvisionError(ProvisionErrorCode.StickNotRegular, `${root} is ${kindOf(st)}, not a mounted stick`);
  return { root, dev: st.dev };
}

function notFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * lstat's every component of `rel` below the stick root. Returns undefined when something is
 * missing; throws a ProvisionError for a symlink, another file system or a wrong type.
 * `leaf`: what the last component must be.
 */
async function checkPath(stick: Stick, rel: string, leaf: "file" | "directory"): Promise<{ path: string; st: Stats } | undefined> {
  const parts = rel.split("/");
  if (parts.some((p) => p === "" || p === "." || p === "..")) throw new ProvisionError(ProvisionErrorCode.StickUnreadable, "is not a plain relative name");
  let path = stick.root;
  for (let i = 0; i < parts.length; i++) {
    path = join(path, parts[i]!);
    const shown = parts.slice(0, i + 1).join("/");
    const where = i === parts.length - 1 ? "" : ` (${shown})`;
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (error) {
      if (notFound(error)) return undefined;
      throw new ProvisionError(ProvisionErrorCode.StickUnreadable, `cannot read${where}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    if (st.isSymbolicLink()) throw new ProvisionError(ProvisionErrorCode.StickSymlink, `is a symbolic link${where}; a stick may carry regular files only`);
    if (st.dev !== stick.dev) throw new ProvisionError(ProvisionErrorCode.StickUnreadable, `is on another file system${where}`);
    const wantDir = i < parts.length - 1 || leaf === "directory";
    if (wantDir && !st.isDirectory()) throw new ProvisionError(ProvisionErrorCode.StickNotRegular, `${where ? `${shown} ` : ""}is ${kindOf(st)}, not a directory`);
    if (!wantDir && !st.isFile()) throw new ProvisionError(ProvisionErrorCode.StickNotRegular, `is ${kindOf(st)}, not a regular file`);
    if (i === parts.length - 1) return { path, st };
  }
  return undefined;
}

/**
 * Reads at most `limitBytes` from an open regular file: the size from fstat is checked first,
 * and the read stops one byte past the limit even if the file grows meanwhile.
 */
export async function readCapped(handle: FileHandle, limitBytes: number, expected?: Stats): Promise<Buffer> {
  const st = await handle.stat();
  if (!st.isFile()) throw new ProvisionError(ProvisionErrorCode.StickNotRegular, `is ${kindOf(st)}, not a regular file`);
  if (expected && (st.ino !== expected.ino || st.dev !== expected.dev)) throw new ProvisionError(ProvisionErrorCode.StickUnreadable, "changed while being opened");
  if (st.size > limitBytes) throw new ProvisionError(ProvisionErrorCode.StickTooLarge, `is ${st.size} bytes, larger than the ${limitBytes} allowed`);
  const buffer = Buffer.alloc(Math.min(st.size, limitBytes) + 1);
  let total = 0;
  while (total < buffer.length) {
    const { bytesRead } = await handle.read(buffer, total, buffer.length - total, total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  if (total > limitBytes) throw new ProvisionError(ProvisionErrorCode.StickTooLarge, `is larger than the ${limitBytes} bytes allowed`);
  if (total === buffer.length) throw new ProvisionError(ProvisionErrorCode.StickUnreadable, "grew while being read");
  return buffer.subarray(0, total);
}

/** A regular file on the stick, or undefined when it is not there. */
export async function readStickFile(stick: Stick, rel: string, limitBytes: number): Promise<Buffer | undefined> {
  const found = await checkPath(stick, rel, "file");
  if (!found) return undefined;
  if (found.st.size > limitBytes) throw new ProvisionError(ProvisionErrorCode.StickTooLarge, `is ${found.st.size} bytes, larger than the ${limitBytes} allowed`);
  let handle: FileHandle;
  try {
    handle = await open(found.path, SAFE_READ_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new ProvisionError(ProvisionErrorCode.StickSymlink, "is a symbolic link; a stick may carry regular files only");
    if (code === "ENOENT") return undefined;
    throw new ProvisionError(ProvisionErrorCode.StickUnreadable, `cannot open: ${code === "EACCES" ? "permission denied" : (code ?? (error as Error).message)}`);
  }
  try {
    return await readCapped(handle, limitBytes, found.st);
  } finally {
    // Read-only: a close error changes nothing about what was read.
    await handle.close().catch(() => undefined);
  }
}

/** The entries of a directory on the stick (none when it is missing); at most `maxEntries`. */
export async function listStickDir(stick: Stick, rel: string, maxEntries: number): Promise<Dirent[]> {
  const found = await checkPath(stick, rel, "directory");
  if (!found) return [];
  let entries: Dirent[];
  try {
    entries = await readdir(found.path, { withFileTypes: true });
  } catch (error) {
    throw new ProvisionError(ProvisionErrorCode.StickUnreadable, `cannot list: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (entries.length > maxEntries) throw new ProvisionError(ProvisionErrorCode.StickTooMany, `holds ${entries.length} entries; at most ${maxEntries} are read`);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
