import { z } from "zod";

/**
 * The lanes' policy schema (the `policy` section of the config): what the lanes decide
 * locally and when they ask the platform (docs/architecture.md, "How one car travels through
 * the box"). Every key has a default, so a config without it works.
 */
export const policyConfigSchema = z
  .strictObject({
    entry: z
      .strictObject({
        /** Ask the platform first (preEnterNotify, then remoteDev decides) for no car, temporary cars only, or every car. */
        confirmWithPlatform: z.enum(["never", "temporary", "all"]).default("never"),
        /** What happens when the platform has not decided within `platform.deadlines.preEnterMs` + this. */
        confirmWaitMs: z.int().min(0).max(120_000).default(15_000),
        confirmDefault: z.enum(["allow", "deny"]).default("allow"),
        /** A plate already in the lot enters again: replace the old stay, or refuse and call the attendant. */
        duplicateEntry: z.enum(["replace", "deny"]).default("replace"),
        /** A plate-less read (`_无_`) or a car with no read: call the attendant (unlicensed cars scan the QR code). */
        noPlate: z.enum(["attendant", "deny"]).default("attendant"),
      })
      .prefault({}),
    exit: z
      .strictObject({
        /** No in-park record for the plate: charge a flat amount, or call the attendant. */
        noRecord: z
          .strictObject({
            mode: z.enum(["charge", "attendant"]).default("charge"),
            amountFen: z.int().min(0).default(1000),
          })
          .prefault({}),
        fuzzy: z
          .strictObject({
            /** Characters that may differ (first and last fixed); 0 turns fuzzy matching off. */
            maxDifferences: z.int().min(0).max(2).default(1),
            ignoreProvince: z.boolean().default(true),
            misreads: z.boolean().default(true),
          })
          .prefault({}),
        /**
         * The entry lane's channel reported (enterNotify `inChannelid`) for a stay made at an
         * exit for a car with no entry record: no entry lane saw it, so not the exit's own.
         */
        unknownEntryChannel: z.string().max(32).default(""),
        /** Also push a zero bill with preLeaveNotify (some platforms want every exit). */
        pushZeroBill: z.boolean().default(false),
        /** A stay longer than this is flagged and billed to this length (a clock jump, a lost record). */
        maxStayDays: z.int().min(1).max(3650).default(90),
        /**
         * A stay found paid (or released) at start whose car was not seen leaving (a stop between
         * the open and the passage): held this long for the car to be read at an exit, then
         * finished as left at its bill's time and reported.
         */
        settledHoldMs: z.int().min(1000).max(86_400_000).default(900_000),
        /**
         * Such a stay's car read at an exit after all, within this long of its payment: the
         * stay is resumed (what it paid counts as a prepayment) instead of the "no entry
         * record" rule. 0 turns it off.
         */
        settledResumeMs: z
          .int()
          .min(0)
          .max(30 * 86_400_000)
          .default(86_400_000),
      })
      .prefault({}),
    /** Fixed (monthly) cars: grace days after expiry before they pay as temporary cars. */
    fixedCarGraceDays: z.int().min(0).max(366).default(0),
    /** Vehicle type billed when nothing says otherwise (small, large, nev). */
    defaultVehicleType: z.enum(["small", "large", "nev"]).default("small"),
    /** Unlicensed-car requests repeated within this window get the same answer (unlicensedReq, docs/protocol.md 4.3). */
    unlicensedRepeatMs: z.int().min(0).max(120_000).default(10_000),
  })
  .prefault({});
