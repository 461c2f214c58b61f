import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { notifyToolsMissing, openNotifySocket, type NotifyDatagram, type NotifySocket } from "../helpers/notify-socket.js";

/**
 * The watchdog stops pinging when the event loop is blocked. A real child process runs the
 * system integration with NOTIFY_SOCKET pointing at a real datagram socket and
 * WATCHDOG_USEC=600 ms (a ping every 300 ms), then deliberately stalls its loop for 2 s in
 * 250 ms busy chunks with a short yield between them: timers still get to run in the gaps, so
 * only the lag check keeps pings from going out. The same child with the threshold raised out
 * of reach is the control: there pings do arrive during the stall, proving that the silence
 * in the first run comes from the lag check and not from a loop that could not run at all.
 */

const missing = notifyToolsMissing();
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const childScript = fileURLToPath(new URL("../fixtures/system/watchdog-child.ts", import.meta.url));
let socketA: NotifySocket;
let socketB: NotifySocket;

before(async () => {
  if (missing) return;
  [socketA, socketB] = await Promise.all([openNotifySocket(), openNotifySocket()]);
});
after(async () => {
  await Promise.all([socketA?.close(), socketB?.close()]);
});

interface ChildRun {
  code: number | null;
  report: { pid: number; watchdog: { pings: number; skippedLag: number; maxLagMs: number } | null };
  stderr: string;
}

function runChild(socket: NotifySocket, maxLagMs: number): Promise<ChildRun> {
  const child = spawn(process.execPath, ["--import", "tsx", childScript], {
    cwd: repoRoot,
    env: { ...process.env, NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "600000", LK_MAX_LAG_MS: String(maxLagMs), LK_BLOCK_MS: "2000", LK_CHUNK_MS: "250" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "{}";
      resolve({ code, report: JSON.parse(last) as ChildRun["report"], stderr });
    }),
  );
}

/** Splits the datagrams (barriers dropped) into before / during / after the stall. */
function phases(messages: NotifyDatagram[]) {
  const own = messages.filter((m) => m.fields.BARRIER === undefined);
  const blockAt = own.findIndex((m) => m.fields.STATUS === "blocking");
  const unblockAt = own.findIndex((m) => m.fields.STATUS === "unblocked");
  assert.ok(blockAt > 0 && unblockAt > blockAt, `phase markers missing: ${JSON.stringify(own.map((m) => m.data))}`);
  const pings = (list: NotifyDatagram[]) => list.filter((m) => m.fields.WATCHDOG === "1").length;
  return {
    ready: own.filter((m) => m.fields.READY === "1").length,
    stopping: own.filter((m) => m.fields.STOPPING === "1").length,
    before: pings(own.slice(0, blockAt)),
    during: pings(own.slice(blockAt + 1, unblockAt)),
    after: pings(own.slice(unblockAt + 1)),
  };
}

test("a stalled event loop sends no watchdog pings; the control run with the check out of reach does", { skip: missing }, async () => {
  const [stalled, control] = await Promise.all([runChild(socketA, 150), runChild(socketB, 60_000)]);
  assert.equal(stalled.code, 0, stalled.stderr);
  assert.equal(control.code, 0, control.stderr);

  const s = phases(socketA.messages());
  assert.equal(s.ready, 1);
  assert.equal(s.stopping, 1);
  assert.ok(s.before >= 2, `healthy loop pinged ${s.before} times in 1 s`);
  assert.equal(s.during, 0, "no ping may leave while the loop stalls");
  assert.ok(s.after >= 2, `pings resume after the stall (${s.after})`);
  assert.ok((stalled.report.watchdog?.skippedLag ?? 0) >= 3, JSON.stringify(stalled.report));

  const c = phases(socketB.messages());
  assert.ok(c.during >= 2, `control: timers ran during the stall and pinged (${c.during})`);
  assert.equal(control.report.watchdog?.skippedLag, 0);

  // Every datagram came from the child's process tree, not from this test process.
  for (const m of [...socketA.messages(), ...socketB.messages()]) assert.notEqual(m.pid, process.pid);
});
