import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readlink, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { pruneReleases, readCurrentTarget, removeTempLeftovers, switchCurrent } from "../../../src/update/releases.js";
import { tempDir } from "../../helpers/update-fixtures.js";

let root: string;
before(async () => {
  root = await tempDir("releases");
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test("current is switched by renaming a new link over it, leaving no temp link", async () => {
  assert.equal(await readCurrentTarget(root), null);
  await switchCurrent(root, "releases/1.0.0");
  assert.equal(await readlink(join(root, "current")), "releases/1.0.0");
  let seenDuring = "";
  await switchCurrent(root, "releases/1.1.0", async () => {
    // Between the two steps the old link is still whole: a crash here leaves the old version.
    seenDuring = (await readCurrentTarget(root)) ?? "";
  });
  assert.equal(seenDuring, "releases/1.0.0");
  assert.equal(await readCurrentTarget(root), "releases/1.1.0");
  assert.deepEqual(
    (await readdir(root)).filter((n) => n.startsWith(".current")),
    [],
  );
});

test("leftovers of interrupted work are removed", async () => {
  await mkdir(join(root, "releases", ".tmp-2.0.0-123", "dist"), { recursive: true });
  await symlink("releases/2.0.0", join(root, ".current.tmp-99-abcd"));
  const removed = await removeTempLeftovers(root);
  assert.equal(removed.length, 2);
  assert.deepEqual(
    (await readdir(join(root, "releases"))).filter((n) => n.startsWith(".")),
    [],
  );
});

test("pruning keeps N releases, oldest first out, never the current or the previous", async () => {
  for (const v of ["0.9.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0"]) await mkdir(join(root, "releases", v), { recursive: true });
  await mkdir(join(root, "releases", "not-a-version"), { recursive: true });
  const removed = await pruneReleases(root, 3, ["releases/0.9.0", join(root, "releases", "2.0.0")]);
  assert.deepEqual(removed, ["1.0.0", "1.1.0"]);
  assert.deepEqual((await readdir(join(root, "releases"))).sort(), ["0.9.0", "1.2.0", "2.0.0", "not-a-version"]);
  assert.deepEqual(await pruneReleases(root, 2, ["releases/0.9.0", "releases/1.2.0", "releases/2.0.0"]), [], "protected ones stay even above N");
});
