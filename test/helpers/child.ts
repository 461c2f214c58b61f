import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const cliPath = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

export interface RunningChild {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first stdout match of `pattern` (rejects after `timeoutMs`). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `lanekeeper <args>` from the sources in a real child process. `prefix` runs it through
 * another command that execs it (`ip netns exec <ns>`), so the child is still node itself.
 */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}, prefix: string[] = []): RunningChild {
  const command = [...prefix, process.execPath, "--import", "tsx", cliPath, ...args];
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...waiters]) w();
  });
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      for (const w of [...waiters]) w();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const match = out.match(pattern);
          if (match) {
            cleanup();
            resolve(match);
            return true;
          }
          if (child.exitCode !== null) {
            cleanup();
            reject(new Error(`child exited (${child.exitCode}) before ${pattern}; stdout:\n${out}\nstderr:\n${err}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; stdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          const i = waiters.indexOf(listener);
          if (i >= 0) waiters.splice(i, 1);
        };
        const listener = (): void => void check();
        if (!check()) waiters.push(listener);
      });
    },
  };
}

/** Runs `lanekeeper <args>` to completion. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const running = startCli(args, env);
  const { code } = await running.exited;
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}
