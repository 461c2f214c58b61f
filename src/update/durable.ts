import { open, rename, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * Durable file replacement (docs/architecture.md, "Store and write discipline"): write a temp file in the same directory,
 * fsync it, rename it over the target, fsync the directory. After a power cut the target holds
 * either the old or the new bytes, never a mix and never an empty file.
 */
export async function writeFileDurable(file: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const temp = tempNameFor(file);
  const handle = await open(temp, "w", options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    // Clean-up after a failed write: the write's own error is what the caller needs to see.
    await handle.close().catch(() => undefined);
    // Same: a temp file left behind is removed by the next write of this file.
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, file);
  } catch (error) {
    // Clean-up only: the rename's or copy's own error is what the caller needs to see.
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dirname(file));
}

/** Renames and makes the rename itself durable. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await rename(from, to);
  await fsyncDir(dirname(to));
  if (dirname(from) !== dirname(to)) await fsyncDir(dirname(from));
}

/** fsync a directory so a rename or a new entry in it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
  } catch {
    return; // some filesystems (vfat on a stick) do not let a directory be opened; nothing to sync then
  }
  try {
    await handle.sync();
  } catch (error) {
    // EINVAL/EISDIR: the filesystem cannot fsync directories (vfat); the rename is still atomic.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EBADF") throw error;
  } finally {
    await handle.close();
  }
}

export function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}
