import { reachableRepo } from "../../helpers/reachable-repo.js";
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../../src/kernel/log.js";
import { SystemdNotifier } from "../../../src/system/notify.js";
import { createSystemIntegration } from "../../../src/system/integration.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { notifyToolsMissing, openNotifySocket, type NotifySocket } from "../../helpers/notify-socket.js";

/**
 * The notifier against a REAL AF_UNIX datagram socket set as NOTIFY_SOCKET, with the kernel's
 * sender credentials (SO_PASSCRED), i.e. what PID 1 sees. What this shows about attribution,
 * and why systemd/lanekeeper.service says NotifyAccess=all:
 * - with privileges (CAP_SYS_ADMIN, e.g. root) systemd-notify fakes its parent's PID, so the
 *   message appears to come from the Node process itself;
 * - without (the `lanekeeper` service user) it comes from the systemd-notify child, which
 *   NotifyAccess=main rejects; NotifyAccess=all accepts any process of the unit's cgroup.
 * Each message is followed by a BARRIER=1 datagram carrying a pipe end: systemd-notify waits
 * until the receiver closed it, so it is still alive while PID 1 looks up its cgroup.
 */

const missing = notifyToolsMissing();
const isRoot = process.getuid?.() === 0;
const childScript = fileURLToPath(new URL("../../fixtures/system/notify-child.ts", import.meta.url));
let socket: NotifySocket;

before(async () => {
  if (!missing) socket = await openNotifySocket();
});
after(async () => {
  await socket?.close();
});

test("without NOTIFY_SOCKET every call is a no-op that spawns nothing", async () => {
  const notifier = new SystemdNotifier({ log: silentLogger(), env: {}, command: "/nonexistent/systemd-notify" });
  assert.equal(notifier.enabled, false);
  assert.equal(await notifier.ready("x"), "disabled");
  assert.equal(await notifier.watchdog(), "disabled");
  assert.equal(await notifier.stopping(), "disabled");
  assert.deepEqual(notifier.senderPids(), []);
  assert.equal(notifier.stats().failed, 0);
});

test("READY, WATCHDOG and STOPPING arrive on the socket, attributed as the kernel sees them", { skip: missing }, async () => {
  const notifier = new SystemdNotifier({ log: silentLogger(), env: { NOTIFY_SOCKET: socket.path, PATH: process.env.PATH } });
  const before = socket.messages().length;
  assert.equal(await notifier.ready("2 lanes up"), "sent");
  assert.equal(await notifier.watchdog(), "sent");
  assert.equal(await notifier.stopping(), "sent");

  const ready = await socket.waitFor((m) => m.fields.READY === "1");
  const ping = await socket.waitFor((m) => m.fields.WATCHDOG === "1");
  const stopping = await socket.waitFor((m) => m.fields.STOPPING === "1");
  assert.equal(ready.fields.STATUS, "2 lanes up");
  assert.equal(stopping.fields.STATUS, undefined);
  const senders = notifier.senderPids();
  assert.equal(senders.length, 3);
  for (const message of [ready, ping, stopping]) {
    if (isRoot) {
      // Privileged: systemd-notify put its parent's PID (this process) into the credentials.
      assert.equal(message.pid, process.pid, `${message.data} should be attributed to the main process`);
    } else {
      assert.ok(senders.includes(message.pid), `${message.data} from ${message.pid}, expected one of ${senders}`);
    }
  }
  // Order on the socket is the order of the calls.
  const own = socket
    .messages()
    .slice(before)
    .filter((m) => !m.fields.BARRIER);
  assert.deepEqual(
    own.map((m) => Object.keys(m.fields)[0]),
    ["READY", "WATCHDOG", "STOPPING"],
  );
  // And each was followed by a barrier from the systemd-notify process itself, with its pipe end.
  const barriers = socket
    .messages()
    .slice(before)
    .filter((m) => m.fields.BARRIER === "1");
  assert.equal(barriers.length, 3);
  for (const barrier of barriers) {
    assert.ok(senders.includes(barrier.pid), `barrier from ${barrier.pid}`);
    assert.equal(barrier.fds, 1);
  }
});

