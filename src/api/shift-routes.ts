import { z } from "zod";
import { ApiError, type HttpServer } from "./http-server.js";
import { ShiftError, ShiftErrorCode, type ShiftBook } from "../shifts/shift-book.js";
import { printPageHeaders, renderPrintPage } from "../shifts/print-page.js";

const operatorSchema = z.string().trim().min(1, "operator is required").max(64);
const startSchema = z.strictObject({ operator: operatorSchema });
/** Who ends it (another attendant taking over may end it); default the shift's own operator. */
const endSchema = z.strictObject({ operator: operatorSchema.optional() });
/** The bodies as the API's description (openapi-routes.ts) names them. */
export { startSchema as startShiftSchema, endSchema as endShiftSchema };

const statusOf: Readonly<Record<string, number>> = {
  [ShiftErrorCode.AlreadyOpen]: 409,
  [ShiftErrorCode.NoneOpen]: 409,
  [ShiftErrorCode.NotFound]: 404,
  [ShiftErrorCode.ReportGone]: 410,
  [ShiftErrorCode.NotStarted]: 503,
};

/** A ShiftError as the API's error, with its stable code. */
function asApiError(error: unknown): unknown {
  return error instanceof ShiftError ? new ApiError(statusOf[error.code] ?? 409, error.code, error.message) : error;
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw asApiError(error);
  }
}

function parsed<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new ApiError(400, "E_SHIFT", result.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
  return result.data;
}

function epochParam(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(value)) throw new ApiError(400, "E_SHIFT_FILTER", `${name} must be epoch milliseconds`);
  return value;
}

/**
 * Attendant shifts: start and end need the bearer token (like every write); reads follow
 * `api.openReads` like the other lookups. The printable page is a GET, so a browser link can
 * carry the token as `?access_token=` where reads need it.
 */
export function registerShiftRoutes(http: HttpServer, book: ShiftBook): void {
  http.route(
    "POST",
    "/api/shift/start",
    async ({ json, send }) => {
      const { operator } = parsed(startSchema, await json());
      const shift = await guarded(() => book.startShift(operator));
      send(200, { ok: true, shift });
    },
    { access: "token" },
  );

  http.route(
    "POST",
    "/api/shift/end",
    async ({ req, json, send }) => {
      // An empty body is allowed: "end my shift".
      const hasBody = Number(req.headers["content-length"] ?? 0) > 0 || req.headers["transfer-encoding"] !== undefined;
      const { operator } = parsed(endSchema, hasBody ? await json() : {});
      const { header, report } = await guarded(() => book.endShift(operator));
      send(200, { ok: true, shift: header, report });
    },
    { access: "token" },
  );

  http.route("GET", "/api/shift", async ({ send }) => {
    const report = await guarded(() => book.running());
    send(200, { open: report !== undefined, shift: book.current() ?? null, report: report ?? null });
  });

  http.route("GET", "/api/shifts", ({ url, send }) => {
    const fromMs = epochParam(url, "from");
    const toMs = epochParam(url, "to");
    const items = book.endedList({ ...(fromMs === undefined ? {} : { fromMs }), ...(toMs === undefined ? {} : { toMs }) });
    send(200, { items });
  });

  http.route("GET", "/api/shifts/:id", async ({ params, send }) => {
    const report = await guarded(() => book.report(params.id ?? ""));
    send(200, report);
  });

  http.route("GET", "/api/shifts/:id/print", async ({ params, url, res }) => {
    const lang = url.searchParams.get("lang") === "en" ? "en" : "zh";
    const report = await guarded(() => book.report(params.id ?? ""));
    res.writeHead(200, printPageHeaders).end(renderPrintPage(report, lang));
  });
}
