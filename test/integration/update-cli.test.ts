import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeSourceTree, tamperBundle, tempDir } from "../helpers/update-fixtures.js";

// The release tooling as an operator uses it: scripts/keygen.ts, scripts/build-bundle.ts and
// `lanekeeper release verify`, each a real process.

const repo = join(import.meta.dirname, "..", "..");
let work: string;

function node(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  work = await tempDir("update-cli");
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

test("keygen, build-bundle and release verify work end to end and refuse a tampered bundle", async () => {
  const keys = join(work, "keys");
  const keygen = await node(["scripts/keygen.ts", "--out", keys, "--id", "release-2025"]);
  assert.equal(keygen.code, 0, keygen.stderr);
  assert.match(keygen.stdout, /key id: +release-2025/);
  const again = await node(["scripts/keygen.ts", "--out", keys, "--id", "release-2025"]);
  assert.equal(again.code, 1, "an existing key is never overwritten");

  const src = await makeSourceTree(work, "3.1.0");
  const bundle = join(work, "out", "lanekeeper-3.1.0.tar");
  const build = await node(["scripts/build-bundle.ts", "--key", join(keys, "release-2025.private.pem"), "--out", bundle, "--source", src, "--files", "package.json,dist,node_modules", "--min-compatible", "3.0.0"]);
  assert.equal(build.code, 0, build.stderr);
  const jobLine = /job: +(\{.*\})/.exec(build.stdout)?.[1];
  assert.ok(jobLine, build.stdout);
  const job = JSON.parse(jobLine) as { version: string; sha256: string; size: number };
  assert.equal(job.version, "3.1.0");
  assert.equal(job.size, (await readFile(bundle)).length);

  const ok = await node(["src/cli.ts", "release", "verify", bundle, "--trusted", join(keys, "release-2025.pub.pem")]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /OK — lanekeeper 3\.1\.0 \(installs over 3\.0\.0 or newer; arm64, armhf, x64\), 6 files, .* signed by "release-2025"/);

  // The same check with the keys a box config trusts.
  const configFile = join(work, "lanekeeper.json");
  const publicKeyPem = await readFile(join(keys, "release-2025.pub.pem"), "utf8");
  await writeFile(configFile, JSON.stringify({ update: { trustedKeys: [{ id: "release-2025", publicKeyPem }], trustedKeysDir: join(work, "none") } }));
  const viaConfig = await node(["src/cli.ts", "release", "verify", bundle, "--config", configFile]);
  assert.equal(viaConfig.code, 0, viaConfig.stderr);

  const swapped = await tamperBundle(bundle, join(work, "swapped.tar"), (entries) => {
    // Same length, different bytes: only the hash can tell.
    const cli = entries.find((e) => e.path === "dist/cli.js")!;
    cli.body = Buffer.from(cli.body.toString().replace("console", "consol3"));
  });
  const bad = await node(["src/cli.ts", "release", "verify", swapped, "--trusted", join(keys, "release-2025.pub.pem")]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /REJECTED — E_FILE_HASH: dist\/cli\.js: sha256 differs from the manifest/);

  const usage = await node(["src/cli.ts", "release", "verify", bundle]);
  assert.equal(usage.code, 2);
});
