import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LotStore } from "../../src/store/lot-store.js";
import { Outbox } from "../../src/outbox/outbox.js";

/**
 * Kill-at-random-moments harness shared by the crash test (≥ 50 kills in `npm test`) and
 * scripts/crash-store.ts (1,000 kills). Each round starts test/helpers/store-writer.ts as a
 * real child process on the same directory, SIGKILLs it at a random moment, then loads the
 * store in this process and checks that everything the child acknowledged is there.
 */

export const writerPath = fileURLToPath(new URL("./store-writer.ts", import.meta.url));

export interface WriterCommand {
  command: string;
  args: string[];
  how: "bundle" | "tsx";
  cleanup: () => Promise<void>;
}

/**
 * How to start the writer. By default `node --import tsx store-writer.ts`; tsx compiles at
 * every start, which costs ~0.4 s (seconds on a loaded machine), so when esbuild (tsx's
 * own compiler) is importable the writer is bundled once into a temp file and started
 * with plain node. Same source, same code path; LANEKEEPER_CRASH_TSX=1 forces tsx.
 */
export async function prepareWriter(): Promise<WriterCommand> {
  const viaTsx: WriterCommand = { command: process.execPath, args: ["--import", "tsx", writerPath], how: "tsx", cleanup: async () => undefined };
  if (process.env.LANEKEEPER_CRASH_TSX === "1") return viaTsx;
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    return viaTsx;
  }
  const outDir = await mkdtemp(join(tmpdir(), "lk-writer-"));
  const outfile = join(outDir, "store-writer.mjs");
  await esbuild.build({
    entryPoints: [writerPath],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "error",
    // Bundled CommonJS dependencies call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __lkCreateRequire } from 'node:module'; const require = __lkCreateRequire(import.meta.url);" },
  });
  return { command: process.execPath, args: [outfile], how: "bundle", cleanup: () => rm(outDir, { recursive: true, force: true }) };
}

export interface Acknowledged {
  added: Set<string>;
  finished: Set<string>;
  queued: Set<string>;
  payments: Set<string>;
  vehicles: Set<string>;
}

export interface RoundResult {
  round: number;
  killedAfterMs: number;
  sawReady: boolean;
  acknowledgedThisRound: number;
  problems: string[];
  warnings: string[];
}

export interface CrashOptions {
  rounds: number;
  dir: string;
  /** Random source ([0, 1)) for the kill moments; seedable for reproducing a failure. */
  random?: () => number;
  /** A prepared writer (prepareWriter()); prepared and cleaned up per call when absent. */
  writer?: WriterCommand;
  /** Called after each verified round. */
  onRound?: (result: RoundResult) => void;
}

export function newAcknowledged(): Acknowledged {
  return { added: new Set(), finished: new Set(), queued: new Set(), payments: new Set(), vehicles: new Set() };
}

