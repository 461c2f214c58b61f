/**
 * Scriptable misbehaviour of the emulated cloud, so the lot's retry, deadline and fallback
 * paths can be tested for real. Settable in-process and over HTTP.
 */
export type FaultAction =
  /**
   * Read the request and hold it. Without `forMs` it is never answered (the client's deadline
   * must fire). With `forMs` the platform "recovers" that long after the faults were set: a
   * request that arrives before then is held until that moment and then answered normally (a
   * late answer, `then: "answer"`, the default) or its connection closed (`then: "drop"`);
   * requests arriving afterwards no longer match.
   */
  | { kind: "hang"; forMs?: number; then?: HangThen }
  /** Answer normally after `ms`. */
  | { kind: "delay"; ms: number }
  /** Answer with this HTTP status (and optional body). */
  | { kind: "http-status"; status: number; body?: string }
  /** Answer HTTP 200 with a body that is not an envelope. */
  | { kind: "malformed"; body?: string }
  /** A well-formed answer with a business error code. */
  | { kind: "business"; code: number; msg: string }
  /** Close the connection without answering. */
  | { kind: "drop" };

/** What a hang with `forMs` does with the requests it held once the time is up. */
export type HangThen = "answer" | "drop";

export interface FaultRule {
  /** Match on the section-3 id or the serviceName; absent matches every service. */
  service?: string;
  plate?: string;
  recordNo?: string;
  plateId?: string;
  action: FaultAction;
  /** Applies this many times, then the rule is spent; absent = until cleared. */
  times?: number;
}

export interface EmulatorFaults {
  /** Close the listening socket (and open connections): clients get ECONNREFUSED. */
  refuse?: boolean;
  /** With `refuse`: listen again after this long (lets an HTTP caller undo it). */
  refuseForMs?: number;
  /** Shorthands applying to every push: */
  hang?: boolean;
  /** Hang every push until this long after the faults were set, then recover (see `hang.forMs`). */
  hangForMs?: number;
  /** With `hangForMs`: what happens to the held pushes; default "answer" (late answers). */
  hangThen?: HangThen;
  delayMs?: number;
  httpStatus?: number;
  malformed?: boolean;
  business?: { code: number; msg: string };
  /** Targeted faults, checked first, in order. */
  rules?: FaultRule[];
}

export interface PushFacts {
  service: string;
  serviceName: string;
  plate?: string;
  recordNo?: string;
  plateId?: string;
}

/** A hang with `forMs` stops matching once its time is up: the platform has recovered. */
function recovered(action: FaultAction, sinceSetMs: number): boolean {
  return action.kind === "hang" && action.forMs !== undefined && sinceSetMs >= action.forMs;
}

/**
 * Picks the action for a push: the first matching rule (consuming one use), else a shorthand.
 * `sinceSetMs` is how long ago the faults were set (the clock of timed hangs; absent = 0).
 */
export function pickFault(faults: EmulatorFaults, facts: PushFacts, sinceSetMs = 0): FaultAction | undefined {
  for (const rule of faults.rules ?? []) {
    if (rule.times !== undefined && rule.times <= 0) continue;
    if (recovered(rule.action, sinceSetMs)) continue;
    if (rule.service !== undefined && rule.service !== facts.service && rule.service !== facts.serviceName) continue;
    if (rule.plate !== undefined && rule.plate !== facts.plate) continue;
    if (rule.recordNo !== undefined && rule.recordNo !== facts.recordNo) continue;
    if (rule.plateId !== undefined && rule.plateId !== facts.plateId) continue;
    if (rule.times !== undefined) rule.times--;
    return rule.action;
  }
  if (faults.hang) return { kind: "hang" };
  if (faults.hangForMs !== undefined && sinceSetMs < faults.hangForMs) return { kind: "hang", forMs: faults.hangForMs, then: faults.hangThen ?? "answer" };
  if (faults.httpStatus !== undefined) return { kind: "http-status", status: faults.httpStatus };
  if (faults.malformed) return { kind: "malformed" };
  if (faults.business) return { kind: "business", code: faults.business.code, msg: faults.business.msg };
  if (faults.delayMs !== undefined && faults.delayMs > 0) return { kind: "delay", ms: faults.delayMs };
  return undefined;
}

/** Checks a faults document that arrived over HTTP; returns the problems. */
export function faultProblems(value: unknown): string[] {
  const problems: string[] = [];
  if (value === null || typeof value !== "object" || Array.isArray(value)) return ["faults must be a JSON object"];
  const f = value as Record<string, unknown>;
  const known = new Set(["refuse", "refuseForMs", "hang", "hangForMs", "hangThen", "delayMs", "httpStatus", "malformed", "business", "rules"]);
  for (const key of Object.keys(f)) if (!known.has(key)) problems.push(`unknown field ${key}`);
  for (const key of ["refuse", "hang", "malformed"]) if (f[key] !== undefined && typeof f[key] !== "boolean") problems.push(`${key} must be true or false`);
  const thens = ["answer", "drop"];
  if (f.hangThen !== undefined && !thens.includes(f.hangThen as string)) problems.push(`hangThen must be one of ${thens.join(", ")}`);
  if (f.hangThen !== undefined && f.hangForMs === undefined) problems.push("hangThen needs hangForMs");
  for (const key of ["refuseForMs", "delayMs", "hangForMs"])
    if (f[key] !== undefined && !(Number.isInteger(f[key]) && (f[key] as number) >= 0)) problems.push(`${key} must be a whole number of ms`);
  if (f.httpStatus !== undefined && !(Number.isInteger(f.httpStatus) && (f.httpStatus as number) >= 100 && (f.httpStatus as number) <= 599))
    problems.push("httpStatus must be 100-599");
  if (f.business !== undefined) {
    const b = f.business as Record<string, unknown> | null;
    if (!b || typeof b !== "object" || !Number.isInteger(b.code) || typeof b.msg !== "string") problems.push("business must be {code: int, msg: string}");
  }
  if (f.rules !== undefined) {
    if (!Array.isArray(f.rules)) problems.push("rules must be an array");
    else
      f.rules.forEach((rule: unknown, i) => {
        const r = rule as Record<string, unknown> | null;
        const a = (r?.action ?? null) as Record<string, unknown> | null;
        const kinds = ["hang", "delay", "http-status", "malformed", "business", "drop"];
        if (!r || typeof r !== "object") problems.push(`rules[${i}] must be an object`);
        else if (!a || typeof a !== "object" || !kinds.includes(a.kind as string)) problems.push(`rules[${i}].action.kind must be one of ${kinds.join(", ")}`);
        else if (a.kind === "delay" && !(Number.isInteger(a.ms) && (a.ms as number) >= 0)) problems.push(`rules[${i}].action.ms must be a whole number of ms`);
        else if (a.kind === "hang" && a.forMs !== undefined && !(Number.isInteger(a.forMs) && (a.forMs as number) >= 0))
          problems.push(`rules[${i}].action.forMs must be a whole number of ms`);
        else if (a.kind === "hang" && a.then !== undefined && !(a.forMs !== undefined && thens.includes(a.then as string)))
          problems.push(`rules[${i}].action.then must be one of ${thens.join(", ")} (with forMs)`);
        else if (a.kind === "http-status" && !Number.isInteger(a.status)) problems.push(`rules[${i}].action.status must be an integer`);
        else if (a.kind === "business" && (!Number.isInteger(a.code) || typeof a.msg !== "string")) problems.push(`rules[${i}].action needs code and msg`);
      });
  }
  return problems;
}
