import { test } from "node:test";
import assert from "node:assert/strict";
import { compareVersions, isVersion, versionSchema } from "../../../src/update/version.js";

test("compareVersions follows semver precedence", () => {
  const rows: Array<[string, string, -1 | 0 | 1]> = [
    ["0.1.0", "0.2.0", -1],
    ["0.10.0", "0.9.9", 1],
    ["1.0.0", "1.0.0", 0],
    ["2.0.0", "10.0.0", -1],
    ["1.0.0-rc.1", "1.0.0", -1],
    ["1.0.0", "1.0.0-rc.1", 1],
    ["1.0.0-alpha", "1.0.0-alpha.1", -1],
    ["1.0.0-alpha.1", "1.0.0-alpha.beta", -1],
    ["1.0.0-beta.2", "1.0.0-beta.11", -1],
    ["1.0.0-rc.1", "1.0.0-rc.1", 0],
  ];
  for (const [a, b, want] of rows) {
    assert.equal(compareVersions(a, b), want, `${a} vs ${b}`);
    assert.equal(compareVersions(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
});

test("a version is also a directory name, so anything path-like is refused", () => {
  for (const good of ["0.0.0", "1.2.3", "10.20.30-rc.1"]) assert.ok(isVersion(good), good);
  for (const bad of ["", "1.2", "01.2.3", "../1.2.3", "1.2.3/..", "1.2.3-../x", "1.2.3 ", "v1.2.3", "1.2.3+build", "1.2.3\0"]) {
    assert.equal(isVersion(bad), false, JSON.stringify(bad));
    assert.equal(versionSchema.safeParse(bad).success, false);
  }
  assert.throws(() => compareVersions("1.2.3", "latest"), /not a version: latest/);
});