/** One child run, killed with SIGKILL at a random moment; returns its acknowledged lines. */
export async function runAndKill(writer: WriterCommand, dir: string, runId: string, random: () => number): Promise<{ lines: string[]; killedAfterMs: number; sawReady: boolean }> {
  const child = spawn(writer.command, [...writer.args, dir, runId], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let sawReady = false;
  const started = performance.now();
  // Most kills land while writing (after READY); some during start-up and recovery.
  const duringStartup = random() < 0.2;
  const delayMs = duringStartup ? random() * 700 : 5 + random() * 150;
  let timer: NodeJS.Timeout | undefined;
  const kill = (): void => {
    child.kill("SIGKILL");
  };
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    if (!sawReady && out.includes("READY\n")) {
      sawReady = true;
      if (!duringStartup) timer = setTimeout(kill, delayMs);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  if (duringStartup) timer = setTimeout(kill, delayMs);
  // A child that never gets going is killed anyway after 10 s (and reported).
  const guard = setTimeout(kill, 10_000);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  clearTimeout(guard);
  if (exit.signal !== "SIGKILL") {
    throw new Error(`store-writer ended by itself (code ${exit.code}): ${err.slice(-2000)}`);
  }
  return { lines: out.split("\n").filter((l) => l.length > 0), killedAfterMs: Math.round(performance.now() - started), sawReady };
}

export function absorb(ack: Acknowledged, lines: readonly string[]): number {
  let n = 0;
  for (const line of lines) {
    const [tag, id] = [line.slice(0, 1), line.slice(2)];
    const set = { A: ack.added, F: ack.finished, O: ack.queued, P: ack.payments, V: ack.vehicles }[tag];
    if (set && id) {
      set.add(id);
      n++;
    }
  }
  return n;
}

/** Every recordNo of a finished stay in the history segments. */
async function historyRecordNos(dir: string): Promise<Set<string>> {
  const out = new Set<string>();
  const historyDir = join(dir, "history");
  let names: string[] = [];
  try {
    names = (await readdir(historyDir)).filter((n) => n.endsWith(".jsonl"));
  } catch {
    return out;
  }
  for (const name of names) {
    const text = await readFile(join(historyDir, name), "utf8");
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      try {
        const line = JSON.parse(raw) as { t?: string; recordNo?: string };
        if (line.t === "stay" && line.recordNo) out.add(line.recordNo);
      } catch {
        // counted by the store's own warnings
      }
    }
  }
  return out;
}

/** Loads the store in this process and checks every acknowledged write is present. */
export async function verify(dir: string, ack: Acknowledged): Promise<{ problems: string[]; warnings: string[] }> {
  const problems: string[] = [];
  const store = new LotStore({ dir, pruneJob: false });
  const outbox = new Outbox({ dir });
  try {
    await store.start();
    await outbox.start();
  } catch (error) {
    return { problems: [`the store did not load: ${(error as Error).message}`], warnings: [] };
  }
  try {
    const history = await historyRecordNos(dir);
    for (const recordNo of ack.added) {
      if (!store.getInPark(recordNo) && !history.has(recordNo)) problems.push(`acknowledged stay ${recordNo} is neither in park nor in history`);
    }
    for (const recordNo of ack.finished) {
      if (store.getInPark(recordNo)) problems.push(`finished stay ${recordNo} is back in park`);
      if (!history.has(recordNo)) problems.push(`finished stay ${recordNo} is not in history`);
    }
    for (const key of ack.queued) if (!outbox.get(key)) problems.push(`acknowledged outbox entry ${key} is missing`);
    for (const orderNo of ack.payments) if (!store.payments.get(orderNo)) problems.push(`acknowledged payment ${orderNo} is missing`);
    for (const uuId of ack.vehicles) if (!store.getVehicle({ uuId })) problems.push(`acknowledged vehicle ${uuId} is missing`);
    const warnings = [...store.warnings(), ...outbox.status().warnings].map((w) => `${w.code}: ${w.detail}`);
    // SIGKILL leaves the page cache intact, so with the write protocol right no document
    // can be corrupt; a torn tail of an append (killed mid-write) is expected and repaired.
    for (const w of store.warnings()) if (w.code === "corrupt-newest" || w.code === "missing-newest") problems.push(`unexpected ${w.code} on ${w.file}: ${w.detail}`);
    return { problems, warnings };
  } finally {
    await outbox.stop();
    await store.stop();
  }
}

export async function crashRounds(options: CrashOptions): Promise<{ ack: Acknowledged; results: RoundResult[] }> {
  const random = options.random ?? Math.random;
  const ack = newAcknowledged();
  const results: RoundResult[] = [];
  const writer = options.writer ?? (await prepareWriter());
  try {
    for (let round = 1; round <= options.rounds; round++) {
      const run = await runAndKill(writer, options.dir, `k${round}`, random);
      const acknowledgedThisRound = absorb(ack, run.lines);
      const { problems, warnings } = await verify(options.dir, ack);
      const result = { round, killedAfterMs: run.killedAfterMs, sawReady: run.sawReady, acknowledgedThisRound, problems, warnings };
      results.push(result);
      options.onRound?.(result);
      if (problems.length > 0) break;
    }
  } finally {
    if (!options.writer) await writer.cleanup();
  }
  return { ack, results };
}

/** Seeded so a failing kill sequence can be replayed. */
export { seededRandom } from "./seeded-random.js";
