import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { chmod, chown, lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from "node:fs/promises";
import { ProvisionError, ProvisionErrorCode } from "./errors.js";
import { kindOf, readCapped, SAFE_READ_FLAGS } from "./stick-files.js";

/**
 * A directory on the box that provisioning (root) writes into, pinned by an open descriptor.
 *
 * /etc/lanekeeper is group-writable for the service (a config pushed over MQTT is renamed into
 * place there), so the service user could swap a subdirectory for a symlink between our check
 * and our write and have root write wherever it points. Every operation therefore goes through
 * `/proc/self/fd/<dir fd>/<name>`: the directory is the one we opened with O_NOFOLLOW, whatever
 * happens to its name afterwards, and every last component is opened with O_NOFOLLOW (a file
 * named like ours that is a symlink is refused, or replaced by the rename, never followed).
 */
export interface BoxOwner {
  uid: number;
  gid: number;
}

/** Files: root-owned, readable by the service's group, by nobody else (keys included). */
export const BOX_FILE_MODE = 0o640;
/** Subdirectories (mqtt/, platform/, update-keys/). */
export const BOX_SUBDIR_MODE = 0o750;
/** The config directory itself when provisioning has to create it (scripts/install.sh does normally). */
export const BOX_CONFIG_DIR_MODE = 0o2770;

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

function unsafe(path: string, what: string): ProvisionError {
  return new ProvisionError(ProvisionErrorCode.BoxUnsafe, `${path} is ${what}; provisioning writes only into real directories of the box`);
}

function checkName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0"))
    throw new ProvisionError(ProvisionErrorCode.BoxUnsafe, `"${name}" is not a plain file name`);
}

