/**
 * Start-up budgets (docs/architecture.md, budgets): `node dist/cli.js run` on the demo config
 * (temp store, API on a free port, the platform at a closed port: nothing on the way to ready
 * may need it) with NODE_OPTIONS as in systemd/lanekeeper.service, 5 starts, each next to a
 * bare `node` with the same options in the same run (the machine may be busy: the ratios to
 * bare node are the portable figures). One JSON line, `process-start`:
 *
 *  - readyLineMedianMs: spawn → the "local API on" stdout line (budget ≤ 400 ms on the box);
 *  - cpuMsAtReadyMedian: utime + stime of the process when that line arrives (/proc, 10 ms
 *    ticks); cpuMsAtIdleMedian: the same after 12 s idle (budget ≤ 300 ms): CPU is what a
 *    CPU quota or a busy Pi turns into start time;
 *  - idleRssMedianMb: VmRSS after 12 s idle (budget ≤ 64 MB). Twelve seconds, not three: what
 *    the service does after its ready line (undici's modules, the first clock-sync check, the
 *    daily job's timer, V8's memory reducer about 8 s in) belongs to the figure; a job that
 *    once loaded 5 s after the start hid 6 MB and 100 ms from a 3 s sample;
 *  - modulesAtReady: ESM and CommonJS modules loaded before the ready line (one more start
 *    with test/fixtures/startup/loaded-at-ready.mjs preloaded; not timed);
 *  - unbundled: when dist/cli.js is the bundle (`npm run build` ends with
 *    scripts/bundle-service.ts), the same three medians for the modules as tsc wrote them,
 *    started from a launcher beside them, interleaved with the bundled starts: what the bundle
 *    buys, measured in the same run;
 *  - defaultTiering: the same three medians for the bundle started with V8's default
 *    `--interrupt-budget` on the command line, which keeps the service from deferring V8's
 *    optimising compiler until it is ready (src/kernel/start-up-tiering.ts), interleaved too:
 *    what the deferral buys (on V8 11.3 only, Node 20's: elsewhere the service defers nothing);
 *  - nodeFloor: the same three medians for a bare node that loads the built-ins the service
 *    loaded (their number in `builtins`) and listens with node:http, interleaved too; and
 *    aboveNodeFloor, the service's CPU and idle RSS above that floor: the part our code and
 *    packages decide.
 *
 * The bench reports; it never fails on a missed budget.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { percentile, report, round, unitEnvironment } from "./lib.js";

const STARTS = 5;
const IDLE_MS = 12_000;
const BUDGET = { readyMs: 400, cpuMs: 300, idleRssMb: 64 };
const READY = "local API on";
/** Only on V8 11.3 (Node 20) does the service defer V8's optimising compiler, and only there has node an `--interrupt-budget`. */
const deferringV8 = process.versions.v8.startsWith("11.3.");
/**
 * The node floor: a bare node that loads the public built-ins the service had loaded after its
 * 12 s idle (listed by the preload's start) and listens with node:http, as the local API does.
 * No code of ours: what node itself costs for what the service takes from it.
 */
const FLOOR_SCRIPT = [
  'for (const name of (process.env.LK_FLOOR_BUILTINS ?? "").split(",").filter(Boolean)) await import(`node:${name}`);',
  'const { createServer } = await import("node:http");',
  `createServer((_, res) => res.end()).listen(0, "127.0.0.1", () => console.log("${READY}"));`,
].join("\n");

const base = await mkdtemp(join(tmpdir(), "lk-bench-start-"));
// A launcher for the unbundled modules of dist/ (what plain tsc leaves as dist/cli.js).
const unbundledCli = "dist/.bench-unbundled-cli.js";
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** CPU (utime + stime, ms) and memory of a live process, from /proc. */
async function sample(pid: number): Promise<{ cpuMs: number; rssMb: number; anonMb: number; fileMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  // Fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms.
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return { cpuMs: (Number(fields[11]) + Number(fields[12])) * 10, rssMb: kb("VmRSS") / 1024, anonMb: kb("RssAnon") / 1024, fileMb: kb("RssFile") / 1024 };
}

interface Start {
  readyMs: number;
  atReady: Awaited<ReturnType<typeof sample>>;
  atIdle: Awaited<ReturnType<typeof sample>>;
}

