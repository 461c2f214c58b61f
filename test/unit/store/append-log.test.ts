import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AppendLog } from "../../../src/store/append-log.js";
import { freshDir } from "../../helpers/store-fixtures.js";

/*
 * AppendLog at open after a power cut: what follows the last complete line was never
 * acknowledged and goes, zeros included, so the next append does not land after garbage.
 */

test("a torn tail is cut together with the zeros a power cut left after it", async () => {
  const { dir, cleanup } = await freshDir();
  try {
    const path = join(dir, "h.log");
    // A file whose size was updated before its data (what a power cut can leave): zeros at the end.
    await writeFile(path, Buffer.concat([Buffer.from('{"a":1}\n{"b"'), Buffer.alloc(100)]));
    const { log, repairedBytes } = await AppendLog.open(path, { dsync: true });
    assert.equal(repairedBytes, 104);
    await log.append('{"c":3}\n', true);
    assert.equal(await readFile(path, "utf8"), '{"a":1}\n{"c":3}\n');
    await log.close();
  } finally {
    await cleanup();
  }
});
