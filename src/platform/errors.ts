/**
 * Stable codes for everything the platform layer refuses or fails at. Callers branch on
 * `code`, never on message text (zwave-js's ZWaveError + ZWaveErrorCodes is the model).
 */
export const PlatformErrorCode = {
  /** The body is not JSON, or not a JSON object. */
  BadJson: "E_PLATFORM_JSON",
  /** A required envelope field is missing, duplicated or of the wrong type. */
  BadEnvelope: "E_PLATFORM_ENVELOPE",
  /** The envelope carries no sign. */
  MissingSign: "E_PLATFORM_SIGN_MISSING",
  /** The sign does not match the one computed over the received text. */
  BadSign: "E_PLATFORM_SIGN",
  /** The timestamp is outside the accepted window (either direction). */
  StaleTimestamp: "E_PLATFORM_TIMESTAMP",
  /** bizContent failed its interface's schema. */
  BadBizContent: "E_PLATFORM_BIZ",
  /** A value could not be encoded strictly (NaN, a function, a cycle...). */
  Encode: "E_PLATFORM_ENCODE",
} as const;
export type PlatformErrorCode = (typeof PlatformErrorCode)[keyof typeof PlatformErrorCode];

export class PlatformError extends Error {
  constructor(
    readonly code: PlatformErrorCode,
    message: string,
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "PlatformError";
  }
}

export function isPlatformError(error: unknown, code?: PlatformErrorCode): error is PlatformError {
  return error instanceof PlatformError && (code === undefined || error.code === code);
}
