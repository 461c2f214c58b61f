import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { provisionFromStick } from "../../src/provision/provision.js";
import { readLastProvision } from "../../src/provision/last-report.js";

/**
 * The stick boundary under generated input: random JSON shapes and hostile variations of a
 * valid config in lanekeeper.json, and every file a stick may carry as a random kind (absent,
 * small or oversized regular file, symlink into the box or to /dev/zero, FIFO, directory).
 * Whatever the stick holds, provisioning returns a report (it never throws), writes it on the
 * stick and on the box, writes nothing outside the box's config directory, restarts only when
 * it applied, and everything it wrote is a regular file of mode 0640.
 *
 * LK_FUZZ_RUNS=N runs N sticks instead of the default.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 20);
const demo = JSON.parse(await readFile(join(import.meta.dirname, "..", "..", "config", "demo.json"), "utf8")) as Record<string, unknown>;
const fixtures = join(import.meta.dirname, "..", "fixtures", "provision");
const pem = {
  ca: await readFile(join(fixtures, "ca.pem"), "utf8"),
  cert: await readFile(join(fixtures, "client.pem"), "utf8"),
  key: await readFile(join(fixtures, "client.key"), "utf8"),
};

let work: string;
let sentinel: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "lk-provision-fuzz-"));
  // Stands for the rest of the box: a stick's symlinks point here, and it must never change.
  sentinel = join(work, "outside");
  await mkdir(sentinel);
  await writeFile(join(sentinel, "shadow"), "root:SECRET-HASH:19000::::::\n");
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

type FileKind =
  | { kind: "absent" }
  | { kind: "file"; text: string }
  | { kind: "oversized" }
  | { kind: "symlink-outside" }
  | { kind: "symlink-dev-zero" }
  | { kind: "fifo" }
  | { kind: "directory" };

const stickPaths = [
  "platform.key",
  "mqtt/ca.pem",
  "mqtt/client.pem",
  "mqtt/client.key",
  "platform/ca.pem",
  "platform/client.pem",
  "platform/client.key",
  "update-keys/k1.pem",
  "update-keys/bad name.pem",
];

const fileKind = (text: fc.Arbitrary<string>): fc.Arbitrary<FileKind> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant<FileKind>({ kind: "absent" }) },
    { weight: 3, arbitrary: text.map<FileKind>((t) => ({ kind: "file", text: t })) },
    fc.constantFrom<FileKind>({ kind: "oversized" }, { kind: "symlink-outside" }, { kind: "symlink-dev-zero" }, { kind: "fifo" }, { kind: "directory" }),
  );

const pemText = fc.oneof(fc.constantFrom(pem.ca, pem.cert, pem.key, ""), fc.string({ maxLength: 200 }));

/** A valid config with hostile edits: box-owned fields, path-like keys, wrong types, deep nesting. */
const hostileConfig = fc
  .record({
    edits: fc.array(
      fc.tuple(
        fc.constantFrom(
          "update.restartCommand",
          "update.trustedKeysDir",
          "store.dir",
          "hardware.sysfsRoot",
          "mqtt.caFile",
          "platform.keyFile",
          "lot.logFile",
          "api.scriptPath",
          "serial.cam-out1.path",
          "lot.name",
          "update",
          "platform",
        ),
        fc.oneof(fc.string({ maxLength: 40 }), fc.constant("/etc/shadow"), fc.constant(["sh", "-c", "touch /tmp/pwned"]), fc.jsonValue({ maxDepth: 3 })),
      ),
      { maxLength: 4 },
    ),
    deep: fc.boolean(),
  })
  .map(({ edits, deep }) => {
    const doc = structuredClone(demo) as Record<string, any>;
    for (const [path, value] of edits) {
      const keys = path.split(".");
      let node: any = doc;
      for (const key of keys.slice(0, -1)) {
        if (node[key] === null || typeof node[key] !== "object") node[key] = {};
        node = node[key];
      }
      node[keys.at(-1)!] = value;
    }
    const text = JSON.stringify(doc);
    // 5000 levels, spliced in as text: building it as objects would overflow stringify itself.
    return deep ? text.replace(/^\{/, `{"deep":${"[".repeat(5000)}1${"]".repeat(5000)},`) : text;
  });

const configText = fc.oneof(hostileConfig, fc.json({ maxDepth: 4 }), fc.string({ maxLength: 100 }));

let caseNo = 0;

async function makeStick(stick: string, files: Record<string, FileKind>): Promise<void> {
  for (const [rel, spec] of Object.entries(files)) {
    const path = join(stick, rel);
    if (spec.kind === "absent") continue;
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch {
      continue; // a parent was made a file or a link by an earlier entry: that is part of the case
    }
    try {
      if (spec.kind === "file") await writeFile(path, spec.text);
      else if (spec.kind === "oversized") {
        await writeFile(path, "");
        await truncate(path, 2 * 1024 * 1024);
      } else if (spec.kind === "symlink-outside")
        await symlink(rel === "lanekeeper.json" || rel.endsWith(".pem") || rel.endsWith(".key") ? join(sentinel, "shadow") : sentinel, path);
      else if (spec.kind === "symlink-dev-zero") await symlink("/dev/zero", path);
      else if (spec.kind === "fifo") spawnSync("mkfifo", [path]);
      else await mkdir(path, { recursive: true });
    } catch {
      // EEXIST/ENOTDIR from a clashing earlier entry: the stick is whatever resulted.
    }
  }
}

/** Path -> "kind mode size" of everything under `root` (symlinks not followed). */
async function tree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const st = await lstat(path);
      out.set(path, `${st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "f" : "o"} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) await walk(path);
    }
  };
  await walk(root);
  return out;
}

test("whatever a stick holds: a report on the stick and the box, nothing written outside the box, files 0640", { timeout: 600_000 }, async () => {
  const sentinelBefore = await tree(sentinel);
  await fc.assert(
    fc.asyncProperty(
      fileKind(configText),
      fc.record(Object.fromEntries(stickPaths.map((p) => [p, fileKind(pemText)])) as Record<string, fc.Arbitrary<FileKind>>),
      fc.boolean(),
      async (config, others, boxHasConfig) => {
        const base = join(work, `case-${caseNo++}`);
        const stick = join(base, "stick");
        const etc = join(base, "etc");
        await mkdir(stick, { recursive: true });
        await mkdir(etc, { recursive: true });
        const configPath = join(etc, "lanekeeper.json");
        if (boxHasConfig) await writeFile(configPath, JSON.stringify(demo));
        await makeStick(stick, { "lanekeeper.json": config, ...others });
        const stickBefore = await tree(stick);
        let restarts = 0;

        const result = await provisionFromStick({ mountpoint: stick, configPath, restart: async () => void restarts++ });

        assert.ok(["applied", "unchanged", "rejected"].includes(result.status));
        assert.equal(restarts, result.status === "applied" ? 1 : 0);
        assert.match(result.report, /^lanekeeper provisioning report/);
        assert.equal(result.reportWritten, true, result.reportError);
        assert.equal(await readFile(join(stick, "lanekeeper-report.txt"), "utf8"), result.report);
        assert.equal((await readLastProvision(etc))?.report, result.report);
        assert.doesNotMatch(result.report, /SECRET-HASH/);
        // On the stick only the report appeared; under the case only etc/ and the stick exist.
        const stickAfter = await tree(stick);
        stickAfter.delete(join(stick, "lanekeeper-report.txt"));
        assert.deepEqual([...stickAfter.keys()].sort(), [...stickBefore.keys()].sort());
        assert.deepEqual((await readdir(base)).sort(), ["etc", "stick"]);
        for (const [path, line] of await tree(etc)) {
          // The box's own config is provisioning's only when it applied (or set its mode right).
          const untouched = path === configPath && result.status === "rejected";
          if (line.startsWith("f") && !untouched) assert.equal(line.split(" ")[1], "640", path);
          assert.ok(line.startsWith("f") || line.startsWith("d"), `${path}: ${line}`);
        }
        await rm(base, { recursive: true, force: true });
      },
    ),
    { numRuns: runs, seed: Number(process.env.LK_FUZZ_SEED ?? 20250506), includeErrorInReport: true },
  );
  assert.deepEqual(await tree(sentinel), sentinelBefore, "nothing outside the box's directories changed");
});
