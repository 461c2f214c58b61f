import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildBundle, checkCompatibility, defaultAppFiles, unpackBundle, verifyBundle, verifyReleaseDir, type BuiltBundle } from "../../../src/update/bundle.js";
import { UpdateError } from "../../../src/update/errors.js";
import { makeBundle, makeKey, readTarEntries, tamperBundle, tempDir, writeRawTar, type RawEntry, type TestKey } from "../../helpers/update-fixtures.js";

let work: string;
let key: TestKey;
let bundle: BuiltBundle;

before(async () => {
  work = await tempDir("bundle");
  key = await makeKey(work, "release-test");
  bundle = await makeBundle(work, "1.0.0", key);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function rejection(file: string): Promise<UpdateError> {
  try {
    await verifyBundle(file, [key.trusted]);
  } catch (error) {
    assert.ok(error instanceof UpdateError, String(error));
    return error;
  }
  assert.fail("the bundle was accepted");
}

let variant = 0;
async function tampered(mutate: (entries: RawEntry[]) => RawEntry[] | void): Promise<string> {
  return tamperBundle(bundle.outFile, join(work, `variant-${variant++}.tar`), mutate);
}

describe("release bundles", () => {
  test("a built bundle lists every file with hash, size and mode, and verifies with the trusted key", async () => {
    const { manifest } = bundle;
    assert.equal(manifest.name, "lanekeeper");
    assert.equal(manifest.version, "1.0.0");
    assert.deepEqual(manifest.architectures, ["arm64", "armhf", "x64"]);
    const paths = manifest.files.map((f) => f.path);
    assert.deepEqual(paths, ["dist/cli.js", "dist/lib/app.js", "node_modules/tiny/bin/tiny.js", "node_modules/tiny/index.js", "node_modules/tiny/run.js", "package.json"]);
    assert.equal(manifest.files.find((f) => f.path === "dist/cli.js")?.mode, 0o755);
    assert.equal(manifest.files.find((f) => f.path === "node_modules/tiny/run.js")?.linkTarget, "../tiny/bin/tiny.js");
    const entries = await readTarEntries(bundle.outFile);
    assert.deepEqual(
      entries.slice(0, 2).map((e) => e.path),
      ["manifest.json", "manifest.sig"],
      "manifest first",
    );
    const verified = await verifyBundle(bundle.outFile, [key.trusted]);
    assert.equal(verified.key.id, "release-test");
    assert.equal(verified.fileCount, 6);
  });

  const cases: Array<[string, (entries: RawEntry[]) => RawEntry[] | void, string, RegExp]> = [
    ["a file not in the manifest", (e) => void e.push({ path: "dist/extra.js", type: "File", mode: 0o644, body: Buffer.from("x") }), "E_FILE_EXTRA", /dist\/extra\.js/],
    ["a manifest file missing", (e) => e.filter((x) => x.path !== "dist/lib/app.js"), "E_FILE_MISSING", /dist\/lib\/app\.js/],
    ["a swapped file", (e) => void (e.find((x) => x.path === "package.json")!.body = Buffer.from("{}")), "E_FILE_HASH", /package\.json/],
    ["a changed mode", (e) => void (e.find((x) => x.path === "dist/lib/app.js")!.mode = 0o755), "E_FILE_HASH", /mode 755/],
    [
      "an entry twice (the second one would win on unpack)",
      (e) => void e.push({ ...e.find((x) => x.path === "dist/cli.js")!, body: Buffer.from("evil") }),
      "E_BUNDLE_FORMAT",
      /appears twice/,
    ],
    ["an absolute path", (e) => void e.push({ path: "/etc/cron.d/evil", type: "File", mode: 0o644, body: Buffer.from("x") }), "E_UNSAFE_PATH", /absolute/],
    ["a path climbing out", (e) => void e.push({ path: "dist/../../evil", type: "File", mode: 0o644, body: Buffer.from("x") }), "E_UNSAFE_PATH", /\.\./],
    [
      "a link escaping the release",
      (e) => void e.push({ path: "dist/passwd", type: "SymbolicLink", mode: 0o777, body: Buffer.alloc(0), linkpath: "../../../etc/passwd" }),
      "E_UNSAFE_PATH",
      /escapes/,
    ],
    [
      "an absolute link",
      (e) => void e.push({ path: "dist/passwd", type: "SymbolicLink", mode: 0o777, body: Buffer.alloc(0), linkpath: "/etc/passwd" }),
      "E_UNSAFE_PATH",
      /absolute/,
    ],
    ["a hard link", (e) => void e.push({ path: "dist/hard", type: "Link", mode: 0o644, body: Buffer.alloc(0), linkpath: "package.json" }), "E_UNSAFE_PATH", /type Link/],
    ["a device node", (e) => void e.push({ path: "dist/dev", type: "CharacterDevice", mode: 0o644, body: Buffer.alloc(0) }), "E_UNSAFE_PATH", /CharacterDevice/],
    ["no manifest", (e) => e.filter((x) => x.path !== "manifest.json"), "E_BUNDLE_FORMAT", /manifest\.json is missing/],
    ["no signature", (e) => e.filter((x) => x.path !== "manifest.sig"), "E_BUNDLE_FORMAT", /manifest\.sig is missing/],
    ["an edited manifest", (e) => void (e[0]!.body = Buffer.from(e[0]!.body.toString().replace("1.0.0", "9.9.9"))), "E_SIGNATURE", /does not verify/],
    ["a garbled signature file", (e) => void (e[1]!.body = Buffer.from("{nope")), "E_SIGNATURE", /not JSON/],
  ];
  for (const [name, mutate, code, reason] of cases) {
    test(`rejects ${name}`, async () => {
      const error = await rejection(await tampered(mutate));
      assert.equal(error.code, code, error.message);
      assert.match(error.message, reason);
    });
  }

  test("rejects a bundle signed by a key the box does not trust, and garbage that is not a tarball", async () => {
    const other = await makeKey(work, "other");
    const foreign = await makeBundle(work, "1.0.0", other);
    const error = await rejection(foreign.outFile);
    assert.equal(error.code, "E_UNKNOWN_KEY");
    assert.match(error.message, /"other".*trusted: release-test/);
    // Same key id, different key: the signature does not verify.
    const impostor = await makeKey(join(work, "impostor"), "release-test");
    const forged = await makeBundle(join(work, "impostor"), "1.0.0", impostor);
    assert.equal((await rejection(forged.outFile)).code, "E_SIGNATURE");

    await writeFile(join(work, "garbage.tar"), randomBytes(4096));
    assert.equal((await rejection(join(work, "garbage.tar"))).code, "E_BUNDLE_FORMAT");
    const bytes = await readFile(bundle.outFile);
    await writeFile(join(work, "truncated.tar"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    assert.equal((await rejection(join(work, "truncated.tar"))).code, "E_BUNDLE_FORMAT");
    await writeRawTar(join(work, "empty.tar"), []);
    assert.equal((await rejection(join(work, "empty.tar"))).code, "E_BUNDLE_FORMAT");
  });

  test("unpacking writes exactly the signed files; a release dir that changes later fails its check", async () => {
    const verified = await verifyBundle(bundle.outFile, [key.trusted]);
    const dest = join(work, "unpacked");
    await unpackBundle(bundle.outFile, verified, dest);
    const ok = await verifyReleaseDir(dest, [key.trusted]);
    assert.ok(ok.ok);
    await writeFile(join(dest, "dist", "lib", "app.js"), "tampered");
    const changed = await verifyReleaseDir(dest, [key.trusted]);
    assert.equal(changed.ok, false);
    assert.equal(!changed.ok && changed.code, "E_FILE_HASH");
    await writeFile(join(dest, "dist", "lib", "app.js"), 'export const version = "1.0.0";\n');
    assert.ok((await verifyReleaseDir(dest, [key.trusted])).ok, "restored");
    await unlink(join(dest, "dist", "cli.js"));
    const missing = await verifyReleaseDir(dest, [key.trusted]);
    assert.equal(!missing.ok && missing.code, "E_FILE_MISSING");
    const notRelease = await verifyReleaseDir(join(work, "nowhere"), [key.trusted]);
    assert.equal(!notRelease.ok && notRelease.code, "E_FILE_MISSING");
  });

  test("compatibility: name, version, architecture and minimum running version", () => {
    const m = { ...bundle.manifest, minCompatibleVersion: "0.5.0", architectures: ["arm64" as const] };
    checkCompatibility(m, { name: "lanekeeper", version: "1.0.0", runningVersion: "0.5.0", architecture: "arm64" });
    assert.throws(() => checkCompatibility(m, { name: "other" }), /for "lanekeeper"/);
    assert.throws(() => checkCompatibility(m, { version: "1.0.1" }), /holds version 1\.0\.0/);
    assert.throws(() => checkCompatibility(m, { architecture: "armhf" }), /built for arm64, this box is armhf/);
    assert.throws(() => checkCompatibility(m, { runningVersion: "0.4.9" }), /needs at least version 0\.5\.0/);
  });

  test("the default file list takes dist/, package.json and production packages only", async () => {
    const project = join(work, "project");
    const dirs = [
      "dist",
      "node_modules/prod/lib",
      "node_modules/devonly",
      "node_modules/prod/node_modules/nested",
      "node_modules/prod/node_modules/nesteddev",
      "node_modules/.bin",
    ];
    for (const dir of dirs) await mkdir(join(project, dir), { recursive: true });
    await writeFile(join(project, "dist", "cli.js"), "");
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "lanekeeper", version: "2.0.0" }));
    for (const dir of dirs.slice(1, 5)) await writeFile(join(project, dir, "index.js"), dir);
    await symlink("../prod/lib/index.js", join(project, "node_modules", ".bin", "prod"));
    await writeFile(
      join(project, "package-lock.json"),
      JSON.stringify({
        lockfileVersion: 3,
        packages: {
          "": { name: "lanekeeper" },
          "node_modules/prod": {},
          "node_modules/devonly": { dev: true },
          "node_modules/prod/node_modules/nested": {},
          "node_modules/prod/node_modules/nesteddev": { dev: true },
          "node_modules/optional-missing": { optional: true },
        },
      }),
    );
    assert.deepEqual(await defaultAppFiles(project), ["dist", "package.json", "node_modules/prod", "node_modules/prod/node_modules/nested"]);
    // The booth panel ships with the code when the tree has it.
    await mkdir(join(project, "panel"));
    await writeFile(join(project, "panel", "index.html"), "<!doctype html>");
    assert.deepEqual(await defaultAppFiles(project), ["dist", "package.json", "panel", "node_modules/prod", "node_modules/prod/node_modules/nested"]);
    await rm(join(project, "panel"), { recursive: true });
    const built = await buildBundle({ sourceDir: project, outFile: join(work, "project.tar"), privateKeyPem: key.privateKeyPem, keyId: key.id });
    assert.equal(built.manifest.version, "2.0.0");
    assert.deepEqual(
      built.manifest.files.map((f) => f.path),
      ["dist/cli.js", "node_modules/prod/lib/index.js", "node_modules/prod/node_modules/nested/index.js", "package.json"],
    );
    await rm(join(project, "dist", "cli.js"));
    await assert.rejects(defaultAppFiles(project), /npm run build/);
  });

  test("the builder refuses links out of the tree and a minimum version above the version", async () => {
    const src = join(work, "bad-src");
    await mkdir(join(src, "dist"), { recursive: true });
    await symlink("/etc/passwd", join(src, "dist", "passwd"));
    await assert.rejects(
      buildBundle({ sourceDir: src, files: ["dist"], outFile: join(work, "bad.tar"), privateKeyPem: key.privateKeyPem, keyId: key.id, version: "1.0.0" }),
      /absolute/,
    );
    await assert.rejects(
      buildBundle({ sourceDir: src, files: [], outFile: join(work, "bad.tar"), privateKeyPem: key.privateKeyPem, keyId: key.id, version: "1.0.0", minCompatibleVersion: "2.0.0" }),
      /newer than the version/,
    );
  });
});
