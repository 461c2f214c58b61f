/**
 * Memory under load (docs/architecture.md, budgets): the demo composition (config/demo.json,
 * simulated GPIO and serial, real store files in a temp dir, the platform emulator in its own
 * process) drives 1,000 passages through both lanes — a car enters at in1, stays a minute (the
 * free period: nothing to pay) and leaves at out1 — in a child process started with the unit's
 * node options (NODE_OPTIONS= line of systemd/lanekeeper.service) plus --expose-gc. After the
 * 500th and the 1,000th passage, with the outbox drained and two full GCs, it records rssMb
 * and the heap. One JSON line, `rss-under-load`; budget ≤ 96 MB at the 1,000th and flat
 * (≤ 2 MB growth) from the 500th to the 1,000th.
 *
 * The child runs the sources through tsx, whose loader adds its own few MB to every figure
 * (`tsxBaselineRssMb` minus `bareNodeRssMb`, idle children with the same options with and
 * without the loader, says how many; `rssMbWithoutTsx` takes it off and is held to the budget).
 * `LK_HEAP_SNAPSHOTS=<dir>` also writes a heap snapshot at both points for a comparison.
 * Time: a FakeClock drives the lane timers; the fsyncs and HTTP calls are real.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { report, round, unitEnvironment } from "./lib.js";

/** LK_BENCH_PASSAGES shortens a trial run; the figure is defined at 1,000. */
const PASSAGES = Number(process.env.LK_BENCH_PASSAGES ?? 1000);
const CHECKPOINTS = [PASSAGES / 2, PASSAGES];
const FLAT_MB = 2;
const BUDGET_MB = 96;

if (process.argv[2] === "--child") await runChild(process.argv[3]!);
else await runParent();

/** Runs `node <options> --expose-gc --import tsx <args>` and collects its JSON stdout lines. */
async function child(nodeOptions: string, args: string[], tsx = true): Promise<Record<string, unknown>[]> {
  const proc = spawn(process.execPath, ["--expose-gc", ...(tsx ? ["--import", "tsx"] : []), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...unitEnvironment(), NODE_OPTIONS: nodeOptions },
  });
  let out = "";
  proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => proc.once("exit", resolve));
  if (code !== 0) throw new Error(`child ${args.join(" ")} exited ${code}: ${out.slice(-500)}`);
  return out
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function runParent(): Promise<void> {
  const nodeOptions = unitEnvironment().NODE_OPTIONS ?? "";
  const demo = JSON.parse(await readFile(new URL("../config/demo.json", import.meta.url), "utf8")) as { platform: { pid: string; key: string } };
  const emulator = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./emulator-process.ts", import.meta.url)), demo.platform.pid, demo.platform.key], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = "";
      emulator.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
        if (text.includes("\n")) resolve(text.split("\n")[0]!.trim());
      });
      emulator.once("exit", (code) => reject(new Error(`emulator process exited (${code}) before it listened`)));
    });
    const load0 = loadavg()[0]!;
    const idleScript = "globalThis.gc(); globalThis.gc(); console.log(JSON.stringify({ rssMb: process.memoryUsage().rss / 1048576 }))";
    const baseline = await child(nodeOptions, ["-e", idleScript]);
    const bare = await child(nodeOptions, ["-e", idleScript], false);
    const lines = await child(nodeOptions, [fileURLToPath(import.meta.url), "--child", url]);
    const at = (n: number) => lines.find((line) => line.passages === n);
    const started = at(0);
    const half = at(CHECKPOINTS[0]!);
    const full = at(CHECKPOINTS[1]!);
    if (!started || !half || !full) throw new Error(`missing checkpoints: ${JSON.stringify(lines)}`);
    const growthMb = (full.rssMb as number) - (half.rssMb as number);
    const loaderMb = (baseline[0]!.rssMb as number) - (bare[0]!.rssMb as number);
    report("rss-under-load", {
      what: `${PASSAGES} passages (enter in1, 1 min stay, leave out1) on the demo composition in a child with NODE_OPTIONS as in systemd/lanekeeper.service + --expose-gc; rssMb after two full GCs with the outbox drained`,
      nodeOptions,
      passages: full.passages,
      rssMbAfterStart: round(started.rssMb as number, 1),
      rssMbAt500: round(half.rssMb as number, 1),
      rssMb: round(full.rssMb as number, 1),
      heapUsedMbAtStart: round(started.heapUsedMb as number, 1),
      heapUsedMbAt500: round(half.heapUsedMb as number, 1),
      heapUsedMbAt1000: round(full.heapUsedMb as number, 1),
      externalMbAt1000: round(full.externalMb as number, 1),
      arrayBuffersMbAt1000: round(full.arrayBuffersMb as number, 1),
      notOpened: full.notOpened,
      tsxBaselineRssMb: round(baseline[0]!.rssMb as number, 1),
      bareNodeRssMb: round(bare[0]!.rssMb as number, 1),
      // What the box (plain node on dist/, no tsx loader) would show: minus the loader's share.
      rssMbWithoutTsx: round((full.rssMb as number) - loaderMb, 1),
      rssGrowth500To1000Mb: round(growthMb, 1),
      // RSS moves by several MB with the allocator's free pages; the heap says what stays.
      heapBytesPerPassage500To1000: Math.round((((full.heapUsedMb as number) - (half.heapUsedMb as number)) * 1048576) / (PASSAGES - CHECKPOINTS[0]!)),
      heapSnapshots: full.heapSnapshot ? [half.heapSnapshot, full.heapSnapshot] : undefined,
      budgetMb: BUDGET_MB,
      flatWithinMb: FLAT_MB,
      withinBudget: (full.rssMb as number) - loaderMb <= BUDGET_MB && growthMb <= FLAT_MB,
      loadAvg1m: [round(load0, 2), round(loadavg()[0]!, 2)],
    });
  } catch (error) {
    report("rss-under-load-error", { error: String((error as Error)?.stack ?? error) });
    process.exitCode = 1;
  } finally {
    emulator.kill("SIGTERM");
  }
}

