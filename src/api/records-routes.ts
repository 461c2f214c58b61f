import { z } from "zod";
import { ApiError, type HttpServer } from "./http-server.js";
import type { Clock } from "../kernel/clock.js";
import type { LaneService } from "../lanes/lanes.js";
import type { LotStore } from "../store/lot-store.js";
import type { Outbox } from "../outbox/outbox.js";
import type { FinishedStay, InParkRecord } from "../store/records.js";
import { recordHistory, searchFinishedStays } from "../store/stay-search.js";
import { matchPlate, normalisePlate, plateMatchesSearch } from "../core/plates/index.js";

/*
 * The booth's records: a search over the stays in the lot and the finished ones in the
 * history, and one stay's whole history as the box knows it. Read-only: nothing here writes.
 */

export const recordStatuses = ["in-park", "paid", "unpaid", "released"] as const;
type RecordStatus = (typeof recordStatuses)[number];

/** Epoch milliseconds, or an ISO 8601 date-time with its zone (a time without one is ambiguous on a box in another zone). */
const instant = z.string().transform((text, ctx) => {
  if (/^-?\d{1,16}$/.test(text)) {
    const ms = Number(text);
    if (Number.isSafeInteger(ms)) return ms;
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return ms;
  }
  ctx.addIssue({ code: "custom", message: "must be epoch milliseconds or an ISO 8601 date-time with a zone (2024-05-01T08:00:00+08:00)" });
  return z.NEVER;
});

const positiveInt = (max: number) =>
  z
    .string()
    .regex(/^\d{1,6}$/, "must be a whole number")
    .transform(Number)
    .pipe(z.int().min(1).max(max));