export class BoxDir {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly owner: BoxOwner | undefined,
  ) {}

  /**
   * Opens `path` (an absolute directory). `create`: make it (and missing parents) with `mode`
   * and the owner when it does not exist. Undefined when it does not exist and `create` is off.
   */
  static async open(path: string, owner: BoxOwner | undefined, create?: { mode: number }): Promise<BoxDir | undefined> {
    try {
      const st = await lstat(path);
      if (st.isSymbolicLink() || !st.isDirectory()) throw unsafe(path, kindOf(st));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      if (!create) return undefined;
      await mkdir(path, { recursive: true, mode: create.mode });
      if (owner) await chown(path, owner.uid, owner.gid);
      // chmod after chown: chown clears the setgid bit on some file systems.
      await chmod(path, create.mode);
    }
    let handle: FileHandle;
    try {
      handle = await open(path, DIR_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ELOOP" || code === "ENOTDIR") throw unsafe(path, "not a plain directory");
      throw error;
    }
    return new BoxDir(path, handle, owner);
  }

  /** The name inside this very directory, whatever its path now points at. */
  private at(name: string): string {
    checkName(name);
    return `/proc/self/fd/${this.handle.fd}/${name}`;
  }

  /** A subdirectory, created (mode, owner) when missing; a symlink or a file there is refused. */
  async sub(name: string, mode = BOX_SUBDIR_MODE): Promise<BoxDir> {
    let created = false;
    try {
      await mkdir(this.at(name), { mode });
      created = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), DIR_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ELOOP" || code === "ENOTDIR") throw unsafe(`${this.path}/${name}`, "not a plain directory");
      throw error;
    }
    if (created) {
      if (this.owner) await handle.chown(this.owner.uid, this.owner.gid);
      await handle.chmod(mode);
    }
    return new BoxDir(`${this.path}/${name}`, handle, this.owner);
  }

  /** An existing subdirectory, or undefined. */
  async existingSub(name: string): Promise<BoxDir | undefined> {
    try {
      const handle = await open(this.at(name), DIR_FLAGS);
      return new BoxDir(`${this.path}/${name}`, handle, this.owner);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      if (code === "ELOOP" || code === "ENOTDIR") throw unsafe(`${this.path}/${name}`, "not a plain directory");
      throw error;
    }
  }

  /** A regular file's bytes (at most `limitBytes`), or undefined when there is none. */
  async read(name: string, limitBytes: number): Promise<Buffer | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), SAFE_READ_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      if (code === "ELOOP") throw unsafe(`${this.path}/${name}`, "a symbolic link");
      throw error;
    }
    try {
      return await readCapped(handle, limitBytes);
    } catch (error) {
      if (error instanceof ProvisionError && error.code === ProvisionErrorCode.StickNotRegular)
        throw unsafe(`${this.path}/${name}`, error.message.replace(/^is /, "").replace(/, not a regular file$/, ""));
      throw error;
    } finally {
      // Read-only use is over (or already failed): a close error changes nothing.
      await handle.close().catch(() => undefined);
    }
  }

  /**
   * Replaces `name` durably: a new temp file (O_EXCL, O_NOFOLLOW) owned and moded before the
   * first byte, written, fsynced, renamed over the name, and the directory fsynced. After a
   * power cut the name holds the old bytes or the new ones.
   */
  async write(name: string, data: string | Uint8Array, mode = BOX_FILE_MODE): Promise<void> {
    checkName(name);
    const temp = `.${name}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const handle = await open(this.at(temp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      if (this.owner) await handle.chown(this.owner.uid, this.owner.gid);
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } catch (error) {
      // Best-effort cleanup: the error below is the one that matters.
      await handle.close().catch(() => undefined);
      // The temp file is never renamed into place, so one left behind is never read.
      await unlink(this.at(temp)).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      await rename(this.at(temp), this.at(name));
    } catch (error) {
      // Best-effort cleanup: the error below is the one that matters.
      await unlink(this.at(temp)).catch(() => undefined);
      throw error;
    }
    await this.sync();
  }

  /** Gives an existing file the owner and mode provisioning writes with; true when it changed. */
  async repair(name: string, mode = BOX_FILE_MODE): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), SAFE_READ_FLAGS);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) return false;
      const ownerWrong = this.owner !== undefined && (st.uid !== this.owner.uid || st.gid !== this.owner.gid);
      const modeWrong = (st.mode & 0o7777) !== mode;
      if (ownerWrong && this.owner) await handle.chown(this.owner.uid, this.owner.gid);
      // chmod after chown, which may clear set-id bits.
      if (ownerWrong || modeWrong) await handle.chmod(mode);
      return ownerWrong || modeWrong;
    } finally {
      // The chown/chmod went through a syscall each; a close error undoes neither.
      await handle.close().catch(() => undefined);
    }
  }

  async list(): Promise<string[]> {
    return readdir(`/proc/self/fd/${this.handle.fd}`);
  }

  async remove(name: string): Promise<void> {
    await unlink(this.at(name));
  }

  private async sync(): Promise<void> {
    try {
      await this.handle.sync();
    } catch (error) {
      // EINVAL: a file system that cannot fsync directories; the rename is still atomic.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EINVAL" && code !== "EBADF" && code !== "EISDIR") throw error;
    }
  }

  async close(): Promise<void> {
    // A directory descriptor: nothing was written through it that a close could lose.
    await this.handle.close().catch(() => undefined);
  }
}

/**
 * Who owns what provisioning writes: root and the service's group. `group` is a name or a gid;
 * a name that does not exist (a development machine without the lanekeeper user) falls back to
 * the group of the config directory, which scripts/install.sh makes root:lanekeeper. Run as
 * another user than root, files stay the caller's (chown would fail) and only the mode is set.
 */
export async function resolveOwner(group: string | number, configDir: string): Promise<{ owner: BoxOwner | undefined; note?: string }> {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) return { owner: undefined, note: "not running as root: files keep the caller's owner" };
  if (typeof group === "number") return { owner: { uid: 0, gid: group } };
  const gid = await lookupGroup(group);
  if (gid !== undefined) return { owner: { uid: 0, gid } };
  try {
    const st = await lstat(configDir);
    return { owner: { uid: 0, gid: st.gid }, note: `group ${group} does not exist; files get the config directory's group (${st.gid})` };
  } catch {
    throw new ProvisionError(ProvisionErrorCode.BoxGroup, `group ${group} does not exist and there is no ${configDir} to take a group from (run scripts/install.sh first)`);
  }
}

function lookupGroup(name: string): Promise<number | undefined> {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(name)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile("getent", ["group", name], { timeout: 5000 }, (error, stdout) => {
      const gid = Number(stdout.split(":")[2]);
      resolve(error || !Number.isInteger(gid) ? undefined : gid);
    });
  });
}
