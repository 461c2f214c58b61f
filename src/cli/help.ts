import type { CliCommand, OptionSpec } from "./command.js";

/**
 * `--help` for every command, rendered from the command's own option table (the one its
 * parseArgs call uses), so an option cannot be accepted without being listed.
 */

function flagText(name: string, spec: OptionSpec): string {
  const long = `--${name}${spec.type === "string" ? ` ${spec.value ?? "<value>"}` : ""}`;
  return spec.short ? `-${spec.short}, ${long}` : `    ${long}`;
}

function defaultOf(spec: OptionSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined || spec.default === false) return undefined;
  return String(spec.default);
}

/** The whole help page of one command: synopsis, what it does, options with defaults, examples. */
export function renderHelp(command: CliCommand): string {
  const rows: Array<[string, string]> = Object.entries(command.options)
    .filter(([name]) => name !== "help")
    .map(([name, spec]) => {
      const fallback = defaultOf(spec);
      const repeat = spec.multiple ? " (repeatable)" : "";
      return [flagText(name, spec), `${spec.describe}${repeat}${fallback === undefined ? "" : ` (default: ${fallback})`}`];
    });
  rows.push(["-h, --help", "show this help"]);
  const width = Math.min(34, Math.max(...rows.map(([flags]) => flags.length)));
  const lines = [
    `Usage: ${command.usage.replace(/\n\s*/g, "\n       ")}`,
    "",
    `  ${command.summary}`,
    "",
    "Options:",
    ...rows.map(([flags, text]) => (flags.length > width ? `  ${flags}\n  ${" ".repeat(width)}  ${text}` : `  ${flags.padEnd(width)}  ${text}`)),
  ];
  if (command.notes && command.notes.length > 0) lines.push("", ...command.notes.map((note) => `  ${note}`));
  lines.push("", command.examples.length === 1 ? "Example:" : "Examples:", ...command.examples.map((example) => `  ${example}`));
  return lines.join("\n");
}
