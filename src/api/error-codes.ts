/**
 * Every error code the local API answers with (`{"error":{"code","message"}}`), by the part of
 * the box that refuses. The code is the contract: the panel translates it (panel/i18n.js,
 * group `error`) and never shows the English `message` inside its Chinese text; a client
 * switches on it. A test keeps this list, the sources and the panel's texts in step.
 */
export const apiErrorCodes = {
  /** The request pipeline every route shares (README "What a refused request looks like"). */
  pipeline: [
    "E_BAD_REQUEST",
    "E_BAD_URL",
    "E_BAD_PARAM",
    "E_JSON",
    "E_JSON_DEPTH",
    "E_CONTENT_TYPE",
    "E_EXPECTATION",
    "E_ABORTED",
    "E_AUTH",
    "E_NOT_FOUND",
    "E_METHOD",
    "E_TIMEOUT",
    "E_HEADERS_TOO_LARGE",
    "E_TOO_LARGE",
    "E_BUSY",
    "E_INTERNAL",
  ],
  /** The camera's HTTP push. */
  camera: ["E_CAMERA_KEY", "E_CAMERA_KEY_REQUIRED", "E_UNKNOWN_LANE", "E_SHAPE", "E_PLATE"],
  /** Attendant commands: the route's own checks and what the lanes answer. */
  commands: ["E_COMMAND", "E_REASON_REQUIRED", "E_LANE_UNKNOWN", "E_BAD_COMMAND", "E_NOT_EXIT", "E_NO_VEHICLE", "E_PAID_ONLINE"],
  /** The attendant's plate correction (src/lanes/plate-correction.ts). */
  corrections: ["E_CORRECTION", "E_BAD_PLATE", "E_SAME_PLATE", "E_NOT_CORRECTABLE"],
  /** The cameras' photos. */
  photos: ["E_PHOTO_ID", "E_NO_PHOTO"],
  refunds: ["E_REFUND", "E_REFUND_FILTER", "E_REFUND_NOT_FOUND", "E_REFUND_ALREADY_REFUNDED"],
  shifts: ["E_SHIFT", "E_SHIFT_FILTER", "E_SHIFT_NOT_FOUND", "E_SHIFT_OPEN", "E_NO_OPEN_SHIFT", "E_SHIFT_REPORT_GONE", "E_SHIFTS_NOT_STARTED"],
  records: ["E_RECORDS_QUERY", "E_RECORD_NOT_FOUND"],
  panel: ["E_TOO_MANY_STREAMS"],
  /** The simulator's routes (sim mode only). */
  simulator: ["E_LEVEL", "E_COLOR", "E_CONFIDENCE", "E_CODE", "E_LINK_DOWN", "E_REJECTED", "E_NOT_DELIVERED", "E_NO_SIM_CAMERA", "E_NO_SIM_SCANNER"],
} as const satisfies Record<string, readonly string[]>;
