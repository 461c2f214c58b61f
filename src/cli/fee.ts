import { parseArgs } from "node:util";
import { bill, BillError, type Coupon, type Prepayment, type VehicleType } from "../core/fees/index.js";
import { formatFen } from "../core/fees/money.js";
import { couponSchema } from "../core/fees/stay.js";
import { vehicleTypes, type Tariff } from "../core/fees/tariff-schema.js";
import { validateTariff } from "../core/fees/validate-tariff.js";
import { isKnownTimeZone } from "../config/time-zone.js";
import { formatWireTime, parseWireTime } from "../core/time/wire-time.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";
import { problemLines, readJsonFile } from "../config/load.js";

const DEFAULT_ZONE = "Asia/Shanghai";

const feeOptions = {
  tariff: { type: "string", value: "<file>", describe: "a bare tariff file, or a whole config (its current tariff and lot zone); required" },
  enter: { type: "string", value: '"YYYY-MM-DD HH:mm:ss"', describe: "entry time on the lot's clock; required" },
  leave: { type: "string", value: '"YYYY-MM-DD HH:mm:ss"', describe: "exit time on the lot's clock; required" },
  vehicle: { type: "string", value: "small|large|nev", describe: "vehicle type", defaultText: "small" },
  coupon: { type: "string", value: "<json>", multiple: true, describe: 'a coupon, e.g. \'{"kind":"amount","fen":500}\'' },
  prepaid: { type: "string", value: "<fen>@<time>", multiple: true, describe: 'a payment already made, e.g. 500@"2024-05-06 10:00:00"' },
  tz: { type: "string", value: "<zone>", describe: "IANA time zone of the times", defaultText: `the config's lot.timeZone, else ${DEFAULT_ZONE}` },
  name: { type: "string", value: "<tariff>", describe: "which tariff of a config's fees.tariffs", defaultText: "the config's fees.tariff" },
} as const satisfies OptionSpecs;

/**
 * `lanekeeper fee`: the bill of one stay, so an installer can check a tariff on a laptop before
 * it goes onto the box (docs/tariffs.md). The tariff file is a bare tariff or a whole config
 * (then the config's current tariff and the lot's zone are used).
 */
export const feeCommand: CliCommand = {
  name: "fee",
  usage:
    'lanekeeper fee --tariff <file> --enter "YYYY-MM-DD HH:mm:ss" --leave "YYYY-MM-DD HH:mm:ss" [--vehicle small|large|nev] [--coupon <json>]… [--prepaid <fen>@<time>]… [--tz <zone>] [--name <tariff>]',
  summary: "print the bill of one stay under a tariff file or a config's tariff",
  options: feeOptions,
  notes: ["Prints the bill as JSON (amounts in fen, and in yuan under `yuan`). Exit 0, or 1 for a bad tariff file, 2 for a bad command line."],
  examples: [
    'lanekeeper fee --tariff config/demo.json --enter "2024-05-06 08:00:00" --leave "2024-05-06 11:00:00"',
    'lanekeeper fee --tariff tariff.json --enter "2024-05-06 08:00:00" --leave "2024-05-07 09:30:00" --vehicle large --coupon \'{"kind":"minutes","minutes":30,"from":"end"}\'',
  ],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: feeOptions });
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
    if (!values.tariff) throw new UsageError("--tariff <file> is required");
    if (!values.enter) throw new UsageError('--enter "YYYY-MM-DD HH:mm:ss" is required');
    if (!values.leave) throw new UsageError('--leave "YYYY-MM-DD HH:mm:ss" is required');

    const loaded = await loadTariff(values.tariff, values.name);
    if (!loaded.ok) {
      console.error(`${values.tariff}: ${loaded.problems.length} problem${loaded.problems.length === 1 ? "" : "s"}`);
      for (const line of problemLines(loaded.problems)) console.error(line);
      return 1;
    }

    const timeZone = values.tz ?? loaded.timeZone ?? DEFAULT_ZONE;
    if (!isKnownTimeZone(timeZone)) throw new UsageError(`--tz: "${timeZone}" is not an IANA time zone (e.g. Asia/Shanghai)`);
    const enterAtMs = readTime("--enter", values.enter, timeZone);
    const leaveAtMs = readTime("--leave", values.leave, timeZone);
    if (leaveAtMs < enterAtMs) throw new UsageError(`--leave (${values.leave}) is before --enter (${values.enter})`);
    const vehicleType = values.vehicle ?? "small";
    if (!(vehicleTypes as readonly string[]).includes(vehicleType)) {
      throw new UsageError(`--vehicle: unknown vehicle type "${vehicleType}"; expected one of ${vehicleTypes.join(", ")}`);
    }
    const coupons = (values.coupon ?? []).map((text, i) => readCoupon(text, i));
    const prepayments = (values.prepaid ?? []).map((text) => readPrepaid(text, timeZone));

    let result;
    try {
      result = bill(loaded.tariff, { enterAtMs, leaveAtMs, vehicleType: vehicleType as VehicleType, timeZone }, { coupons, prepayments });
    } catch (error) {
      // Everything left that bill() refuses came from the command line (exit before entry, a
      // prepayment outside the stay, a stay beyond maxStayDays): wrong words, exit 2.
      if (error instanceof BillError) throw new UsageError(`${error.message} [${error.code}]`);
      throw error;
    }
    const at = (ms: number): string => formatWireTime(ms, timeZone);
    const output = {
      payableFee: result.payableFee,
      discountFee: result.discountFee,
      paidFee: result.paidFee,
      breakdown: result.breakdown.map(({ fromMs, toMs, ...piece }) => ({ from: at(fromMs), to: at(toMs), ...piece })),
      prepaidFee: result.prepaidFee,
      discounts: result.discounts,
      yuan: { payable: formatFen(result.payableFee), discount: formatFen(result.discountFee), paid: formatFen(result.paidFee) },
      stay: { tariff: loaded.label, vehicleType, timeZone, enter: at(enterAtMs), leave: at(leaveAtMs), minutes: Math.round((leaveAtMs - enterAtMs) / 60_000) },
    };
    console.log(JSON.stringify(output, null, 2));
    return 0;
  },
};

