/**
 * Stable codes for every way an update or a bundle check can fail. They travel in the job
 * status (`jobs/<jobId>/status`, docs/mqtt.md) so a fleet console can group failures
 * without parsing prose; the message says the specific reason.
 */
export const UpdateErrorCode = {
  JobInvalid: "E_JOB_INVALID",
  JobExpired: "E_JOB_EXPIRED",
  Downgrade: "E_DOWNGRADE",
  Busy: "E_BUSY",
  LanesBusy: "E_LANES_BUSY",
  Download: "E_DOWNLOAD",
  Size: "E_SIZE",
  Hash: "E_HASH",
  BundleFormat: "E_BUNDLE_FORMAT",
  ManifestInvalid: "E_MANIFEST_INVALID",
  Signature: "E_SIGNATURE",
  UnknownKey: "E_UNKNOWN_KEY",
  FileHash: "E_FILE_HASH",
  FileMissing: "E_FILE_MISSING",
  FileExtra: "E_FILE_EXTRA",
  UnsafePath: "E_UNSAFE_PATH",
  Incompatible: "E_INCOMPATIBLE",
  /** A native file (ELF) of the bundle is built for another machine than the box. */
  WrongArchitecture: "E_WRONG_ARCH",
  Unpack: "E_UNPACK",
  Switch: "E_SWITCH",
  Restart: "E_RESTART",
  Unhealthy: "E_UNHEALTHY",
  /** The new release kept dying before its health window; the boot guard switched back. */
  BootFailed: "E_BOOT_FAILED",
  Interrupted: "E_INTERRUPTED",
  Rollback: "E_ROLLBACK",
  Aborted: "E_ABORTED",
} as const;
export type UpdateErrorCode = (typeof UpdateErrorCode)[keyof typeof UpdateErrorCode];

export class UpdateError extends Error {
  override readonly name = "UpdateError";
  constructor(
    readonly code: UpdateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The code and a one-line reason for any thrown value (status messages carry both). */
export function describeError(error: unknown, fallback: UpdateErrorCode): { code: UpdateErrorCode; reason: string } {
  if (error instanceof UpdateError) return { code: error.code, reason: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: fallback, reason: message };
}
