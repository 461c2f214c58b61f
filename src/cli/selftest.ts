import { parseArgs } from "node:util";
import { loadConfigFile, problemLines } from "../config/load.js";
import { systemClock } from "../kernel/clock.js";
import { createLogger, silentLogger } from "../kernel/log.js";
import { runSelftest, pulseTargets, type SelftestReport, type CheckStatus } from "../system/selftest.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

const selftestOptions = {
  config: { type: "string", short: "c", value: "<file>", describe: "the box's config file", defaultText: "$LANEKEEPER_CONFIG or /etc/lanekeeper/lanekeeper.json" },
  pulse: { type: "string", multiple: true, value: "<lane.output>", describe: "pulse this output for real, e.g. in1.relayOpen (a barrier may lift)" },
  "pulse-ms": { type: "string", value: "<N>", describe: "pulse length, 50 to 10000 ms", defaultText: "the lane's configured pulse" },
  "watch-s": { type: "string", value: "<N>", describe: "print input edges for this many seconds (loops, buttons)", defaultText: "0" },
  "listen-s": { type: "string", value: "<N>", describe: "listen to each serial device this long", defaultText: "3" },
  "timeout-ms": { type: "string", value: "<N>", describe: "connect timeout for platform and broker", defaultText: "3000" },
  json: { type: "boolean", describe: "print the report as JSON" },
  verbose: { type: "boolean", short: "v", describe: "debug log lines on stderr" },
} as const satisfies OptionSpecs;

/**
 * `lanekeeper selftest`: for the installer on site (systemd/README.md). Stop the service first
 * on a real box (`systemctl stop lanekeeper`): the self-test claims the same GPIO lines and
 * serial ports.
 */
export const selftestCommand: CliCommand = {
  name: "selftest",
  usage: "lanekeeper selftest [--config <file>] [--pulse <lane.output>]... [--pulse-ms N] [--watch-s N] [--listen-s N] [--timeout-ms N] [--json]",
  summary: "check GPIO, serial devices, store, platform and broker on site; exits 1 when something is wrong",
  options: selftestOptions,
  notes: ["Stop the service first on a real box (systemctl stop lanekeeper): the self-test claims the same GPIO lines and serial ports."],
  examples: ["lanekeeper selftest", "lanekeeper selftest --pulse in1.relayOpen --watch-s 20   # lifts the entry barrier, then shows loop edges for 20 s"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: selftestOptions });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const number = (name: string, text: string | undefined, min: number, max: number): number | undefined => {
      if (text === undefined) return undefined;
      const value = Number(text);
      if (!Number.isFinite(value) || value < min || value > max) throw new UsageError(`--${name} must be a number from ${min} to ${max} (got ${text})`);
      return value;
    };
    const pulseMs = number("pulse-ms", values["pulse-ms"], 50, 10_000);
    const watchS = number("watch-s", values["watch-s"], 0, 3600) ?? 0;
    const listenS = number("listen-s", values["listen-s"], 0, 600) ?? 3;
    const timeoutMs = number("timeout-ms", values["timeout-ms"], 50, 60_000) ?? 3000;

    const configPath = values.config ?? process.env.LANEKEEPER_CONFIG ?? "/etc/lanekeeper/lanekeeper.json";
    const loaded = await loadConfigFile(configPath);
    if (!loaded.ok) {
      console.error(`${configPath}: ${loaded.problems.length} problem(s); nothing tested`);
      for (const line of problemLines(loaded.problems)) console.error(line);
      return 1;
    }
    const config = loaded.config;
    const targets = pulseTargets(config);
    for (const key of values.pulse ?? []) {
      if (!targets.includes(key)) throw new UsageError(`--pulse ${key}: not a configured output; outputs are ${targets.join(", ")}`);
    }

    const json = values.json === true;
    const print = (line = ""): void => {
      if (!json) console.log(line);
    };
    print(`lanekeeper selftest — device ${config.deviceId}, config ${configPath}`);
    if (config.hardware.gpio === "onoff") print("(stop the service first: the self-test claims the same GPIO lines and serial ports)");
    if ((values.pulse ?? []).length > 0) print(`pulsing ${values.pulse!.join(", ")}: outputs move for real (a barrier may lift)`);
    if (watchS > 0) print(`watching inputs for ${watchS} s...`);

    const report = await runSelftest({
      config,
      clock: systemClock,
      log: values.verbose ? createLogger({ level: "debug", destination: process.stderr }) : silentLogger(),
      pulse: values.pulse ?? [],
      ...(pulseMs !== undefined ? { pulseMs } : {}),
      watchMs: watchS * 1000,
      serialListenMs: listenS * 1000,
      connectTimeoutMs: timeoutMs,
      onEdge: (edge) => print(`  ${new Date(edge.atMs).toISOString().slice(11, 23)}  ${edge.key.padEnd(20)} -> ${edge.level}`),
    });

    if (json) console.log(JSON.stringify({ config: configPath, ...report }, null, 2));
    else console.log(formatReport(report, { watchS, listenS }));
    return report.ok ? 0 : 1;
  },
};

const mark: Record<CheckStatus, string> = { ok: "ok", warn: "WARN", fail: "FAIL", skip: "skip" };

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

export function formatReport(report: SelftestReport, shown: { watchS: number; listenS: number }): string {
  const out: string[] = [""];
  out.push(`GPIO (${report.gpio.kind}; sysfs numbers: ${report.gpio.sysfs})`);
  out.push(
    ...table(
      ["LINE", "DIR", "BCM", "SYSFS", "ACTIVE-LOW", "LEVEL"],
      report.gpio.rows.map((r) => [
        r.key,
        r.direction,
        String(r.bcm),
        r.sysfs === undefined ? "-" : String(r.sysfs),
        r.activeLow ? "yes" : "no",
        r.level === undefined ? "?" : String(r.level),
      ]),
    ),
  );
  if (shown.watchS > 0) out.push(`  input edges in ${shown.watchS} s: ${report.edges.length === 0 ? "none" : report.edges.length}`);
  if (report.serial.length > 0) {
    out.push("", `Serial devices (listened ${shown.listenS} s)`);
    out.push(
      ...table(
        ["NAME", "KIND", "PATH", "RESULT"],
        report.serial.map((s) => [s.name, s.kind, s.path ?? "(simulated)", `${mark[s.status]}: ${s.detail}`]),
      ),
    );
    for (const s of report.serial.filter((x) => x.rxBytes > 0)) out.push(`  ${s.name} sent: ${s.preview}`);
  }
  out.push("", "Checks");
  out.push(
    ...table(
      ["STATUS", "CHECK", "DETAIL"],
      report.checks.map((c) => [mark[c.status], c.name, c.detail]),
    ),
  );
  const failed = report.checks.filter((c) => c.status === "fail");
  const warned = report.checks.filter((c) => c.status === "warn");
  out.push("");
  if (failed.length === 0)
    out.push(`Summary: all good${warned.length ? ` (${warned.length} warning${warned.length === 1 ? "" : "s"}: ${warned.map((c) => c.name).join(", ")})` : ""}`);
  else {
    out.push(`Summary: ${failed.length} problem${failed.length === 1 ? "" : "s"}`);
    for (const c of failed) out.push(`  - ${c.name}: ${c.detail}`);
  }
  return out.join("\n");
}
