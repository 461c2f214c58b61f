import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:net";
import { readFile } from "node:fs/promises";
import { writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { join } from "node:path";
import { demoRaw, tempDir, writeConfigFile } from "../helpers/demo-config.js";
import { runCli } from "../helpers/child.js";
import { haveOpenssl, makeTestCerts } from "../helpers/test-certs.js";

/**
 * `lanekeeper selftest` in a real child process against the demo config with simulated GPIO:
 * a closed platform port fails the run and names the reason; a reachable TCP listener passes;
 * a real pseudo-terminal (opened by python3's pty module, standing in for a camera on a serial
 * line) shows what arrives; bad --pulse targets are usage errors.
 */

async function listen(): Promise<Server> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

async function closedPort(): Promise<number> {
  const server = await listen();
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function configWith(mutate: (raw: Record<string, any>) => void): string {
  const raw = demoRaw() as Record<string, any>;
  raw.store.dir = tempDir("lk-store-");
  raw.api.port = 0;
  mutate(raw);
  return writeConfigFile(raw);
}

interface Report {
  ok: boolean;
  gpio: { kind: string; rows: Array<{ key: string; level: number; bcm: number; direction: string }> };
  pulses: Array<{ key: string; status: string; ms: number }>;
  serial: Array<{ name: string; status: string; rxBytes: number; preview: string; detail: string }>;
  checks: Array<{ name: string; status: string; detail: string }>;
}

const check = (report: Report, name: string) => report.checks.find((c) => c.name === name);

test("an unreachable platform fails the self-test and the summary says why", async () => {
  const port = await closedPort();
  const file = configWith((raw) => (raw.platform.baseUrl = `http://127.0.0.1:${port}/`));
  const result = await runCli(["selftest", "--config", file, "--listen-s", "0", "--timeout-ms", "1000"]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, new RegExp(`FAIL +platform +127\\.0\\.0\\.1:${port} unreachable: connection refused`));
  assert.match(result.stdout, /Summary: 1 problem\n {2}- platform: .*ECONNREFUSED/);
  // The GPIO table is there, with the BCM lines of the demo config.
  assert.match(result.stdout, /in1\.loopA +in +17 /);
  assert.match(result.stdout, /out1\.relayStop +out +21 /);
});

/** A pseudo-terminal whose other end repeats a camera line every 100 ms. */
function fakeCamera(): Promise<{ path: string; child: ChildProcess }> {
  const script = String.raw`
import os, pty, sys, time, tty
master, slave = pty.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
line = "粤B12345,blue,93\r\n".encode("gbk")
while True:
    os.write(master, line)
    time.sleep(0.1)
`;
  const child = spawn("python3", ["-u", "-c", script], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", (chunk: Buffer) => resolve({ path: chunk.toString().trim(), child }));
    child.once("exit", (code) => reject(new Error(`pty helper exited ${code}`)));
  });
}

const noPython = spawnSync("python3", ["-c", "import pty"], { stdio: "ignore" }).status === 0 ? false : "python3 (pty module) not installed";

test("reachable platform and broker, a talking serial device and a pulse: exit 0 with every check named", { skip: noPython }, async () => {
  const platform = await listen();
  const broker = await listen();
  const camera = await fakeCamera();
  try {
    const file = configWith((raw) => {
      raw.platform.baseUrl = `http://127.0.0.1:${(platform.address() as { port: number }).port}/`;
      raw.mqtt = { url: `mqtt://127.0.0.1:${(broker.address() as { port: number }).port}` };
      raw.serial["cam-out1"].path = camera.path;
    });
    const begun = performance.now();
    const result = await runCli(["selftest", "--config", file, "--json", "--listen-s", "1", "--watch-s", "1", "--pulse", "in1.relayOpen", "--pulse-ms", "100"]);
    const tookMs = performance.now() - begun;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout) as Report;
    assert.equal(report.ok, true);
    assert.equal(check(report, "platform")?.status, "ok");
    assert.match(check(report, "platform")?.detail ?? "", /reachable/);
    assert.equal(check(report, "mqtt")?.status, "ok");
    assert.equal(check(report, "store")?.status, "ok");
    assert.match(check(report, "store")?.detail ?? "", /writable; .* free/);
    assert.equal(check(report, "gpio")?.status, "ok");
    assert.equal(report.gpio.kind, "sim");
    assert.equal(report.gpio.rows.length, 12);
    assert.ok(
      report.gpio.rows.every((r) => r.level === 0),
      "sim inputs idle, outputs safe",
    );
    assert.deepEqual(
      report.pulses.map((p) => [p.key, p.status, p.ms]),
      [["in1.relayOpen", "ok", 100]],
    );

    const cam = report.serial.find((s) => s.name === "cam-out1")!;
    assert.equal(cam.status, "ok", cam.detail);
    assert.ok(cam.rxBytes >= 17, `${cam.rxBytes} bytes`);
    assert.match(cam.preview, /B12345,blue,93\\r\\n/, "the plate line, GBK bytes escaped");
    assert.match(cam.preview, /^(\\x[0-9a-f]{2}){2}B12345/, "the province character arrives as two GBK bytes");
    assert.equal(report.serial.find((s) => s.name === "led-in1")?.status, "skip");
    assert.ok(tookMs >= 1000, "watched the inputs for the second asked");
  } finally {
    camera.child.kill();
    platform.close();
    broker.close();
  }
});

