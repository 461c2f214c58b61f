import { spawnSync } from "node:child_process";
import { mkdtempSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's root (the folder holding package.json and node_modules). */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

export interface ReachableRepo {
  /** Where another user's process finds the checkout (the checkout itself, or a bind mount of it). */
  readonly root: string;
  /** The same file, seen from `root`. */
  path(file: string): string;
  release(): void;
}

/**
 * A checkout another (unprivileged) user can walk into. A clone in a 0700 home directory, as
 * Debian 12 makes them, cannot be entered by the service's user, so a child dropped to that
 * user cannot load tsx or the sources. Then (as root) the checkout is bind-mounted read-only
 * under the temp directory for the test's duration; the checkout's own modes are left alone.
 */
export function reachableRepo(): ReachableRepo {
  const identity: ReachableRepo = { root: repoRoot, path: (file) => file, release: () => undefined };
  if (ancestorsTraversable(repoRoot)) return identity;
  const mountPoint = mkdtempSync(join(tmpdir(), "lk-repo-"));
  const mounted = spawnSync("mount", ["--bind", "-o", "ro", repoRoot, mountPoint], { encoding: "utf8" });
  if (mounted.status !== 0) {
    rmdirSync(mountPoint);
    throw new Error(`the checkout ${repoRoot} is not reachable by other users and bind-mounting it failed: ${mounted.stderr}`);
  }
  return {
    root: mountPoint,
    path: (file) => join(mountPoint, relative(repoRoot, file)),
    release() {
      spawnSync("umount", [mountPoint]);
      rmdirSync(mountPoint);
    },
  };
}

/** Whether every folder from `/` down to `dir` may be entered by others (mode o+x). */
function ancestorsTraversable(dir: string): boolean {
  for (let current = dir; ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) return false;
    if (dirname(current) === current) return true;
  }
}
