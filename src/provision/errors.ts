import type { ConfigProblem } from "../config/load.js";

/**
 * Stable codes for what provisioning refuses. They appear in the report on the stick, in the
 * box's copy of it (surfaced at /api/status) and in the log, so a fleet console or an installer
 * can tell "the stick tried to set a command" from "the stick has a symlink" without parsing prose.
 * Schema mistakes in lanekeeper.json carry no code: their path and message say it all.
 */
export const ProvisionErrorCode = {
  /** A file or directory on the stick is a symbolic link (it could point at the box's own files). */
  StickSymlink: "E_STICK_SYMLINK",
  /** A device node, FIFO or socket where a regular file (or a directory) belongs. */
  StickNotRegular: "E_STICK_NOT_REGULAR",
  StickTooLarge: "E_STICK_TOO_LARGE",
  StickTooMany: "E_STICK_TOO_MANY_FILES",
  StickUnreadable: "E_STICK_UNREADABLE",
  /** lanekeeper.json nests deeper than any config does. */
  StickTooDeep: "E_STICK_TOO_DEEP",
  /** A field only the box sets (a directory, a command) with a value other than the box's. */
  BoxOwnedField: "E_STICK_BOX_OWNED",
  /** A field naming a file or a command that the stick may not set at all. */
  PathField: "E_STICK_PATH_FIELD",
  /** A serial device path outside /dev. */
  DevicePath: "E_STICK_DEVICE_PATH",
  /** A directory or file on the box is a symlink or of the wrong type; nothing is written through it. */
  BoxUnsafe: "E_BOX_PATH_UNSAFE",
  BoxWrite: "E_BOX_WRITE",
  BoxGroup: "E_BOX_GROUP",
  Internal: "E_PROVISION_INTERNAL",
} as const;
export type ProvisionErrorCode = (typeof ProvisionErrorCode)[keyof typeof ProvisionErrorCode];

export class ProvisionError extends Error {
  override readonly name = "ProvisionError";
  constructor(
    readonly code: ProvisionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One line of the report's problem list: a config problem, or a stick/box problem with its code. */
export interface ProvisionProblem extends ConfigProblem {
  code?: ProvisionErrorCode;
}

/** The problem for an error thrown while reading or writing `path` (codes kept, the rest plain). */
export function problemFromError(path: string, error: unknown, fallback: ProvisionErrorCode): ProvisionProblem {
  if (error instanceof ProvisionError) return { path, message: error.message, code: error.code };
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EROFS" ? "read-only file system" : code === "ENOSPC" ? "no space left" : (error as Error).message;
  return { path, message: `cannot ${fallback === ProvisionErrorCode.StickUnreadable ? "read" : "write"}: ${why}`, code: fallback };
}
