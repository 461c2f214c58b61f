import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/kernel/log.js";
import { mqttConfigSchema } from "../../src/fleet/config.js";
import { FleetLink } from "../../src/fleet/fleet-link.js";
import { startAedes, type AedesHelperOptions } from "../helpers/aedes-broker.js";
import { until } from "../helpers/mqtt-probe.js";
import { haveOpenssl, makeTestCerts } from "../helpers/test-certs.js";

/** The two ways a box proves who it is: username/password, or TLS with a client certificate. */

async function withLink(
  brokerOptions: AedesHelperOptions,
  config: Record<string, unknown>,
  fn: (link: FleetLink, seen: { usernames: string[]; certSubjects: string[] }) => Promise<void>,
): Promise<void> {
  const seen = { usernames: [] as string[], certSubjects: [] as string[] };
  const broker = await startAedes(brokerOptions);
  broker.broker.on("client", (client) => {
    const socket = client.conn as { getPeerCertificate?: () => { subject?: { CN?: string } } };
    const cn = socket.getPeerCertificate?.().subject?.CN;
    if (cn) seen.certSubjects.push(cn);
  });
  const dir = await mkdtemp(join(tmpdir(), "fleet-tls-"));
  const link = new FleetLink({
    config: mqttConfigSchema.parse({ url: broker.url, protocolVersion: 4, ...config }),
    deviceId: "box-1",
    stateDir: dir,
    log: silentLogger(),
    random: () => 0.05,
  });
  try {
    await fn(link, seen);
  } finally {
    await link.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test("username/password: the right pair connects, a wrong one is refused and retried with backoff", async () => {
  const usernames: string[] = [];
  const authenticate: AedesHelperOptions["authenticate"] = (_client, username, password, done) => {
    usernames.push(String(username));
    const ok = username === "box-1" && password?.toString() === "s3cret-pass";
    done(ok ? null : Object.assign(new Error("bad credentials"), { returnCode: 4 as const }), ok);
  };
  await withLink({ authenticate }, { username: "box-1", password: "s3cret-pass" }, async (link) => {
    await link.start();
    await until(() => link.state === "connected", 5000, "connected with the password");
  });
  await withLink({ authenticate }, { username: "box-1", password: "wrong" }, async (link) => {
    await link.start();
    await until(() => (link.stats().connectAttempts ?? 0) >= 2, 5000, "a retry after the refusal");
    assert.notEqual(link.state, "connected");
    assert.ok((link.stats().clientErrors ?? 0) >= 1, "the refusal is counted");
    assert.ok(link.stats().failures >= 1);
  });
  assert.ok(usernames.every((u) => u === "box-1"));
});

const skipTls = (await haveOpenssl()) ? false : "openssl CLI not installed (needed to make test certificates)";

test("TLS with a CA and a client certificate (mqtts://)", { skip: skipTls }, async () => {
  const certDir = await mkdtemp(join(tmpdir(), "fleet-certs-"));
  try {
    const certs = await makeTestCerts(certDir);
    const tls = {
      key: await readFile(certs.serverKeyFile),
      cert: await readFile(certs.serverCertFile),
      ca: await readFile(certs.caFile),
      requestCert: true,
      rejectUnauthorized: true,
    };
    await withLink({ tls }, { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile }, async (link, seen) => {
      await link.start();
      await until(() => link.state === "connected", 5000, "connected over TLS");
      assert.deepEqual(seen.certSubjects, ["box-1"], "the broker saw the box's client certificate");
    });
    // Without the client certificate the broker's handshake refuses the box: no connection, retries.
    await withLink({ tls }, { caFile: certs.caFile }, async (link) => {
      await link.start();
      await until(() => (link.stats().connectAttempts ?? 0) >= 2, 5000, "a retry after the TLS refusal");
      assert.notEqual(link.state, "connected");
    });
    // A CA file that does not exist is a setup error, retried like any other failure.
    await withLink({ tls }, { caFile: join(certDir, "missing.pem") }, async (link) => {
      await link.start();
      await until(() => (link.stats().connectSetupErrors ?? 0) >= 1, 5000, "the setup error");
      assert.equal(link.state, "waiting");
    });
  } finally {
    await rm(certDir, { recursive: true, force: true });
  }
});
