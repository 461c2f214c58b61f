import { problemsFromIssues, type ConfigProblem } from "../validation/problems.js";
import { tariffSchema, type Tariff } from "./tariff-schema.js";

export type TariffResult = { ok: true; tariff: Tariff } | { ok: false; problems: ConfigProblem[] };

/**
 * Validates a tariff on its own (a tariff file, `lanekeeper fee`): every problem at once, each
 * with its path; `pathPrefix` names where the tariff sits (`fees.tariffs.standard`).
 */
export function validateTariff(raw: unknown, pathPrefix: ReadonlyArray<string | number> = []): TariffResult {
  const result = tariffSchema.safeParse(raw);
  if (result.success) return { ok: true, tariff: result.data };
  const issues = result.error.issues.map((issue) => ({ ...issue, path: [...pathPrefix, ...issue.path] }));
  return { ok: false, problems: problemsFromIssues(issues) };
}
