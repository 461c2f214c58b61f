import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { silentLogger } from "../../../src/kernel/log.js";
import { updateConfigSchema } from "../../../src/update/config.js";
import { generateSigningKeyPair } from "../../../src/update/keys.js";
import { agentOptionsFromConfig, trustedKeyLoader } from "../../../src/update/setup.js";
import { tempDir } from "../../helpers/update-fixtures.js";

let dir: string;
before(async () => {
  dir = await tempDir("update-config");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("the update section has working defaults and refuses keys that are not Ed25519 public keys", () => {
  const defaults = updateConfigSchema.parse({});
  assert.equal(defaults.root, "/opt/lanekeeper");
  assert.equal(defaults.healthWindowS, 120);
  assert.deepEqual(defaults.restartCommand, ["systemctl", "--no-block", "restart", "lanekeeper"]);
  const pair = generateSigningKeyPair("k1");
  assert.equal(updateConfigSchema.safeParse({ trustedKeys: [{ id: "k1", publicKeyPem: pair.publicKeyPem }] }).success, true);
  const bad = updateConfigSchema.safeParse({
    trustedKeys: [
      { id: "k1", publicKeyPem: pair.privateKeyPem },
      { id: "bad id", publicKeyPem: "x" },
    ],
    keepReleases: 1,
  });
  assert.equal(bad.success, false);
  const paths = bad.success ? [] : bad.error.issues.map((i) => i.path.join("."));
  assert.deepEqual(paths.sort(), ["keepReleases", "trustedKeys.0.publicKeyPem", "trustedKeys.1.id", "trustedKeys.1.publicKeyPem"]);
});

test("trusted keys come from the config and the keys directory; unreadable files are skipped", async () => {
  const keysDir = join(dir, "update-keys");
  await mkdir(keysDir, { recursive: true });
  const inConfig = generateSigningKeyPair("from-config");
  const onDisk = generateSigningKeyPair("from-stick");
  await writeFile(join(keysDir, "from-stick.pem"), onDisk.publicKeyPem);
  await writeFile(join(keysDir, "broken.pem"), "not a key");
  await writeFile(join(keysDir, "notes.txt"), "ignored");
  const config = updateConfigSchema.parse({ trustedKeys: [{ id: "from-config", publicKeyPem: inConfig.publicKeyPem }], trustedKeysDir: keysDir, healthWindowS: 30 });
  const keys = await trustedKeyLoader(config, silentLogger())();
  assert.deepEqual(
    keys.map((k) => k.id),
    ["from-config", "from-stick"],
  );
  const options = agentOptionsFromConfig(config, silentLogger());
  assert.equal(options.healthWindowMs, 30_000);
  assert.equal(options.root, "/opt/lanekeeper");
});

test("download.caFile reaches the agent's download options; absent, none is passed", () => {
  const withCa = agentOptionsFromConfig(updateConfigSchema.parse({ download: { caFile: "/etc/lanekeeper/update-ca.pem" } }), silentLogger());
  assert.equal(withCa.download?.caFile, "/etc/lanekeeper/update-ca.pem");
  const without = agentOptionsFromConfig(updateConfigSchema.parse({}), silentLogger());
  assert.equal(without.download !== undefined && "caFile" in without.download, false);
  assert.equal(updateConfigSchema.safeParse({ download: { caFile: "" } }).success, false);
});
