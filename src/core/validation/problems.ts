/**
 * Schema issues as plain problems, one per mistake, each with the JSON path of the offending
 * value. Pure (zod types only), so the tariff validator in the core and the config loader
 * report through the same code and a mistake reads the same wherever it was found.
 */
import type { z } from "zod";

export interface ConfigProblem {
  /** JSON path of the offending value, e.g. `lanes[0].timers.recloseMs`; `(root)` for the file. */
  path: string;
  message: string;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_$][\w$]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || "(root)";
}

/** Turns schema issues into one plain problem per mistake, unknown keys one by one. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) problems.push({ path: formatPath([...issue.path, key]), message: "unknown key (a typo?)" });
    } else if (issue.code === "invalid_union" && issue.errors.length > 0) {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    } else {
      problems.push({ path: formatPath(issue.path), message: plainMessage(issue) });
    }
  }
  return problems;
}

function plainMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.input === undefined) return `is required (${issue.expected})`;
  return issue.message;
}
