import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cliPath, runCli } from "../helpers/child.js";
import { tempDir } from "../helpers/demo-config.js";

const demoKey = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const examples = (
  JSON.parse(readFileSync(new URL("../fixtures/platform/doc-examples.json", import.meta.url), "utf8")) as { examples: Array<{ name: string; body: string; sign: string }> }
).examples;

/** Runs the CLI with text on standard input. */
function runWithStdin(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", cliPath, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

test("lanekeeper sign: prints the masked signTemp and the sign, from a file and from standard input", async () => {
  const dir = tempDir("lk-sign-");
  const worked = examples.find((e) => e.sign === "7B00FF0807D10CE52588E30B0E6CC75B")!;
  const file = join(dir, "bill.json");
  writeFileSync(file, worked.body);
  const fromFile = await runCli(["sign", "--key", demoKey, file]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /^signTemp: bizContent=\{"carSubType":91,.*"sweepCode":0\}&pid=P100001&serviceName=preLeaveNotify&timestamp=1700000000&key=HIDDEN$/m);
  assert.match(fromFile.stdout, /^sign: +7B00FF0807D10CE52588E30B0E6CC75B$/m);
  assert.match(fromFile.stdout, /matches/);
  assert.ok(!fromFile.stdout.includes(demoKey), "the key is never printed");

  const remote = examples.find((e) => e.sign === "318770FD1A9A0EF4B89A594129A1DE73")!;
  const fromStdin = await runWithStdin(["sign", "--key", demoKey, "-"], remote.body);
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  assert.match(fromStdin.stdout, /sign: +318770FD1A9A0EF4B89A594129A1DE73/);
  assert.match(fromStdin.stdout, /JSON string/);

  const wrongKey = await runCli(["sign", "--key", "WRONGKEY", file]);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stdout, /does NOT match/);
  assert.ok(!wrongKey.stdout.includes("WRONGKEY"));

  const usage = await runCli(["sign", file]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--key-file <file> is required/);
});