test(
  "unprivileged (as the service user is) the datagrams come from the systemd-notify child, not the main PID",
  { skip: missing ?? (isRoot ? false : "needs root to drop to another user with setpriv") },
  async (t) => {
    const before = socket.messages().length;
    const repo = reachableRepo();
    t.after(() => repo.release());
    const child = spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "--import", "tsx", repo.path(childScript)], {
      env: { ...process.env, NOTIFY_SOCKET: socket.path, HOME: "/tmp" },
      stdio: ["ignore", "pipe", "pipe"],
      cwd: repo.root,
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, err);
    const report = JSON.parse(out.trim().split("\n").at(-1)!) as { pid: number; uid: number; senders: number[]; outcomes: string[] };
    assert.equal(report.uid, 65534);
    assert.deepEqual(report.outcomes, ["sent", "sent", "sent"], out);
    await socket.waitFor((m) => m.fields.STATUS === "child stopping");
    const mine = socket
      .messages()
      .slice(before)
      .filter((m) => !m.fields.BARRIER);
    assert.equal(mine.length, 3);
    for (const message of mine) {
      assert.notEqual(message.pid, report.pid, "an unprivileged sender cannot claim the main PID: NotifyAccess=main would drop this");
      assert.ok(report.senders.includes(message.pid), `${message.data} from ${message.pid}, not one of ${report.senders}`);
      assert.equal(message.uid, 65534);
    }
  },
);

test("watchdog pings are rate-limited; a status line cannot inject a field", { skip: missing }, async () => {
  const clock = new FakeClock();
  const notifier = new SystemdNotifier({ log: silentLogger(), clock, env: { NOTIFY_SOCKET: socket.path, PATH: process.env.PATH }, minWatchdogIntervalMs: 1000 });
  const before = socket.messages().length;
  assert.equal(await notifier.watchdog(), "sent");
  assert.equal(await notifier.watchdog(), "skipped-rate");
  await clock.advance(999);
  assert.equal(await notifier.watchdog(), "skipped-rate");
  await clock.advance(1);
  assert.equal(await notifier.watchdog(), "sent");
  assert.equal(await notifier.status("line one\nREADY=1"), "sent");
  await socket.waitFor((m) => m.fields.STATUS === "line one READY=1");
  const mine = socket
    .messages()
    .slice(before)
    .filter((m) => !m.fields.BARRIER);
  assert.equal(mine.filter((m) => m.fields.WATCHDOG === "1").length, 2);
  assert.ok(
    mine.every((m) => m.fields.READY === undefined),
    "the newline must not start a READY field",
  );
  assert.equal(notifier.stats().skippedRate, 2);
});

test("a missing systemd-notify is a counted failure, never an exception", async () => {
  const notifier = new SystemdNotifier({ log: silentLogger(), env: { NOTIFY_SOCKET: "/run/nowhere.sock" }, command: "/nonexistent/systemd-notify" });
  assert.equal(await notifier.ready(), "failed");
  assert.equal(await notifier.watchdog(), "failed");
  const stats = notifier.stats();
  assert.equal(stats.failed, 2);
  assert.match(stats.lastError ?? "", /not found/);
});

test("the integration claims NOTIFY_SOCKET and WATCHDOG_* so children cannot speak for the service", () => {
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: "/run/x.sock", WATCHDOG_USEC: "20000000", WATCHDOG_PID: "4242", PATH: "/usr/bin" };
  const system = createSystemIntegration({ log: silentLogger(), clock: new FakeClock(), env, pid: 4242, unsetEnvironment: true });
  assert.equal(system.notifier.enabled, true);
  assert.ok(system.watchdog, "watchdog armed for our own PID");
  assert.equal(env.NOTIFY_SOCKET, undefined);
  assert.equal(env.WATCHDOG_USEC, undefined);
  assert.equal(env.WATCHDOG_PID, undefined);
  assert.equal(env.PATH, "/usr/bin");

  const kept: NodeJS.ProcessEnv = { NOTIFY_SOCKET: "/run/x.sock" };
  createSystemIntegration({ log: silentLogger(), clock: new FakeClock(), env: kept });
  assert.equal(kept.NOTIFY_SOCKET, "/run/x.sock", "only process.env is claimed by default");
});
