import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { localDateTime } from "../../src/core/time/zone.js";
import { prepareCli, type CliCommand } from "../helpers/console-cli.js";
import { demoRaw, tempDir, writeConfigFile } from "../helpers/demo-config.js";

/*
 * The log format follows who reads it: `lanekeeper demo` (what `npm start` runs) on a real
 * terminal (a pty from script(1)) prints human lines with the time on the lot's clock; piped,
 * as under systemd, it prints JSON lines; LK_LOG_FORMAT forces either.
 */

// Not the machine's zone (UTC here), and with a 45-minute offset: a time printed in UTC or in
// the system zone cannot pass for it.
const lotZone = "Asia/Kathmandu";

let cli: CliCommand;
before(async () => {
  cli = await prepareCli();
});
after(async () => {
  await cli.cleanup();
});

/** A demo config on ephemeral ports, in a fresh store, in the lot zone above. */
async function demoConfigFile(): Promise<string> {
  const raw = demoRaw() as Record<string, any>;
  raw.store.dir = tempDir("lk-logfmt-store-");
  raw.api.port = 0;
  raw.lot.timeZone = lotZone;
  // Port 0: the demo's platform emulator takes a free port and the box is pointed at it.
  raw.platform.baseUrl = "http://127.0.0.1:0/";
  return writeConfigFile(raw);
}

interface Session {
  output: () => string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** `lanekeeper demo --no-traffic` with stdout on a pipe, or on a pty when `tty`. */
function startDemo(configFile: string, tty: boolean, env: NodeJS.ProcessEnv = {}): Session {
  const args = [...cli.args, "demo", "--no-traffic", "--config", configFile];
  const pidFile = join(tempDir("lk-logfmt-"), "pid");
  const quoted = [cli.command, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  // script(1) gives the command a real terminal; the shell records the pid of the node it
  // becomes, so the test can stop the service itself as systemd would (SIGTERM).
  const child = tty
    ? spawn("script", ["-qfec", `sh -c 'echo $$ > ${pidFile}; exec ${quoted.replace(/'/g, "'\\''")}'`, "/dev/null"], {
        env: { ...process.env, LK_LOG_FORMAT: "", ...env },
        stdio: ["pipe", "pipe", "pipe"],
      })
    : spawn(cli.command, args, { env: { ...process.env, LK_LOG_FORMAT: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters = new Set<() => void>();
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    for (const wake of waiters) wake();
  });
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    output: () => out.replace(/\r\n/g, "\n"),
    waitFor: (pattern, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!pattern.test(out.replace(/\r\n/g, "\n"))) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: async () => {
      const pid = tty ? Number(readFileSync(pidFile, "utf8").trim()) : child.pid!;
      process.kill(pid, "SIGTERM");
      return exited;
    },
  };
}

/** The lot's wall clock at `ms` as HH:MM. */
function lotClock(ms: number): string {
  const local = localDateTime(ms, lotZone);
  return `${String(local.hour).padStart(2, "0")}:${String(local.minute).padStart(2, "0")}`;
}

test("on a terminal the demo logs human lines on the lot's clock; piped it logs JSON", async () => {
  const configFile = await demoConfigFile();
  const startedAtMs = Date.now();
  const onTty = startDemo(configFile, true);
  try {
    await onTty.waitFor(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}ready url=http:\/\/127\.0\.0\.1:\d+ lanes=\["in1","out1"\]$/m);
  } finally {
    assert.equal(await onTty.stop(), 0);
  }
  const readyAtMs = Date.now();
  const lines = onTty.output().split("\n");
  const ready = lines.find((line) => / INFO {2}ready /.test(line))!;
  // The clock of the lot, not of the machine: the minute is one the lot's clock showed.
  const shown = ready.slice(0, 5);
  assert.ok([lotClock(startedAtMs), lotClock(readyAtMs)].includes(shown), `"${ready}" is not on the ${lotZone} clock (${lotClock(startedAtMs)})`);
  assert.match(onTty.output(), /^\d\d:\d\d:\d\d\.\d{3} INFO {2}outbox: outbox loaded depth=0 parked=0$/m);
  assert.match(onTty.output(), /^\d\d:\d\d:\d\d\.\d{3} INFO {2}stopped; outputs safe outputs=/m);
  assert.ok(!lines.some((line) => line.startsWith('{"')), "no JSON line on the terminal");

  const piped = startDemo(configFile, false);
  try {
    await piped.waitFor(/"msg":"ready"/);
  } finally {
    assert.equal(await piped.stop(), 0);
  }
  const logLines = piped
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"));
  assert.ok(logLines.length >= 3, piped.output());
  for (const line of logLines) {
    const entry = JSON.parse(line) as { time: string; level: string; msg: string };
    assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "journald gets UTC ISO times");
  }
  assert.ok(!/^\d\d:\d\d:\d\d\.\d{3} /m.test(piped.output()), "no human line in the pipe");
});

test("LK_LOG_FORMAT forces the format either way; a wrong value is warned about with a code", async () => {
  // Three boxes at once, each with its own store and ports.
  const run = async (tty: boolean, format: string, ready: RegExp): Promise<string> => {
    const session = startDemo(await demoConfigFile(), tty, { LK_LOG_FORMAT: format });
    try {
      await session.waitFor(ready);
    } finally {
      await session.stop();
    }
    return session.output();
  };
  const [human, jsonOnTty, wrong] = await Promise.all([
    run(false, "human", /^\d\d:\d\d:\d\d\.\d{3} INFO {2}ready /m),
    run(true, "json", /^\{.*"msg":"ready"/m),
    run(false, "pretty", /"msg":"ready"/),
  ]);
  assert.doesNotMatch(human, /^\{"/m);
  assert.doesNotMatch(jsonOnTty, /^\d\d:\d\d:\d\d\.\d{3} /m);
  const warning = wrong.split("\n").find((line) => line.includes("E_LOG_FORMAT"));
  assert.ok(warning, wrong);
  assert.deepEqual((({ level, code, value }) => ({ level, code, value }))(JSON.parse(warning) as { level: string; code: string; value: string }), {
    level: "warn",
    code: "E_LOG_FORMAT",
    value: "pretty",
  });
});
