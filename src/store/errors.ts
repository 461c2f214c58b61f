/**
 * Typed store errors with stable codes. Callers switch on `code`, never
 * on the message; the message says what to do about it, because it ends up in the journal
 * and on the installer's screen.
 */
export const StoreErrorCode = {
  /** The store directory does not exist and neither does its parent. */
  DirMissing: "E_STORE_DIR_MISSING",
  /** The store path exists but is not a directory. */
  NotDirectory: "E_STORE_NOT_DIRECTORY",
  /** The file system refuses writes (EROFS, EACCES, EPERM). */
  ReadOnly: "E_STORE_READ_ONLY",
  /** No space or quota left (ENOSPC, EDQUOT), or less free space than the configured minimum. */
  Full: "E_STORE_FULL",
  /** Any other I/O failure. */
  Io: "E_STORE_IO",
  /** Neither the newest nor the previous generation of a document could be loaded. */
  Corrupt: "E_STORE_CORRUPT",
  /** A document existed once (its birth marker is there) but both generations are gone. */
  DataMissing: "E_STORE_DATA_MISSING",
  /** The document was written by a newer release; refusing rather than losing its fields. */
  VersionNewer: "E_STORE_VERSION_NEWER",
  /** A value handed to the store does not match its schema; nothing was changed. */
  Invalid: "E_STORE_INVALID",
  /** The key already exists where a new one was required (e.g. a second stay with one recordNo). */
  Duplicate: "E_STORE_DUPLICATE",
  /** No item with that key. */
  NotFound: "E_STORE_NOT_FOUND",
  /**
   * The durable write failed; the change is held in memory and persisted when the disk
   * recovers (retried in the background, alarm raised in status).
   */
  HeldInMemory: "E_STORE_HELD_IN_MEMORY",
  /** The store is not started or already stopped. */
  Closed: "E_STORE_CLOSED",
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  return error instanceof StoreError && (code === undefined || error.code === code);
}

/** Maps a node fs error to the store's codes, with a message an installer can act on. */
export function storeErrorFromFs(error: unknown, path: string, doing: string): StoreError {
  if (error instanceof StoreError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  const detail = error instanceof Error ? error.message : String(error);
  switch (errno) {
    case "EROFS":
    case "EACCES":
    case "EPERM":
      return new StoreError(
        StoreErrorCode.ReadOnly,
        `store at ${path} is not writable while ${doing} (${errno}): check the mount (read-only after an SD card error?) and the owner of the directory`,
        path,
        { cause: error },
      );
    case "ENOSPC":
    case "EDQUOT":
      return new StoreError(
        StoreErrorCode.Full,
        `store at ${path} is full while ${doing} (${errno}): free space on the card (old logs, releases) or lower store.historyRetentionDays`,
        path,
        { cause: error },
      );
    case "ENOENT":
      return new StoreError(StoreErrorCode.DirMissing, `store path ${path} vanished while ${doing}: ${detail}`, path, { cause: error });
    case "ENOTDIR":
      return new StoreError(StoreErrorCode.NotDirectory, `store path ${path} is not a directory (${doing})`, path, { cause: error });
    default:
      return new StoreError(StoreErrorCode.Io, `store I/O error at ${path} while ${doing}: ${detail}`, path, { cause: error });
  }
}

/** One thing the store noticed and wants a human to see (in /api/status and the log). */
export interface StoreWarning {
  atMs: number;
  /** Stable kind: corrupt-newest, missing-newest, torn-tail, bad-line, prune-refused, ... */
  code: string;
  file: string;
  detail: string;
  /** Where the bad file was kept aside, when it was. */
  quarantinedAs?: string;
}

/** A condition that is ongoing (cleared when it ends), as opposed to a one-off warning. */
export interface StoreAlarm {
  code: StoreErrorCode;
  message: string;
  sinceMs: number;
}
