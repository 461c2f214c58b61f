import { mkdir, open, stat, statfs, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { StoreError, StoreErrorCode, storeErrorFromFs } from "./errors.js";

/** Below this much free space the store refuses to start (a write would fail mid-stay). */
export const DEFAULT_MIN_FREE_BYTES = 4 * 1024 * 1024;

/**
 * Makes a directory entry change (create, rename, unlink) durable. A file's own fsync does
 * not cover the name that points to it (POSIX; ext4 happens to, FAT does not), so every
 * rename that commits a write is followed by this.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface PrepareStoreDirOptions {
  minFreeBytes?: number;
}

/**
 * Checks the store directory at start so that a missing, read-only or full disk is a clear
 * error before the lanes start, rather than a failed write at the
 * first car:
 * - missing: created when its parent exists (a fresh install); otherwise E_STORE_DIR_MISSING
 *   (a missing parent usually means the data partition is not mounted, and creating the
 *   whole path would write the lot's data onto the root file system);
 * - not a directory: E_STORE_NOT_DIRECTORY;
 * - read-only: a probe file is written, fsynced and removed; EROFS/EACCES → E_STORE_READ_ONLY;
 * - full: ENOSPC on the probe, or less than `minFreeBytes` free → E_STORE_FULL.
 */
export async function prepareStoreDir(dir: string, options: PrepareStoreDirOptions = {}): Promise<void> {
  const minFreeBytes = options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
  let exists = true;
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) {
      throw new StoreError(StoreErrorCode.NotDirectory, `store path ${dir} exists but is not a directory`, dir);
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw storeErrorFromFs(error, dir, "checking the store directory");
    exists = false;
  }
  if (!exists) {
    const parent = dirname(dir);
    try {
      const st = await stat(parent);
      if (!st.isDirectory()) throw new Error("parent is not a directory");
    } catch {
      throw new StoreError(
        StoreErrorCode.DirMissing,
        `store directory ${dir} does not exist and neither does its parent ${parent}: is the data partition mounted? (store.dir in the config)`,
        dir,
      );
    }
    try {
      await mkdir(dir);
      await fsyncDir(parent);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw storeErrorFromFs(error, dir, "creating the store directory");
    }
  }

  const probe = join(dir, `.write-probe-${process.pid}`);
  try {
    const handle = await open(probe, "w");
    try {
      await handle.writeFile(Buffer.alloc(4096, 0x20));
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    // Best-effort cleanup: the error below is the one that matters.
    await unlink(probe).catch(() => undefined);
    throw storeErrorFromFs(error, dir, "writing a probe file at start");
  }
  // The probe proved the directory writable; a leftover probe file is harmless.
  await unlink(probe).catch(() => undefined);

  let freeBytes: number | undefined;
  try {
    const fsStat = await statfs(dir);
    freeBytes = Number(fsStat.bavail) * Number(fsStat.bsize);
  } catch {
    // statfs is missing on some file systems; the probe write above is the real check.
  }
  if (freeBytes !== undefined && freeBytes < minFreeBytes) {
    throw new StoreError(StoreErrorCode.Full, `store at ${dir} has ${freeBytes} bytes free, less than the ${minFreeBytes} it needs: free space on the card`, dir);
  }
}
