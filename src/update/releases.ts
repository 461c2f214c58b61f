import { lstat, mkdir, readdir, readlink, rm, symlink, rename } from "node:fs/promises";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { fsyncDir } from "./durable.js";
import { compareVersions, isVersion } from "./version.js";

/**
 * The on-disk layout (systemd/README.md "Release bundles", scripts/install.sh):
 *   <root>/current -> releases/<version>   the release systemd starts
 *   <root>/releases/<version>/             unpacked, verified releases
 *   <root>/staging/<version>.tar           downloads (partial ones are resumed)
 *   <root>/update-state.json               the durable job state
 */
export const CURRENT_LINK = "current";

export function releaseTarget(version: string): string {
  return `releases/${version}`;
}

export function resolveTarget(root: string, target: string): string {
  return resolve(root, target);
}

/** Where `current` points (the link text), or null when there is no link. */
export async function readCurrentTarget(root: string): Promise<string | null> {
  try {
    return await readlink(join(root, CURRENT_LINK));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EINVAL") return null;
    throw error;
  }
}

export function sameTarget(root: string, a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false;
  return resolveTarget(root, a) === resolveTarget(root, b);
}

/**
 * Points `current` at `target` atomically: a new link under a temp name, then rename over the
 * old one (rename(2) replaces a symlink in one step; `ln -sfn` unlinks first and leaves a gap).
 * `beforeRename` lets a test stop the process between the two.
 */
export async function switchCurrent(root: string, target: string, beforeRename?: () => Promise<void> | void): Promise<void> {
  const temp = join(root, `.current.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  await symlink(target, temp);
  try {
    await beforeRename?.();
    await rename(temp, join(root, CURRENT_LINK));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDir(root);
}

/** Removes leftovers of interrupted work: temp links and half-unpacked release dirs. */
export async function removeTempLeftovers(root: string): Promise<string[]> {
  const removed: string[] = [];
  for (const [dir, prefix] of [
    [root, ".current.tmp-"],
    [join(root, "releases"), ".tmp-"],
  ] as const) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => n.startsWith(prefix))) {
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(join(dir, name));
    }
  }
  return removed;
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Keeps at most `keep` releases: the oldest versions go first; a protected release (the current
 * and the previous one) is never removed, even if that leaves more than `keep`.
 */
export async function pruneReleases(root: string, keep: number, protect: readonly string[]): Promise<string[]> {
  const dir = join(root, "releases");
  await mkdir(dir, { recursive: true });
  const protectedPaths = new Set(protect.map((p) => resolveTarget(root, p)));
  const versions = (await readdir(dir)).filter((name) => isVersion(name)).sort(compareVersions);
  const removed: string[] = [];
  let count = versions.length;
  for (const version of versions) {
    if (count <= keep) break;
    const path = join(dir, version);
    if (protectedPaths.has(path) || !(await isDirectory(path))) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(version);
    count--;
  }
  if (removed.length > 0) await fsyncDir(dir);
  return removed;
}