async function runChild(platformUrl: string): Promise<void> {
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { writeHeapSnapshot } = await import("node:v8");
  const { App } = await import("../src/app/app.js");
  const { silentLogger } = await import("../src/kernel/log.js");
  const { validateConfig } = await import("../src/config/load.js");
  const { SimGpio } = await import("../src/io/gpio/sim-gpio.js");
  const { gpioLinesFromConfig } = await import("../src/io/gpio/lines.js");
  const { FakeClock } = await import("../test/helpers/fake-clock.js");
  type Level = 0 | 1;

  /** SimGpio that says when a relay output is written active (the barrier opened). */
  class WatchedGpio extends SimGpio {
    private waiter: { key: string; resolve: () => void } | undefined;
    next(key: string, guardMs = 10_000): Promise<boolean> {
      return new Promise((resolve) => {
        const guard = setTimeout(() => {
          this.waiter = undefined;
          resolve(false);
        }, guardMs);
        this.waiter = {
          key,
          resolve: () => {
            clearTimeout(guard);
            resolve(true);
          },
        };
      });
    }
    override write(key: string, level: Level): void {
      super.write(key, level);
      const waiter = this.waiter;
      if (waiter && level === 1 && key === waiter.key) {
        this.waiter = undefined;
        waiter.resolve();
      }
    }
  }

  const base = await mkdtemp(join(tmpdir(), "lk-bench-rss-"));
  const raw = JSON.parse(await readFile(new URL("../config/demo.json", import.meta.url), "utf8")) as Record<string, Record<string, unknown>>;
  raw.store!.dir = join(base, "store");
  raw.platform!.baseUrl = platformUrl;
  raw.lot!.totalSpaces = 100;
  const checked = validateConfig(raw);
  if (!checked.ok) throw new Error(`bench config invalid: ${JSON.stringify(checked.problems)}`);
  const config = checked.config;
  const clock = new FakeClock(Date.now());
  // The twin's output history is a test control, not the box's memory (the box drives onoff):
  // kept to 1,000 changes like the display twin's, so it is full long before the 500th passage
  // instead of growing to its default 10,000 across the measured half.
  const gpio = new WatchedGpio(gpioLinesFromConfig(config), clock, 1000);
  const app = new App({ config, log: silentLogger(), clock, apiPort: 0, gpio });
  await app.start();
  const lane = (id: string) => config.lanes.find((l) => l.id === id)!;
  const onMs = lane("in1").detector.minOnMs + 1;
  const offMs = lane("in1").detector.minOffMs + 1;
  const settleMs = Math.max(lane("in1").relayPulseMs, lane("in1").timers.travelTimeMs) + 1;
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  const quiesce = async () => {
    for (let i = 0; i < 500; i++) {
      const s = app.outbox.status();
      if (s.depth === 0 && s.inFlight === 0) break;
      await clock.advance(50);
      await sleep(1);
    }
    await sleep(0);
  };
  let notOpened = 0;
  /** One car through one lane: loopA, the plate, the barrier, loopB, gone, barrier closed. */
  const passage = async (laneId: string, plate: string) => {
    gpio.setInput(`${laneId}.loopA`, 1);
    await clock.advance(onMs);
    const opened = gpio.next(`${laneId}.relayOpen`);
    app.lanes.plateRead(laneId, { plate, atMs: clock.now(), source: "sim" });
    if (!(await opened)) notOpened++;
    await clock.advance(settleMs);
    gpio.setInput(`${laneId}.loopB`, 1);
    await clock.advance(onMs);
    gpio.setInput(`${laneId}.loopA`, 0);
    await clock.advance(offMs);
    gpio.setInput(`${laneId}.loopB`, 0);
    await clock.advance(offMs + settleMs * 2);
  };
  const checkpoint = async (passages: number) => {
    await quiesce();
    globalThis.gc?.();
    globalThis.gc?.();
    const m = process.memoryUsage();
    const snapshotDir = process.env.LK_HEAP_SNAPSHOTS;
    const heapSnapshot = snapshotDir && passages > 0 ? writeHeapSnapshot(join(snapshotDir, `rss-under-load-${passages}.heapsnapshot`)) : undefined;
    console.log(
      JSON.stringify({
        passages,
        rssMb: m.rss / 1048576,
        heapUsedMb: m.heapUsed / 1048576,
        externalMb: m.external / 1048576,
        arrayBuffersMb: m.arrayBuffers / 1048576,
        notOpened,
        ...(heapSnapshot ? { heapSnapshot } : {}),
      }),
    );
  };

  try {
    await checkpoint(0);
    for (let i = 1; i <= PASSAGES; i++) {
      const plate = `京B${String(i % 100_000).padStart(5, "0")}`;
      await passage("in1", plate);
      await clock.advance(60_000);
      await passage("out1", plate);
      if (i % 10 === 0) await quiesce();
      if (CHECKPOINTS.includes(i)) await checkpoint(i);
    }
  } finally {
    await app.stop();
    await rm(base, { recursive: true, force: true });
  }
}
