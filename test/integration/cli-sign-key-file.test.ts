import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../helpers/child.js";
import { tempDir } from "../helpers/demo-config.js";

/*
 * `lanekeeper sign --key-file`: the platform key from a file, so it stays out of shell history
 * and `ps`. Real child processes, as an integrator runs it.
 */

const demoKey = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const worked = (
  JSON.parse(readFileSync(new URL("../fixtures/platform/doc-examples.json", import.meta.url), "utf8")) as { examples: Array<{ body: string; sign: string }> }
).examples.find((e) => e.sign === "7B00FF0807D10CE52588E30B0E6CC75B")!;

test("sign --key-file reads the key (trimmed) and signs as --key does; a missing or empty key file is one line, exit 1", async () => {
  const dir = tempDir("lk-sign-key-");
  const envelope = join(dir, "bill.json");
  writeFileSync(envelope, worked.body);
  // As an editor saves it: a final newline, maybe a CR and spaces.
  const keyFile = join(dir, "platform.key");
  writeFileSync(keyFile, `  ${demoKey}\r\n`);
  const emptyFile = join(dir, "empty.key");
  writeFileSync(emptyFile, " \n");

  const [fromFile, fromFlag, missing, empty, both, none, help] = await Promise.all([
    runCli(["sign", "--key-file", keyFile, envelope]),
    runCli(["sign", "--key", demoKey, envelope]),
    runCli(["sign", "--key-file", join(dir, "nope.key"), envelope]),
    runCli(["sign", "--key-file", emptyFile, envelope]),
    runCli(["sign", "--key-file", keyFile, "--key", demoKey, envelope]),
    runCli(["sign", envelope]),
    runCli(["sign", "--help"]),
  ]);

  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /^sign: +7B00FF0807D10CE52588E30B0E6CC75B$/m);
  assert.match(fromFile.stdout, /matches/);
  assert.ok(!fromFile.stdout.includes(demoKey), "the key is never printed");
  // The old flag still works and gives the same answer.
  assert.equal(fromFlag.code, 0, fromFlag.stderr);
  assert.equal(fromFlag.stdout, fromFile.stdout);

  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, `E_SIGN_KEY_FILE cannot read the key file ${join(dir, "nope.key")}: file not found\n`);
  assert.equal(empty.code, 1);
  assert.equal(empty.stderr, `E_SIGN_KEY_FILE the key file ${emptyFile} is empty\n`);

  assert.equal(both.code, 2);
  assert.equal(both.stderr, "lanekeeper sign: give --key-file or --key, not both; see lanekeeper sign --help\n");
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^lanekeeper sign: --key-file <file> is required .*; see lanekeeper sign --help\n$/);

  assert.equal(help.code, 0);
  assert.match(help.stdout, /--key-file <file> +a file holding the platform key \(preferred/);
  assert.match(help.stdout, /--key <key> +the platform key itself \(kept in shell history and visible in ps: prefer --key-file\)/);
});
