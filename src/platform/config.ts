import { z } from "zod";

/**
 * Section-4 interfaces (cloud → lot) by our internal id. The names the document states are
 * [DOC]; every other one is [OURS] (docs/protocol.md) and configurable, since the vendor's
 * real names are missing from the text we have (docs/protocol.md §4).
 */
export const section4ServiceIds = [
  "queryParkFee", // 4.1 [DOC]
  "payNotify", // 4.2 [OURS]
  "unlicensedReq", // 4.3 [DOC]
  "queryMonthlyRent", // 4.4 [DOC]
  "monthlyPayNotify", // 4.5 [OURS]
  "queryInPark", // 4.6 [OURS]
  "issueCoupon", // 4.7 [OURS]
  "queryFreeSpace", // 4.8 [OURS]
  "queryBlacklist", // 4.9.1 [OURS]
  "addBlacklist", // 4.9.2 [OURS]
  "deleteBlacklist", // 4.9.3 [OURS]
  "queryCarGroupPage", // 4.10.1 [OURS]
  "addCarGroup", // 4.10.2 [OURS]
  "editCarGroup", // 4.10.3 [OURS]
  "deleteCarGroup", // 4.10.4 [OURS]
  "rechargeCarGroup", // 4.10.5 [OURS]
  "queryCarPage", // 4.11.1 [DOC]
  "addCar", // 4.11.2 [DOC]
  "editCar", // 4.11.3 [DOC]
  "deleteCar", // 4.11.4 [OURS]
  "changeCarNum", // 4.11.5 [OURS]
  "rechargeCar", // 4.11.6 [OURS]
  "freezeCar", // 4.11.7 [OURS]
  "unfreezeCar", // 4.11.8 [OURS]
  "clearCar", // 4.11.9 [OURS]
  "refundCar", // 4.11.10 [OURS]
  "remoteDev", // 4.12 [DOC]
  "queryParkRecordPage", // 4.13.1 [OURS]
  "editParkRecord", // 4.13.2 [OURS]
  "deleteParkRecord", // 4.13.3 [OURS]
  "addParkRecord", // 4.13.4 [OURS]
] as const;
export type Section4ServiceId = (typeof section4ServiceIds)[number];

/** Section-3 pushes (lot → cloud) by our internal id. */
export const section3ServiceIds = ["enterNotify", "leaveNotify", "preLeaveNotify", "preEnterNotify"] as const;
export type Section3ServiceId = (typeof section3ServiceIds)[number];

const serviceNameSchema = z.string().min(1).max(30);

const section4NamesSchema = z
  .strictObject(
    Object.fromEntries(section4ServiceIds.map((id) => [id, serviceNameSchema.default(id)])) as {
      [K in Section4ServiceId]: z.ZodDefault<typeof serviceNameSchema>;
    },
  )
  .prefault({})
  .refine((names) => new Set(Object.values(names)).size === section4ServiceIds.length, {
    message: "two section-4 interfaces share one serviceName",
  });

/**
 * Our answer codes for section-4 rejections. The vendor's table (doc section 5) is missing,
 * so these are placeholders, listed in docs/protocol.md §5, overridable.
 */
export const defaultReturnCodes = {
  success: 200,
  badJson: 4001,
  badContentType: 4002,
  tooLarge: 4003,
  badEnvelope: 4004,
  unknownService: 4005,
  badSign: 4006,
  staleTimestamp: 4007,
  wrongPid: 4008,
  wrongParkCode: 4009,
  badBizContent: 4010,
  replay: 4011,
  forbidden: 4030,
  denied: 4031,
  notFound: 4040,
  noVehicle: 4041,
  conflict: 4090,
  expired: 4100,
  laneInvalid: 4220,
  lotFull: 4230,
  busy: 4290,
  internal: 5000,
  unavailable: 5030,
  boxUnreachable: 5040,
} as const;
export type ReturnCodeName = keyof typeof defaultReturnCodes;

const returnCodesSchema = z
  .strictObject(
    Object.fromEntries(Object.entries(defaultReturnCodes).map(([name, code]) => [name, z.int().default(code)])) as {
      [K in ReturnCodeName]: z.ZodDefault<z.ZodInt>;
    },
  )
  .prefault({})
  .refine((codes) => Object.entries(codes).every(([name, code]) => name === "success" || code !== codes.success), {
    message: "an error code must differ from the success code",
  });

/**
 * Dictionaries whose appendix (doc section 6) is missing: our values, all configurable
 * (docs/protocol.md §6).
 */
const dictionariesSchema = z
  .strictObject({
    /** Main vehicle types (carType) that are monthly-rent cars [INFERRED: 8]. */
    monthlyCarTypes: z.array(z.int()).default([8]),
    /** Main vehicle types that are stored-value cars [OURS: 7; vendor value missing]. */
    storedValueCarTypes: z.array(z.int()).default([7]),
    /** Temporary (pay-per-stay) car type and concrete type [INFERRED: 9 / 91]. */
    temporaryCarType: z.int().default(9),
    temporaryCarSubType: z.int().default(91),
    /** Pay types of the 3.3 response and of leaveNotify (docs/protocol.md §6): 0 none, 1 WeChat, 2 Alipay, 3 balance, 4 cash. */
    payTypes: z
      .strictObject({
        none: z.int().default(0),
        wechat: z.int().default(1),
        alipay: z.int().default(2),
        balance: z.int().default(3),
        cash: z.int().default(4),
      })
      .prefault({}),
    /** leaveNotify releaseType [OURS]: 0 normal, 1 free, 2 abnormal, 3 manual. */
    releaseTypes: z
      .strictObject({
        normal: z.int().default(0),
        free: z.int().default(1),
        abnormal: z.int().default(2),
        manual: z.int().default(3),
      })
      .prefault({}),
  })
  .prefault({});

