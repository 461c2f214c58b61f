import { PlatformError, PlatformErrorCode } from "./errors.js";
import { exceedsJsonDepth, maxJsonDepth, scanTopLevelMembers, type TopLevelMember } from "./json-scan.js";
import { computeSign, signsEqual, type SignField } from "./sign.js";

/**
 * Strict sender encoding (docs/protocol.md §2, "Sending (strict)"): compact, object keys in
 * ASCII order at every depth, non-ASCII characters raw (no `\u` escapes), numbers as JSON
 * numbers. Members whose value is `undefined` are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, new Set());
}

function encode(value: unknown, seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new PlatformError(PlatformErrorCode.Encode, `cannot send the number ${value}`);
      return JSON.stringify(value);
    case "object": {
      if (seen.has(value)) throw new PlatformError(PlatformErrorCode.Encode, "cannot send a cyclic structure");
      if (value instanceof Date) throw new PlatformError(PlatformErrorCode.Encode, "format dates as YYYY-MM-DD HH:mm:ss before sending");
      seen.add(value);
      try {
        if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : encode(item, seen))).join(",")}]`;
        const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const parts: string[] = [];
        for (const key of keys) {
          const item = (value as Record<string, unknown>)[key];
          if (item === undefined) continue;
          parts.push(`${JSON.stringify(key)}:${encode(item, seen)}`);
        }
        return `{${parts.join(",")}}`;
      } finally {
        seen.delete(value);
      }
    }
    default:
      throw new PlatformError(PlatformErrorCode.Encode, `cannot send a value of type ${typeof value}`);
  }
}

export interface EncodeOptions {
  pid: string;
  key: string;
  serviceName: string;
  /** Epoch seconds as sent: the examples use a 10-digit string. */
  timestamp: string;
  biz: Record<string, unknown>;
  /** Nested object (default) or a JSON string; the signed text is the same. */
  bizContentForm?: "object" | "string";
}

export interface EncodedEnvelope {
  /** The request body, ready for the wire. */
  readonly bodyText: string;
  /** The exact bizContent text that was signed and sent. */
  readonly bizText: string;
  readonly sign: string;
  /** Contains the key: never log it unmasked. */
  readonly signTemp: string;
}

/**
 * Builds a signed request. bizContent is serialised once; that text is both signed and put on
 * the wire, never re-serialised in between (a second serialisation may not give the signed text).
 */
export function encodeEnvelope(options: EncodeOptions): EncodedEnvelope {
  const bizText = canonicalJson(options.biz);
  const { sign, signTemp } = computeSign(
    [
      { name: "bizContent", value: bizText },
      { name: "pid", value: options.pid },
      { name: "serviceName", value: options.serviceName },
      { name: "timestamp", value: options.timestamp },
    ],
    options.key,
  );
  const bizOnWire = options.bizContentForm === "string" ? JSON.stringify(bizText) : bizText;
  // Member order as in the document's examples; the order does not affect the signature.
  const bodyText =
    `{"pid":${JSON.stringify(options.pid)},"serviceName":${JSON.stringify(options.serviceName)},` +
    `"sign":"${sign}","timestamp":${JSON.stringify(options.timestamp)},"bizContent":${bizOnWire}}`;
  return { bodyText, bizText, sign, signTemp };
}

/** Epoch seconds as a 10-digit string, the form every example of the platform's document uses. */
export function timestampText(nowMs: number): string {
  return String(Math.floor(nowMs / 1000));
}

/** A received envelope, read leniently (docs/protocol.md §2, "Receiving (lenient)"). */
export interface ParsedEnvelope {
  readonly members: readonly TopLevelMember[];
  readonly pid: string;
  readonly serviceName: string;
  /** The received sign, or undefined when absent or empty. */
  readonly sign: string | undefined;
  /** The name the sign arrived under (`sign`, or `Sign`...), excluded from the signature. */
  readonly signFieldName: string;
  /** Epoch seconds. */
  readonly timestampS: number;
  /** The bizContent text that was signed: the raw object text, or the decoded string. */
  readonly bizText: string;
  readonly bizForm: "object" | "string";
  readonly biz: Record<string, unknown>;
  /** Every top-level member as it contributes to the signature. */
  readonly signFields: readonly SignField[];
}

const envelopeNames = ["pid", "servicename", "sign", "timestamp", "bizcontent"] as const;

/**
 * Reads an envelope without trusting its shape: field names match case-insensitively,
 * numbers may arrive as strings, bizContent may be an object or a JSON string. Throws
 * PlatformError(BadJson | BadEnvelope). The sign is not checked here (see verifyEnvelope).
 */
