import type { ConfigChange } from "./diff.js";
import type { ProvisionProblem } from "./errors.js";

/**
 * The human-readable report written back to the stick: an installer reads
 * it on a laptop, so it is plain text, says first whether the box took the config, and lists
 * every problem with its path. Secrets are masked before they get here (redactConfig) and
 * scrubbed again afterwards (scrubSecrets) in case any slipped into a message.
 */
export interface ReportInput {
  status: "applied" | "unchanged" | "rejected";
  deviceId: string | undefined;
  previousDeviceId?: string | undefined;
  host: string;
  at: Date;
  stick: string;
  configPath: string;
  problems: readonly ProvisionProblem[];
  changes: readonly ConfigChange[];
  files: ReadonlyArray<{ what: string; from: string; to: string; changed: boolean }>;
  restart?: string;
  /** Files whose content was right but whose owner or mode was not (fixed in place). */
  repaired?: readonly string[];
}

const headline = {
  applied: "APPLIED — the new configuration is in place",
  unchanged: "UNCHANGED — the box already has exactly this configuration",
  rejected: "REJECTED — nothing on this box was changed",
};

export function formatReport(input: ReportInput): string {
  const lines: string[] = [];
  lines.push("lanekeeper provisioning report", "==============================", "");
  lines.push(`Result:  ${headline[input.status]}`);
  const device = input.deviceId ?? "(unknown)";
  const was = input.previousDeviceId !== undefined && input.previousDeviceId !== input.deviceId ? ` (was ${input.previousDeviceId})` : "";
  lines.push(`Device:  ${device}${was}`);
  lines.push(`Host:    ${input.host}`);
  lines.push(`Time:    ${input.at.toISOString()}`);
  lines.push(`Stick:   ${input.stick}`);
  lines.push(`Config:  ${input.configPath}${input.status === "applied" ? ` (previous kept as ${input.configPath}.prev)` : ""}`);
  if (input.restart !== undefined) lines.push(`Restart: ${input.restart}`);
  lines.push("");
  if (input.status === "rejected") {
    lines.push(`Problems (${input.problems.length}) — fix each and try the stick again:`);
    for (const problem of input.problems) lines.push(`  ${problem.path}: ${problem.message}${problem.code ? ` [${problem.code}]` : ""}`);
    if (input.problems.some((p) => p.code === "E_STICK_BOX_OWNED" || p.code === "E_STICK_PATH_FIELD")) {
      lines.push(
        "",
        "A stick sets the lot, the lanes, the links and their credentials; the box's directories and",
        'commands are the box\'s own (systemd/README.md, "What a stick may set").',
      );
    }
    lines.push("");
    return `${lines.join("\n")}\n`;
  }
  lines.push(`Changes (${input.changes.length}):`);
  if (input.changes.length === 0) lines.push("  (none in lanekeeper.json)");
  for (const change of input.changes) {
    if (change.kind === "added") lines.push(`  + ${change.path} = ${change.after ?? ""}`);
    else if (change.kind === "removed") lines.push(`  - ${change.path} (was ${change.before ?? ""})`);
    else lines.push(`  ~ ${change.path}: ${change.before ?? ""} -> ${change.after ?? ""}${change.secret ? " (secret changed)" : ""}`);
  }
  if (input.files.length > 0) {
    lines.push("", "Files:");
    for (const file of input.files) lines.push(`  ${file.changed ? "installed" : "unchanged"} ${file.what}: ${file.from} -> ${file.to}`);
  }
  if (input.repaired && input.repaired.length > 0) {
    lines.push("", "Owner and mode set right (root, the service's group, 0640):");
    for (const path of input.repaired) lines.push(`  ${path}`);
  }
  lines.push("");
  return `${lines.join("\n")}\n`;
}

/** Replaces every known secret value that still appears in the text. */
export function scrubSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= 4) out = out.split(secret).join("HIDDEN");
  }
  return out;
}
