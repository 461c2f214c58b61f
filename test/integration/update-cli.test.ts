import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { elfHeader, makeSourceTree, tamperBundle, tempDir } from "../helpers/update-fixtures.js";

// The release tooling as an operator uses it: `lanekeeper release keygen|build|verify` (and the
// scripts/ wrappers kept for old habits), each a real process.

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

test("keygen, build and release verify work end to end and refuse a tampered bundle", async () => {
  const keys = join(work, "keys");
  const keygen = await node(["src/cli.ts", "release", "keygen", "--out", keys, "--id", "release-2025"]);
  assert.equal(keygen.code, 0, keygen.stderr);
  assert.match(keygen.stdout, /key id: +release-2025/);
  const again = await node(["scripts/keygen.ts", "--out", keys, "--id", "release-2025"]);
  assert.equal(again.code, 1, "an existing key is never overwritten");
  assert.match(again.stderr, /already exists/);

  const src = await makeSourceTree(work, "3.1.0");
  const bundle = join(work, "out", "lanekeeper-3.1.0.tar.gz");
  const build = await node([
    "scripts/build-bundle.ts",
    "--key",
    join(keys, "release-2025.private.pem"),
    "--out",
    bundle,
    "--source",
    src,
    "--files",
    "package.json,dist,node_modules",
    "--min-compatible",
    "3.0.0",
  ]);
  assert.equal(build.code, 0, build.stderr);
  const jobLine = /job: +(\{.*\})/.exec(build.stdout)?.[1];
  assert.ok(jobLine, build.stdout);
  const job = JSON.parse(jobLine) as { version: string; sha256: string; size: number };
  assert.equal(job.version, "3.1.0");
  assert.equal(job.size, (await readFile(bundle)).length);

  const ok = await node(["src/cli.ts", "release", "verify", bundle, "--trusted", join(keys, "release-2025.pub.pem")]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /OK — lanekeeper 3\.1\.0 \(installs over 3\.0\.0 or newer; arm64, armhf, x64\), 6 files, .* signed by "release-2025"/);
  assert.match(ok.stdout, /native files: none/);

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

test("release build names the bundle for its architecture, lists native files, and refuses a wrong claim", async () => {
  const keys = join(work, "keys-native");
  assert.equal((await node(["src/cli.ts", "release", "keygen", "--out", keys, "--id", "rel-native"])).code, 0);
  const privateKey = join(keys, "rel-native.private.pem");
  const epoll = "node_modules/epoll/build/Release/epoll.node";
  const src = await makeSourceTree(work, "3.2.0", { native: { [epoll]: elfHeader("arm64", 2048) } });
  const tree = ["--source", src, "--files", "package.json,dist,node_modules"];

  const out = join(work, "out-native");
  const built = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--out", out, "--arch", "arm64", ...tree]);
  assert.equal(built.code, 0, built.stderr);
  const file = join(out, "lanekeeper-3.2.0-arm64.tar.gz");
  assert.match(built.stdout, new RegExp(`bundle: +${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  assert.match(built.stdout, /native: +node_modules\/epoll\/build\/Release\/epoll\.node \(arm64\)/);
  const verified = await node(["src/cli.ts", "release", "verify", file, "--trusted", join(keys, "rel-native.pub.pem")]);
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stdout, /\(installs over 0\.0\.0 or newer; arm64\)/);
  assert.match(verified.stdout, /native files: 1, compiled for Node ABI \d+\n +arm64 +node_modules\/epoll\/build\/Release\/epoll\.node +sha256:[0-9a-f]{16}/);

  // Without --arch the native files decide, and the name says so.
  const derived = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--out", join(work, "out-derived"), ...tree]);
  assert.equal(derived.code, 0, derived.stderr);
  assert.match(derived.stdout, /lanekeeper-3\.2\.0-arm64\.tar\.gz\n/);

  const wrong = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--out", join(work, "out-wrong"), "--arch", "x64", ...tree]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /E_WRONG_ARCH: node_modules\/epoll\/build\/Release\/epoll\.node is arm64; a bundle for x64 cannot carry it/);

  // The name says what the file is.
  const misnamed = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--out", join(work, "x.tar"), ...tree]);
  assert.equal(misnamed.code, 2);
  assert.match(misnamed.stderr, /gzipped, so name it \.tar\.gz/);
  const plain = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--out", join(work, "plain.tar"), "--no-gzip", ...tree]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.notEqual((await readFile(join(work, "plain.tar")))[0], 0x1f, "not gzip");
  const noArch = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--out", out]);
  assert.equal(noArch.code, 2);
  assert.match(noArch.stderr, /--arch is required/);
  const badArch = await node(["src/cli.ts", "release", "build", "--key", privateKey, "--arch", "riscv64"]);
  assert.equal(badArch.code, 2);
  assert.match(badArch.stderr, /--arch takes arm64, armhf, x64/);
});
