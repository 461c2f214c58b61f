import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real AF_UNIX SOCK_DGRAM socket standing in for systemd's NOTIFY_SOCKET. Node cannot open
 * one, so a small python3 process binds it with SO_PASSCRED (the kernel then attaches the
 * sender's credentials to every datagram, exactly what PID 1 reads to attribute a message),
 * prints one JSON line per datagram, and closes any passed descriptor: systemd-notify's
 * BARRIER=1 carries a pipe end and waits until the receiver has closed it, as PID 1 does.
 */

const receiver = String.raw`
import array, json, os, socket, struct, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chmod(path, 0o777)
print(json.dumps({"bound": path}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64 * 4))
    pid = uid = None
    fds = 0
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack("iII", payload[:12])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in got:
                os.close(fd)
                fds += 1
    print(json.dumps({"pid": pid, "uid": uid, "fds": fds, "data": data.decode("utf-8", "replace"), "atMs": time.time() * 1000}), flush=True)
`;

export interface NotifyDatagram {
  /** Sender PID as the kernel attributed it (SCM_CREDENTIALS). */
  pid: number;
  uid: number;
  /** Descriptors passed along (1 for BARRIER=1). */
  fds: number;
  data: string;
  /** Fields of the datagram, e.g. { READY: "1", STATUS: "..." }. */
  fields: Record<string, string>;
  atMs: number;
}

export interface NotifySocket {
  path: string;
  messages(): NotifyDatagram[];
  /** Waits for a datagram matching `predicate` (already received ones count). */
  waitFor(predicate: (message: NotifyDatagram) => boolean, timeoutMs?: number): Promise<NotifyDatagram>;
  close(): Promise<void>;
}

/** Why the notify tests cannot run here, or undefined when they can. */
export function notifyToolsMissing(): string | undefined {
  if (spawnSync("python3", ["-c", "import socket; socket.SO_PASSCRED"], { stdio: "ignore" }).status !== 0) {
    return "python3 with AF_UNIX/SO_PASSCRED is needed to receive datagrams (Node cannot)";
  }
  if (spawnSync("systemd-notify", ["--help"], { stdio: "ignore" }).status !== 0) {
    return "systemd-notify is not installed (package systemd; .ci/run installs it)";
  }
  return undefined;
}

export async function openNotifySocket(): Promise<NotifySocket> {
  const dir = mkdtempSync(join(tmpdir(), "lk-notify-"));
  // Reachable by a sender running as another user (the unprivileged attribution test).
  chmodSync(dir, 0o755);
  const path = join(dir, "notify.sock");
  const child: ChildProcess = spawn("python3", ["-u", "-c", receiver, path], { stdio: ["ignore", "pipe", "pipe"] });
  const received: NotifyDatagram[] = [];
  const waiters = new Set<() => void>();
  let buffered = "";
  let stderr = "";
  let bound!: () => void;
  const boundPromise = new Promise<void>((resolve) => (bound = resolve));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if ("bound" in parsed) {
        bound();
        continue;
      }
      const data = String(parsed.data);
      const fields: Record<string, string> = {};
      for (const entry of data.split("\n")) {
        const eq = entry.indexOf("=");
        if (eq > 0) fields[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      received.push({ pid: Number(parsed.pid), uid: Number(parsed.uid), fds: Number(parsed.fds), data, fields, atMs: Number(parsed.atMs) });
      for (const wake of [...waiters]) wake();
    }
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await Promise.race([
    boundPromise,
    exited.then(() => {
      throw new Error(`notify receiver exited: ${stderr}`);
    }),
  ]);
  return {
    path,
    messages: () => [...received],
    waitFor(predicate, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = received.find(predicate);
          if (!found) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching datagram within ${timeoutMs} ms; got ${JSON.stringify(received.map((m) => m.data))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    async close() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