type Loaded = { ok: true; tariff: Tariff; timeZone: string | undefined; label: string } | { ok: false; problems: Array<{ path: string; message: string }> };

async function loadTariff(file: string, name: string | undefined): Promise<Loaded> {
  const read = await readJsonFile(file);
  if (!read.ok) return read;
  const raw = read.raw;
  const doc = asRecord(raw);
  // A whole config has a `fees` section; a bare tariff never does (its schema has no such key).
  const fees = asRecord(doc?.fees);
  if (doc && fees) {
    const tariffs = asRecord(fees.tariffs);
    const chosen = name ?? (typeof fees.tariff === "string" ? fees.tariff : undefined);
    if (!tariffs) return { ok: false, problems: [{ path: "fees.tariffs", message: "is required (an object of named tariffs)" }] };
    if (chosen === undefined) return { ok: false, problems: [{ path: "fees.tariff", message: "is required (the name of the tariff in use), or pass --name" }] };
    if (!(chosen in tariffs)) {
      return {
        ok: false,
        problems: [{ path: name ? "--name" : "fees.tariff", message: `no tariff named "${chosen}" in fees.tariffs (has: ${Object.keys(tariffs).join(", ") || "none"})` }],
      };
    }
    const lot = asRecord(doc.lot);
    const timeZone = typeof lot?.timeZone === "string" ? lot.timeZone : undefined;
    const result = validateTariff(tariffs[chosen], ["fees", "tariffs", chosen]);
    return result.ok ? { ok: true, tariff: result.tariff, timeZone, label: result.tariff.name ?? chosen } : result;
  }
  if (name !== undefined) throw new UsageError("--name picks a tariff inside a config file; this file is a bare tariff");
  const result = validateTariff(raw);
  return result.ok ? { ok: true, tariff: result.tariff, timeZone: undefined, label: result.tariff.name ?? file } : result;
}

function readTime(flag: string, text: string, timeZone: string): number {
  const ms = parseWireTime(text, timeZone);
  if (ms === undefined) throw new UsageError(`${flag}: "${text}" is not a time on the ${timeZone} clock; expected "YYYY-MM-DD HH:mm:ss"`);
  return ms;
}

function readCoupon(text: string, index: number): Coupon {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UsageError(
      `--coupon #${index + 1}: not JSON; e.g. '{"kind":"amount","fen":500}', '{"kind":"minutes","minutes":30,"from":"end"}', '{"kind":"free"}', '{"kind":"percent","percent":20}'`,
    );
  }
  const parsed = couponSchema.safeParse(raw);
  if (!parsed.success) {
    const why = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(coupon)"}: ${issue.message}`).join("; ");
    throw new UsageError(`--coupon #${index + 1}: ${why}`);
  }
  return parsed.data;
}

function readPrepaid(text: string, timeZone: string): Prepayment {
  const m = /^(\d+)@(.+)$/.exec(text.trim());
  if (!m) throw new UsageError(`--prepaid: "${text}" is not <fen>@<time>, e.g. 500@"2024-05-06 10:00:00"`);
  const atMs = parseWireTime(m[2]!, timeZone);
  if (atMs === undefined) throw new UsageError(`--prepaid: "${m[2]}" is not a time on the ${timeZone} clock; expected "YYYY-MM-DD HH:mm:ss"`);
  return { feeFen: Number(m[1]), atMs };
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