const searchSchema = z
  .strictObject({
    plate: z.string().trim().max(32, "at most 32 characters").optional(),
    from: instant.optional(),
    to: instant.optional(),
    status: z.enum(recordStatuses).optional(),
    page: positiveInt(10_000).optional(),
    pageSize: positiveInt(200).optional(),
    /** The first release's name for pageSize, kept for its callers. */
    limit: positiveInt(500).optional(),
    /** The token, for a browser link (checked by the server before this route). */
    access_token: z.string().optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from < q.to, { message: "from must be before to", path: ["from"] });

/** One row of the search: a stay, in the lot or finished, with what the booth reads at a glance. */
export interface RecordRow {
  recordNo: string;
  plate: string;
  laneId: string;
  enterAtMs: number;
  vehicleType: string;
  status: RecordStatus | "free" | "cancelled";
  /** Whole stay for a finished one; so far for one in the lot. */
  stayMs: number;
  leaveAtMs: number | null;
  exitLaneId: string | null;
  payableFen: number;
  /** Collected at the exit and beforehand (prepayments). */
  paidFen: number;
  /** What the stay still owes: its bill less discounts and payments (0 for a stay in the lot without a bill). */
  owedFen: number;
  exitReason: string | null;
  operator: string | null;
  /** How the plate query found it: its text contains the query, or it differs by a misread. */
  match: "all" | "contains" | "fuzzy";
}

interface RecordsRoutesSource {
  store: LotStore;
  outbox: Outbox;
  lanes: LaneService;
  clock: Clock;
}

/** Reads and bytes a search may spend on the history (a booth PC asks often; a box is small). */
const historyBudget = { maxBytes: 32 * 1024 * 1024 };

/**
 * `GET /api/records`: search; `GET /api/records/:recordNo`: one stay's history. Both are
 * reads (`api.openReads`); a bad query is a 400 E_RECORDS_QUERY that changes nothing.
 */
export function registerRecordsRoutes(http: HttpServer, app: RecordsRoutesSource): void {
  http.route("GET", "/api/records", async ({ url, send }) => {
    const query = parseSearch(url.searchParams);
    const now = app.clock.now();
    const pageSize = query.pageSize ?? query.limit ?? 50;
    const page = query.page ?? 1;
    const offset = (page - 1) * pageSize;
    const wanted = offset + pageSize + 1;
    const plateOf = plateMatcher(query.plate);

    const inParkRows: Array<{ row: RecordRow; record: InParkRecord }> = [];
    if (query.status === undefined || query.status === "in-park") {
      // Without a page request the store lists every stay in the lot (a lot holds thousands at most).
      for (const record of app.store.listInPark().items) {
        const match = plateOf(record.plate);
        if (!match) continue;
        if (query.to !== undefined && record.enterAtMs >= query.to) continue;
        inParkRows.push({ row: inParkRow(record, now, match), record });
      }
      inParkRows.sort((a, b) => b.row.enterAtMs - a.row.enterAtMs || a.row.recordNo.localeCompare(b.row.recordNo));
    }
    const finished: Array<{ row: RecordRow; stay: FinishedStay }> = [];
    if (query.status !== "in-park" && inParkRows.length < wanted) {
      const rows = new Map<string, RecordRow>();
      const found = await searchFinishedStays(
        app.store.history,
        (stay) => {
          if (query.to !== undefined && stay.enterAtMs >= query.to) return false;
          // The exit's read counts too: a stay matched fuzzily at the exit is found by either plate.
          const match = plateOf(stay.plate) ?? (stay.exit.exitPlate ? plateOf(stay.exit.exitPlate) : undefined);
          if (!match) return false;
          const row = finishedRow(stay, match);
          if (!statusFits(row, stay, query.status)) return false;
          rows.set(stay.recordNo, row);
          return true;
        },
        { limit: wanted - inParkRows.length, ...(query.from !== undefined ? { leftSinceMs: query.from } : {}), ...historyBudget },
      );
      for (const stay of found) finished.push({ row: rows.get(stay.recordNo)!, stay });
    }
    const all: Array<{ row: RecordRow; full: InParkRecord | FinishedStay }> = [
      ...inParkRows.map((r) => ({ row: r.row, full: r.record })),
      ...finished.map((f) => ({ row: f.row, full: f.stay })),
    ];
    const pageRows = all.slice(offset, offset + pageSize);
    send(200, {
      items: pageRows.map((r) => r.row),
      page,
      pageSize,
      hasMore: all.length > offset + pageSize,
      inParkTotal: inParkRows.length,
      // The whole records behind this page's rows, as the first release answered them.
      inPark: pageRows.filter((r) => r.row.status === "in-park").map((r) => r.full),
      recent: pageRows.filter((r) => r.row.status !== "in-park").map((r) => r.full),
      nowMs: now,
    });
  });

  http.route("GET", "/api/records/:recordNo", async ({ params, send }) => {
    const recordNo = params.recordNo ?? "";
    if (!/^[\p{L}\p{N}_:.-]{1,64}$/u.test(recordNo)) throw new ApiError(400, "E_RECORDS_QUERY", "recordNo: 1-64 letters, digits, _ : . -");
    const record = app.store.getInPark(recordNo);
    const past = await recordHistory(app.store.history, recordNo, historyBudget);
    if (!record && !past.stay && past.events.length === 0) throw new ApiError(404, "E_RECORD_NOT_FOUND", `no stay ${recordNo} in the lot or in the history`);
    const now = app.clock.now();
    const row = record ? inParkRow(record, now, "all") : finishedRow(past.stay!, "all");
    const payments = app.store.payments.values().filter((p) => p.recordNo === recordNo);
    const refunds = app.lanes.refunds.list().filter((r) => r.recordNo === recordNo);
    const pending = app.outbox.list({ recordNo, limit: 100 }).map((e) => ({
      key: e.key,
      kind: e.kind,
      service: e.service,
      createdAtMs: e.createdAtMs,
      attempts: e.attempts,
      state: e.parked ? ("parked" as const) : e.lastErrorKind ? ("retrying" as const) : ("queued" as const),
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
      ...(e.lastCode !== undefined ? { lastCode: e.lastCode, platformMsg: e.platformMsg ?? "" } : {}),
      ...(e.parked ? { parked: e.parked } : {}),
    }));
    const stored = record ?? past.stay;
    // A report leaves the outbox once delivered (or dropped by an operator): one not listed
    // there was delivered, unless the stay never needed it (entryReport "none": the platform
    // made the stay, or its entry goes with the leave report).
    const entryReport = pending.find((e) => e.kind === "enter")?.state ?? (stored?.entryReport === "none" ? "none" : stored ? "delivered" : null);
    const leaveReport = pending.find((e) => e.kind === "leave")?.state ?? (past.stay ? (past.stay.exit.reason === "cancelled" ? "none" : "delivered") : null);
    send(200, {
      recordNo,
      row,
      record: record ?? past.stay ?? null,
      /** The bill pushed while the car waited at the exit (in the lot only). */
      bill: record?.pendingExit ?? null,
      /** How the stay ended (finished only). */
      settlement: past.stay?.exit ?? null,
      payments,
      refunds,
      reports: { entryReport, leaveReport, pending },
      events: past.events,
      nowMs: now,
    });
  });
}

type SearchQuery = z.infer<typeof searchSchema>;

function parseSearch(params: URLSearchParams): SearchQuery {
  const raw: Record<string, string> = {};
  for (const [key, value] of params) {
    if (Object.hasOwn(raw, key)) throw new ApiError(400, "E_RECORDS_QUERY", `${key.slice(0, 40)}: given more than once`);
    raw[key] = value;
  }
  const parsed = searchSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ApiError(
      400,
      "E_RECORDS_QUERY",
      parsed.error.issues
        .map((i) => `${i.path.join(".").slice(0, 40) || "query"}: ${i.message}`)
        .join("; ")
        .slice(0, 500),
    );
  }
  return parsed.data;
}

