import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../src/kernel/clock.js";
import { createPlatformClient } from "../../src/platform/client.js";
import { platformConfigSchema, type PlatformConfigInput } from "../../src/platform/config.js";
import { demoCredentials, startEmulator, type EmulatorOptions } from "../../src/platform/emulator/emulator.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { capturingLogger, sampleEnter as enter } from "../helpers/platform-fixtures.js";
import { haveOpenssl, makeTestCerts, type TestCerts } from "../helpers/test-certs.js";

/** An https emulator and a client configured with `files`; the client's log lines for reading. */
async function callOverTls(certs: TestCerts, files: Partial<PlatformConfigInput>, tls: Partial<NonNullable<EmulatorOptions["tls"]>> = {}) {
  const emulator = await startEmulator({
    tls: { cert: await readFile(certs.serverCertFile, "utf8"), key: await readFile(certs.serverKeyFile, "utf8"), ...tls },
  });
  const { log, lines } = capturingLogger();
  const client = createPlatformClient({
    config: platformConfigSchema.parse({ baseUrl: emulator.url, pid: demoCredentials.pid, key: demoCredentials.key, ...files }),
    clock: systemClock,
    log,
  });
  try {
    const result = await client.enterNotify(enter, { deadlineMs: 5000 });
    return { result, lines, received: emulator.received().length, url: emulator.url };
  } finally {
    await client.close();
    await emulator.stop();
  }
}

const skipTls = (await haveOpenssl()) ? false : "openssl CLI not installed (needed to make test certificates)";

test("the platform over https with a private CA: untrusted without platform.caFile, accepted with it, a client certificate when the cloud asks", { skip: skipTls }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "lk-platform-tls-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certs = await makeTestCerts(dir);

  await t.test("without the CA the call fails at once, as a link failure that names the fix", async () => {
    const { result, lines, received, url } = await callOverTls(certs, {});
    assert.ok(url.startsWith("https://127.0.0.1:"), url);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.kind === "refused", JSON.stringify(result));
    assert.match(!result.ok ? (result.detail ?? "") : "", /^TLS [A-Z_]+: the platform's certificate is not trusted .*platform\.caFile/);
    assert.equal(received, 0);
    assert.ok(lines.some((l) => l.includes("platform call failed") && l.includes("platform.caFile")));
  });

  await t.test("with platform.caFile the same call is answered", async () => {
    const { result, received } = await callOverTls(certs, { caFile: certs.caFile });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(received, 1);
  });

  await t.test("a cloud that demands a client certificate: refused without one, answered with certFile/keyFile", async () => {
    const clientCa = await readFile(certs.caFile, "utf8");
    const without = await callOverTls(certs, { caFile: certs.caFile }, { clientCa });
    assert.equal(without.result.ok, false);
    assert.equal(without.received, 0);
    const withCert = await callOverTls(certs, { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile }, { clientCa });
    assert.equal(withCert.result.ok, true, JSON.stringify(withCert.result));
    assert.equal(withCert.received, 1);
  });

  await t.test("a CA file that cannot be used is logged at start and named in every failed call", async () => {
    const notPem = join(dir, "not-a-cert.pem");
    await writeFile(notPem, "hello\n");
    const missing = await callOverTls(certs, { caFile: join(dir, "absent.pem") });
    assert.equal(missing.result.ok, false);
    assert.ok(missing.lines.some((l) => l.includes("platform TLS file not used") && l.includes("absent.pem") && l.includes("ENOENT")));
    assert.match(!missing.result.ok ? (missing.result.detail ?? "") : "", /platform\.caFile .*absent\.pem: cannot read it \(ENOENT\)/);
    const garbage = await callOverTls(certs, { caFile: notPem });
    assert.match(!garbage.result.ok ? (garbage.result.detail ?? "") : "", /not-a-cert\.pem: no PEM certificate in it/);
  });

  await t.test("the whole lot over https: a frictionless exit opens on the cloud's 200, the reports are delivered", async () => {
    const emulator = await startEmulator({
      timeZone: "Asia/Shanghai",
      tls: { cert: await readFile(certs.serverCertFile, "utf8"), key: await readFile(certs.serverKeyFile, "utf8") },
    });
    const lot = await LotHarness.create({ emulator, mutate: (raw) => (raw.platform.caFile = certs.caFile) });
    try {
      assert.ok(lot.config.platform.baseUrl.startsWith("https://"));
      const stay = await lot.park("粤B12345", 3 * 3_600_000);
      emulator.setPlate("粤B12345", "frictionless");
      await lot.arrive("out1", "粤B12345");
      await lot.until(() => lot.barrier("out1") === "open", 4000, "out1 open");
      await lot.pass("out1");
      await lot.until(() => emulator.received({ service: "leaveNotify", recordNo: stay.recordNo }).length === 1, 4000, "leaveNotify delivered");
      assert.equal(emulator.received({ service: "preLeaveNotify", recordNo: stay.recordNo }).length, 1);
      assert.equal(lot.app.platform.stats().failures.refused, 0);
    } finally {
      await lot.stop();
      await emulator.stop();
    }
  });
});
