import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";

/**
 * How a test starts `lanekeeper` as a child process, the way an operator runs it. By default
 * `node --import tsx src/cli.ts`; tsx compiles at every start, which costs seconds on a loaded
 * machine, and the fleet console suite starts the CLI dozens of times. So when esbuild (tsx's
 * own compiler) is importable, src/cli.ts is bundled once (dependencies left as imports) into
 * test-artifacts/ — one folder below the checkout, so `../package.json` and node_modules
 * resolve exactly as from dist/ — and started with plain node. Same source, same code paths;
 * LANEKEEPER_CLI_TSX=1 forces tsx.
 */
export interface CliCommand {
  command: string;
  args: string[];
  how: "tsx" | "bundle";
  cleanup(): Promise<void>;
}

export async function prepareCli(repoDir = process.cwd()): Promise<CliCommand> {
  const entry = join(repoDir, "src", "cli.ts");
  const viaTsx: CliCommand = { command: process.execPath, args: ["--import", "tsx", entry], how: "tsx", cleanup: async () => undefined };
  if (process.env.LANEKEEPER_CLI_TSX === "1") return viaTsx;
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    return viaTsx;
  }
  const outDir = join(repoDir, "test-artifacts");
  await mkdir(outDir, { recursive: true });
  const outfile = join(outDir, `lanekeeper-cli-${process.pid}-${Date.now()}.mjs`);
  await esbuild.build({ entryPoints: [entry], bundle: true, packages: "external", platform: "node", format: "esm", target: "node20", outfile, logLevel: "error" });
  return { command: process.execPath, args: [outfile], how: "bundle", cleanup: () => rm(outfile, { force: true }) };
}
