import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { buildBundle, checkCompatibility, verifyBundle } from "../../../src/update/bundle.js";
import { allArchitecturesForTests, elfHeader, makeBundle, makeKey, makeSourceTree, resignBundle, tempDir, type TestKey } from "../../helpers/update-fixtures.js";

// Bundles with native files: the manifest lists each with the machine its ELF header names, a
// build cannot claim an architecture its addons do not run on, and a check against the box
// reads the machines from the bundle's own bytes (so bundles from older tools are judged too).

let work: string;
let key: TestKey;
const epoll = "node_modules/epoll/build/Release/epoll.node";

before(async () => {
  work = await tempDir("native-bundle");
  key = await makeKey(work, "release-native");
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function codeOf(code: string, message: RegExp) {
  return (error: Error & { code?: string }): boolean => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  };
}

test("the manifest records each native file with its machine, and the bundle names that one architecture", async () => {
  const built = await makeBundle(work, "1.0.0", key, {
    native: { [epoll]: elfHeader("arm64", 3000), "node_modules/tiny/prebuilds/linux-arm64/tiny.node": elfHeader("arm64", 100) },
  });
  assert.deepEqual(built.manifest.architectures, ["arm64"]);
  assert.equal(built.manifest.nodeModuleVersion, process.versions.modules);
  assert.deepEqual(
    built.manifest.native?.map((n) => [n.path, n.machine]),
    [
      [epoll, "arm64"],
      ["node_modules/tiny/prebuilds/linux-arm64/tiny.node", "arm64"],
    ],
  );
  const verified = await verifyBundle(built.outFile, [key.trusted]);
  assert.deepEqual(verified.native, built.manifest.native);
  checkCompatibility(verified.manifest, { architecture: "arm64", nodeModuleVersion: process.versions.modules }, verified.native);
  assert.throws(() => checkCompatibility(verified.manifest, { architecture: "x64" }, verified.native), codeOf("E_WRONG_ARCH", /epoll\.node is arm64/));
  assert.throws(
    () => checkCompatibility(verified.manifest, { architecture: "arm64", nodeModuleVersion: "1" }, verified.native),
    codeOf("E_INCOMPATIBLE", new RegExp(`Node ABI ${process.versions.modules}, this box runs Node ABI 1`)),
  );
});

test("a bundle without native files still runs anywhere and lists none", async () => {
  const built = await makeBundle(work, "1.0.1", key);
  assert.deepEqual(built.manifest.architectures, allArchitecturesForTests);
  assert.deepEqual(built.manifest.native, []);
  assert.equal(built.manifest.nodeModuleVersion, undefined);
});

test("a build refuses to claim an architecture its native files do not run on, or to mix machines", async () => {
  const src = await makeSourceTree(work, "1.0.2", { native: { [epoll]: elfHeader("x64", 500) } });
  const base = { sourceDir: src, files: ["package.json", "dist", "node_modules"], privateKeyPem: key.privateKeyPem, keyId: key.id };
  await assert.rejects(
    buildBundle({ ...base, outFile: join(work, "claims-arm.tar.gz"), architectures: ["arm64"] }),
    codeOf("E_WRONG_ARCH", /epoll\.node is x64; a bundle for arm64 cannot carry it/),
  );
  // The old default (every architecture) is exactly the mistake this refuses.
  await assert.rejects(buildBundle({ ...base, outFile: join(work, "claims-all.tar.gz"), architectures: ["arm64", "armhf", "x64"] }), codeOf("E_WRONG_ARCH", /bundle for arm64/));
  const mixed = await makeSourceTree(work, "1.0.3", { native: { [epoll]: elfHeader("x64"), "node_modules/tiny/t.node": elfHeader("armhf") } });
  await assert.rejects(buildBundle({ ...base, sourceDir: mixed, outFile: join(work, "mixed.tar.gz") }), codeOf("E_WRONG_ARCH", /native files for armhf, x64/));
  const foreign = await makeSourceTree(work, "1.0.4", { native: { [epoll]: elfHeader({ bits: 32, machine: 0x03 }) } });
  await assert.rejects(buildBundle({ ...base, sourceDir: foreign, outFile: join(work, "x86.tar.gz") }), codeOf("E_WRONG_ARCH", /x86 \(ELF32\)/));
});

test("a bundle from an older tool (no native list, every architecture claimed) is judged by its files' headers", async () => {
  const built = await makeBundle(work, "1.1.0", key, { native: { [epoll]: elfHeader("armhf", 2000) } });
  const old = await resignBundle(built.outFile, join(work, "old-tool.tar.gz"), key, (m) => {
    const { native: _native, nodeModuleVersion: _abi, ...rest } = m;
    return { ...rest, architectures: ["arm64", "armhf", "x64"] };
  });
  const verified = await verifyBundle(old, [key.trusted]);
  assert.equal(verified.manifest.native, undefined);
  assert.deepEqual(
    verified.native.map((n) => [n.path, n.machine]),
    [[epoll, "armhf"]],
  );
  assert.throws(() => checkCompatibility(verified.manifest, { architecture: "x64" }, verified.native), codeOf("E_WRONG_ARCH", /this x64 box: .*epoll\.node is armhf/));
  checkCompatibility(verified.manifest, { architecture: "armhf" }, verified.native);
});

test("a signed native list that disagrees with the files is refused at verify", async () => {
  const built = await makeBundle(work, "1.2.0", key, { native: { [epoll]: elfHeader("armhf", 700) } });
  const lying = await resignBundle(built.outFile, join(work, "lying.tar.gz"), key, (m) => ({
    ...m,
    architectures: ["x64"],
    native: (m.native ?? []).map((n) => ({ ...n, machine: "x64" })),
  }));
  await assert.rejects(verifyBundle(lying, [key.trusted]), codeOf("E_MANIFEST_INVALID", /epoll\.node: the manifest says x64, its ELF header says armhf/));
  const hiding = await resignBundle(built.outFile, join(work, "hiding.tar.gz"), key, (m) => ({ ...m, native: [] }));
  await assert.rejects(verifyBundle(hiding, [key.trusted]), codeOf("E_MANIFEST_INVALID", /epoll\.node is a native file \(armhf\) missing from the manifest/));
});