/** Spawns, waits for `line` on stdout, samples there and after IDLE_MS, then stops the process. */
async function startOnce(args: string[], env: NodeJS.ProcessEnv, line: string): Promise<Start> {
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  try {
    const ready = await new Promise<{ readyMs: number; atReady: Promise<Awaited<ReturnType<typeof sample>>> }>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`no "${line}" within 30 s; stderr: ${stderr.slice(0, 500)}`)), 30_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        if (stdout.includes(line)) return;
        stdout += chunk.toString("utf8");
        if (!stdout.includes(line)) return;
        clearTimeout(guard);
        // Sampled at once: the read is queued before anything else of ours.
        resolve({ readyMs: performance.now() - t0, atReady: sample(child.pid!) });
      });
      child.once("exit", (code) => reject(new Error(`exited (${code}) before "${line}"; stderr: ${stderr.slice(0, 500)}`)));
    });
    const atReady = await ready.atReady;
    await sleep(IDLE_MS);
    return { readyMs: ready.readyMs, atReady, atIdle: await sample(child.pid!) };
  } finally {
    child.kill("SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}

try {
  if (!existsSync("dist/cli.js")) {
    const built = spawnSync("npm", ["run", "build"], { stdio: "inherit" });
    if (!existsSync("dist/cli.js")) throw new Error(`dist/cli.js missing and the build failed (${built.status})`);
  }
  const unitEnv = unitEnvironment();
  const nodeOptions = unitEnv.NODE_OPTIONS ?? "";
  const raw = JSON.parse(await readFile(new URL("../config/demo.json", import.meta.url), "utf8")) as Record<string, Record<string, unknown>>;
  const configFor = async (n: number | string): Promise<string> => {
    raw.store!.dir = join(base, `store-${n}`);
    raw.api!.port = await freePort();
    raw.platform!.baseUrl = "http://127.0.0.1:9/";
    const path = join(base, `config-${n}.json`);
    await writeFile(path, JSON.stringify(raw));
    return path;
  };

  // tsc alone rewrites dist/cli.js unbundled; only the bundle's entry imports ./bundle/.
  const bundled = (await readFile("dist/cli.js", "utf8")).includes('from "./bundle/') && existsSync("dist/cli/main.js");
  if (bundled) await writeFile(unbundledCli, 'import { runCli } from "./cli/main.js";\nprocess.exitCode = await runCli(process.argv.slice(2));\n');

  // Which modules: one start with the preload that lists them (not timed), first: the floor
  // below loads the built-ins it names.
  const listFile = join(base, "loaded.txt");
  const preload = fileURLToPath(new URL("../test/fixtures/startup/loaded-at-ready.mjs", import.meta.url));
  await startOnce(
    ["dist/cli.js", "run", "--config", await configFor("modules")],
    { ...unitEnv, NODE_OPTIONS: `${nodeOptions} --import ${preload}`, LK_LOADED_LOG: listFile },
    READY,
  );
  const listed = (await readFile(listFile, "utf8")).split("\n");
  // Written at its exit, after the 12 s idle: the built-ins it loaded after its ready line too.
  const builtins = listed.filter((entry) => entry.startsWith("builtin ")).map((entry) => entry.slice("builtin ".length));
  if (builtins.length === 0) throw new Error(`the listing start named no built-ins (${listFile})`);
  const beforeReady = listed.slice(0, listed.indexOf("ready"));
  const packages = new Map<string, number>();
  for (const entry of beforeReady) {
    const name = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(entry)?.[1];
    if (name) packages.set(name, (packages.get(name) ?? 0) + 1);
  }

  const load0 = loadavg()[0]!;
  const runs: Start[] = [];
  const bare: Start[] = [];
  const unbundled: Start[] = [];
  const defaultTiering: Start[] = [];
  const floor: Start[] = [];
  for (let n = 0; n < STARTS; n++) {
    runs.push(await startOnce(["dist/cli.js", "run", "--config", await configFor(n)], unitEnv, READY));
    bare.push(await startOnce(["-e", `console.log("${READY}"); setTimeout(() => {}, 60_000)`], unitEnv, READY));
    if (bundled) unbundled.push(await startOnce([unbundledCli, "run", "--config", await configFor(`u${n}`)], unitEnv, READY));
    if (deferringV8) defaultTiering.push(await startOnce(["--interrupt-budget=67584", "dist/cli.js", "run", "--config", await configFor(`t${n}`)], unitEnv, READY));
    floor.push(await startOnce(["--input-type=module", "-e", FLOOR_SCRIPT], { ...unitEnv, LK_FLOOR_BUILTINS: builtins.join(",") }, READY));
  }

  const med = (xs: number[]) => percentile(xs, 50);
  const ready = med(runs.map((r) => r.readyMs));
  const cpuReady = med(runs.map((r) => r.atReady.cpuMs));
  const cpuIdle = med(runs.map((r) => r.atIdle.cpuMs));
  const rss = med(runs.map((r) => r.atIdle.rssMb));
  const bareReady = med(bare.map((r) => r.readyMs));
  const bareCpu = med(bare.map((r) => r.atIdle.cpuMs));
  const bareRss = med(bare.map((r) => r.atIdle.rssMb));
  const floorCpu = med(floor.map((r) => r.atIdle.cpuMs));
  const floorRss = med(floor.map((r) => r.atIdle.rssMb));
  report("process-start", {
    what: "node dist/cli.js run --config <demo config, temp store, platform at a closed port>, NODE_OPTIONS as in systemd/lanekeeper.service: spawn → 'local API on' line; CPU (utime+stime) at that line and after 12 s idle; VmRSS after 12 s idle; bare node with the same options beside each start",
    nodeOptions,
    unitEnvironment: unitEnv,
    starts: runs.length,
    readyLineMedianMs: round(ready, 1),
    readyLineMaxMs: round(Math.max(...runs.map((r) => r.readyMs)), 1),
    cpuMsAtReadyMedian: cpuReady,
    cpuMsAtIdleMedian: cpuIdle,
    idleRssMedianMb: round(rss, 1),
    idleRssMaxMb: round(Math.max(...runs.map((r) => r.atIdle.rssMb)), 1),
    idleRssAnonMedianMb: round(med(runs.map((r) => r.atIdle.anonMb)), 1),
    idleRssFileMedianMb: round(med(runs.map((r) => r.atIdle.fileMb)), 1),
    bareNodeReadyMedianMs: round(bareReady, 1),
    bareNodeCpuMsAtIdleMedian: bareCpu,
    bareNodeIdleRssMb: round(bareRss, 1),
    ratioToBareNode: { readyMs: round(ready / bareReady, 2), cpuMsAtIdle: round(cpuIdle / bareCpu, 2), idleRss: round(rss / bareRss, 2) },
    bundled,
    ...(bundled
      ? {
          unbundled: {
            readyLineMedianMs: round(med(unbundled.map((r) => r.readyMs)), 1),
            cpuMsAtIdleMedian: med(unbundled.map((r) => r.atIdle.cpuMs)),
            idleRssMedianMb: round(med(unbundled.map((r) => r.atIdle.rssMb)), 1),
          },
        }
      : {}),
    defaultTiering: deferringV8
      ? {
          readyLineMedianMs: round(med(defaultTiering.map((r) => r.readyMs)), 1),
          cpuMsAtIdleMedian: med(defaultTiering.map((r) => r.atIdle.cpuMs)),
          idleRssMedianMb: round(med(defaultTiering.map((r) => r.atIdle.rssMb)), 1),
        }
      : `not measured: the service defers nothing on V8 ${process.versions.v8}`,
    nodeFloor: {
      builtins: builtins.length,
      readyLineMedianMs: round(med(floor.map((r) => r.readyMs)), 1),
      cpuMsAtIdleMedian: floorCpu,
      idleRssMedianMb: round(floorRss, 1),
    },
    aboveNodeFloor: { cpuMsAtIdle: cpuIdle - floorCpu, idleRssMb: round(rss - floorRss, 1) },
    modulesAtReady: {
      esm: beforeReady.filter((e) => e.startsWith("esm ")).length,
      cjs: beforeReady.filter((e) => e.startsWith("cjs ")).length,
      ownModules: beforeReady.filter((e) => e.includes("/dist/")).length,
      byPackage: Object.fromEntries([...packages].sort((a, b) => b[1] - a[1])),
    },
    budget: { readyLineMs: BUDGET.readyMs, cpuMsAtIdle: BUDGET.cpuMs, idleRssMb: BUDGET.idleRssMb },
    withinBudget: ready <= BUDGET.readyMs && cpuIdle <= BUDGET.cpuMs && rss <= BUDGET.idleRssMb,
    loadAvg1m: [round(load0, 2), round(loadavg()[0]!, 2)],
  });
} catch (error) {
  report("process-start-error", { error: String((error as Error)?.stack ?? error) });
  process.exitCode = 1;
} finally {
  await rm(base, { recursive: true, force: true });
  await unlink(unbundledCli).catch(() => undefined);
}
