import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { ELF_HEADER_BYTES, elfMachineOf, isElf, readElfHeader } from "../../../src/update/elf.js";
import { checkNativeFiles, nativeFilesOf, nativeListProblem, readFileHead } from "../../../src/update/native.js";
import { architectures, type NativeFile } from "../../../src/update/manifest.js";
import { elfHeader } from "../../helpers/update-fixtures.js";

// The ELF header reader decides whether a bundle may be installed on a box, so it must never
// throw on odd bytes and must name real addons right.

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);
const repo = join(import.meta.dirname, "..", "..", "..");
const sha = "a".repeat(64);

test("any bytes give an answer or undefined, never an exception", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      const info = readElfHeader(bytes);
      if (info) {
        assert.ok(isElf(bytes));
        assert.ok(info.bits === 32 || info.bits === 64);
        assert.ok(info.name.length > 0);
      }
    }),
    { numRuns: runs, seed: 2201 },
  );
  // ELF magic followed by random bytes: the branchy part.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 60 }), (tail) => {
      const bytes = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, ...tail]);
      const info = readElfHeader(bytes);
      const classOk = tail[0] === 1 || tail[0] === 2;
      const dataOk = tail[1] === 1 || tail[1] === 2;
      assert.equal(info !== undefined, bytes.length >= 20 && classOk && dataOk);
    }),
    { numRuns: runs, seed: 2202 },
  );
});

test("valid headers of any class, byte order, machine and flags read back exactly", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<32 | 64>(32, 64),
      fc.boolean(),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (bits, littleEndian, machine, flags) => {
        const info = readElfHeader(elfHeader({ bits, machine, littleEndian, flags }));
        assert.ok(info);
        assert.equal(info.bits, bits);
        assert.equal(info.endian, littleEndian ? "le" : "be");
        assert.equal(info.machine, machine);
        assert.equal(info.flags, flags);
        const expected = architectures.find(
          (a) => elfMachineOf[a].machine === machine && elfMachineOf[a].bits === bits && littleEndian && !(a === "armhf" && (flags & 0x200) !== 0),
        );
        assert.equal(info.architecture, expected);
        if (expected) assert.equal(info.name, expected);
      },
    ),
    { numRuns: runs, seed: 2203 },
  );
});

test("the three box architectures, and machines no box runs", () => {
  assert.equal(readElfHeader(elfHeader("arm64"))?.architecture, "arm64");
  assert.equal(readElfHeader(elfHeader("armhf"))?.architecture, "armhf");
  assert.equal(readElfHeader(elfHeader("x64"))?.architecture, "x64");
  assert.equal(readElfHeader(elfHeader({ bits: 32, machine: 0x03 }))?.name, "x86 (ELF32)");
  assert.equal(readElfHeader(elfHeader({ bits: 32, machine: 0x28, flags: 0x05000200 }))?.name, "armel (ELF32 soft-float)");
  // aarch64 in a 32-bit container (ILP32) and big-endian x86-64 are not arm64/x64 boxes.
  assert.equal(readElfHeader(elfHeader({ bits: 32, machine: 0xb7 }))?.architecture, undefined);
  assert.equal(readElfHeader(elfHeader({ bits: 64, machine: 0x3e, littleEndian: false }))?.name, "x86-64 (ELF64 big-endian)");
  assert.equal(readElfHeader(elfHeader("x64").subarray(0, 19)), undefined, "too short for e_machine");
});

test("the prebuilt serialport binaries in node_modules read as the platform they are for", async () => {
  const prebuilds = join(repo, "node_modules", "@serialport", "bindings-cpp", "prebuilds");
  const expected: Record<string, string | undefined> = { "linux-arm64": "arm64", "linux-arm": "armhf", "linux-x64": "x64" };
  let checked = 0;
  for (const dir of await readdir(prebuilds)) {
    for (const name of await readdir(join(prebuilds, dir))) {
      const head = await readFileHead(join(prebuilds, dir, name));
      assert.ok(head.length <= ELF_HEADER_BYTES);
      const info = readElfHeader(head);
      if (dir.startsWith("linux-")) {
        assert.equal(info?.architecture, expected[dir], `${dir}/${name}`);
        checked++;
      } else if (!dir.startsWith("android-")) {
        // Windows PE and macOS Mach-O files are not ELF at all.
        assert.equal(info, undefined, `${dir}/${name}`);
      }
    }
  }
  assert.ok(checked >= 6, `checked ${checked} linux prebuilds`);
});

test("native files are found by content, and a manifest list that disagrees is named", () => {
  const heads = [
    { path: "node_modules/a/a.node", sha256: sha, head: elfHeader("arm64") },
    { path: "node_modules/a/index.js", sha256: sha, head: Buffer.from("module.exports = 1;") },
    { path: "node_modules/b/lib.so.1", sha256: sha, head: elfHeader("arm64") },
  ];
  const native = nativeFilesOf(heads);
  assert.deepEqual(
    native.map((n) => [n.path, n.machine]),
    [
      ["node_modules/a/a.node", "arm64"],
      ["node_modules/b/lib.so.1", "arm64"],
    ],
  );
  assert.equal(nativeListProblem(native, native), undefined);
  assert.match(nativeListProblem([native[0]!], native) ?? "", /lib\.so\.1 is a native file \(arm64\) missing/);
  assert.match(nativeListProblem([{ ...native[0]!, machine: "x64" }, native[1]!], native) ?? "", /a\.node: the manifest says x64, its ELF header says arm64/);
  assert.match(nativeListProblem([...native, { path: "x.node", sha256: sha, machine: "x64" }], native) ?? "", /x\.node is listed as native .* not an ELF file/);
});

test("checkNativeFiles refuses exactly when some native file is for another machine", () => {
  const machine = fc.constantFrom("arm64", "armhf", "x64", "x86 (ELF32)", "armel (ELF32 soft-float)");
  const files = fc.array(fc.record({ path: fc.stringMatching(/^[a-z]{1,8}\.node$/), machine }), { maxLength: 6 });
  fc.assert(
    fc.property(files, fc.constantFrom(...architectures), (list, box) => {
      const native: NativeFile[] = list.map((f) => ({ ...f, sha256: sha }));
      const wrong = native.some((n) => n.machine !== box);
      try {
        checkNativeFiles({}, native, { architecture: box });
        assert.equal(wrong, false);
      } catch (error) {
        assert.equal(wrong, true);
        assert.equal((error as { code?: string }).code, "E_WRONG_ARCH");
        assert.match((error as Error).message, new RegExp(`this ${box} box`));
      }
    }),
    { numRuns: runs, seed: 2204 },
  );
  // An unknown box architecture cannot judge; the ABI check still applies.
  checkNativeFiles({}, [{ path: "a.node", sha256: sha, machine: "arm64" }], { architecture: undefined });
  assert.throws(
    () => checkNativeFiles({ nodeModuleVersion: "127" }, [{ path: "a.node", sha256: sha, machine: "x64" }], { architecture: "x64", nodeModuleVersion: "115" }),
    (error: Error & { code?: string }) => error.code === "E_INCOMPATIBLE" && /Node ABI 127.*Node ABI 115/.test(error.message),
  );
});
