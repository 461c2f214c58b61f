import { test } from "node:test";
import assert from "node:assert/strict";
import { StoreError, StoreErrorCode, storeErrorFromFs } from "../../../src/store/errors.js";

const errno = (code: string) => Object.assign(new Error(`${code}: boom`), { code });

test("file-system errors map to stable store codes with an actionable message", () => {
  const table: Array<[string, StoreErrorCode, RegExp]> = [
    ["EROFS", StoreErrorCode.ReadOnly, /not writable.*read-only after an SD card error/],
    ["EACCES", StoreErrorCode.ReadOnly, /owner of the directory/],
    ["EPERM", StoreErrorCode.ReadOnly, /not writable/],
    ["ENOSPC", StoreErrorCode.Full, /is full.*free space/],
    ["EDQUOT", StoreErrorCode.Full, /is full/],
    ["ENOENT", StoreErrorCode.DirMissing, /vanished/],
    ["ENOTDIR", StoreErrorCode.NotDirectory, /not a directory/],
    ["EIO", StoreErrorCode.Io, /I\/O error.*EIO: boom/],
  ];
  for (const [code, expected, message] of table) {
    const mapped = storeErrorFromFs(errno(code), "/var/lib/lanekeeper", "writing");
    assert.equal(mapped.code, expected, code);
    assert.match(mapped.message, message, code);
    assert.equal(mapped.path, "/var/lib/lanekeeper");
    assert.equal((mapped.cause as Error).message, `${code}: boom`, "the original error is kept as the cause");
  }
  const already = new StoreError(StoreErrorCode.Corrupt, "x");
  assert.equal(storeErrorFromFs(already, "/p", "reading"), already, "a StoreError passes through unchanged");
});
