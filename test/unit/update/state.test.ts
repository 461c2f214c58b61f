import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { silentLogger } from "../../../src/kernel/log.js";
import { UpdateStateFile, emptyState } from "../../../src/update/state.js";
import { tempDir } from "../../helpers/update-fixtures.js";

let dir: string;
before(async () => {
  dir = await tempDir("state");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("the state file round-trips and is replaced whole (no temp files left)", async () => {
  const file = new UpdateStateFile(join(dir, "update-state.json"), silentLogger());
  assert.deepEqual(await file.load(), emptyState());
  const state = emptyState();
  state.history.push({ jobId: "j", version: "1.0.0", fromVersion: "0.9.0", status: "succeeded", finishedAt: 1 });
  await file.save(state);
  assert.deepEqual(await file.load(), state);
  assert.deepEqual(await readdir(dir), ["update-state.json"]);
});

test("a damaged state file is moved aside, not silently overwritten", async () => {
  const path = join(dir, "damaged.json");
  await writeFile(path, '{"v":1,"active":');
  const loaded = await new UpdateStateFile(path, silentLogger()).load();
  assert.deepEqual(loaded, emptyState());
  const aside = (await readdir(dir)).find((n) => n.startsWith("damaged.json.corrupt-"));
  assert.ok(aside);
  assert.equal(await readFile(join(dir, aside), "utf8"), '{"v":1,"active":');
});