export function parseEnvelope(text: string): ParsedEnvelope {
  const members = scanTopLevelMembers(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  const byName = new Map<string, TopLevelMember>();
  const exact = new Set<string>();
  for (const member of members) {
    if (exact.has(member.name)) throw envelopeError(`top-level field "${member.name}" appears twice`);
    exact.add(member.name);
    const lower = member.name.toLowerCase();
    if ((envelopeNames as readonly string[]).includes(lower)) {
      if (byName.has(lower)) throw envelopeError(`top-level field "${member.name}" appears twice (names match case-insensitively)`);
      byName.set(lower, member);
    }
  }
  const missing = envelopeNames.filter((name) => name !== "sign" && isEmpty(byName.get(name)));
  if (missing.length > 0) {
    const spelled = missing.map((name) => ({ servicename: "serviceName", bizcontent: "bizContent" })[name as string] ?? name);
    throw envelopeError(`missing ${spelled.join(", ")}`);
  }
  const pid = scalarText(byName.get("pid")!, "pid");
  const serviceName = scalarText(byName.get("servicename")!, "serviceName");
  const timestampMember = byName.get("timestamp")!;
  const timestampRaw = scalarText(timestampMember, "timestamp").trim();
  if (!/^\d{1,13}$/.test(timestampRaw)) throw envelopeError(`timestamp "${timestampRaw.slice(0, 20)}" is not epoch seconds`);
  let timestampS = Number(timestampRaw);
  // A 13-digit value is milliseconds; the document says seconds, a lenient receiver copes.
  if (timestampS > 1e11) timestampS = Math.floor(timestampS / 1000);

  const bizMember = byName.get("bizcontent")!;
  let bizText: string;
  let bizForm: "object" | "string";
  if (bizMember.kind === "object") {
    bizText = bizMember.raw;
    bizForm = "object";
  } else if (bizMember.kind === "string") {
    bizText = bizMember.value as string;
    bizForm = "string";
  } else {
    throw envelopeError(`bizContent must be an object or a JSON string, not ${bizMember.kind}`);
  }
  // A string-form bizContent is JSON inside JSON: its nesting was invisible to the body's check.
  if (bizForm === "string" && exceedsJsonDepth(bizText)) throw envelopeError(`bizContent is nested deeper than ${maxJsonDepth} levels`);
  let biz: unknown;
  try {
    biz = JSON.parse(bizText);
  } catch {
    throw envelopeError("bizContent is a string but not JSON text");
  }
  if (biz === null || typeof biz !== "object" || Array.isArray(biz)) throw envelopeError("bizContent must hold a JSON object");

  const signMember = byName.get("sign");
  let sign: string | undefined;
  if (signMember && signMember.kind === "string" && signMember.value !== "") sign = (signMember.value as string).trim();
  else if (signMember && signMember.kind !== "string" && signMember.kind !== "null") throw envelopeError("sign must be a string");

  const signFields = members.map((member) => ({ name: member.name, value: signText(member) }));
  return {
    members,
    pid,
    serviceName,
    sign,
    signFieldName: signMember?.name ?? "sign",
    timestampS,
    bizText,
    bizForm,
    biz: biz as Record<string, unknown>,
    signFields,
  };
}

/**
 * How a received member contributes to the signature (docs/protocol.md §2): a string by its decoded value,
 * null as empty (skipped), anything else by its raw text (numbers keep `200.00`; objects keep
 * their key order and spacing).
 */
export function signText(member: TopLevelMember): string {
  if (member.kind === "string") return member.value as string;
  if (member.kind === "null") return "";
  return member.raw;
}

export interface VerifyOptions {
  key: string;
  nowMs: number;
  /** Accepted |now − timestamp|, seconds, both directions (docs/protocol.md §2). */
  windowS: number;
  /** false: check the sign only. */
  checkTimestamp?: boolean;
}

export interface Verified {
  /** Seconds the sender's clock is ahead of ours (negative: behind). */
  readonly skewS: number;
  readonly expectedSign: string;
}

/** Checks sign, then timestamp. Throws PlatformError(MissingSign | BadSign | StaleTimestamp). */
export function verifyEnvelope(envelope: ParsedEnvelope, options: VerifyOptions): Verified {
  if (envelope.sign === undefined) throw new PlatformError(PlatformErrorCode.MissingSign, "sign is missing");
  const { sign: expectedSign } = computeSign(envelope.signFields, options.key, envelope.signFieldName);
  if (!signsEqual(envelope.sign, expectedSign)) {
    throw new PlatformError(PlatformErrorCode.BadSign, "sign does not match the request (see `lanekeeper sign`)");
  }
  const skewS = envelope.timestampS - Math.floor(options.nowMs / 1000);
  if (options.checkTimestamp !== false && Math.abs(skewS) > options.windowS) {
    const direction = skewS > 0 ? "in the future" : "old";
    throw new PlatformError(PlatformErrorCode.StaleTimestamp, `timestamp is ${Math.abs(skewS)} s ${direction}; the window is ${options.windowS} s`, { skewS });
  }
  return { skewS, expectedSign };
}

function isEmpty(member: TopLevelMember | undefined): boolean {
  return !member || member.kind === "null" || (member.kind === "string" && member.value === "");
}

function scalarText(member: TopLevelMember, what: string): string {
  if (member.kind === "string") return member.value as string;
  if (member.kind === "number") return member.raw;
  throw envelopeError(`${what} must be a string or a number, not ${member.kind}`);
}

function envelopeError(message: string): PlatformError {
  return new PlatformError(PlatformErrorCode.BadEnvelope, message);
}
