import { test } from "node:test";
import assert from "node:assert/strict";
import { checkManifestEntries, escapingLinkReason, localArchitecture, unsafePathReason, type ManifestEntry } from "../../../src/update/manifest.js";

test("only plain relative paths are safe to unpack", () => {
  for (const safe of ["package.json", "dist/cli.js", "node_modules/a/b/c.js", "dist/.hidden", "a..b/c"]) assert.equal(unsafePathReason(safe), undefined, safe);
  const unsafe: Array<[string, RegExp]> = [
    ["", /empty/],
    ["/etc/passwd", /absolute/],
    ["C:/x", /absolute/],
    ["../x", /\.\./],
    ["dist/../../x", /\.\./],
    ["./dist/x", /'\.'/],
    ["dist//x", /empty/],
    ["dist/x/", /empty/],
    ["dist\\x", /backslash/],
    ["dist/x\0", /NUL/],
  ];
  for (const [path, why] of unsafe) assert.match(unsafePathReason(path) ?? "", why, JSON.stringify(path));
});

test("links must stay inside the release", () => {
  assert.equal(escapingLinkReason("node_modules/a/run.js", "../a/bin/x.js"), undefined);
  assert.equal(escapingLinkReason("a/b/c", "../../d"), undefined);
  assert.match(escapingLinkReason("a/b", "../../etc") ?? "", /escapes/);
  assert.match(escapingLinkReason("a", "/etc/passwd") ?? "", /absolute/);
  assert.match(escapingLinkReason("a/b", "..") ?? "", /escapes/);
  assert.match(escapingLinkReason("a", "manifest.json") ?? "", /manifest/);
});

test("manifest entries: no duplicates, reserved names, or files under a link or a file", () => {
  const file = (path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({ path, sha256: "0".repeat(64), size: 0, mode: 0o644, ...extra });
  assert.equal(checkManifestEntries([file("a"), file("b/c")]), undefined);
  assert.match(checkManifestEntries([file("a"), file("a")])?.message ?? "", /twice/);
  assert.match(checkManifestEntries([file("manifest.sig")])?.message ?? "", /reserved/);
  assert.match(checkManifestEntries([file("lib", { linkTarget: "real" }), file("lib/evil.js")])?.message ?? "", /under the link lib/);
  assert.match(checkManifestEntries([file("lib"), file("lib/x.js")])?.message ?? "", /under the file lib/);
  assert.match(checkManifestEntries([file("x", { linkTarget: "../../etc" })])?.message ?? "", /unsafe link/);
});

test("Node's arch names map onto the bundle's", () => {
  assert.equal(localArchitecture("arm64"), "arm64");
  assert.equal(localArchitecture("arm"), "armhf");
  assert.equal(localArchitecture("x64"), "x64");
  assert.equal(localArchitecture("ia32"), undefined);
});