/** How a plate answers the query: undefined when it does not. */
function plateMatcher(query: string | undefined): (plate: string) => RecordRow["match"] | undefined {
  if (query === undefined || normalisePlate(query) === "") return () => "all";
  // A whole plate may also find the stay of a misread (鄂A12345 for 粤A12345, 8 for B): the booth's
  // question is "where is this car", and the camera may have read it a character off.
  const whole = [...normalisePlate(query)].length >= 6;
  return (plate) => {
    if (plateMatchesSearch(plate, query)) return "contains";
    if (whole && plate && matchPlate(query, [plate], { maxDifferences: 1, ignoreProvince: true }).kind !== "none") return "fuzzy";
    return undefined;
  };
}

function inParkRow(record: InParkRecord, nowMs: number, match: RecordRow["match"]): RecordRow {
  const prepaidFen = record.prepayments.reduce((sum, p) => sum + p.amountFen, 0);
  return {
    recordNo: record.recordNo,
    plate: record.plate,
    laneId: record.laneId,
    enterAtMs: record.enterAtMs,
    vehicleType: record.vehicleType,
    status: "in-park",
    stayMs: Math.max(0, nowMs - record.enterAtMs),
    leaveAtMs: null,
    exitLaneId: null,
    payableFen: record.pendingExit?.payableFen ?? 0,
    paidFen: prepaidFen,
    owedFen: record.pendingExit?.dueFen ?? 0,
    exitReason: null,
    operator: null,
    match,
  };
}

function finishedRow(stay: FinishedStay, match: RecordRow["match"]): RecordRow {
  const { exit } = stay;
  const paidFen = exit.paidFen + exit.prepaidFen;
  const owedFen = Math.max(0, exit.payableFen - exit.discountFen - paidFen);
  const status: RecordRow["status"] = exit.reason === "manual" ? "released" : exit.reason === "cancelled" ? "cancelled" : paidFen > 0 ? "paid" : owedFen > 0 ? "unpaid" : "free";
  return {
    recordNo: stay.recordNo,
    plate: stay.plate,
    laneId: stay.laneId,
    enterAtMs: stay.enterAtMs,
    vehicleType: stay.vehicleType,
    status,
    stayMs: Math.max(0, exit.leaveAtMs - stay.enterAtMs),
    leaveAtMs: exit.leaveAtMs,
    exitLaneId: exit.laneId || null,
    payableFen: exit.payableFen,
    paidFen,
    owedFen,
    exitReason: exit.reason,
    operator: exit.operator ?? null,
    match,
  };
}

/** paid: something was collected; unpaid: it left owing (a hand release too); released: let out by hand. */
function statusFits(row: RecordRow, stay: FinishedStay, status: RecordStatus | undefined): boolean {
  switch (status) {
    case undefined:
      return true;
    case "paid":
      return row.paidFen > 0;
    case "unpaid":
      return row.owedFen > 0;
    case "released":
      return stay.exit.reason === "manual";
    case "in-park":
      return false;
  }
}
