import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { demoRaw, tempDir, writeConfigFile } from "../helpers/demo-config.js";
import { runCli, startCli } from "../helpers/child.js";

function childConfig(): string {
  const raw = demoRaw() as Record<string, any>;
  raw.api.port = 0;
  raw.store.dir = tempDir("lk-store-");
  return writeConfigFile(raw);
}

test("the service starts, answers healthz, and stops on SIGTERM within 2 s with outputs safe", async () => {
  const running = startCli(["run", "--config", childConfig()]);
  const [, url] = await running.waitFor(/local API on (http:\/\/[^\s]+)/);
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  // Energise a relay (the attendant's open: a 500 ms pulse) and stop in the middle of it.
  const opened = await fetch(`${url}/api/lanes/in1/commands`, {
    method: "POST",
    headers: { authorization: "Bearer demo-token-change-me-0001", "content-type": "application/json" },
    body: JSON.stringify({ command: "open", operator: "test", reason: "stop during a pulse" }),
  });
  assert.equal(opened.status, 200);
  const outputs = (await (await fetch(`${url}/api/sim/outputs`)).json()) as { outputs: Record<string, number> };
  assert.equal(outputs.outputs["in1.relayOpen"], 1, "the relay is energised when the stop begins");

  const begun = performance.now();
  running.child.kill("SIGTERM");
  const { code } = await running.exited;
  const took = performance.now() - begun;
  assert.equal(code, 0, running.stderr());
  assert.ok(took < 2000, `stop took ${Math.round(took)} ms`);
  const stopped = running
    .stdout()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg: string; outputs?: Record<string, number> })
    .find((entry) => entry.msg === "stopped; outputs safe");
  assert.ok(stopped?.outputs, running.stdout());
  assert.ok(Object.keys(stopped.outputs).length >= 6);
  for (const [key, level] of Object.entries(stopped.outputs)) assert.equal(level, 0, `${key} left at ${level}`);
});

test("SIGINT stops the service as cleanly as SIGTERM", async () => {
  const running = startCli(["run", "--config", childConfig()]);
  await running.waitFor(/local API on/);
  running.child.kill("SIGINT");
  const { code } = await running.exited;
  assert.equal(code, 0);
  assert.match(running.stdout(), /"signal":"SIGINT"/);
});

test("a bad config names the file and every problem, exits 1, starts nothing", async () => {
  const raw = demoRaw() as Record<string, any>;
  raw.api.port = 0;
  raw.lot.totalSpaces = "many";
  raw.lanes[0].bogus = true;
  const file = writeConfigFile(raw);
  const result = await runCli(["run", "--config", file]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: 2 problem`));
  assert.match(result.stderr, /lot\.totalSpaces/);
  assert.match(result.stderr, /lanes\[0\]\.bogus: unknown key/);
  assert.doesNotMatch(result.stdout, /local API on/);
});

test("missing, unreadable and non-JSON config files are clear errors with exit 1", async () => {
  const dir = tempDir();
  const broken = join(dir, "broken.json");
  writeFileSync(broken, '{ "version": 1,');
  const missing = await runCli(["config", "check", join(dir, "nope.json")]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.json.*file not found/);
  const notJson = await runCli(["config", "check", broken]);
  assert.equal(notJson.code, 1);
  // file:line:column of where the text stops (the file ends inside the object).
  assert.match(notJson.stderr, /broken\.json:1:16: unexpected end of input: an object is not closed/);
  const isDir = await runCli(["config", "check", dir]);
  assert.equal(isDir.code, 1);
  assert.match(isDir.stderr, /is a directory/);
});

test("config check prints a one-line summary for a valid file", async () => {
  const result = await runCli(["config", "check", childConfig()]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /ok — device demo-box-01, lot TEST\/1P1, 2 lane\(s\): in1\(in\), out1\(out\)/);
  assert.doesNotMatch(result.stdout, /0F1E2D3C4B5A69788796A5B4C3D2E1F0/);
});

test("an unknown subcommand or flag is one line pointing at --help, exit 2", async () => {
  const unknown = await runCli(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, 'lanekeeper: unknown command "frobnicate"; see lanekeeper --help\n');
  const badFlag = await runCli(["config", "check", "--nope", "x.json"]);
  assert.equal(badFlag.code, 2);
  assert.equal(badFlag.stderr, "lanekeeper config check: unknown option --nope; see lanekeeper config check --help\n");
});