test("a store that is a file and a serial path that does not exist are failures named in the summary", async () => {
  const platform = await listen();
  try {
    const notADir = join(tempDir("lk-store-"), "file");
    writeFileSync(notADir, "x");
    const file = configWith((raw) => {
      raw.platform.baseUrl = `http://127.0.0.1:${(platform.address() as { port: number }).port}/`;
      raw.store.dir = notADir;
      raw.serial["scan-out1"].path = "/dev/ttyLK-not-plugged";
    });
    const result = await runCli(["selftest", "--config", file, "--listen-s", "0"]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /Summary: 2 problems/);
    assert.match(result.stdout, /- serial scan-out1: cannot open \/dev\/ttyLK-not-plugged: .*(unplugged, or the wrong path\?)/);
    assert.match(result.stdout, /- store: .*file exists but is not a directory/);
    assert.match(result.stdout, /ok +platform/);
  } finally {
    platform.close();
  }
});

const skipTls = (await haveOpenssl()) ? false : "openssl CLI not installed (needed to make test certificates)";

test("an https platform and an mqtts broker: the handshake is checked with the configured CA and client certificate", { skip: skipTls }, async (t) => {
  const dir = tempDir("lk-selftest-tls-");
  const certs = await makeTestCerts(dir);
  const [cert, key, ca] = await Promise.all([readFile(certs.serverCertFile, "utf8"), readFile(certs.serverKeyFile, "utf8"), readFile(certs.caFile, "utf8")]);
  const platformLine = (stdout: string) => stdout.split("\n").find((l) => /^\s*(ok|FAIL|WARN) +platform /.test(l)) ?? stdout;
  const run = async (server: HttpsServer, platform: Record<string, unknown>) => {
    const file = configWith((raw) => Object.assign(raw.platform, { baseUrl: `https://127.0.0.1:${(server.address() as { port: number }).port}/`, ...platform }));
    return runCli(["selftest", "--config", file, "--listen-s", "0", "--timeout-ms", "2000"]);
  };
  const plain = createHttpsServer({ cert, key }, (_req, res) => res.end("{}"));
  const wantsClient = createHttpsServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true }, (_req, res) => res.end("{}"));
  for (const server of [plain, wantsClient]) await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    plain.close();
    wantsClient.close();
  });

  const untrusted = await run(plain, {});
  assert.equal(untrusted.code, 1, untrusted.stdout);
  assert.match(platformLine(untrusted.stdout), /FAIL +platform .*reachable .*TLS failed: .*\[[A-Z_]+\]; a private CA goes in platform\.caFile/);

  const trusted = await run(plain, { caFile: certs.caFile });
  assert.match(platformLine(trusted.stdout), /ok +platform .*TLS verified \(127\.0\.0\.1, issued by lanekeeper-test-ca/);

  const noClientCert = await run(wantsClient, { caFile: certs.caFile });
  assert.match(platformLine(noClientCert.stdout), /FAIL +platform .*TLS failed/);
  const withClientCert = await run(wantsClient, { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile });
  assert.match(platformLine(withClientCert.stdout), /ok +platform .*TLS verified/);

  const missingCa = await run(plain, { caFile: join(dir, "absent.pem") });
  assert.match(platformLine(missingCa.stdout), /FAIL +platform .*platform\.caFile .*absent\.pem: cannot read it \(ENOENT\)/);

  // The broker's link alike (mqtts://): verified with mqtt.caFile; unverified is a warning.
  const brokerLine = (stdout: string) => stdout.split("\n").find((l) => /^\s*(ok|FAIL|WARN) +mqtt /.test(l)) ?? stdout;
  const brokerUrl = `mqtts://127.0.0.1:${(plain.address() as { port: number }).port}`;
  const withBroker = async (mqtt: Record<string, unknown>) => {
    const file = configWith((raw) => {
      raw.platform.baseUrl = `https://127.0.0.1:${(plain.address() as { port: number }).port}/`;
      raw.platform.caFile = certs.caFile;
      raw.mqtt = { url: brokerUrl, ...mqtt };
    });
    return runCli(["selftest", "--config", file, "--listen-s", "0", "--timeout-ms", "2000"]);
  };
  assert.match(brokerLine((await withBroker({})).stdout), /FAIL +mqtt .*TLS failed: .*a private CA goes in mqtt\.caFile/);
  assert.match(brokerLine((await withBroker({ caFile: certs.caFile })).stdout), /ok +mqtt .*TLS verified/);
  assert.match(brokerLine((await withBroker({ rejectUnauthorized: false })).stdout), /WARN +mqtt .*NOT verified: mqtt\.rejectUnauthorized is false/);
});

test("usage errors: an input or unknown line to pulse, a bad number; a bad config is exit 1", async () => {
  const file = configWith(() => undefined);
  const [input, watch, missing] = await Promise.all([
    runCli(["selftest", "--config", file, "--pulse", "in1.loopA"]),
    runCli(["selftest", "--config", file, "--watch-s", "soon"]),
    runCli(["selftest", "--config", join(tempDir(), "nope.json")]),
  ]);
  assert.equal(input.code, 2);
  assert.match(input.stderr, /--pulse in1\.loopA: not a configured output; outputs are in1\.relayOpen, in1\.relayClose/);
  assert.equal(watch.code, 2);
  assert.match(watch.stderr, /--watch-s must be a number/);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nothing tested/);
});
