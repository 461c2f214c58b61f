import { format } from "node:util";
import { runCli } from "../../../src/cli/main.js";

/**
 * Runs `lanekeeper <argv>` in this process, as src/cli.ts does, with what the commands print
 * on the console captured: a child process per case would cost seconds each under tsx.
 */
export async function runInProcess(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { log: console.log, error: console.error };
  console.log = (...args: unknown[]) => void out.push(format(...args));
  console.error = (...args: unknown[]) => void err.push(format(...args));
  try {
    const code = await runCli(argv);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = saved.log;
    console.error = saved.error;
  }
}
