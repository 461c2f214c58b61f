import { test } from "node:test";
import assert from "node:assert/strict";
import { demoRaw, tempDir, writeConfigFile } from "../helpers/demo-config.js";
import { startCli, type RunningChild } from "../helpers/child.js";
import { startEmulator, type Emulator, type EmulatorFaults } from "../../src/platform/emulator/emulator.js";

/*
 * Stop means stopped: SIGTERM to the real service in every phase of an exit, with the
 * platform hanging, answering late or refusing, and with an outbox report hanging. The
 * process is gone within 2 s of the signal and nothing of the box runs (no log line of any
 * subsystem) after "stopped; outputs safe"; a report cut off by the stop is delivered after
 * the restart, exactly once.
 */

const TOKEN = "demo-token-change-me-0001";

interface Phase {
  name: string;
  faults: EmulatorFaults;
  /** Drives the exit to the phase; resolves when the SIGTERM is due. */
  reach: (child: RunningChild, url: string) => Promise<void>;
  /** Checks the lines logged between the signal and "stopped". */
  whileStopping?: (lines: LogLine[]) => void;
  /** After the exit: boots the box again on the same store and checks what it sends. */
  afterRestart?: (emulator: Emulator, configPath: string) => Promise<void>;
}

interface LogLine {
  msg: string;
  sub?: string;
  service?: string;
  kind?: string;
  count?: number;
}

async function post(url: string, path: string, body: unknown): Promise<number> {
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  await res.text();
  return res.status;
}

/** A car with no entry record on out1 (charged the flat amount): loopA, then the plate. */
async function arrive(url: string, plate: string): Promise<void> {
  assert.equal(await post(url, "/api/sim/inputs/out1/loopA", { level: 1 }), 200);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(await post(url, "/api/sim/camera/out1", { plate, confidence: 95 }), 200);
}

async function status(url: string): Promise<{ outbox: { inFlight: number }; lanes: Array<{ id: string; barrier: string }> }> {
  const res = await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as { outbox: { inFlight: number }; lanes: Array<{ id: string; barrier: string }> };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const hangBill: EmulatorFaults = { rules: [{ service: "preLeaveNotify", action: { kind: "hang" } }] };

const phases: Phase[] = [
  {
    name: "deciding (the entry report of a car with no record hangs)",
    faults: { hang: true },
    reach: async (child, url) => {
      await arrive(url, "粤Q50001");
      await child.waitFor(/"msg":"no-entry-record"/);
    },
  },
  {
    name: "awaiting the bill (the platform answers late)",
    faults: { rules: [{ service: "preLeaveNotify", action: { kind: "delay", ms: 5000 } }] },
    reach: async (child, url) => {
      await arrive(url, "粤Q50002");
      await child.waitFor(/"msg":"fee-due"/);
    },
  },
  {
    name: "late-answer window open (cash fallback shown, the bill still hanging)",
    faults: hangBill,
    reach: async (child, url) => {
      await arrive(url, "粤Q50003");
      await child.waitFor(/"msg":"cash-fallback"/);
    },
  },
  {
    name: "settling (cash pressed, the platform asked once more and hanging)",
    faults: hangBill,
    reach: async (child, url) => {
      await arrive(url, "粤Q50004");
      await child.waitFor(/"msg":"cash-fallback"/);
      void post(url, "/api/lanes/out1/commands", { command: "cash-paid", operator: "booth" }).catch(() => undefined);
      await child.waitFor(/"msg":"cash-check"/);
    },
  },
  {
    name: "cash fallback with the platform refusing connections",
    faults: { refuse: true },
    reach: async (child, url) => {
      await arrive(url, "粤Q50005");
      await child.waitFor(/"msg":"cash-fallback"/);
    },
  },
  {
    name: "an outbox delivery hangs (the entry report of a car that came in)",
    faults: { rules: [{ service: "enterNotify", action: { kind: "hang" } }] },
    reach: async (_child, url) => {
      assert.equal(await post(url, "/api/sim/inputs/in1/loopA", { level: 1 }), 200);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await post(url, "/api/sim/camera/in1", { plate: "粤Q50006", confidence: 95 }), 200);
      // The entry report is queued once the car has passed the barrier.
      await until("in1 open", async () => (await status(url)).lanes.find((l) => l.id === "in1")?.barrier === "open");
      for (const [name, level] of [
        ["loopB", 1],
        ["loopA", 0],
        ["loopB", 0],
      ] as const) {
        assert.equal(await post(url, `/api/sim/inputs/in1/${name}`, { level }), 200);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await until("the entry report in flight", async () => (await status(url)).outbox.inFlight > 0);
    },
    whileStopping: (lines) => {
      // Cut off by the outbox's own stop, not failed by the client closing under it.
      assert.deepEqual(
        lines.filter((l) => l.msg.startsWith("outbox: deliveries in flight aborted at stop")).map((l) => l.count),
        [1],
      );
      assert.deepEqual(
        lines.filter((l) => l.service === "enterNotify" && l.msg === "platform call failed"),
        [],
      );
    },
    afterRestart: async (emulator, configPath) => {
      await emulator.clearFaults();
      const again = startCli(["run", "--config", configPath]);
      try {
        await again.waitFor(/local API on (http:\/\/[^\s]+)/);
        const push = await emulator.waitFor({ service: "enterNotify", plateNum: "粤Q50006" }, 10_000);
        // The hanging delivery was cut off, not answered: the restart delivers it once.
        assert.equal(push.count, 1);
      } finally {
        again.child.kill("SIGTERM");
        await again.exited;
      }
      assert.deepEqual(
        emulator.received({ service: "enterNotify" }).map((p) => [p.biz.plateNum, p.count]),
        [["粤Q50006", 1]],
      );
    },
  },
];

for (const phase of phases) {
  test(`SIGTERM while ${phase.name}: exits within 2 s, nothing logged after "stopped"`, async () => {
    const emulator = await startEmulator({ timeZone: "Asia/Shanghai" });
    try {
      const raw = demoRaw() as Record<string, any>;
      raw.api.port = 0;
      raw.store.dir = tempDir("lk-stop-");
      raw.platform.baseUrl = emulator.url;
      raw.platform.deadlines = { preLeaveMs: 600, preEnterMs: 600, reportMs: 600, cashCheckMs: 500 };
      const configPath = writeConfigFile(raw);
      const running = startCli(["run", "--config", configPath]);
      const [, url] = await running.waitFor(/local API on (http:\/\/[^\s]+)/);
      await emulator.setFaults(phase.faults);
      await phase.reach(running, url!);

      const begun = performance.now();
      running.child.kill("SIGTERM");
      const { code } = await running.exited;
      const tookMs = performance.now() - begun;
      assert.equal(code, 0, running.stderr());
      assert.ok(tookMs < 2000, `exited ${Math.round(tookMs)} ms after the signal`);
      const lines = running
        .stdout()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as LogLine);
      const stoppedAt = lines.findIndex((entry) => entry.msg === "stopped; outputs safe");
      assert.ok(stoppedAt >= 0, running.stdout());
      phase.whileStopping?.(
        lines.slice(
          lines.findIndex((entry) => entry.msg === "stopping"),
          stoppedAt,
        ),
      );
      // Nothing at all: not the lanes, their events or bills, nor the outbox's reports.
      const after = lines.slice(stoppedAt + 1);
      assert.deepEqual(after, [], `log lines after "stopped": ${JSON.stringify(after)}`);
      await phase.afterRestart?.(emulator, configPath);
    } finally {
      await emulator.stop();
    }
  });
}