/** The built-in cloud stand-in (`lanekeeper emulator`, `npm start`). */
const emulatorSchema = z
  .strictObject({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.int().min(0).max(65_535).default(8090),
    /** Plates whose pre-exit bill the "cloud" collects at once (frictionless payment). */
    frictionlessPlates: z.array(z.string().min(1)).default([]),
    /** payType the emulator answers for frictionless and scanner payments (1 WeChat). */
    payType: z.int().default(1),
    /** Timestamp window of the emulator's own check; 0 turns the check off. */
    timestampWindowS: z.int().min(0).max(86_400).default(300),
  })
  .prefault({});

/** The cloud platform link: credentials, URLs, service names, deadlines (docs/protocol.md §1). */
export const platformConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Base URL of the cloud side; with pathStyle "single" every service is POSTed here. */
  baseUrl: z.url({ protocol: /^https?$/ }),
  pathStyle: z.enum(["single", "per-service"]).default("single"),
  /** Used with pathStyle "per-service"; `{service}` is replaced by the serviceName. */
  pathTemplate: z.string().default("/api/{service}"),
  /** Explicit path (or absolute URL) for one serviceName; wins over pathStyle. */
  servicePaths: z.record(z.string(), z.string().min(1)).default({}),
  pid: z.string().min(1).max(20),
  key: z.string().min(1),
  /**
   * A private CA (PEM) trusted for an https baseUrl besides the system's CAs, and a client
   * certificate with its key for a cloud that asks for one. Read once at start.
   */
  caFile: z.string().min(1).optional(),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  /**
   * How bizContent goes on the wire: a nested object (most of the document's examples) or a
   * JSON string (4.12's example). Either way the signed text is the same (docs/protocol.md §1).
   */
  bizContentForm: z.enum(["object", "string"]).default("object"),
  serviceNames: z
    .strictObject({
      enterNotify: serviceNameSchema.default("enterNotify"),
      leaveNotify: serviceNameSchema.default("leaveNotify"),
      preLeaveNotify: serviceNameSchema.default("preLeaveNotify"),
      preEnterNotify: serviceNameSchema.default("preEnterNotify"),
    })
    .prefault({}),
  deadlines: z
    .strictObject({
      preLeaveMs: z.int().min(100).max(60_000).default(3000),
      preEnterMs: z.int().min(100).max(60_000).default(3000),
      reportMs: z.int().min(100).max(120_000).default(5000),
      /**
       * A pre-leave bill's call stays open this long in all (preLeaveMs decides what the lane
       * shows; a 200 heard later is still money taken: the barrier opens as a platform payment,
       * or, after cash, a double payment is recorded).
       */
      lateAnswerMs: z.int().min(100).max(600_000).default(30_000),
      /** Before cash is taken for a bill whose call timed out, the platform is asked once more, this briefly. */
      cashCheckMs: z.int().min(100).max(10_000).default(1500),
      /** A timed-out bill is asked again while its car waits: first after this, doubling up to reaskMaxMs. */
      reaskFirstMs: z.int().min(100).max(60_000).default(2000),
      reaskMaxMs: z.int().min(100).max(300_000).default(15_000),
    })
    .prefault({})
    .refine((d) => d.lateAnswerMs >= d.preLeaveMs, { message: "lateAnswerMs must be at least preLeaveMs (the window includes the deadline)", path: ["lateAnswerMs"] })
    .refine((d) => d.reaskMaxMs >= d.reaskFirstMs, { message: "reaskMaxMs must be at least reaskFirstMs", path: ["reaskMaxMs"] }),
  /** Connection reuse towards the cloud (undici pool). */
  client: z
    .strictObject({
      connections: z.int().min(1).max(64).default(4),
      keepAliveTimeoutMs: z.int().min(100).max(600_000).default(30_000),
    })
    .prefault({}),
  /** Section-4 requests from the cloud (open interfaces). */
  server: z
    .strictObject({
      path: z.string().startsWith("/").default("/platform"),
      timestampWindowS: z.int().min(1).max(86_400).default(300),
      /** false: a request outside the window is logged and answered anyway (docs/protocol.md §2). */
      rejectStaleTimestamps: z.boolean().default(true),
      /** A section-4 request is a few hundred bytes (no interface carries a list); 64 KiB is ample. */
      bodyLimitBytes: z
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .default(64 * 1024),
      /** Signatures remembered to refuse replays inside the timestamp window (docs/protocol.md). */
      replayCacheMax: z.int().min(100).max(1_000_000).default(10_000),
      /** Largest page a paged query returns; larger requests are clamped. */
      maxPageSize: z.int().min(1).max(10_000).default(100),
      /** 4.11.9 "clear all vehicles" is destructive: off unless switched on here. */
      allowClearAllVehicles: z.boolean().default(false),
      /** Coupons (4.7) a single stay may hold. */
      maxCouponsPerStay: z.int().min(1).max(100).default(1),
      serviceNames: section4NamesSchema,
      returnCodes: returnCodesSchema,
    })
    .prefault({}),
  dictionaries: dictionariesSchema,
  emulator: emulatorSchema,
});
export type PlatformConfig = z.infer<typeof platformConfigSchema>;
export type PlatformConfigInput = z.input<typeof platformConfigSchema>;
