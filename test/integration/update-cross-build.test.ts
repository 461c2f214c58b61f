import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, cp, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { verifyBundle } from "../../src/update/bundle.js";
import { loadTrustedKeyFile, type TrustedKey } from "../../src/update/keys.js";
import type { Architecture } from "../../src/update/manifest.js";
import { stageRelease } from "../../src/update/stage-release.js";
import { elfHeader, readTarEntries, tempDir } from "../helpers/update-fixtures.js";

// `lanekeeper release build --arch …` on a small project made of the real native packages from
// node_modules (epoll compiled with node-gyp, serialport's prebuilt bindings), a dev-only package
// and a .bin link, built by the CLI as a real process. The x64 bundle is built on every machine;
// arm64 and armhf need Debian's cross compilers (installed by .ci/run).

const repo = join(import.meta.dirname, "..", "..");
let work: string;
let project: string;
let trusted: TrustedKey;
let privateKey: string;

const productionPackages = ["epoll", "nan", "bindings", "file-uri-to-path", "@serialport/bindings-cpp"];

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repo, "src", "cli.ts"), ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    if (
      await access(join(dir, command)).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

before(async () => {
  work = await tempDir("cross-build");
  project = join(work, "project");
  await mkdir(join(project, "dist"), { recursive: true });
  await writeFile(join(project, "package.json"), `${JSON.stringify({ name: "lanekeeper", version: "4.0.0", type: "module" })}\n`);
  await writeFile(join(project, "dist", "cli.js"), "#!/usr/bin/env node\nconsole.log('lanekeeper 4.0.0');\n", { mode: 0o755 });
  const packages: Record<string, Record<string, unknown>> = { "": { name: "lanekeeper", version: "4.0.0" } };
  for (const name of productionPackages) {
    // The real packages, as npm ci left them (epoll with its x86-64 build and build leftovers).
    await cp(join(repo, "node_modules", name), join(project, "node_modules", name), { recursive: true, verbatimSymlinks: true });
    packages[`node_modules/${name}`] = { version: "0.0.0" };
  }
  // A dev-only package carrying a native file for another machine: if it slipped into a
  // bundle, the final machine check would fail too.
  await mkdir(join(project, "node_modules", "devtool", "bin"), { recursive: true });
  await writeFile(join(project, "node_modules", "devtool", "package.json"), '{"name":"devtool","version":"1.0.0"}\n');
  await writeFile(join(project, "node_modules", "devtool", "devtool.node"), elfHeader({ bits: 32, machine: 0x03 }, 512));
  await mkdir(join(project, "node_modules", ".bin"), { recursive: true });
  await symlink("../devtool/bin/devtool.js", join(project, "node_modules", ".bin", "devtool"));
  packages["node_modules/devtool"] = { version: "1.0.0", dev: true };
  await writeFile(join(project, "package-lock.json"), JSON.stringify({ name: "lanekeeper", lockfileVersion: 3, packages }, null, 2));

  const keygen = await cli(["release", "keygen", "--out", join(work, "keys"), "--id", "cross"]);
  assert.equal(keygen.code, 0, keygen.stderr);
  privateKey = join(work, "keys", "cross.private.pem");
  trusted = await loadTrustedKeyFile(join(work, "keys", "cross.pub.pem"));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

const prebuildDir: Record<Architecture, string> = { arm64: "linux-arm64", armhf: "linux-arm", x64: "linux-x64" };

/** Checks one built bundle: its name, the machine of every native file, and what is left out. */
async function checkBundle(architecture: Architecture, stdout: string): Promise<string> {
  const file = join(work, "out", `lanekeeper-4.0.0-${architecture}.tar.gz`);
  assert.match(stdout, new RegExp(`bundle: +\\S+lanekeeper-4\\.0\\.0-${architecture}\\.tar\\.gz`));
  const verified = await verifyBundle(file, [trusted]);
  assert.deepEqual(verified.manifest.architectures, [architecture]);
  const machines = new Set(verified.native.map((n) => n.machine));
  assert.deepEqual([...machines], [architecture], JSON.stringify(verified.native));
  const paths = verified.manifest.files.map((f) => f.path);
  assert.ok(paths.includes("node_modules/epoll/build/Release/epoll.node"));
  assert.ok(
    verified.native.some((n) => n.path.startsWith(`node_modules/@serialport/bindings-cpp/prebuilds/${prebuildDir[architecture]}/`)),
    "the target's prebuilt serialport binding",
  );
  for (const path of paths) {
    assert.doesNotMatch(path, /devtool|\/\.bin\//, "no dev-only packages, no .bin links");
    assert.doesNotMatch(path, /obj\.target|\/\.deps\/|Makefile|\.mk$|\.o$|config\.gypi/, `build leftover ${path}`);
    assert.doesNotMatch(path, /bindings-cpp\/build\//, "no local build to shadow the prebuilt one");
    const prebuild = /prebuilds\/([^/]+)\//.exec(path)?.[1];
    if (prebuild) assert.equal(prebuild, prebuildDir[architecture], path);
  }
  assert.deepEqual(
    (await readTarEntries(file))
      .filter((e) => e.path.endsWith(".node"))
      .map((e) => e.path)
      .sort(),
    verified.native.map((n) => n.path),
    "every .node file is a native file of the manifest",
  );
  return file;
}

test("an x64 bundle: the earlier build reused without its leftovers, the addon loads", async () => {
  const built = await cli(["release", "build", "--arch", "x64", "--key", privateKey, "--out", join(work, "out"), "--source", project]);
  assert.equal(built.code, 0, built.stderr);
  const file = await checkBundle("x64", built.stdout);
  // Unpacked, the addon really loads in this (x64) Node.
  const dir = join(work, "x64-unpacked");
  await mkdir(dir);
  const { extract } = await import("tar");
  await extract({ file, cwd: dir });
  const load = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ["-e", "const { Epoll } = require('./node_modules/epoll'); if (typeof Epoll !== 'function') process.exit(3)"], {
      cwd: dir,
      stdio: "inherit",
    });
    child.on("exit", resolve);
  });
  assert.equal(load, 0, "epoll.node from the bundle loads");
});

for (const architecture of ["arm64", "armhf"] as const) {
  test(`an ${architecture} bundle: epoll cross-compiled with node-gyp, serialport's prebuilt binary picked`, async (t: TestContext) => {
    const prefix = architecture === "arm64" ? "aarch64-linux-gnu-" : "arm-linux-gnueabihf-";
    const built = await cli(["release", "build", "--arch", architecture, "--key", privateKey, "--out", join(work, "out"), "--source", project]);
    if (!(await onPath(`${prefix}g++`))) {
      // Without the cross compiler the build must say which package to install.
      t.diagnostic(`${prefix}g++ is not installed: checked the error instead of the cross build (.ci/run installs it)`);
      assert.equal(built.code, 1);
      assert.match(built.stderr, new RegExp(`E_TOOLCHAIN: ${prefix}g(cc|\\+\\+) is not installed.*apt-get install g\\+\\+-`));
      return;
    }
    assert.equal(built.code, 0, built.stderr);
    assert.match(
      built.stderr,
      new RegExp(`node_modules/epoll: compiling for ${architecture} \\(node-gyp --arch=${architecture === "arm64" ? "arm64" : "arm"}, ${prefix}g\\+\\+\\)`),
    );
    assert.match(built.stdout, /Node ABI \d+/);
    await checkBundle(architecture, built.stdout);
    const manifestText = (await readTarEntries(join(work, "out", `lanekeeper-4.0.0-${architecture}.tar.gz`))).find((e) => e.path === "manifest.json")!.body.toString();
    assert.equal((JSON.parse(manifestText) as { nodeModuleVersion?: string }).nodeModuleVersion, process.versions.modules);
  });
}

test("the project's node_modules is left as it was (staging works on a copy)", async () => {
  assert.ok(
    await access(join(project, "node_modules", "epoll", "build", "Makefile")).then(
      () => true,
      () => false,
    ),
  );
  assert.ok(
    await access(join(project, "node_modules", "@serialport", "bindings-cpp", "prebuilds", "win32-x64")).then(
      () => true,
      () => false,
    ),
  );
  assert.match(await readFile(join(project, "package-lock.json"), "utf8"), /devtool/);
});

test("a missing cross compiler is named with the Debian package to install", async () => {
  const empty = join(work, "empty-path");
  await mkdir(empty);
  await assert.rejects(
    stageRelease({ projectDir: project, stageDir: join(work, "stage-no-compiler"), architecture: "arm64", hostArch: "x64", env: { PATH: empty } }),
    (error: Error & { code?: string }) =>
      error.code === "E_TOOLCHAIN" && /aarch64-linux-gnu-gcc is not installed.*apt-get install g\+\+-aarch64-linux-gnu gcc-aarch64-linux-gnu/.test(error.message),
  );
  await assert.rejects(stageRelease({ projectDir: project, stageDir: join(work, "stage-no-compiler"), architecture: "x64" }), /already exists/);
});
